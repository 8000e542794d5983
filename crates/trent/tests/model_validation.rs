//! End to end: AWS's model validation for every KMS operation. One request per operation, each
//! with members that break the API model's constraints (lengths, patterns, enum values, ranges,
//! required members, list sizes), sent as raw signed JSON (an SDK would refuse to send them),
//! and the whole `ValidationException` message compared: every failing member, in the model's
//! member order, in AWS's words (`N validation errors detected: …; …`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

async fn send(server: &Server, operation: &str, body: &str) -> serde_json::Value {
    let host = server.endpoint.trim_start_matches("http://").to_string();
    let target = format!("TrentService.{operation}");
    let headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", &target),
    ];
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut req = hyper::Request::post("/").header("host", &host);
    for (k, v) in &headers {
        req = req.header(*k, *v);
    }
    for (k, v) in trent_sigv4::sign(
        "POST",
        "/",
        "",
        &host,
        &headers,
        body.as_bytes(),
        AKID_A,
        SECRET_A,
        None,
        "us-east-1",
        "kms",
        now,
    ) {
        req = req.header(k, v);
    }
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

// AWS's phrases, written out here rather than taken from Trent's code.
const FAILED: &str = "failed to satisfy constraint: Member must";

fn null(field: &str) -> String {
    format!("Value null at '{field}' {FAILED} not be null")
}

fn shorter(field: &str, value: &str, min: usize) -> String {
    format!("Value '{value}' at '{field}' {FAILED} have length greater than or equal to {min}")
}

fn hidden_shorter(field: &str, min: usize) -> String {
    format!("Value at '{field}' {FAILED} have length greater than or equal to {min}")
}

fn hidden_longer(field: &str, max: usize) -> String {
    format!("Value at '{field}' {FAILED} have length less than or equal to {max}")
}

fn below(field: &str, value: i64, min: i64) -> String {
    format!("Value '{value}' at '{field}' {FAILED} have value greater than or equal to {min}")
}

fn above(field: &str, value: i64, max: i64) -> String {
    format!("Value '{value}' at '{field}' {FAILED} have value less than or equal to {max}")
}

fn not_in(field: &str, value: &str, set: &str) -> String {
    format!("Value '{value}' at '{field}' {FAILED} satisfy enum value set: {set}")
}

fn item_not_in(field: &str, value: &str, set: &str) -> String {
    format!(
        "Value '[{value}]' at '{field}' {FAILED} satisfy constraint: [Member must satisfy enum value set: {set}]"
    )
}

fn unlike(field: &str, value: &str, pattern: &str) -> String {
    format!("Value '{value}' at '{field}' {FAILED} satisfy regular expression pattern: {pattern}")
}

fn errors(parts: &[String]) -> String {
    match parts {
        [one] => format!("1 validation error detected: {one}"),
        _ => format!(
            "{} validation errors detected: {}",
            parts.len(),
            parts.join("; ")
        ),
    }
}

const NAME: &str = "^[a-zA-Z0-9:/_-]+$";
const PRINCIPAL: &str = "^[\\w+=,.@:/-]+$";
const SERVICE_PRINCIPAL: &str = "^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$";
const REGION: &str = "^([a-z]+-){2,3}\\d+$";
const ENCRYPTION: &str = "[SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]";
const SIGNING: &str = "[RSASSA_PSS_SHA_256, RSASSA_PSS_SHA_384, RSASSA_PSS_SHA_512, RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PKCS1_V1_5_SHA_384, RSASSA_PKCS1_V1_5_SHA_512, ECDSA_SHA_256, ECDSA_SHA_384, ECDSA_SHA_512, SM2DSA, ML_DSA_SHAKE_256, ED25519_SHA_512, ED25519_PH_SHA_512]";
const MAC: &str = "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]";
const KEY_PAIR_SPECS: &str = "[RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SM2, ECC_NIST_EDWARDS25519, ML_KEM_512, ML_KEM_768, ML_KEM_1024]";
const GRANT_OPERATIONS: &str = "[Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret, Encapsulate, Decapsulate]";

/// Every operation of the model: (operation, body, the violations AWS lists, in order).
fn cases() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        ("CancelKeyDeletion", "{}", vec![null("keyId")]),
        (
            "ConnectCustomKeyStore",
            r#"{"CustomKeyStoreId": ""}"#,
            vec![shorter("customKeyStoreId", "", 1)],
        ),
        (
            "CreateAlias",
            r#"{"TargetKeyId": "", "AliasName": "alias/a b"}"#,
            vec![
                unlike("aliasName", "alias/a b", NAME),
                shorter("targetKeyId", "", 1),
            ],
        ),
        (
            "CreateCustomKeyStore",
            r#"{"XksProxyUriPath": "/nope/here", "CustomKeyStoreType": "NOPE", "KeyStorePassword": "short"}"#,
            vec![
                null("customKeyStoreName"),
                hidden_shorter("keyStorePassword", 7),
                not_in(
                    "customKeyStoreType",
                    "NOPE",
                    "[EXTERNAL_KEY_STORE, AWS_CLOUDHSM]",
                ),
                unlike(
                    "xksProxyUriPath",
                    "/nope/here",
                    "^(/[a-zA-Z0-9\\/_-]+/kms/xks/v\\d{1,2})$|^(/kms/xks/v\\d{1,2})$",
                ),
            ],
        ),
        (
            "CreateGrant",
            r#"{"Name": "x y", "Operations": ["Encrypt", "Nope"], "GranteePrincipal": "a b", "KeyId": "k"}"#,
            vec![
                unlike("granteePrincipal", "a b", PRINCIPAL),
                item_not_in("operations", "Nope", GRANT_OPERATIONS),
                unlike("name", "x y", NAME),
            ],
        ),
        (
            "CreateKey",
            r#"{"XksKeyId": "a b", "Tags": [{"TagKey": "", "TagValue": "v"}], "Origin": "NOWHERE", "KeyUsage": "RANDOM"}"#,
            vec![
                not_in(
                    "keyUsage",
                    "RANDOM",
                    "[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]",
                ),
                not_in(
                    "origin",
                    "NOWHERE",
                    "[AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]",
                ),
                shorter("tags.1.member.tagKey", "", 1),
                unlike("xksKeyId", "a b", "^[a-zA-Z0-9-_.]+$"),
            ],
        ),
        (
            "Decapsulate",
            r#"{"EncapsulationAlgorithm": "X", "SharedSecretCiphertextBlob": "", "KeyId": "k"}"#,
            vec![
                hidden_shorter("sharedSecretCiphertextBlob", 1),
                not_in("encapsulationAlgorithm", "X", "[ML_KEM]"),
            ],
        ),
        (
            "Decrypt",
            r#"{"DryRunModifiers": ["NOPE"], "GrantTokens": ["a","b","c","d","e","f","g","h","i","j","k"], "CiphertextBlob": ""}"#,
            vec![
                hidden_shorter("ciphertextBlob", 1),
                hidden_longer("grantTokens", 10),
                item_not_in("dryRunModifiers", "NOPE", "[IGNORE_CIPHERTEXT]"),
            ],
        ),
        (
            "DeleteAlias",
            r#"{"AliasName": ""}"#,
            vec![shorter("aliasName", "", 1)],
        ),
        ("DeleteCustomKeyStore", "{}", vec![null("customKeyStoreId")]),
        (
            "DeleteImportedKeyMaterial",
            r#"{"KeyMaterialId": "ABC"}"#,
            vec![null("keyId"), shorter("keyMaterialId", "ABC", 64)],
        ),
        (
            "DeriveSharedSecret",
            r#"{"Recipient": {"KeyEncryptionAlgorithm": "RSA"}, "PublicKey": "", "KeyAgreementAlgorithm": "INVALID", "KeyId": "k"}"#,
            vec![
                not_in("keyAgreementAlgorithm", "INVALID", "[ECDH]"),
                hidden_shorter("publicKey", 1),
                not_in(
                    "recipient.keyEncryptionAlgorithm",
                    "RSA",
                    "[RSAES_OAEP_SHA_256]",
                ),
            ],
        ),
        (
            "DescribeCustomKeyStores",
            r#"{"Marker": "", "Limit": 0, "CustomKeyStoreName": ""}"#,
            vec![
                shorter("customKeyStoreName", "", 1),
                below("limit", 0, 1),
                shorter("marker", "", 1),
            ],
        ),
        (
            "DescribeKey",
            r#"{"GrantTokens": [""]}"#,
            vec![null("keyId"), shorter("grantTokens.1.member", "", 1)],
        ),
        (
            "DisableKey",
            r#"{"KeyId": ""}"#,
            vec![shorter("keyId", "", 1)],
        ),
        ("DisableKeyRotation", "{}", vec![null("keyId")]),
        (
            "DisconnectCustomKeyStore",
            "{}",
            vec![null("customKeyStoreId")],
        ),
        ("EnableKey", "", vec![null("keyId")]),
        (
            "EnableKeyRotation",
            r#"{"RotationPeriodInDays": 89}"#,
            vec![null("keyId"), below("rotationPeriodInDays", 89, 90)],
        ),
        (
            "Encapsulate",
            r#"{"EncapsulationAlgorithm": "RSA"}"#,
            vec![
                null("keyId"),
                not_in("encapsulationAlgorithm", "RSA", "[ML_KEM]"),
            ],
        ),
        (
            "Encrypt",
            r#"{"EncryptionAlgorithm": "ROT13", "Plaintext": "", "KeyId": "k"}"#,
            vec![
                hidden_shorter("plaintext", 1),
                not_in("encryptionAlgorithm", "ROT13", ENCRYPTION),
            ],
        ),
        (
            "GenerateDataKey",
            r#"{"KeySpec": "AES_512", "NumberOfBytes": 1025}"#,
            vec![
                null("keyId"),
                above("numberOfBytes", 1025, 1024),
                not_in("keySpec", "AES_512", "[AES_256, AES_128]"),
            ],
        ),
        (
            "GenerateDataKeyPair",
            r#"{"Recipient": {"AttestationDocument": ""}, "KeyPairSpec": "RSA_1024"}"#,
            vec![
                null("keyId"),
                not_in("keyPairSpec", "RSA_1024", KEY_PAIR_SPECS),
                hidden_shorter("recipient.attestationDocument", 1),
            ],
        ),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            r#"{"KeyId": ""}"#,
            vec![shorter("keyId", "", 1), null("keyPairSpec")],
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            r#"{"NumberOfBytes": 0, "KeySpec": "X", "KeyId": "k"}"#,
            vec![
                not_in("keySpec", "X", "[AES_256, AES_128]"),
                below("numberOfBytes", 0, 1),
            ],
        ),
        (
            "GenerateMac",
            r#"{"Message": ""}"#,
            vec![
                hidden_shorter("message", 1),
                null("keyId"),
                null("macAlgorithm"),
            ],
        ),
        (
            "GenerateRandom",
            r#"{"CustomKeyStoreId": "", "NumberOfBytes": 0}"#,
            vec![
                below("numberOfBytes", 0, 1),
                shorter("customKeyStoreId", "", 1),
            ],
        ),
        ("GetKeyLastUsage", "{}", vec![null("keyId")]),
        (
            "GetKeyPolicy",
            r#"{"PolicyName": "a-b"}"#,
            vec![null("keyId"), unlike("policyName", "a-b", "[\\w]+")],
        ),
        ("GetKeyRotationStatus", "{}", vec![null("keyId")]),
        (
            "GetParametersForImport",
            r#"{"WrappingKeySpec": "RSA_1024", "WrappingAlgorithm": "X", "KeyId": "k"}"#,
            vec![
                not_in(
                    "wrappingAlgorithm",
                    "X",
                    "[RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]",
                ),
                not_in(
                    "wrappingKeySpec",
                    "RSA_1024",
                    "[RSA_2048, RSA_3072, RSA_4096, SM2]",
                ),
            ],
        ),
        (
            "GetPublicKey",
            r#"{"GrantTokens": ["a","b","c","d","e","f","g","h","i","j","k"], "KeyId": ""}"#,
            vec![shorter("keyId", "", 1), hidden_longer("grantTokens", 10)],
        ),
        (
            "ImportKeyMaterial",
            r#"{"KeyMaterialDescription": "a|b", "ImportType": "X", "ExpirationModel": "NEVER", "ImportToken": "", "KeyId": "k"}"#,
            vec![
                hidden_shorter("importToken", 1),
                null("encryptedKeyMaterial"),
                not_in(
                    "expirationModel",
                    "NEVER",
                    "[KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]",
                ),
                not_in(
                    "importType",
                    "X",
                    "[NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]",
                ),
                unlike("keyMaterialDescription", "a|b", "^[a-zA-Z0-9:/_\\s.-]+$"),
            ],
        ),
        (
            "ListAliases",
            r#"{"Marker": "", "Limit": 1001}"#,
            vec![above("limit", 1001, 1000), shorter("marker", "", 1)],
        ),
        (
            "ListGrants",
            r#"{"GranteeServicePrincipal": "x", "Limit": 0}"#,
            vec![
                below("limit", 0, 1),
                null("keyId"),
                unlike("granteeServicePrincipal", "x", SERVICE_PRINCIPAL),
            ],
        ),
        (
            "ListKeyPolicies",
            r#"{"Limit": 0}"#,
            vec![null("keyId"), below("limit", 0, 1)],
        ),
        (
            "ListKeyRotations",
            r#"{"Limit": 0, "IncludeKeyMaterial": "SOME", "KeyId": "k"}"#,
            vec![
                not_in(
                    "includeKeyMaterial",
                    "SOME",
                    "[ALL_KEY_MATERIAL, ROTATIONS_ONLY]",
                ),
                below("limit", 0, 1),
            ],
        ),
        (
            "ListKeys",
            r#"{"ResourceOwners": [], "Limit": 0}"#,
            vec![below("limit", 0, 1), hidden_shorter("resourceOwners", 1)],
        ),
        (
            "ListResourceTags",
            r#"{"Limit": 2000}"#,
            vec![null("keyId"), above("limit", 2000, 1000)],
        ),
        (
            "ListRetirableGrants",
            r#"{"RetiringServicePrincipal": "a.b", "RetiringPrincipal": ""}"#,
            vec![
                shorter("retiringPrincipal", "", 1),
                unlike("retiringServicePrincipal", "a.b", SERVICE_PRINCIPAL),
            ],
        ),
        (
            "PutKeyPolicy",
            r#"{"PolicyName": "", "KeyId": "k"}"#,
            vec![shorter("policyName", "", 1), null("policy")],
        ),
        (
            "ReEncrypt",
            r#"{"SourceEncryptionAlgorithm": "X", "CiphertextBlob": ""}"#,
            vec![
                hidden_shorter("ciphertextBlob", 1),
                null("destinationKeyId"),
                not_in("sourceEncryptionAlgorithm", "X", ENCRYPTION),
            ],
        ),
        (
            "ReplicateKey",
            r#"{"Tags": [{"TagKey": "k"}], "ReplicaRegion": "mars"}"#,
            vec![
                null("keyId"),
                unlike("replicaRegion", "mars", REGION),
                null("tags.1.member.tagValue"),
            ],
        ),
        (
            "RetireGrant",
            r#"{"GrantId": "", "GrantToken": ""}"#,
            vec![shorter("grantToken", "", 1), shorter("grantId", "", 1)],
        ),
        ("RevokeGrant", "{}", vec![null("keyId"), null("grantId")]),
        (
            "RotateKeyOnDemand",
            r#"{"KeyId": ""}"#,
            vec![shorter("keyId", "", 1)],
        ),
        (
            "ScheduleKeyDeletion",
            r#"{"PendingWindowInDays": 366}"#,
            vec![null("keyId"), above("pendingWindowInDays", 366, 365)],
        ),
        (
            "Sign",
            r#"{"MessageType": "X", "Message": "", "KeyId": "k"}"#,
            vec![
                hidden_shorter("message", 1),
                not_in("messageType", "X", "[RAW, DIGEST, EXTERNAL_MU]"),
                null("signingAlgorithm"),
            ],
        ),
        (
            "TagResource",
            r#"{"Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagValue": "c"}], "KeyId": ""}"#,
            vec![shorter("keyId", "", 1), null("tags.2.member.tagKey")],
        ),
        (
            "UntagResource",
            r#"{"TagKeys": ["a", ""]}"#,
            vec![null("keyId"), shorter("tagKeys.2.member", "", 1)],
        ),
        (
            "UpdateAlias",
            "{}",
            vec![null("aliasName"), null("targetKeyId")],
        ),
        (
            "UpdateCustomKeyStore",
            r#"{"XksProxyConnectivity": "X", "XksProxyAuthenticationCredential": {"AccessKeyId": "lower"}}"#,
            vec![
                null("customKeyStoreId"),
                hidden_shorter("xksProxyAuthenticationCredential.accessKeyId", 20),
                null("xksProxyAuthenticationCredential.rawSecretAccessKey"),
                not_in(
                    "xksProxyConnectivity",
                    "X",
                    "[VPC_ENDPOINT_SERVICE, PUBLIC_ENDPOINT]",
                ),
            ],
        ),
        (
            "UpdateKeyDescription",
            "{}",
            vec![null("keyId"), null("description")],
        ),
        (
            "UpdatePrimaryRegion",
            r#"{"PrimaryRegion": "x"}"#,
            vec![null("keyId"), unlike("primaryRegion", "x", REGION)],
        ),
        (
            "Verify",
            r#"{"SigningAlgorithm": "NOPE", "Signature": "", "Message": "bQ==", "KeyId": "k"}"#,
            vec![
                hidden_shorter("signature", 1),
                not_in("signingAlgorithm", "NOPE", SIGNING),
            ],
        ),
        (
            "VerifyMac",
            r#"{"Mac": "", "MacAlgorithm": "X", "KeyId": "k"}"#,
            vec![
                null("message"),
                not_in("macAlgorithm", "X", MAC),
                hidden_shorter("mac", 1),
            ],
        ),
    ]
}

#[tokio::test]
async fn every_operation_reports_every_failing_member_in_the_models_order() {
    let server = Server::start();
    let cases = cases();
    // The 56 operations of the current model, each once.
    let mut names: Vec<&str> = cases.iter().map(|(op, _, _)| *op).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 56);
    assert_eq!(cases.len(), 56);
    for (operation, body, parts) in cases {
        let reply = send(&server, operation, body).await;
        assert_eq!(
            reply["__type"], "ValidationException",
            "{operation}: {reply}"
        );
        assert_eq!(
            reply["message"].as_str(),
            Some(errors(&parts).as_str()),
            "{operation}"
        );
    }
}

#[tokio::test]
async fn valid_members_pass_model_validation_and_type_errors_stay_serialization_errors() {
    let server = Server::start();
    // Valid members reach the domain (an unknown key is NotFound, not a validation error).
    let reply = send(
        &server,
        "Encrypt",
        r#"{"KeyId": "alias/none", "Plaintext": "aGk=", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT", "GrantTokens": [], "Unknown": {"x": [1, 2]}}"#,
    )
    .await;
    assert_eq!(reply["__type"], "NotFoundException", "{reply}");
    // A member of the wrong JSON type is the typed parse's SerializationException, even next to
    // a member that breaks a constraint.
    let reply = send(&server, "Encrypt", r#"{"KeyId": 5, "Plaintext": ""}"#).await;
    assert_eq!(reply["__type"], "SerializationException", "{reply}");
    // Escaped member names and values are read like plain ones.
    let reply = send(
        &server,
        "DescribeKey",
        r#"{"Key\u0049d": "\u0061lias/none"}"#,
    )
    .await;
    assert_eq!(reply["__type"], "NotFoundException", "{reply}");
    let reply = send(&server, "DescribeKey", r#"{"Key\u0049d": ""}"#).await;
    assert_eq!(
        reply["message"],
        errors(&[shorter("keyId", "", 1)]),
        "{reply}"
    );
}
