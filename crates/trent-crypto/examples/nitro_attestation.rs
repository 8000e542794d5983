//! Writes a throwaway Nitro-like PKI and one attestation document into a directory, for
//! end-to-end tests of `Recipient` (tests/python/test_recipient.py): `root.pem` (the trust
//! anchor to configure), `recipient.key.der` (the RSA-2048 private key the enclave would hold,
//! PKCS#8 DER), `document.cbor` (signed, `public_key` = that key, PCRn = 48 bytes of n+1),
//! `no_key.cbor` (the same without `public_key`), `nitrotpm.cbor` (a NitroTPM document:
//! `nitrotpm_pcrs`, PCRn = 48 bytes of 0x80+n, the same `public_key`) and `other_root.pem` (a
//! root that did not sign anything). Usage: `nitro_attestation <dir>`.

#![allow(
    clippy::expect_used,
    reason = "a test fixture generator: failing loudly is right"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use trent_crypto::nitro::test_pki::{Document, TestPki};

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: nitro_attestation <dir>"),
    );
    std::fs::create_dir_all(&dir).expect("output directory");
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("ms fit i64");
    let pki = TestPki::new(now_ms);
    let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key");
    let spki = key.public_key().as_der().expect("SPKI").as_ref().to_vec();
    let timestamp = u64::try_from(now_ms).expect("positive time");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write fixture");
    };
    write("root.pem", pki.root.pem().as_bytes());
    write("other_root.pem", TestPki::new(now_ms).root.pem().as_bytes());
    write(
        "recipient.key.der",
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .expect("PKCS#8")
            .as_ref(),
    );
    write(
        "document.cbor",
        &pki.document(&Document::new(Some(spki.clone()), timestamp)),
    );
    write(
        "nitrotpm.cbor",
        &pki.document(&Document::nitrotpm(Some(spki), timestamp)),
    );
    write(
        "no_key.cbor",
        &pki.document(&Document::new(None, timestamp)),
    );
}
