//! Nitro Enclaves and NitroTPM recipients end to end in the crypto crate: documents built by a
//! test PKI are verified (or refused for the right reason), and `CiphertextForRecipient`
//! envelopes are opened here independently — parsed with RustCrypto `cms` (BER), the key
//! unwrapped with aws-lc-rs RSA-OAEP-SHA-256, the content decrypted with AES-256-CBC — and
//! compared with the plaintext.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use aws_lc_rs::cipher::{AES_256, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use cms::content_info::ContentInfo;
use cms::enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo};
use der::Decode;
use proptest::prelude::*;
use trent_crypto::nitro::test_pki::{Document, Issued, TestPki};
use trent_crypto::nitro::{AttestationError, AttestationSource, TrustAnchors, envelope};

const NOW: i64 = 1_790_000_000_000;

fn recipient() -> (PrivateDecryptingKey, Vec<u8>) {
    let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let spki = key.public_key().as_der().unwrap().as_ref().to_vec();
    (key, spki)
}

fn anchors(pki: &TestPki) -> TrustAnchors {
    TrustAnchors::parse(pki.root.pem().as_bytes()).unwrap()
}

/// Opens a CiphertextForRecipient the way an enclave would, independently of `envelope`.
pub fn open(key: &PrivateDecryptingKey, ber: &[u8]) -> Vec<u8> {
    let info = ContentInfo::from_ber(ber).expect("ContentInfo (BER)");
    assert_eq!(
        info.content_type.to_string(),
        "1.2.840.113549.1.7.3",
        "envelopedData"
    );
    let enveloped: EnvelopedData =
        EnvelopedData::from_ber(&der::Encode::to_der(&info.content).unwrap())
            .expect("EnvelopedData");
    let recipients: Vec<_> = enveloped.recip_infos.0.iter().collect();
    assert_eq!(recipients.len(), 1);
    let RecipientInfo::Ktri(ktri) = recipients[0] else {
        panic!("not a KeyTransRecipientInfo")
    };
    assert!(matches!(
        ktri.rid,
        RecipientIdentifier::SubjectKeyIdentifier(_)
    ));
    assert_eq!(
        ktri.key_enc_alg.oid.to_string(),
        "1.2.840.113549.1.1.7",
        "RSAES-OAEP"
    );
    let oaep = OaepPrivateDecryptingKey::new(key.clone()).unwrap();
    let mut cek = vec![0u8; oaep.min_output_size()];
    let cek = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            ktri.enc_key.as_bytes(),
            &mut cek,
            None,
        )
        .expect("OAEP SHA-256 unwrap")
        .to_vec();
    assert_eq!(cek.len(), 32, "AES-256 key");
    let content = &enveloped.encrypted_content;
    assert_eq!(content.content_type.to_string(), "1.2.840.113549.1.7.1");
    assert_eq!(
        content.content_enc_alg.oid.to_string(),
        "2.16.840.1.101.3.4.1.42",
        "aes256-CBC"
    );
    let iv = content
        .content_enc_alg
        .parameters
        .as_ref()
        .unwrap()
        .decode_as::<der::asn1::OctetString>()
        .unwrap();
    let iv: [u8; 16] = iv.as_bytes().try_into().unwrap();
    let mut data = content
        .encrypted_content
        .as_ref()
        .unwrap()
        .as_bytes()
        .to_vec();
    let cipher =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &cek).unwrap())
            .unwrap();
    cipher
        .decrypt(
            &mut data,
            aws_lc_rs::cipher::DecryptionContext::Iv128(iv.into()),
        )
        .unwrap()
        .to_vec()
}

#[test]
fn a_verified_document_gives_its_pcrs_and_an_envelope_only_its_key_opens() {
    let pki = TestPki::new(NOW);
    let (key, spki) = recipient();
    let doc = pki.document(&Document::new(Some(spki.clone()), NOW as u64));
    let attestation = anchors(&pki).verify(&doc, NOW).unwrap();
    assert_eq!(
        attestation.image_sha384_hex(),
        Some("01".repeat(48).as_str())
    );
    assert_eq!(attestation.pcr_hex(15), Some("10".repeat(48).as_str()));
    assert_eq!(attestation.pcr_hex(16), None);
    assert_eq!(
        attestation.module_id,
        "i-0123456789abcdef0-enc0123456789abcdef"
    );
    assert_eq!(attestation.public_key(), spki.as_slice());

    for plaintext in [
        vec![7u8; 32],
        vec![0x5a; 1],
        (0..=255u8).cycle().take(4096).collect(),
    ] {
        let ber = envelope(&attestation, &plaintext).unwrap();
        assert_eq!(open(&key, &ber), plaintext);
    }
    // Another RSA key cannot open it.
    let (other, _) = recipient();
    let ber = envelope(&attestation, b"secret").unwrap();
    let result = std::panic::catch_unwind(|| open(&other, &ber));
    assert!(
        result.is_err(),
        "a different private key must not unwrap the CEK"
    );
}

#[test]
fn a_nitrotpm_document_gives_its_nitrotpm_pcrs_only_and_an_envelope_its_key_opens() {
    // AWS's EC2 guide ("Validate a NitroTPM Attestation Document"): the same COSE_Sign1 and
    // PKI as an enclave's document, its PCRs under `nitrotpm_pcrs`.
    let pki = TestPki::new(NOW);
    let (key, spki) = recipient();
    let doc = pki.document(&Document::nitrotpm(Some(spki.clone()), NOW as u64));
    let attestation = anchors(&pki).verify(&doc, NOW).unwrap();
    assert_eq!(attestation.source, AttestationSource::NitroTpm);
    assert_eq!(
        attestation.module_id,
        "i-0123456789abcdef0-tpm0123456789abcdef"
    );
    // Document::nitrotpm: PCRn is 48 bytes of 0x80 + n, n in 0..24.
    assert_eq!(
        attestation.nitrotpm_pcr_hex(4),
        Some("84".repeat(48).as_str())
    );
    assert_eq!(
        attestation.nitrotpm_pcr_hex(23),
        Some("97".repeat(48).as_str())
    );
    assert_eq!(attestation.nitrotpm_pcr_hex(24), None);
    // An instance's PCRs are not an enclave's: the enclave accessors answer nothing.
    assert_eq!(attestation.pcr_hex(4), None);
    // Its bytes, for the audit record, are those of its own PCRs.
    assert_eq!(attestation.pcr_bytes(4), Some(vec![0x84; 48]));
    assert_eq!(attestation.image_sha384_hex(), None);
    let ber = envelope(&attestation, b"for the instance").unwrap();
    assert_eq!(open(&key, &ber), b"for the instance");

    // And the other way round: an enclave's document has no NitroTPM PCRs.
    let enclave = anchors(&pki)
        .verify(
            &pki.document(&Document::new(Some(spki.clone()), NOW as u64)),
            NOW,
        )
        .unwrap();
    assert_eq!(enclave.source, AttestationSource::NitroEnclave);
    assert_eq!(enclave.nitrotpm_pcr_hex(4), None);
    assert_eq!(enclave.pcr_hex(4), Some("05".repeat(48).as_str()));

    // Both PCR maps, or neither, is no document of either kind.
    for members in [vec!["pcrs", "nitrotpm_pcrs"], vec![]] {
        let mut both = Document::nitrotpm(Some(spki.clone()), NOW as u64);
        both.pcr_members = members.clone();
        assert_eq!(
            anchors(&pki).verify(&pki.document(&both), NOW).unwrap_err(),
            AttestationError::Malformed,
            "{members:?}"
        );
    }
    // Tampered NitroTPM PCR: the signature no longer verifies.
    let at = doc.windows(48).position(|w| w == [0x84u8; 48]).unwrap();
    let mut tampered = doc.clone();
    tampered[at] ^= 1;
    assert_eq!(
        anchors(&pki).verify(&tampered, NOW).unwrap_err(),
        AttestationError::Untrusted
    );
    // Another PKI's NitroTPM document is untrusted, as an enclave's is.
    let other = TestPki::new(NOW);
    assert_eq!(
        anchors(&other).verify(&doc, NOW).unwrap_err(),
        AttestationError::Untrusted
    );
}

#[test]
fn the_envelope_has_the_layout_the_nitro_sdk_parser_walks() {
    // aws_cms_parse_enveloped_data reads headers of indefinite-length elements in sequence.
    let pki = TestPki::new(NOW);
    let (_, spki) = recipient();
    let doc = pki.document(&Document::new(Some(spki), NOW as u64));
    let attestation = anchors(&pki).verify(&doc, NOW).unwrap();
    let ber = envelope(&attestation, b"x").unwrap();
    assert_eq!(&ber[..2], &[0x30, 0x80]);
    assert_eq!(
        &ber[2..13],
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03
        ]
    );
    assert_eq!(&ber[13..20], &[0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x02]);
    assert_eq!(ber[20], 0x31, "recipientInfos: a definite-length SET");
    assert_eq!(&ber[ber.len() - 10..], &[0u8; 10]);
}

#[test]
fn refusals_name_the_right_category() {
    let pki = TestPki::new(NOW);
    let (_, spki) = recipient();
    let trust = anchors(&pki);
    let good = pki.document(&Document::new(Some(spki.clone()), NOW as u64));
    assert!(trust.verify(&good, NOW).is_ok());

    // Another PKI's root: the chain is not anchored.
    let other = TestPki::new(NOW);
    assert_eq!(
        anchors(&other).verify(&good, NOW).unwrap_err(),
        AttestationError::Untrusted
    );

    // A tampered payload byte (inside a PCR value): the signature no longer verifies.
    let needle = vec![0x05u8; 48];
    let at = good
        .windows(48)
        .position(|w| w == needle.as_slice())
        .unwrap();
    let mut tampered = good.clone();
    tampered[at] ^= 1;
    assert_eq!(
        trust.verify(&tampered, NOW).unwrap_err(),
        AttestationError::Untrusted
    );

    // No public key.
    let no_key = pki.document(&Document::new(None, NOW as u64));
    assert_eq!(
        trust.verify(&no_key, NOW).unwrap_err(),
        AttestationError::NoPublicKey
    );

    // A public key that is not RSA.
    let ec = pki.document(&Document::new(
        Some(pki.leaf.der[..10].to_vec()),
        NOW as u64,
    ));
    assert_eq!(
        trust.verify(&ec, NOW).unwrap_err(),
        AttestationError::BadPublicKey
    );

    // The leaf has expired (valid one day either side of NOW).
    let later = NOW + 2 * 24 * 3600 * 1000;
    assert_eq!(
        trust.verify(&good, later).unwrap_err(),
        AttestationError::Untrusted
    );

    // Signed by a certificate the intermediate issued but that is not in the chain as leaf:
    // the document names one leaf and is signed by another's key.
    let stranger = pki.issue_leaf("stranger", NOW - 1000, NOW + 1000);
    let forged = pki.document_with(
        &Document::new(Some(spki.clone()), NOW as u64),
        &stranger,
        &[&pki.root, &pki.intermediate],
    );
    assert!(
        trust.verify(&forged, NOW).is_ok(),
        "a properly issued leaf is fine"
    );
    // A leaf (not a CA) used as an issuer: refused.
    let chain_through_leaf = pki.document_with(
        &Document::new(Some(spki.clone()), NOW as u64),
        &pki.leaf,
        &[&pki.root, &pki.intermediate, &stranger],
    );
    assert_eq!(
        trust.verify(&chain_through_leaf, NOW).unwrap_err(),
        AttestationError::Untrusted
    );
    // An intermediate missing from the bundle.
    let short = pki.document_with(
        &Document::new(Some(spki), NOW as u64),
        &pki.leaf,
        &[&pki.root],
    );
    assert_eq!(
        trust.verify(&short, NOW).unwrap_err(),
        AttestationError::Untrusted
    );

    // Trusting the intermediate alone (a root it is byte-equal to) also anchors the chain.
    let by_intermediate = TrustAnchors::parse(&pki.intermediate.der).unwrap();
    let doc = pki.document_with(
        &Document::new(Some(recipient().1), NOW as u64),
        &pki.leaf,
        &[&pki.intermediate],
    );
    assert!(by_intermediate.verify(&doc, NOW).is_ok());
}

/// A root that issued `cabundle[0]` anchors the chain only while it is itself valid and a CA.
#[test]
fn an_issuing_root_must_be_valid_and_a_ca() {
    let year = 365 * 24 * 3600 * 1000i64;
    let day = 24 * 3600 * 1000i64;
    let (_, spki) = recipient();
    let chain_under = |root: Issued| {
        let intermediate = Issued::issue("zonal", Some(&root), true, NOW - year, NOW + year);
        let leaf = Issued::issue("leaf", Some(&intermediate), false, NOW - day, NOW + day);
        TestPki {
            root,
            intermediate,
            leaf,
        }
    };
    let verify = |pki: &TestPki| {
        let doc = pki.document_with(
            &Document::new(Some(spki.clone()), NOW as u64),
            &pki.leaf,
            &[&pki.intermediate],
        );
        anchors(pki).verify(&doc, NOW)
    };

    let good = chain_under(Issued::issue("root", None, true, NOW - year, NOW + year));
    assert!(verify(&good).is_ok());
    let expired = chain_under(Issued::issue(
        "root",
        None,
        true,
        NOW - 2 * year,
        NOW - year,
    ));
    assert_eq!(verify(&expired).unwrap_err(), AttestationError::Untrusted);
    let not_yet = chain_under(Issued::issue("root", None, true, NOW + day, NOW + year));
    assert_eq!(verify(&not_yet).unwrap_err(), AttestationError::Untrusted);
    let not_a_ca = chain_under(Issued::issue("root", None, false, NOW - year, NOW + year));
    assert_eq!(verify(&not_a_ca).unwrap_err(), AttestationError::Untrusted);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let pki = TestPki::new(NOW);
        let _ = anchors(&pki).verify(&bytes, NOW);
    }
}

#[test]
fn any_single_byte_change_is_refused() {
    // Deterministic walk over the whole document: each byte flipped must fail, without panic.
    let pki = TestPki::new(NOW);
    let (_, spki) = recipient();
    let trust = anchors(&pki);
    let good = pki.document(&Document::new(Some(spki), NOW as u64));
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x41;
        assert!(
            trust.verify(&bad, NOW).is_err(),
            "byte {i} changed and still verified"
        );
        bad.truncate(i);
        assert!(trust.verify(&bad, NOW).is_err());
    }
}
