//! How long one authorization takes: a typical five-statement key policy
//! (root delegation, key administrators, key users with encryption-context
//! and caller-account conditions, grant attachment, a guard Deny).
#![expect(clippy::unwrap_used, reason = "benchmark setup on fixed, valid input")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use trent_policy::kms::{KmsRequest, authorize};
use trent_policy::{ConditionContext, Policy, PolicyKind, Principal, RequestContext};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const KEY_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:role/App"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:app": ["billing", "payroll"],
                                    "kms:CallerAccount": "111122223333"}}},
    {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:role/App"]},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
    {"Sid": "Deny use from other accounts", "Effect": "Deny", "Principal": "*",
     "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*",
     "Condition": {"StringNotEquals": {"kms:CallerAccount": "111122223333"}}}
  ]
}"#;

const IAM_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AppKeys","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],
   "Resource":"arn:aws:kms:us-east-1:111122223333:key/*",
   "Condition":{"StringLike":{"kms:EncryptionContext:app":"bill*"}}}]}"#;

fn bench(c: &mut Criterion) {
    let kp = Policy::parse(KEY_POLICY, PolicyKind::KeyPolicy).unwrap();
    let iam = Policy::parse(IAM_POLICY, PolicyKind::Identity).unwrap();
    let alice = Principal::user("111122223333", "arn:aws:iam::111122223333:user/alice");
    let bob = Principal::user("111122223333", "arn:aws:iam::111122223333:user/bob");
    let ctx = ConditionContext::new()
        .with("kms:CallerAccount", "111122223333")
        .with("kms:EncryptionContext:app", "billing")
        .with_multi("kms:EncryptionContextKeys", ["app"])
        .with("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        .with("aws:SecureTransport", "true");

    c.bench_function("parse key policy (5 statements)", |b| {
        b.iter(|| Policy::parse(black_box(KEY_POLICY), PolicyKind::KeyPolicy).unwrap())
    });
    c.bench_function("evaluate key policy: Decrypt, direct allow", |b| {
        let req = RequestContext {
            action: "kms:Decrypt",
            resource: KEY_ARN,
            principal: &alice,
            context: &ctx,
        };
        b.iter(|| black_box(&kp).evaluate(black_box(&req)))
    });
    c.bench_function("kms::authorize: Decrypt, direct allow", |b| {
        let req = KmsRequest {
            principal: &alice,
            action: "kms:Decrypt",
            key_arn: KEY_ARN,
            key_account: "111122223333",
            context: &ctx,
        };
        b.iter(|| authorize(black_box(&kp), &[&iam], false, black_box(&req)))
    });
    c.bench_function("kms::authorize: Decrypt, delegated to IAM", |b| {
        let req = KmsRequest {
            principal: &bob,
            action: "kms:Decrypt",
            key_arn: KEY_ARN,
            key_account: "111122223333",
            context: &ctx,
        };
        b.iter(|| authorize(black_box(&kp), &[&iam], false, black_box(&req)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
