//! End to end through the Rust SDK: a request-rate quota configured small answers
//! `ThrottlingException` (HTTP 400, AWS's message), which the SDK's standard retry mode backs
//! off from until the calls succeed; `throttling = false` turns it off.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use common::*;

const AWS_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

async fn new_key(kms: &aws_sdk_kms::Client) -> String {
    let key = kms.create_key().send().await.unwrap();
    key.key_metadata().unwrap().key_id().to_string()
}

#[tokio::test]
async fn a_spent_quota_is_throttling_exception_and_sdk_retries_get_through() {
    let server = Server::start_with_config("[quotas.rates]\nsymmetric = 2\n");
    let kms = server.kms_a();
    let key_id = new_key(&kms).await;
    let encrypt = |client: &aws_sdk_kms::Client| {
        client
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
    };

    // Without retries: within a few calls the window is spent (two per second at most get
    // through, so of six calls at least two are refused however the seconds fall).
    let mut refused = Vec::new();
    for _ in 0..6 {
        if let Err(e) = encrypt(&kms).await {
            refused.push(e);
        }
    }
    assert!(refused.len() >= 2, "only {} throttled", refused.len());
    for e in refused {
        let SdkError::ServiceError(service) = &e else {
            panic!("not a service error: {e:?}");
        };
        assert_eq!(service.raw().status().as_u16(), 400);
        let err = e.into_service_error();
        assert!(err.meta().code() == Some("ThrottlingException"), "{err:?}");
        assert_eq!(err.meta().message(), Some(AWS_MESSAGE));
    }

    // DescribeKey has its own quota: not throttled by the spent symmetric window.
    kms.describe_key().key_id(&key_id).send().await.unwrap();

    // The SDK's standard retry mode treats ThrottlingException as retryable, backs off, and
    // gets every call through.
    let config = kms
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(10))
        .build();
    let retrying = aws_sdk_kms::Client::from_conf(config);
    for _ in 0..6 {
        encrypt(&retrying).await.unwrap();
    }
}

#[tokio::test]
async fn throttling_off_never_throttles() {
    let server =
        Server::start_with_config("[quotas]\nthrottling = false\n[quotas.rates]\nsymmetric = 1\n");
    let kms = server.kms_a();
    let key_id = new_key(&kms).await;
    for _ in 0..10 {
        kms.encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn other_accounts_and_iam_are_not_throttled_by_a_spent_kms_quota() {
    let server = Server::start_with_config("[quotas.rates]\nsymmetric = 1\n");
    let (a, b) = (server.kms_a(), server.kms_b());
    let key_a = new_key(&a).await;
    let key_b = new_key(&b).await;
    let encrypt = |client: &aws_sdk_kms::Client, key: &str| {
        client
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
    };
    let mut throttled = 0;
    for _ in 0..4 {
        if encrypt(&a, &key_a).await.is_err() {
            throttled += 1;
        }
    }
    assert!(throttled >= 2, "only {throttled} throttled");
    // Account B's window is its own; IAM has no KMS quota.
    encrypt(&b, &key_b).await.unwrap();
    let iam = server.iam(AKID_A, SECRET_A);
    for i in 0..3 {
        iam.create_user()
            .user_name(format!("quota-user-{i}"))
            .send()
            .await
            .unwrap();
    }
}
