//! IAM's policy simulator on the Query protocol: `SimulatePrincipalPolicy` and
//! `SimulateCustomPolicy` parameters → `trent_core::simulate` → AWS's `SimulatePolicyResponse`
//! XML (`EvaluationResults`, `IsTruncated`, `Marker`).
//!
//! Pagination: `MaxItems` (1–1000, default 100) results per page; the `Marker` returned is the
//! position of the next result, to be passed back with the same request.

use trent_core::iam::IamError;
use trent_core::simulate::{ContextEntry, EvalDecision, EvaluationResult, SimulationInput};
use trent_core::{Caller, Kms};

use super::{Params, Xml};

const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_ITEMS: i64 = 1000;

/// Runs `SimulatePrincipalPolicy` or `SimulateCustomPolicy` and writes its result element's
/// content.
pub async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    action: &str,
    p: &Params,
) -> Result<Xml, IamError> {
    let input = input(p)?;
    let (max_items, start) = page(p)?;
    let results = if action == "SimulatePrincipalPolicy" {
        kms.simulate_principal_policy(caller, p.required("PolicySourceArn")?, &input)
            .await?
    } else {
        if input.policy_inputs.is_empty() {
            p.required("PolicyInputList")?;
        }
        kms.simulate_custom_policy(caller, &input).await?
    };
    if start > results.len() || (start > 0 && start == results.len()) {
        return Err(IamError::InvalidInput(
            "The Marker is not valid for this request.".into(),
        ));
    }
    let page: Vec<&EvaluationResult> = results.iter().skip(start).take(max_items).collect();
    let next = start.saturating_add(page.len());
    let mut x = Xml::new();
    x.open("EvaluationResults");
    for r in page {
        result_xml(&mut x, r);
    }
    x.close("EvaluationResults");
    if next < results.len() {
        x.leaf("IsTruncated", "true")
            .leaf("Marker", &next.to_string());
    } else {
        x.leaf("IsTruncated", "false");
    }
    Ok(x)
}

fn input(p: &Params) -> Result<SimulationInput, IamError> {
    let actions = p.list("ActionNames");
    if actions.is_empty() {
        p.required("ActionNames")?;
    }
    let mut context = Vec::new();
    for n in 1.. {
        let prefix = format!("ContextEntries.member.{n}");
        let Some(name) = p.get(&format!("{prefix}.ContextKeyName")) else {
            break;
        };
        context.push(ContextEntry {
            name: name.to_string(),
            values: p.list(&format!("{prefix}.ContextKeyValues")),
            kind: p
                .get(&format!("{prefix}.ContextKeyType"))
                .map(str::to_string),
        });
    }
    Ok(SimulationInput {
        policy_inputs: p.list("PolicyInputList"),
        boundary_inputs: p.list("PermissionsBoundaryPolicyInputList"),
        actions,
        resources: p.list("ResourceArns"),
        resource_policy: p.get("ResourcePolicy").map(str::to_string),
        resource_owner: p.get("ResourceOwner").map(str::to_string),
        caller_arn: p.get("CallerArn").map(str::to_string),
        context,
    })
}

/// (`MaxItems`, the first result's position from `Marker`).
fn page(p: &Params) -> Result<(usize, usize), IamError> {
    let max_items = match p.int("MaxItems")? {
        None => DEFAULT_MAX_ITEMS,
        Some(n) if (1..=MAX_ITEMS).contains(&n) => usize::try_from(n).unwrap_or(DEFAULT_MAX_ITEMS),
        Some(n) => {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value {} {}",
                if n < 1 {
                    "greater than or equal to"
                } else {
                    "less than or equal to"
                },
                if n < 1 { 1 } else { MAX_ITEMS },
            )));
        }
    };
    let start = match p.get("Marker") {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            IamError::InvalidInput("The Marker is not valid for this request.".into())
        })?,
    };
    Ok((max_items, start))
}

fn result_xml(x: &mut Xml, r: &EvaluationResult) {
    x.open("member")
        .leaf("EvalActionName", &r.action)
        .leaf("EvalResourceName", &r.resource)
        .leaf("EvalDecision", r.eval_decision.as_str());
    statements_xml(x, r);
    // With named resources the missing keys are reported per resource, as AWS does.
    x.open("MissingContextValues");
    if !r.resource_specific {
        for k in &r.missing_context {
            x.leaf("member", k);
        }
    }
    x.close("MissingContextValues");
    details_xml(x, r.details.as_deref());
    boundary_xml(x, r.boundary_allowed);
    if r.resource_specific {
        x.open("ResourceSpecificResults")
            .open("member")
            .leaf("EvalResourceName", &r.resource)
            .leaf("EvalResourceDecision", r.eval_decision.as_str());
        statements_xml(x, r);
        x.open("MissingContextValues");
        for k in &r.missing_context {
            x.leaf("member", k);
        }
        x.close("MissingContextValues");
        details_xml(x, r.details.as_deref());
        boundary_xml(x, r.boundary_allowed);
        x.close("member").close("ResourceSpecificResults");
    }
    x.close("member");
}

fn statements_xml(x: &mut Xml, r: &EvaluationResult) {
    x.open("MatchedStatements");
    for s in &r.matched {
        x.open("member")
            .leaf("SourcePolicyId", &s.source_policy_id)
            .leaf("SourcePolicyType", s.source_policy_type.as_str());
        if let Some(span) = s.span {
            x.open("StartPosition")
                .leaf("Line", &span.start.line.to_string())
                .leaf("Column", &span.start.column.to_string())
                .close("StartPosition")
                .open("EndPosition")
                .leaf("Line", &span.end.line.to_string())
                .leaf("Column", &span.end.column.to_string())
                .close("EndPosition");
        }
        x.close("member");
    }
    x.close("MatchedStatements");
}

fn details_xml(x: &mut Xml, details: Option<&[(&'static str, EvalDecision)]>) {
    let Some(details) = details else { return };
    x.open("EvalDecisionDetails");
    for (source, decision) in details {
        x.open("entry")
            .leaf("key", source)
            .leaf("value", decision.as_str())
            .close("entry");
    }
    x.close("EvalDecisionDetails");
}

fn boundary_xml(x: &mut Xml, allowed: Option<bool>) {
    if let Some(allowed) = allowed {
        x.open("PermissionsBoundaryDecisionDetail")
            .leaf(
                "AllowedByPermissionsBoundary",
                if allowed { "true" } else { "false" },
            )
            .close("PermissionsBoundaryDecisionDetail");
    }
}
