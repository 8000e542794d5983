//! Test helpers: sign requests with the AWS SDK's own signer (`aws-sigv4`), an implementation
//! independent of this crate, and present them the way the server sees them.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    self, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Uri};
use trent_sigv4::{ParsedSignature, RequestParts, SigV4Error, SigningKey};

pub const AKID: &str = "AKIDTRENTEXAMPLE0001";
pub const SECRET: &str = "trentEXAMPLEsecret/K7MDENG+bPxRfiCYEXAMPLE";
pub const TOKEN: &str =
    "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDsession+token==";
/// 2026-11-23T01:00:00Z.
pub const T0: i64 = 1_795_395_600;

/// A request as the server receives it.
pub struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Req {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }

    pub fn set_header(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).unwrap().to_str().unwrap().to_owned()
    }

    /// Rewrites the Authorization header with `f`.
    pub fn edit_authorization(&mut self, f: impl FnOnce(&str) -> String) {
        let new = f(&self.header("authorization"));
        self.set_header("authorization", &new);
    }
}

/// What to sign with the oracle.
#[derive(Clone)]
pub struct Spec {
    pub method: &'static str,
    /// Absolute URL, as the SDK's signer sees it.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub token: Option<String>,
    pub secret: String,
    pub region: &'static str,
    pub service: &'static str,
    pub time: i64,
    /// Presign into the query string with this X-Amz-Expires.
    pub presign_expires: Option<u64>,
    /// Add and sign `x-amz-content-sha256`.
    pub content_sha256: bool,
    /// Sign `UNSIGNED-PAYLOAD` instead of the body hash.
    pub unsigned_payload: bool,
}

/// A KMS Encrypt call as aws-sdk-kms sends it.
pub fn kms_spec() -> Spec {
    let body = br#"{"KeyId":"alias/trent-test","Plaintext":"aGVsbG8="}"#.to_vec();
    Spec {
        method: "POST",
        url: "https://kms.us-east-1.amazonaws.com/".to_owned(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), "TrentService.Encrypt".into()),
            ("content-length".into(), body.len().to_string()),
            (
                "x-amz-user-agent".into(),
                "aws-sdk-rust/1.3.0 api/kms/1.129.0".into(),
            ),
            (
                "user-agent".into(),
                "aws-sdk-rust/1.3.0 os/linux lang/rust/1.95.0".into(),
            ),
        ],
        body,
        token: None,
        secret: SECRET.to_owned(),
        region: "us-east-1",
        service: "kms",
        time: T0,
        presign_expires: None,
        content_sha256: false,
        unsigned_payload: false,
    }
}

/// An STS GetCallerIdentity call in the awsQuery protocol (form POST).
pub fn sts_spec() -> Spec {
    let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
    Spec {
        url: "http://127.0.0.1:4566/".to_owned(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            (
                "user-agent".into(),
                "Boto3/1.43.11 md/Botocore#1.43.11".into(),
            ),
        ],
        body,
        service: "sts",
        ..kms_spec()
    }
}

/// Signs `spec` with aws-sigv4 and returns the request in origin form plus the `Host` header
/// an HTTP/1.1 client sends.
pub fn aws_sign(spec: &Spec) -> Req {
    let mut req = aws_sign_absolute(spec);
    let authority = req.uri.authority().unwrap().as_str().to_owned();
    req.headers
        .insert(HOST, HeaderValue::from_str(&authority).unwrap());
    req.uri = req.uri.path_and_query().unwrap().as_str().parse().unwrap();
    req
}

/// Signs `spec` with aws-sigv4 and keeps the absolute URI and no `Host` header, as the server
/// sees an HTTP/2 request (`:authority` in the URI).
pub fn aws_sign_absolute(spec: &Spec) -> Req {
    let identity: Identity = Credentials::new(
        AKID,
        spec.secret.clone(),
        spec.token.clone(),
        None,
        "trent-sigv4-tests",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = spec.presign_expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
    }
    if spec.service == "s3" {
        // What aws-sdk-s3 configures: S3 signs the wire path as is.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    if spec.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name(spec.service)
        .time(UNIX_EPOCH + Duration::from_secs(spec.time.try_into().unwrap()))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = if spec.unsigned_payload {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(&spec.body)
    };
    let signable = SignableRequest::new(
        spec.method,
        &spec.url,
        spec.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .unwrap();
    let (instructions, _signature) = http_request::sign(signable, &params).unwrap().into_parts();

    let mut builder = http::Request::builder().method(spec.method).uri(&spec.url);
    for (name, value) in &spec.headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(spec.body.clone()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    let (parts, body) = request.into_parts();
    Req {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    }
}

/// What the server does: parse, derive the key from `secret`, verify at `now`.
pub fn check_with(
    req: &Req,
    secret: &str,
    now: i64,
) -> Result<ParsedSignature<'static>, SigV4Error> {
    let parts = req.parts();
    let parsed = trent_sigv4::parse(&parts)?;
    let key = SigningKey::derive(secret, &parsed.scope_date, &parsed.region, &parsed.service);
    trent_sigv4::verify(&parts, &parsed, &key, now)?;
    Ok(parsed.into_owned())
}

/// [`check_with`] using the test secret.
pub fn check(req: &Req, now: i64) -> Result<ParsedSignature<'static>, SigV4Error> {
    check_with(req, SECRET, now)
}

/// A tiny deterministic PRNG (xorshift64*) for the differential tests; no extra dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}
