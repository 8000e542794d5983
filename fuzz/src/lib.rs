//! Shared pieces of the fuzz targets: the byte encoding of an HTTP request the `sigv4_request`
//! target decodes (and `gen_seeds` encodes), and the fixed secrets and clock the targets use.
//!
//! Request encoding (lossy on purpose, so every input decodes to *some* request):
//!
//! ```text
//! METHOD SP URI LF
//! Name: value LF      (zero or more; invalid names or values are skipped)
//! LF
//! body …
//! ```

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// Secret access key the fuzz targets verify against (seeds are signed with it).
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// Access key id used by the seeds.
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The server clock the targets verify at; the seeds are signed at this instant.
pub const NOW_UNIX: i64 = 1_795_395_600;
/// The region and service the targets check the scope against.
pub const REGION: &str = "us-east-1";
pub const SERVICE: &str = "kms";

/// An owned request, decoded from fuzz bytes.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    /// Decodes the format above. Never fails: unparsable parts fall back to defaults or are
    /// skipped, so the fuzzer spends its time in the SigV4 code, not in `http`'s validation.
    pub fn decode(data: &[u8]) -> Request {
        let (head, body) = match find(data, b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &[][..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let first = lines.next().unwrap_or_default();
        let (method, uri) = match first.iter().position(|&b| b == b' ') {
            Some(sp) => (&first[..sp], &first[sp + 1..]),
            None => (&b"POST"[..], first),
        };
        let method = Method::from_bytes(method).unwrap_or(Method::POST);
        let uri = Uri::try_from(uri).unwrap_or_else(|_| Uri::from_static("/"));
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = &line[..colon];
            let mut value = &line[colon + 1..];
            if let Some(rest) = value.strip_prefix(b" ") {
                value = rest;
            }
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        Request {
            method,
            uri,
            headers,
            body: body.to_vec(),
        }
    }

    /// The inverse of [`decode`](Self::decode) for well-formed requests (used for seeds).
    pub fn encode(method: &str, uri: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        let mut out = format!("{method} {uri}\n").into_bytes();
        for (name, value) in headers {
            out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(body);
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
