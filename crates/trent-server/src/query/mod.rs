//! The AWS Query protocol (IAM and STS): form-encoded `Action=...&Version=...` requests, XML
//! responses, `<ErrorResponse>` errors.

pub mod iam;
pub mod sts;
mod xml;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use trent_core::iam::IamError;

pub use xml::Xml;

/// The request parameters of a Query call (body form fields, then URL query fields).
pub struct Params(Vec<(String, String)>);

impl Params {
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
        Ok(Params(fields))
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

/// The HTTP status and Query error code of an IAM/STS error.
pub fn error_code(e: &IamError, sts: bool) -> (StatusCode, &'static str) {
    use IamError::*;
    match e {
        NoSuchEntity(_) => (StatusCode::NOT_FOUND, "NoSuchEntity"),
        EntityAlreadyExists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists"),
        LimitExceeded(_) => (StatusCode::CONFLICT, "LimitExceeded"),
        DeleteConflict(_) => (StatusCode::CONFLICT, "DeleteConflict"),
        InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
        MalformedPolicyDocument(_) => (StatusCode::BAD_REQUEST, "MalformedPolicyDocument"),
        UnmodifiableEntity(_) => (StatusCode::BAD_REQUEST, "UnmodifiableEntity"),
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
    xml_response(status, x.finish())
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
