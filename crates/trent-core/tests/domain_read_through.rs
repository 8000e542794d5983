//! Credentials read through from the store on a miss (`Kms::find_credential`): two `Kms` over
//! one `MemoryStore` are two nodes; an access key or session one makes works on the other at
//! once, an unknown id is remembered as unknown for a second, and the memory that costs stays
//! bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use trent_core::{MISS_CAPACITY, MISS_TTL, Store};

#[tokio::test]
async fn an_access_key_made_on_one_node_is_found_on_another() {
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let made = env.kms.create_random_account().await.unwrap();
    assert!(node_b.credentials.lookup(&made.access_key_id).is_none());
    let found = node_b
        .find_credential(&made.access_key_id)
        .await
        .unwrap()
        .expect("read through from the store");
    assert_eq!(found.account_id, made.account_id);
    assert_eq!(
        found.secret_access_key.as_str(),
        made.secret_access_key.as_str()
    );
    assert!(
        node_b.credentials.lookup(&made.access_key_id).is_some(),
        "cached afterwards"
    );
    let caller = node_b.caller_for(&found, None, REGION).unwrap();
    assert_eq!(caller.account, made.account_id);
}

#[tokio::test]
async fn a_session_made_on_one_node_is_found_on_another() {
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let root = caller_for_access_key(&env.kms, ROOT_ACCESS_KEY);
    let session = env
        .kms
        .sts_get_session_token(&root, Some(900))
        .await
        .unwrap();
    let found = node_b
        .find_credential(&session.access_key_id)
        .await
        .unwrap()
        .expect("read through from the store");
    let caller = node_b
        .caller_for(&found, Some(session.session_token.as_str()), REGION)
        .unwrap();
    assert_eq!(caller.account, ACCOUNT);
    assert!(
        node_b.caller_for(&found, Some("wrong"), REGION).is_err(),
        "the token is still checked"
    );

    // An expired session is not read through.
    let late = env
        .kms
        .sts_get_session_token(&root, Some(900))
        .await
        .unwrap();
    env.clock.advance(901_000);
    assert!(
        node_b
            .find_credential(&late.access_key_id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_unknown_id_is_asked_again_only_after_the_miss_ttl() {
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let id = "AKIAUNKNOWN000000001";
    assert!(node_b.find_credential(id).await.unwrap().is_none());
    assert!(node_b.credentials.recently_missed(id));
    // Node A now makes that very key: node B keeps answering from its negative cache …
    env.kms
        .ensure_account("999988887777", id, "the-secret")
        .await
        .unwrap();
    let missed_at = Instant::now();
    assert!(node_b.find_credential(id).await.unwrap().is_none());
    // … for at most MISS_TTL; node A, which made it, knows it at once.
    assert!(env.kms.find_credential(id).await.unwrap().is_some());
    tokio::time::sleep(MISS_TTL.saturating_sub(missed_at.elapsed()) + Duration::from_millis(50))
        .await;
    assert!(node_b.find_credential(id).await.unwrap().is_some());
    assert!(!node_b.credentials.recently_missed(id));
}

#[tokio::test]
async fn a_flood_of_random_ids_keeps_the_negative_cache_bounded() {
    let env = env().await;
    for i in 0..(MISS_CAPACITY + 500) {
        let id = format!("AKIAFLOOD{i:011}");
        assert!(env.kms.find_credential(&id).await.unwrap().is_none());
    }
    assert!(env.kms.credentials.misses_held() <= MISS_CAPACITY);
    assert!(
        env.kms
            .find_credential(&"A".repeat(129))
            .await
            .unwrap()
            .is_none(),
        "an id longer than AWS allows is never looked up"
    );
    assert!(
        env.kms
            .find_credential(ROOT_ACCESS_KEY)
            .await
            .unwrap()
            .is_some(),
        "known keys still answer"
    );
}

#[tokio::test]
async fn an_inactive_access_key_is_not_read_through() {
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let made = env.kms.create_random_account().await.unwrap();
    let mut record = env
        .store
        .access_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.access_key_id == made.access_key_id)
        .unwrap();
    record.active = false;
    env.store.put_access_key(&record).await.unwrap();
    assert!(
        node_b
            .find_credential(&made.access_key_id)
            .await
            .unwrap()
            .is_none()
    );
}
