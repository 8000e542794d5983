//! The way back: checked policy → raw serde form → canonical JSON.
//!
//! Canonical means stable: elements in a fixed order (Version, Id, Statement;
//! Sid, Effect, Principal, Action, Resource, Condition), `Statement` always a
//! list, one-element lists written as bare values, everything else as the
//! author wrote it. `parse(to_json(p)) == p` for every parsed `p`.

use crate::ast::{Policy, PrincipalElement, Statement};
use crate::principal::PrincipalSpec;
use crate::raw::{
    RawPolicy, RawPrincipal, RawStatement, RawValues, Statements, Strings, UniqueMap,
};

impl Policy {
    /// Compact canonical JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain strings, maps and lists into a String cannot fail;
        // an empty string would only hide a bug, never a user error.
        serde_json::to_string(&self.to_raw()).unwrap_or_default()
    }

    /// Canonical JSON pretty-printed the way `GetKeyPolicy` returns the
    /// default key policy (Jackson's default printer: two-space indent,
    /// `"Key" : value`, arrays opened as `[ {` on one line).
    #[must_use]
    pub fn to_json_pretty(&self) -> String {
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, crate::jackson::Jackson::default());
        match serde::Serialize::serialize(&self.to_raw(), &mut ser) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub(crate) fn to_raw(&self) -> RawPolicy {
        RawPolicy {
            version: self.version.map(|v| v.as_str().to_owned()),
            id: self.id.clone(),
            statement: Some(Statements(
                self.statements.iter().map(statement_raw).collect(),
            )),
        }
    }
}

fn statement_raw(st: &Statement) -> RawStatement {
    let (principal, not_principal) = match &st.principal {
        Some(PrincipalElement { negated, spec }) => {
            let raw = principal_raw(spec);
            if *negated {
                (None, Some(raw))
            } else {
                (Some(raw), None)
            }
        }
        None => (None, None),
    };
    let actions = Strings(st.action.items.iter().map(|i| i.source.clone()).collect());
    let (action, not_action) = if st.action.negated {
        (None, Some(actions))
    } else {
        (Some(actions), None)
    };
    let (resource, not_resource) = match &st.resource {
        Some(r) => {
            let items = Strings(r.items.iter().map(|i| i.source.clone()).collect());
            if r.negated {
                (None, Some(items))
            } else {
                (Some(items), None)
            }
        }
        None => (None, None),
    };
    let condition = (!st.conditions.is_empty()).then(|| {
        UniqueMap(
            st.conditions
                .iter()
                .map(|block| {
                    let keys = block
                        .entries
                        .iter()
                        .map(|e| (e.key.clone(), RawValues(e.raw.clone())))
                        .collect();
                    (block.operator.to_string(), UniqueMap(keys))
                })
                .collect(),
        )
    });
    RawStatement {
        sid: st.sid.as_deref().map(str::to_owned),
        effect: Some(st.effect.as_str().to_owned()),
        principal,
        not_principal,
        action,
        not_action,
        resource,
        not_resource,
        condition,
    }
}

fn principal_raw(spec: &PrincipalSpec) -> RawPrincipal {
    match spec {
        PrincipalSpec::Everyone => RawPrincipal::Bare("*".to_owned()),
        PrincipalSpec::Map(m) => RawPrincipal::Map(UniqueMap(
            m.iter()
                .map(|(ty, entries)| {
                    let values = entries.iter().map(|e| e.source.clone()).collect();
                    (ty.name().to_owned(), Strings(values))
                })
                .collect(),
        )),
    }
}
