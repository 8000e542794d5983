//! The AWS Query protocol (IAM and STS): form-encoded `Action=...&Version=...` requests, XML
//! responses, `<ErrorResponse>` errors.

pub mod iam;
mod iam_simulate;
pub mod sts;
mod xml;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use trent_core::iam::IamError;

pub use xml::Xml;

/// The largest list member index (`Name.member.N`) a Query request may use. IAM's and STS's
/// lists are far shorter (50 tags, 10 policy ARNs); the bound keeps a bogus index from meaning
/// anything.
pub const MAX_MEMBER_INDEX: u32 = 1000;

/// The request parameters of a Query call (body form fields, then URL query fields). Every
/// name occurs once, and list members are numbered 1, 2, 3, … (checked by [`Params::parse`]).
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the body form and the URL query. A parameter named twice (in either or both)
    /// and a list member index that is not 1..=[`MAX_MEMBER_INDEX`], or leaves a gap, are
    /// `InvalidQueryParameter`: the request would not mean one thing. Nothing is allocated
    /// per index, only per parameter present.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Params, IamError> {
        let mut fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| {
                IamError::InvalidInput("The request body is not a valid form encoding.".into())
            })?;
        if let Some(q) = query {
            let more: Vec<(String, String)> = serde_urlencoded::from_str(q)
                .map_err(|_| IamError::InvalidInput("The query string is not valid.".into()))?;
            fields.extend(more);
        }
        check_names(&fields)?;
        Ok(Params(fields))
    }

    /// Every parameter, in request order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter, with AWS's validation message naming it in lower camel case.
    pub fn required(&self, name: &str) -> Result<&str, IamError> {
        self.get(name).ok_or_else(|| {
            let mut field = name.to_string();
            if let Some(first) = field.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            IamError::Validation(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"))
        })
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, IamError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    IamError::Validation(format!("Invalid value for parameter {name}: {v}"))
                })
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A flattened list `Name.member.N` in index order.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.indexed(&format!("{name}.member."), "")
    }

    /// Tags given as `Tags.member.N.Key` / `Tags.member.N.Value`.
    pub fn tags(&self) -> Vec<(String, String)> {
        let keys = self.indexed("Tags.member.", ".Key");
        let values = self.indexed("Tags.member.", ".Value");
        keys.into_iter()
            .zip(values.into_iter().chain(std::iter::repeat(String::new())))
            .collect()
    }

    fn indexed(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.strip_suffix(suffix)?;
                Some((n.parse().ok()?, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }
}

/// Refuses repeated parameter names and list member indices that are not 1, 2, 3, … .
fn check_names(fields: &[(String, String)]) -> Result<(), IamError> {
    let invalid = |m: String| Err(IamError::InvalidQueryParameter(m));
    let mut names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    for pair in names.windows(2) {
        if let [a, b] = pair
            && a == b
        {
            return invalid(format!(
                "The parameter '{}' appears more than once in the request.",
                shown(a)
            ));
        }
    }
    // (list, index) for every `<list>.member.<index>` in every name.
    let mut members: Vec<(&str, u32)> = Vec::new();
    for name in &names {
        let mut start = 0usize;
        let mut after_member = false;
        for segment in name.split('.') {
            if after_member {
                let Some(index) = member_index(segment) else {
                    return invalid(format!(
                        "The parameter '{}' has a list member index that is not a number from 1 to {MAX_MEMBER_INDEX}.",
                        shown(name)
                    ));
                };
                let list = name.get(..start.saturating_sub(1)).unwrap_or(name);
                members.push((list, index));
            }
            after_member = segment == "member";
            start = start.saturating_add(segment.len()).saturating_add(1);
        }
    }
    members.sort_unstable();
    members.dedup();
    let mut expected: Option<(&str, u32)> = None;
    for (list, index) in members {
        let next = match expected {
            Some((l, n)) if l == list => n,
            _ => 1,
        };
        if index != next {
            return invalid(format!(
                "The list '{}' must number its members 1, 2, 3, … without gaps; member {next} is missing.",
                shown(list)
            ));
        }
        expected = Some((list, next.saturating_add(1)));
    }
    Ok(())
}

/// A list member index: 1..=[`MAX_MEMBER_INDEX`] in plain decimal (no sign, no leading zero,
/// so no two spellings of one index).
fn member_index(segment: &str) -> Option<u32> {
    let digits = !segment.is_empty()
        && segment.len() <= 4
        && !segment.starts_with('0')
        && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return None;
    }
    let n: u32 = segment.parse().ok()?;
    (n <= MAX_MEMBER_INDEX).then_some(n)
}

/// A parameter name as an error message shows it: at most 100 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", name.get(..cut).unwrap_or(name)),
        None => name.to_string(),
    }
}

/// The HTTP status and Query error code of an IAM/STS error.
pub fn error_code(e: &IamError, sts: bool) -> (StatusCode, &'static str) {
    use IamError::*;
    match e {
        NoSuchEntity(_) => (StatusCode::NOT_FOUND, "NoSuchEntity"),
        EntityAlreadyExists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists"),
        LimitExceeded(_) => (StatusCode::CONFLICT, "LimitExceeded"),
        DeleteConflict(_) => (StatusCode::CONFLICT, "DeleteConflict"),
        InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
        InvalidQueryParameter(_) => (StatusCode::BAD_REQUEST, "InvalidQueryParameter"),
        MalformedPolicyDocument(_) => (StatusCode::BAD_REQUEST, "MalformedPolicyDocument"),
        UnmodifiableEntity(_) => (StatusCode::BAD_REQUEST, "UnmodifiableEntity"),
        PolicyNotAttachable(_) => (StatusCode::BAD_REQUEST, "PolicyNotAttachable"),
        Validation(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
        AccessDenied(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
        ExpiredToken(_) if sts => (StatusCode::BAD_REQUEST, "ExpiredTokenException"),
        ExpiredToken(_) => (StatusCode::FORBIDDEN, "ExpiredToken"),
        ServiceFailure(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure"),
    }
}

/// An `<ErrorResponse>` for a Query API.
pub fn error_response(
    namespace: &str,
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let mut x = Xml::new();
    x.open_ns("ErrorResponse", namespace);
    x.open("Error");
    x.leaf("Type", kind);
    x.leaf("Code", code);
    x.leaf("Message", message);
    x.close("Error");
    x.leaf("RequestId", request_id);
    x.close("ErrorResponse");
    let mut response = xml_response(status, x.finish());
    response
        .extensions_mut()
        .insert(crate::metrics::ErrorCode(code.into()));
    response
        .extensions_mut()
        .insert(crate::metrics::ErrorMessage(message.into()));
    response
}

/// Wraps an operation's result in `<OpResponse><OpResult>…</OpResult><ResponseMetadata>…`.
pub fn success(
    namespace: &str,
    operation: &str,
    result: Option<Xml>,
    request_id: &str,
) -> Response {
    let mut x = Xml::new();
    x.open_ns(&format!("{operation}Response"), namespace);
    if let Some(inner) = result {
        x.open(&format!("{operation}Result"));
        x.raw(&inner.finish());
        x.close(&format!("{operation}Result"));
    }
    x.open("ResponseMetadata");
    x.leaf("RequestId", request_id);
    x.close("ResponseMetadata");
    x.close(&format!("{operation}Response"));
    xml_response(StatusCode::OK, x.finish())
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// RFC 3986 percent-encoding, as IAM returns policy documents.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(body: &str) -> Result<Params, IamError> {
        Params::parse(None, body.as_bytes())
    }

    fn refused(r: Result<Params, IamError>) -> String {
        match r {
            Err(e @ IamError::InvalidQueryParameter(_)) => {
                assert_eq!(
                    error_code(&e, false),
                    (StatusCode::BAD_REQUEST, "InvalidQueryParameter")
                );
                e.to_string()
            }
            Err(e) => panic!("refused with the wrong error: {e:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_well_formed_request_parses() {
        let p = parse("Action=TagUser&Version=2010-05-08&UserName=bob&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=b&Tags.member.2.Value=2").unwrap();
        assert_eq!(p.get("Action"), Some("TagUser"));
        assert_eq!(
            p.tags(),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let p = parse("Action=UntagUser&TagKeys.member.2=y&TagKeys.member.1=x").unwrap();
        assert_eq!(p.list("TagKeys"), vec!["x".to_string(), "y".to_string()]);
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let m = refused(parse("Action=GetUser&Action=DeleteUser&UserName=bob"));
        assert_eq!(
            m,
            "The parameter 'Action' appears more than once in the request."
        );
        refused(parse("Action=GetUser&UserName=a&UserName=b"));
        refused(parse(
            "Action=TagUser&Tags.member.1.Key=a&Tags.member.1.Key=b",
        ));
        // Once in the URL query and once in the body is twice too.
        refused(Params::parse(
            Some("Action=DeleteUser"),
            b"Action=GetUser&UserName=bob",
        ));
    }

    #[test]
    fn member_indices_are_one_to_a_thousand_without_gaps() {
        for bad in [
            "Tags.member.99999999.Key=a",
            "Tags.member.99999999999999999999.Key=a",
            "Tags.member.0.Key=a",
            "Tags.member.01.Key=a",
            "Tags.member.+1.Key=a",
            "Tags.member.x.Key=a",
            "Tags.member..Key=a",
            "Tags.member.1001.Key=a",
        ] {
            let m = refused(parse(&format!("Action=TagUser&UserName=u&{bad}")));
            assert!(m.contains("not a number from 1 to 1000"), "{bad}: {m}");
        }
        let m = refused(parse(
            "Action=TagUser&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.3.Key=c",
        ));
        assert!(
            m.contains("'Tags.member'") && m.contains("member 2 is missing"),
            "{m}"
        );
        refused(parse("Action=UntagUser&TagKeys.member.2=y"));
        // A full list of 1000 members is fine.
        let body: String = (1..=MAX_MEMBER_INDEX)
            .map(|i| format!("&TagKeys.member.{i}=k{i}"))
            .collect();
        let p = parse(&format!("Action=UntagUser&UserName=u{body}")).unwrap();
        assert_eq!(p.list("TagKeys").len(), 1000);
    }

    #[test]
    fn long_names_are_cut_short_in_messages() {
        let name = "N".repeat(5000);
        let m = refused(parse(&format!("{name}=1&{name}=2")));
        assert!(m.len() < 200, "{m}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Params::parse(None, &body);
        }

        #[test]
        fn parse_never_panics_on_query_shaped_input(
            pairs in proptest::collection::vec(
                (
                    "(Action|Tags|TagKeys|PolicyArns|member|Key|Value|[0-9]{1,12}|[.]|%2E|%|&|=|\\+){1,8}",
                    "[a-z0-9%=&.]{0,8}",
                ),
                0..24,
            ),
            query in proptest::option::of("[A-Za-z0-9.=&%]{0,40}"),
        ) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let body = body.join("&");
            if let Ok(p) = Params::parse(query.as_deref(), body.as_bytes()) {
                // What parses has no repeated name, and its lists read back without panicking.
                let _ = (p.tags(), p.list("TagKeys"), p.list("PolicyArns"));
            }
        }
    }
}
