//! End to end: symmetric keys through the real binary and the real `aws-sdk-kms` client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState, Tag};
use common::*;

#[tokio::test]
async fn create_describe_encrypt_decrypt_round_trip() {
    let server = Server::start();
    let kms = server.kms_a();
    let created = kms
        .create_key()
        .description("first key")
        .send()
        .await
        .unwrap();
    let meta = created.key_metadata().unwrap();
    let key_id = meta.key_id().to_string();
    assert_eq!(
        meta.arn().unwrap(),
        format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}")
    );
    assert_eq!(meta.aws_account_id(), Some(ACCOUNT_A));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.description(), Some("first key"));
    assert_eq!(meta.key_spec().unwrap().as_str(), "SYMMETRIC_DEFAULT");
    assert_eq!(meta.key_usage().unwrap().as_str(), "ENCRYPT_DECRYPT");
    assert_eq!(meta.encryption_algorithms().len(), 1);
    assert_eq!(meta.multi_region(), Some(false));
    assert!(meta.creation_date().is_some());

    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"hello trent".to_vec()))
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), meta.arn());
    let blob = enc.ciphertext_blob().unwrap().clone();

    // Decrypt needs no KeyId: the blob is self-describing.
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"hello trent");
    assert_eq!(dec.key_id(), meta.arn());
    assert_eq!(
        dec.encryption_algorithm().unwrap().as_str(),
        "SYMMETRIC_DEFAULT"
    );

    // Wrong or missing encryption context.
    let r = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(code(r), "InvalidCiphertextException");

    // Every single-byte modification is refused with a typed error.
    let bytes = blob.as_ref().to_vec();
    for i in [0usize, 1, 5, 20, 55, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x80;
        let r = kms
            .decrypt()
            .ciphertext_blob(Blob::new(bad))
            .encryption_context("purpose", "test")
            .send()
            .await;
        assert_eq!(code(r), "InvalidCiphertextException", "byte {i}");
    }
    let r = kms
        .decrypt()
        .ciphertext_blob(Blob::new(vec![1, 2, 3]))
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");

    // KeyId naming another key.
    let other = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let r = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .key_id(&other)
        .encryption_context("purpose", "test")
        .send()
        .await;
    assert_eq!(code(r), "IncorrectKeyException");
    // KeyId naming the right key, by ARN.
    let ok = kms
        .decrypt()
        .ciphertext_blob(blob)
        .key_id(meta.arn().unwrap())
        .encryption_context("purpose", "test")
        .send()
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn data_keys_re_encrypt_and_random() {
    let server = Server::start();
    let kms = server.kms_a();
    let k1 = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let k2 = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    let dk = kms
        .generate_data_key()
        .key_id(&k1)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
    let dec = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        dec.plaintext().unwrap().as_ref(),
        dk.plaintext().unwrap().as_ref()
    );

    let dk = kms
        .generate_data_key()
        .key_id(&k1)
        .number_of_bytes(7)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 7);
    let dk = kms
        .generate_data_key()
        .key_id(&k1)
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 16);

    let r = kms.generate_data_key().key_id(&k1).send().await;
    assert_eq!(code(r), "ValidationException");
    let r = kms
        .generate_data_key()
        .key_id(&k1)
        .number_of_bytes(1025)
        .send()
        .await;
    assert_eq!(code(r), "ValidationException");

    let wp = kms
        .generate_data_key_without_plaintext()
        .key_id(&k1)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("a", "b")
        .send()
        .await
        .unwrap();
    let dec = kms
        .decrypt()
        .ciphertext_blob(wp.ciphertext_blob().unwrap().clone())
        .encryption_context("a", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref().len(), 32);

    // ReEncrypt from k1 to k2 changes the key and the context.
    let enc = kms
        .encrypt()
        .key_id(&k1)
        .plaintext(Blob::new(b"move me".to_vec()))
        .encryption_context("from", "1")
        .send()
        .await
        .unwrap();
    let re = kms
        .re_encrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .source_encryption_context("from", "1")
        .destination_key_id(&k2)
        .destination_encryption_context("to", "2")
        .send()
        .await
        .unwrap();
    assert!(re.source_key_id().unwrap().ends_with(&k1));
    assert!(re.key_id().unwrap().ends_with(&k2));
    let dec = kms
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
        .encryption_context("to", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"move me");
    assert!(dec.key_id().unwrap().ends_with(&k2));

    let random = kms
        .generate_random()
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(random.plaintext().unwrap().as_ref().len(), 64);
    assert_eq!(
        code(kms.generate_random().number_of_bytes(0).send().await),
        "ValidationException"
    );
    assert_eq!(
        code(kms.generate_random().number_of_bytes(1025).send().await),
        "ValidationException"
    );
    assert_eq!(
        code(kms.generate_random().send().await),
        "ValidationException"
    );
}

#[tokio::test]
async fn disabled_keys_refuse_cryptographic_use() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let enc = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&key).send().await.unwrap();
    let meta = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    assert!(!meta.key_metadata().unwrap().enabled());
    assert_eq!(
        code(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
        ),
        "DisabledException"
    );
    assert_eq!(
        code(
            kms.decrypt()
                .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
                .send()
                .await
        ),
        "DisabledException"
    );
    assert_eq!(
        code(
            kms.generate_data_key()
                .key_id(&key)
                .number_of_bytes(8)
                .send()
                .await
        ),
        "DisabledException"
    );
    kms.enable_key().key_id(&key).send().await.unwrap();
    assert!(
        kms.decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn key_identifiers_in_every_form() {
    let server = Server::start();
    let kms = server.kms_a();
    let meta = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .clone();
    let (id, arn) = (meta.key_id().to_string(), meta.arn().unwrap().to_string());
    kms.create_alias()
        .alias_name("alias/app")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let alias_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:alias/app");
    for form in [id.as_str(), arn.as_str(), "alias/app", alias_arn.as_str()] {
        let d = kms.describe_key().key_id(form).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), id, "{form}");
        assert!(
            kms.encrypt()
                .key_id(form)
                .plaintext(Blob::new(b"p".to_vec()))
                .send()
                .await
                .is_ok(),
            "{form}"
        );
    }
    // Management operations take key id or key ARN only.
    assert_eq!(
        code(kms.disable_key().key_id("alias/app").send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(kms.describe_key().key_id("alias/missing").send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(kms.describe_key().key_id("not-a-key").send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(
            kms.describe_key()
                .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                .send()
                .await
        ),
        "NotFoundException"
    );
    // Keys are regional: the same id is not found from another region.
    let west = server.kms_in(AKID_A, SECRET_A, "us-west-2");
    assert_eq!(
        code(west.describe_key().key_id(&id).send().await),
        "NotFoundException"
    );
    // Another account's key is not visible by bare id, and not usable by ARN without a policy.
    let b = server.kms_b();
    assert_eq!(
        code(b.describe_key().key_id(&id).send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(b.describe_key().key_id(&arn).send().await),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn aliases_create_update_delete_list() {
    let server = Server::start();
    let kms = server.kms_a();
    let k1 = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let k2 = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    kms.create_alias()
        .alias_name("alias/one")
        .target_key_id(&k1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(
            kms.create_alias()
                .alias_name("alias/one")
                .target_key_id(&k2)
                .send()
                .await
        ),
        "AlreadyExistsException"
    );
    assert_eq!(
        code(
            kms.create_alias()
                .alias_name("alias/aws/ebs")
                .target_key_id(&k1)
                .send()
                .await
        ),
        "NotAuthorizedException"
    );
    assert_eq!(
        code(
            kms.create_alias()
                .alias_name("noprefix")
                .target_key_id(&k1)
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            kms.create_alias()
                .alias_name("alias/bad name!")
                .target_key_id(&k1)
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            kms.create_alias()
                .alias_name("alias/x")
                .target_key_id("alias/one")
                .send()
                .await
        ),
        "NotFoundException"
    );

    // Encrypt under the alias, repoint it, and the old ciphertext still decrypts (it names its key).
    let enc = kms
        .encrypt()
        .key_id("alias/one")
        .plaintext(Blob::new(b"a".to_vec()))
        .send()
        .await
        .unwrap();
    kms.update_alias()
        .alias_name("alias/one")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap();
    let now = kms.describe_key().key_id("alias/one").send().await.unwrap();
    assert_eq!(now.key_metadata().unwrap().key_id(), k2);
    let dec = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert!(dec.key_id().unwrap().ends_with(&k1));

    for i in 0..5 {
        kms.create_alias()
            .alias_name(format!("alias/page-{i}"))
            .target_key_id(&k1)
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_aliases()
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        names.extend(
            page.aliases()
                .iter()
                .map(|a| a.alias_name().unwrap().to_string()),
        );
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_string);
    }
    assert_eq!(
        names,
        vec![
            "alias/one",
            "alias/page-0",
            "alias/page-1",
            "alias/page-2",
            "alias/page-3",
            "alias/page-4"
        ]
    );
    let for_k2 = kms.list_aliases().key_id(&k2).send().await.unwrap();
    assert_eq!(for_k2.aliases().len(), 1);
    assert_eq!(for_k2.aliases()[0].target_key_id(), Some(k2.as_str()));
    assert!(
        for_k2.aliases()[0]
            .alias_arn()
            .unwrap()
            .ends_with(":alias/one")
    );

    kms.delete_alias()
        .alias_name("alias/one")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(kms.delete_alias().alias_name("alias/one").send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(kms.describe_key().key_id("alias/one").send().await),
        "NotFoundException"
    );
    assert_eq!(
        code(kms.list_aliases().marker("garbage").send().await),
        "InvalidMarkerException"
    );
}

#[tokio::test]
async fn list_keys_pages_per_account_and_region() {
    let server = Server::start();
    let kms = server.kms_a();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            kms.create_key()
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string(),
        );
    }
    server.kms_b().create_key().send().await.unwrap();
    server
        .kms_in(AKID_A, SECRET_A, "eu-west-1")
        .create_key()
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_keys()
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        assert!(page.keys().len() <= 2);
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_string);
    }
    ids.sort();
    seen.sort();
    assert_eq!(seen, ids);
    assert_eq!(
        code(kms.list_keys().limit(0).send().await),
        "ValidationException"
    );
    assert_eq!(
        code(kms.list_keys().marker("nope").send().await),
        "InvalidMarkerException"
    );
}

#[tokio::test]
async fn tags_and_descriptions() {
    let server = Server::start();
    let kms = server.kms_a();
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    let key = kms
        .create_key()
        .tags(tag("team", "a"))
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    kms.tag_resource()
        .key_id(&key)
        .tags(tag("env", "prod"))
        .tags(tag("team", "b"))
        .send()
        .await
        .unwrap();
    let tags = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    let pairs: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    assert_eq!(
        pairs,
        vec![("env".into(), "prod".into()), ("team".into(), "b".into())]
    );
    kms.untag_resource()
        .key_id(&key)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    assert_eq!(
        kms.list_resource_tags()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );
    assert_eq!(
        code(
            kms.tag_resource()
                .key_id(&key)
                .tags(tag("aws:x", "1"))
                .send()
                .await
        ),
        "TagException"
    );
    let mut too_many = kms.tag_resource().key_id(&key);
    for i in 0..50 {
        too_many = too_many.tags(tag(&format!("k{i}"), "v"));
    }
    // AWS: TagException "Too many tags" (more than 50 once merged with the key's tags).
    let r = too_many.send().await;
    assert_eq!(
        r.as_ref()
            .err()
            .and_then(aws_sdk_kms::error::ProvideErrorMetadata::message),
        Some("Too many tags")
    );
    assert_eq!(code(r), "TagException");
    assert_eq!(
        kms.list_resource_tags()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1,
        "a refused request changes nothing"
    );

    kms.update_key_description()
        .key_id(&key)
        .description("new words")
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("new words"));
    let long = "x".repeat(8193);
    assert_eq!(
        code(
            kms.update_key_description()
                .key_id(&key)
                .description(long)
                .send()
                .await
        ),
        "ValidationException"
    );
}

#[tokio::test]
async fn key_policies_default_put_get_list() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let policy = kms
        .get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let text = policy.policy().unwrap();
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["Id"], "key-default-1");
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{ACCOUNT_A}:root")
    );
    assert_eq!(doc["Statement"][0]["Action"], "kms:*");

    let new_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    kms.put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&new_policy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        kms.get_key_policy()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .policy(),
        Some(new_policy.as_str())
    );
    assert_eq!(
        code(
            kms.put_key_policy()
                .key_id(&key)
                .policy("{not json")
                .send()
                .await
        ),
        "MalformedPolicyDocumentException"
    );
    assert_eq!(
        code(
            kms.put_key_policy()
                .key_id(&key)
                .policy_name("other")
                .policy(&new_policy)
                .send()
                .await
        ),
        "NotFoundException"
    );
    assert_eq!(
        code(
            kms.get_key_policy()
                .key_id(&key)
                .policy_name("other")
                .send()
                .await
        ),
        "NotFoundException"
    );
    let names = kms.list_key_policies().key_id(&key).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default"]);
    assert_eq!(
        code(kms.create_key().policy("[]").send().await),
        "MalformedPolicyDocumentException"
    );
}

#[tokio::test]
async fn dry_run_and_unsupported_inputs() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    assert_eq!(
        code(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .dry_run(true)
                .send()
                .await
        ),
        "DryRunOperationException"
    );
    assert_eq!(
        code(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new(vec![0; 4097]))
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .encryption_algorithm("RSAES_OAEP_SHA_256".into())
                .send()
                .await
        ),
        "InvalidKeyUsageException"
    );
    assert_eq!(
        code(
            kms.create_key()
                .key_spec("SYMMETRIC_DEFAULT".into())
                .key_usage("SIGN_VERIFY".into())
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(kms.create_key().key_spec("BOGUS".into()).send().await),
        "ValidationException"
    );
}
