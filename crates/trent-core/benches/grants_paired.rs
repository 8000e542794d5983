//! The grants benchmark made robust to this VM's drift: two keys side by side — one with the
//! caller's single grant, one with the caller's grant among 50,000 — and grant-authorized
//! Encrypts on them in alternating batches, so both see the same machine at the same moment.
//! Prints the median time per call of each and the median of the per-round ratios.
//!
//! Run: `cargo bench -p trent-core --bench grants_paired` (`-- ROUNDS BATCH` to change the
//! 41 rounds of 20,000 calls per key).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

mod support;

use std::time::Instant;

use trent_core::{Caller, Kms};

/// The service, alice, a key with her one grant and a key with hers among 50,000.
async fn setup() -> (Kms, Caller, String, String) {
    let (kms, alice) = support::service_and_alice().await;
    let one = support::key(&kms).await;
    let many = support::key(&kms).await;
    support::grant_to_alice(&kms, &one).await;
    support::grant_to_alice(&kms, &many).await;
    support::grants_to_others(&kms, &many).await;
    (kms, alice, one, many)
}

/// Nanoseconds per call of `batch` Encrypts on `key_id`.
fn batch_ns(
    runtime: &tokio::runtime::Runtime,
    kms: &Kms,
    caller: &Caller,
    key_id: &str,
    batch: u32,
) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        runtime
            .block_on(kms.encrypt(caller, support::encrypt_input(key_id)))
            .expect("encrypt");
    }
    start.elapsed().as_nanos() as f64 / f64::from(batch)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    // `cargo bench` passes `--bench`; numbers after it are ROUNDS and BATCH.
    let numbers: Vec<u32> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(41);
    let batch = numbers.get(1).copied().unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kms, alice, one, many) = runtime.block_on(setup());
    // Warm-up: caches filled, allocator settled.
    batch_ns(&runtime, &kms, &alice, &one, batch);
    batch_ns(&runtime, &kms, &alice, &many, batch);
    let (mut ones, mut manys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = batch_ns(&runtime, &kms, &alice, &one, batch);
            (a, batch_ns(&runtime, &kms, &alice, &many, batch))
        } else {
            let b = batch_ns(&runtime, &kms, &alice, &many, batch);
            (batch_ns(&runtime, &kms, &alice, &one, batch), b)
        };
        ones.push(a);
        manys.push(b);
        ratios.push(b / a);
    }
    let (lowest, highest) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!(
        "grant-authorized Encrypt, {rounds} rounds x {batch} calls per key:\n  \
         1 grant:       median {:.0} ns/call\n  \
         50,000 grants: median {:.0} ns/call\n  \
         ratio (50,000 / 1): median {:.3} (per-round range {lowest:.3}..{highest:.3})",
        median(ones),
        median(manys),
        median(ratios),
    );
}
