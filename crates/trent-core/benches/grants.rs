//! A grant-authorized Encrypt as a key's grant count grows: one grant to the caller, then the
//! same key with 49,999 more grants to other principals (AWS allows 50,000 per key, and
//! integrated services make one per resource). The domain call only — the key, the grants and
//! the caller are in memory (`MemoryStore`), so what is measured is finding the grant.
//! (`grants_paired` measures the two cases side by side, free of this VM's drift.)
//!
//! Run: `cargo bench -p trent-core --bench grants` (add `-- --quick` for a short run).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

mod support;

use criterion::{Criterion, criterion_group, criterion_main};

fn grants(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kms, alice) = runtime.block_on(support::service_and_alice());
    let key_id = runtime.block_on(support::key(&kms));
    runtime.block_on(support::grant_to_alice(&kms, &key_id));
    let mut group = c.benchmark_group("grant_authorized_encrypt");
    let mut run = |name: &str| {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(kms.encrypt(&alice, support::encrypt_input(&key_id)))
                    .expect("encrypt")
            });
        });
    };
    run("1_grant");
    runtime.block_on(support::grants_to_others(&kms, &key_id));
    run("50000_grants");
    group.finish();
}

criterion_group!(benches, grants);
criterion_main!(benches);
