//! Building the canonical request and the string to sign, the byte strings both sides hash.
//!
//! Shared by [`verify`](crate::verify) and [`sign`](crate::sign) so the two cannot drift apart.
//! Every rule here is about reproducing, from the request as *received*, exactly the bytes the
//! client hashed before sending it.

use aws_lc_rs::digest;

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded (besides `/` in paths).
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` percent-encoded (upper-case hex) to `out`, keeping unreserved characters and,
/// if `keep_slash`, `/`.
fn percent_encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            for nibble in [byte >> 4, byte & 0x0f] {
                if let Some(&digit) = HEX.get(usize::from(nibble)) {
                    out.push(char::from(digit));
                }
            }
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` query component: `%XX` to its byte and `+`
/// to a space, as the AWS SDK's signer (via `form_urlencoded`) does before re-encoding. A `%`
/// not followed by two hex digits stays literal (and is re-encoded as `%25`).
fn query_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'+' => {
                out.push(b' ');
                rest = tail;
            }
            b'%' => {
                let escaped = match tail {
                    [hi, lo, ..] => hex_value(*hi).zip(hex_value(*lo)),
                    _ => None,
                };
                match (escaped, tail.get(2..)) {
                    (Some((hi, lo)), Some(after)) => {
                        out.push(hi << 4 | lo);
                        rest = after;
                    }
                    _ => {
                        out.push(b'%');
                        rest = tail;
                    }
                }
            }
            _ => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

/// Splits a raw query string into decoded `(key, value)` pairs in wire order. Empty pieces
/// (`a=1&&b=2`) are skipped; a piece without `=` is a key with an empty value.
pub(crate) fn query_pairs(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let (key, value) = piece.split_at(eq);
                let value = value.get(1..).unwrap_or_default();
                (query_decode(key), query_decode(value))
            }
            None => (query_decode(piece), Vec::new()),
        })
        .collect()
}

/// The canonical query string: every parameter decoded, re-encoded with only the unreserved
/// set kept (so a space is `%20` and `+` is `%2B`), sorted by encoded key then encoded value,
/// joined with `&`. For a presigned URL (`drop_signature`), `X-Amz-Signature` is left out: it
/// cannot sign itself.
pub(crate) fn canonical_query(query: &str, drop_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(key, _)| !(drop_signature && key.as_slice() == b"X-Amz-Signature"))
        .map(|(key, value)| {
            let mut enc_key = String::with_capacity(key.len());
            percent_encode_into(&mut enc_key, &key, false);
            let mut enc_value = String::with_capacity(value.len());
            percent_encode_into(&mut enc_value, &value, false);
            (enc_key, enc_value)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical URI for `service`, from the path as it appeared on the wire.
///
/// Every service but S3 normalises the path (RFC 3986 dot-segment removal, empty segments
/// collapsed) and then percent-encodes it *again*. The client signed the already-encoded path
/// it put on the wire, encoded once more, so a key `a:b` travels as `/a%3Ab` and is signed as
/// `/a%253Ab`. Decoding the wire path first would lose the difference between `%2F` and `/`
/// and let two different paths share one signature.
///
/// S3 signs the wire path as is, without normalisation.
pub(crate) fn canonical_uri(path: &str, service: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    if service == "s3" {
        return path.to_owned();
    }
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 8);
    percent_encode_into(&mut out, normalized.as_bytes(), true);
    out
}

/// Where canonical bytes go: a buffer (the signer, tests) or straight into SHA-256 (the
/// verifier, which needs only the hash).
pub(crate) trait ByteSink {
    fn extend_from_slice(&mut self, bytes: &[u8]);

    fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }
}

impl ByteSink for Vec<u8> {
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes);
    }
}

/// A SHA-256 computation fed as bytes are produced.
pub(crate) struct Hashing(digest::Context);

impl Hashing {
    pub(crate) fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    /// The lower-case hex digest.
    pub(crate) fn finish_hex(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        // 32 bytes always fit 64 hex digits; the error case cannot happen.
        let _ = hex::encode_to_slice(self.0.finish(), &mut out);
        out
    }
}

impl ByteSink for Hashing {
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Appends the canonical URI for `service` (see [`canonical_uri`]); the usual `/` without
/// building anything.
pub(crate) fn push_canonical_uri(out: &mut impl ByteSink, path: &str, service: &str) {
    if path.is_empty() || path == "/" {
        out.push(b'/');
    } else {
        out.extend_from_slice(canonical_uri(path, service).as_bytes());
    }
}

/// RFC 3986 §5.2.4 dot-segment removal with empty segments dropped, keeping a trailing slash
/// where the input had one (also when it ended in `/.` or `/..`). Same rules as the AWS SDKs.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if out.is_empty() || (trailing_slash && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// Appends one canonical header value: leading and trailing spaces and tabs trimmed, every
/// internal run of them collapsed to a single space. Several values of one header are joined
/// with `,` by the caller. (The Rust and Go SDKs collapse only spaces, Python and Java any
/// whitespace; the two agree on every value without tabs, which is all real clients send.)
pub(crate) fn push_header_value(out: &mut impl ByteSink, value: &[u8]) {
    // Whole runs of non-blank bytes at a time: the sink may be a hash, where every call counts.
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let mut first = true;
    for word in value.split(is_ws).filter(|w| !w.is_empty()) {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

/// One signed header, ready for the canonical request.
pub(crate) struct CanonicalHeader<'a> {
    /// Lower-case name, as listed in `SignedHeaders`.
    pub name: &'a str,
    /// The canonical value (see [`push_header_value`]).
    pub value: Vec<u8>,
}

/// The canonical request:
/// `METHOD\nURI\nQUERY\n` + `name:value\n` per signed header + `\nSIGNED;HEADERS\nPAYLOAD_HASH`.
///
/// Bytes rather than `String` because a header value may carry non-UTF-8 octets (obs-text),
/// which the client hashed as they are.
pub(crate) fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[CanonicalHeader<'_>],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(query.as_bytes());
    out.push(b'\n');
    for header in headers {
        out.extend_from_slice(header.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&header.value);
        out.push(b'\n');
    }
    out.push(b'\n');
    for (i, header) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(header.name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The string to sign: algorithm, timestamp, credential scope, and the hex SHA-256 of the
/// canonical request, one per line.
pub(crate) fn string_to_sign(
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical_request: &[u8],
) -> String {
    format!(
        "{}\n{amz_date}\n{scope_date}/{region}/{service}/aws4_request\n{}",
        crate::ALGORITHM,
        sha256_hex(canonical_request)
    )
}

/// Lower-case hex SHA-256, the form SigV4 uses for payload and canonical-request hashes.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// [`sha256_hex`] into a buffer on the stack.
pub(crate) fn sha256_hex_into(data: &[u8], out: &mut [u8; 64]) {
    // 32 bytes always fit 64 hex digits; the error case cannot happen.
    let _ = hex::encode_to_slice(digest::digest(&digest::SHA256, data), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_double_encoded_for_non_s3() {
        assert_eq!(canonical_uri("", "kms"), "/");
        assert_eq!(canonical_uri("/", "kms"), "/");
        assert_eq!(canonical_uri("/a%3Ab", "kms"), "/a%253Ab");
        assert_eq!(
            canonical_uri("/test/@connections/x%3D", "execute-api"),
            "/test/%40connections/x%253D"
        );
        assert_eq!(canonical_uri("/-._~AZaz09", "kms"), "/-._~AZaz09");
        // AWS SigV4 test suite, double-url-encode/header-canonical-request.txt.
        assert_eq!(
            canonical_uri(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
                "lambda"
            ),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations"
        );
        assert_eq!(canonical_uri("/a%3Ab", "s3"), "/a%3Ab");
        assert_eq!(canonical_uri("//a//b/", "s3"), "//a//b/");
    }

    #[test]
    fn uri_removes_dot_and_empty_segments() {
        for (input, want) in [
            ("//example//", "/example/"),
            ("/example1/example2/../..", "/"),
            ("/example/..", "/"),
            ("/./example", "/example"),
            ("/example/.", "/example/"),
            ("/example/./", "/example/"),
            ("/a/b/../c", "/a/c"),
            ("/../a", "/a"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("a/b", "/a/b"),
            ("/a/..b/.c", "/a/..b/.c"),
        ] {
            assert_eq!(canonical_uri(input, "service"), want, "{input}");
        }
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(
            canonical_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", false),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(canonical_query("b=2&a=2&a=1", false), "a=1&a=2&b=2");
        assert_eq!(canonical_query("key&x=", false), "key=&x=");
        assert_eq!(canonical_query("a=x+y%20z%2Bw", false), "a=x%20y%20z%2Bw");
        assert_eq!(canonical_query("a=%7e%2f&&", false), "a=~%2F");
        assert_eq!(canonical_query("a=%zz%4", false), "a=%25zz%254");
        assert_eq!(canonical_query("a=%", false), "a=%25");
        assert_eq!(canonical_query("a==b", false), "a=%3Db");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", false),
            "X-Amz-Date=1&X-Amz-Signature=abc"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let canon = |v: &[u8]| {
            let mut out = Vec::new();
            push_header_value(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(canon(b"  value1 "), "value1");
        assert_eq!(canon(b"\"a   b   c\""), "\"a b c\"");
        assert_eq!(canon(b"a \t b\t"), "a b");
        assert_eq!(canon(b""), "");
        assert_eq!(canon(b"   "), "");
    }

    #[test]
    fn canonical_request_layout() {
        let headers = [
            CanonicalHeader {
                name: "host",
                value: b"example.amazonaws.com".to_vec(),
            },
            CanonicalHeader {
                name: "x-amz-date",
                value: b"20150830T123600Z".to_vec(),
            },
        ];
        let creq = canonical_request("GET", "/", "", &headers, &sha256_hex(b""));
        assert_eq!(
            String::from_utf8(creq.clone()).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Expected value from the AWS SigV4 test suite, get-vanilla/header-string-to-sign.txt.
        assert_eq!(
            string_to_sign(
                "20150830T123600Z",
                "20150830",
                "us-east-1",
                "service",
                &creq
            ),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }
}
