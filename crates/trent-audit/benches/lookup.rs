//! LookupEvents over one full segment (64 MiB of ~800-byte Encrypt records, as `trent serve`
//! writes them): a page of the newest 50 (what `aws cloudtrail lookup-events` asks first),
//! and a selective filter that matches one record at the segment's start, so the whole
//! segment is read either way.
//!
//! Run: `cargo bench -p trent-audit --bench lookup`.
#![allow(
    clippy::expect_used,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use trent_audit::read::{Attribute, Lookup, lookup};

const ACCOUNT: &str = "111122223333";
const SEGMENT_BYTES: usize = 64 << 20;

fn record(n: usize, event_name: &str) -> String {
    format!(
        concat!(
            r#"{{"eventVersion":"1.11","userIdentity":{{"type":"Root","principalId":"{a}","#,
            r#""arn":"arn:aws:iam::{a}:root","accountId":"{a}","accessKeyId":"AKIAKVJELL5EDKXBTION"}},"#,
            r#""eventTime":"2026-12-04T20:22:03Z","eventSource":"kms.amazonaws.com","#,
            r#""eventName":"{e}","awsRegion":"us-east-1","sourceIPAddress":"127.0.0.1","#,
            r#""requestParameters":{{"keyId":"523f4994-8733-48d2-a14d-1211cb7e000c"}},"#,
            r#""responseElements":null,"requestID":"7f344b51-1f68-4212-0000-{n:012}","#,
            r#""eventID":"b09e9f8e-e210-5228-0000-{n:012}","readOnly":true,"#,
            r#""resources":[{{"accountId":"{a}","type":"AWS::KMS::Key","#,
            r#""ARN":"arn:aws:kms:us-east-1:{a}:key/523f4994-8733-48d2-a14d-1211cb7e000c"}}],"#,
            r#""eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{a}","#,
            r#""eventCategory":"Management"}}"#,
            "\n"
        ),
        a = ACCOUNT,
        e = event_name,
        n = n
    )
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(trent_audit::format::segment_name(1));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("segment"));
    let mut written = 0;
    let mut n = 0;
    while written < SEGMENT_BYTES {
        let line = record(n, if n == 0 { "CreateKey" } else { "Encrypt" });
        file.write_all(line.as_bytes()).expect("write");
        written += line.len();
        n += 1;
    }
    file.flush().expect("flush");
    drop(file);
    let query = |name: &str, max_results| Lookup {
        account: ACCOUNT.into(),
        attribute: Some((Attribute::EventName, name.into())),
        start_secs: None,
        end_secs: None,
        max_results,
        cursor: None,
    };
    let mut group = c.benchmark_group("lookup_64_mib_segment");
    group.sample_size(10);
    let newest = query("Encrypt", 50);
    group.bench_function("newest_50", |b| {
        b.iter(|| black_box(lookup(dir.path(), &newest).expect("lookup")))
    });
    let oldest = query("CreateKey", 50);
    group.bench_function("one_match_at_the_start", |b| {
        b.iter(|| black_box(lookup(dir.path(), &oldest).expect("lookup")))
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
