//! Writes the seed corpora into `fuzz/corpus/<target>/`: valid ciphertext blobs, validly signed
//! KMS requests (header and presigned forms) and realistic policy documents. Seeds let the
//! fuzzer start past the first structural checks. Run from `fuzz/`: `cargo run --example gen_seeds`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use trent_crypto::{CiphertextBlob, EncryptionContext, MaterialId, SymmetricKey};
use trent_fuzz::{ACCESS_KEY_ID, NOW_UNIX, REGION, Request, SECRET, SERVICE};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn blobs() {
    let key = SymmetricKey::from_bytes(&[7u8; 32]).expect("32-byte key");
    let context = EncryptionContext::new(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
    for (i, pt) in [&b""[..], b"x", &[0u8; 300]].into_iter().enumerate() {
        let blob = CiphertextBlob::seal([0x11; 16], MaterialId([0x22; 32]), &key, &context, pt)
            .expect("seal");
        let mut raw = vec![0u8];
        raw.extend_from_slice(&blob);
        write("ciphertext_blob", &format!("raw-{i}"), &raw);
    }
    // Mode 1 (XOR into a fresh valid blob): unchanged, one header bit, one tag bit.
    write("ciphertext_blob", "xor-none", &[1u8; 1]);
    let mut flip = vec![1u8; 1];
    flip.extend_from_slice(&[0, 0, 0, 1]);
    write("ciphertext_blob", "xor-header", &flip);
}

fn signed(name: &str, target_op: &str, body: &str, token: Option<&str>, query: &str) {
    let host = "127.0.0.1:8080";
    let extra = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target_op),
    ];
    let auth = trent_sigv4::sign(
        "POST",
        "/",
        query,
        host,
        &extra,
        body.as_bytes(),
        ACCESS_KEY_ID,
        SECRET,
        token,
        REGION,
        SERVICE,
        NOW_UNIX,
    );
    let mut headers = vec![("host".to_owned(), host.to_owned())];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    headers.extend(auth);
    let uri = if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{query}")
    };
    let encoded = Request::encode("POST", &uri, &headers, body.as_bytes());
    // A seed is only useful if it decodes to a request that verifies.
    let req = Request::decode(&encoded);
    let parts = trent_sigv4::RequestParts {
        method: &req.method,
        uri: &req.uri,
        headers: &req.headers,
        body: &req.body,
    };
    let parsed = trent_sigv4::parse(&parts).expect("seed parses");
    let key = trent_sigv4::SigningKey::derive(SECRET, &parsed.scope_date, REGION, SERVICE);
    trent_sigv4::verify(&parts, &parsed, &key, NOW_UNIX).expect("seed verifies");
    write("sigv4_request", name, &encoded);
}

fn sigv4() {
    signed(
        "encrypt",
        "TrentService.Encrypt",
        r#"{"KeyId":"alias/a","Plaintext":"eA=="}"#,
        None,
        "",
    );
    signed(
        "list-keys-token",
        "TrentService.ListKeys",
        "{}",
        Some("session-token"),
        "",
    );
    signed(
        "with-query",
        "TrentService.ListKeys",
        "{}",
        None,
        "a=1&b=%20x+y&a=0",
    );
    // The presigned form (signature not valid, but every parameter well-formed).
    let presigned = format!(
        "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY_ID}%2F20261123%2F{REGION}%2F{SERVICE}%2Faws4_request&X-Amz-Date=20261123T010000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
    );
    write(
        "sigv4_request",
        "presigned",
        &Request::encode(
            "GET",
            &presigned,
            &[("host".into(), "127.0.0.1:8080".into())],
            b"",
        ),
    );
}

const POLICIES: &[&str] = &[
    r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:role/App"]},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":["billing","payroll"],"kms:CallerAccount":"111122223333"}}},{"Sid":"Deny other accounts","Effect":"Deny","Principal":"*","Action":["kms:Decrypt"],"Resource":"*","Condition":{"StringNotEquals":{"kms:CallerAccount":"111122223333"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"AppKeys","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*","Condition":{"StringLike":{"kms:EncryptionContext:app":"bill*"},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"NumericGreaterThanEquals":{"aws:EpochTime":"1"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"kms:Delete*","NotResource":"arn:aws:kms:*:*:alias/x","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app"]},"Null":{"kms:GrantConstraintType":"true"},"StringEqualsIfExists":{"aws:PrincipalTag/team":"${aws:username}"},"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}}}"#,
    r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":["111122223333"]},"Action":"kms:CreateGrant","Resource":"*","Condition":{"ForAnyValue:StringLike":{"kms:GrantOperations":["Decrypt","Encrypt*"]},"Bool":{"kms:GrantIsForAWSResource":true}}}]}"#,
];

fn policies() {
    for (i, p) in POLICIES.iter().enumerate() {
        write("policy_document", &format!("policy-{i}"), p.as_bytes());
    }
}

fn main() {
    blobs();
    sigv4();
    policies();
    println!("seeds written under corpus/");
}
