//! Tallies how far the `sigv4_request` corpus gets: for every corpus input, the outcome of
//! `parse` then `verify` (the AWS error code, or `verified`). A cheap depth measure where
//! `cargo fuzz coverage` (which needs llvm-tools) is not available.
//! Run from `fuzz/`: `cargo run --example corpus_report [corpus/sigv4_request]`.

use std::collections::BTreeMap;
use std::fs;

use trent_fuzz::{NOW_UNIX, REGION, Request, SECRET, SERVICE};
use trent_sigv4::{RequestParts, SigningKey, parse, verify};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/sigv4_request".to_owned());
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for entry in fs::read_dir(&dir).expect("read corpus dir") {
        let data = fs::read(entry.expect("dir entry").path()).expect("read input");
        let req = Request::decode(&data);
        let parts = RequestParts {
            method: &req.method,
            uri: &req.uri,
            headers: &req.headers,
            body: &req.body,
        };
        let outcome = match parse(&parts) {
            Err(e) => format!("parse: {}", e.aws_code()),
            Ok(parsed) => {
                let form = if parsed.is_presigned() {
                    "presigned"
                } else {
                    "header"
                };
                let scope = match parsed.check_scope(REGION, SERVICE) {
                    Ok(()) => "scope ok",
                    Err(_) => "scope other",
                };
                let key =
                    SigningKey::derive(SECRET, &parsed.scope_date, &parsed.region, &parsed.service);
                match verify(&parts, &parsed, &key, NOW_UNIX) {
                    Ok(()) => format!("verify ({form}, {scope}): verified"),
                    Err(e) => {
                        let debug = format!("{e:?}");
                        let variant = debug.split([' ', '{', '(']).next().unwrap_or_default();
                        format!("verify ({form}, {scope}): {variant}")
                    }
                }
            }
        };
        *tally.entry(outcome).or_default() += 1;
        total += 1;
    }
    println!("{total} inputs in {dir}");
    for (outcome, n) in tally {
        println!("{n:6}  {outcome}");
    }
}
