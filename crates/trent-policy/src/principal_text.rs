//! Rewriting the principal values of a policy document's text, keeping everything else as
//! written: how a key policy or trust policy is shown once a principal it names has been
//! deleted (AWS shows the deleted user's or role's unique id, `AIDA…`/`AROA…`, in place of
//! its ARN).
//!
//! A linear scan of the JSON text with an explicit stack (no recursion, so any nesting the
//! size limit allows is safe). Only string *values* inside a statement's `Principal` or
//! `NotPrincipal` member are offered to the caller's function; keys, conditions, resources
//! and formatting are copied unchanged. Text that is not well-formed JSON is copied through
//! with whatever replacements the scan could make; it never panics.

/// A container open at some point of the scan.
struct Frame {
    object: bool,
    /// The member whose value is being read (objects only), once its `:` was seen.
    key: Option<String>,
    after_colon: bool,
}

/// `json` with each principal value `v` for which `replace(v)` is `Some(new)` written as the
/// JSON string `new`.
pub fn rewrite_principal_values(
    json: &str,
    mut replace: impl FnMut(&str) -> Option<String>,
) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut stack: Vec<Frame> = Vec::new();
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                let end = string_end(bytes, i);
                let is_key = stack.last().is_some_and(|f| f.object && !f.after_colon);
                let raw = json.get(i..end).unwrap_or_default();
                let decoded = serde_json::from_str::<String>(raw).ok();
                if is_key {
                    if let Some(top) = stack.last_mut() {
                        top.key = decoded;
                    }
                } else if in_principal(&stack)
                    && let Some(new) = decoded.as_deref().and_then(&mut replace)
                    && let Ok(quoted) = serde_json::to_string(&new)
                {
                    out.push_str(json.get(copied..i).unwrap_or_default());
                    out.push_str(&quoted);
                    copied = end;
                }
                i = end;
                continue;
            }
            b'{' | b'[' => stack.push(Frame {
                object: b == b'{',
                key: None,
                after_colon: false,
            }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(top) = stack.last_mut() {
                    top.after_colon = true;
                }
            }
            b',' => {
                if let Some(top) = stack.last_mut().filter(|f| f.object) {
                    top.after_colon = false;
                    top.key = None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(json.get(copied..).unwrap_or_default());
    out
}

/// The index just past the string starting at `start` (a `"`), or the end of the text.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether the value being read sits inside a statement's `Principal`/`NotPrincipal`:
/// root object › `Statement` › (array ›) statement object › `Principal` › anything.
fn in_principal(stack: &[Frame]) -> bool {
    let member = |f: &Frame, names: &[&str]| {
        f.object && f.after_colon && f.key.as_deref().is_some_and(|k| names.contains(&k))
    };
    let Some(root) = stack.first() else {
        return false;
    };
    if !member(root, &["Statement"]) {
        return false;
    }
    let statement = match stack.get(1) {
        Some(f) if !f.object => 2,
        _ => 1,
    };
    stack
        .get(statement)
        .is_some_and(|f| member(f, &["Principal", "NotPrincipal"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_principal_values_are_rewritten() {
        let alice = "arn:aws:iam::111122223333:user/alice";
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{alice}","Effect":"Allow",
  "Principal": {{"AWS": ["{alice}", "arn:aws:iam::111122223333:root"]}},
  "Action":"kms:*","Resource":"*",
  "Condition":{{"ArnEquals":{{"aws:PrincipalArn":"{alice}"}}}}}},
  {{"Effect":"Deny","NotPrincipal":{{"AWS":"{alice}"}},"Action":"kms:*","Resource":"*"}}]}}"#
        );
        let out = rewrite_principal_values(&doc, |v| (v == alice).then(|| "AIDAEXAMPLE".into()));
        assert_eq!(out.matches("AIDAEXAMPLE").count(), 2, "{out}");
        // The Sid and the condition value keep the ARN; the layout is unchanged.
        assert_eq!(out.matches(alice).count(), 2, "{out}");
        assert_eq!(
            out,
            doc.replacen(&format!("[\"{alice}\""), "[\"AIDAEXAMPLE\"", 1)
                .replacen(
                    &format!("{{\"AWS\":\"{alice}\"}}"),
                    "{\"AWS\":\"AIDAEXAMPLE\"}",
                    1
                )
        );
    }

    #[test]
    fn a_single_statement_object_and_escapes() {
        let doc = r#"{"Statement":{"Principal":{"AWS":"arn:aws:iam::111122223333:role\/r"},"Effect":"Allow"}}"#;
        let out = rewrite_principal_values(doc, |v| {
            (v == "arn:aws:iam::111122223333:role/r").then(|| "AROAEXAMPLE".into())
        });
        assert_eq!(
            out,
            r#"{"Statement":{"Principal":{"AWS":"AROAEXAMPLE"},"Effect":"Allow"}}"#
        );
    }

    #[test]
    fn garbage_is_copied_without_panic() {
        for doc in ["", "{", "\"", "{\"Statement\":[{\"Principal\":\"", "}}]]\\"] {
            assert_eq!(rewrite_principal_values(doc, |_| None), doc);
        }
    }
}
