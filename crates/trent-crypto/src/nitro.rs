//! Nitro Enclaves and NitroTPM recipients: verifying an attestation document and answering with
//! a CMS envelope only the attested environment can open (`Recipient` /
//! `CiphertextForRecipient`).
//!
//! An attestation document is a COSE_Sign1 structure (RFC 9052, untagged or tag 18) whose
//! protected header names ES384 and whose payload is a CBOR map: `module_id`, `digest`
//! (`"SHA384"`), `timestamp` (ms), the PCRs (index → 32/48/64 bytes) — `pcrs` in a Nitro
//! Enclaves document, `nitrotpm_pcrs` in a NitroTPM one (an EC2 instance's NitroTPM, AWS's EC2
//! guide "Validate a NitroTPM Attestation Document"; exactly one of the two) —, `certificate`
//! (the leaf, DER), `cabundle` (root first, then each intermediate), and the optional
//! `public_key`, `user_data` and `nonce`. Both kinds are signed by the same AWS Nitro
//! Attestation PKI, so they are verified alike; [`Attestation::source`] says which it was, and
//! only the matching PCR accessors answer (an enclave's PCRs are not a NitroTPM's). [`TrustAnchors::verify`] checks it completely before anything is
//! read from it: the ECDSA P-384 / SHA-384 signature with the leaf's key, and the chain
//! `cabundle[0] → … → certificate`, each certificate signed by the one before it with
//! ecdsa-with-SHA384, all valid at the caller's time, every issuer a CA, and the first one a
//! configured trust anchor (or signed by one). There is no AWS Nitro PKI in Trent: the operator
//! declares the roots.
//!
//! [`envelope`] is what KMS returns: a CMS `ContentInfo` holding `EnvelopedData` (RFC 5652) with
//! one `KeyTransRecipientInfo` (version 2, `rid` a subject key identifier, RSAES-OAEP with
//! SHA-256 and MGF1-SHA-256 to the document's `public_key`) and the content encrypted with a
//! fresh AES-256-CBC key. It is BER with indefinite lengths on the outer structures and the
//! content as constructed OCTET STRING chunks, because that is the layout the AWS Nitro Enclaves
//! SDK's parser (`aws_cms_parse_enveloped_data`) walks; OpenSSL and RustCrypto `cms` read it too.
//!
//! Invariants (the crate's): no I/O, no clock (the time is a parameter), parsing untrusted bytes
//! never panics, and sizes are bounded before anything is allocated from them.

use std::collections::BTreeMap;

use aws_lc_rs::cipher::{AES_256, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::digest;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use ciborium::value::Value;
use der::asn1::{ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};
use zeroize::Zeroizing;

/// AWS's bound on `AttestationDocument` (`AttestationDocumentType`: 1..262144 bytes).
pub const MAX_DOCUMENT: usize = 262_144;
/// At most this many certificates in `cabundle` (AWS's documents carry 4).
const MAX_CABUNDLE: usize = 16;
/// PCR indexes a Nitro enclave has (0..31).
const MAX_PCRS: usize = 32;
/// COSE algorithm ES384 (RFC 9053).
const COSE_ES384: i128 = -35;
/// COSE_Sign1's CBOR tag.
const COSE_SIGN1_TAG: u64 = 18;

const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// aes256-CBC, 2.16.840.1.101.3.4.1.42.
const ID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
/// id-RSAES-OAEP, 1.2.840.113549.1.1.7.
const ID_RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
/// `RSAES-OAEP-params { hashAlgorithm [0] sha256, maskGenAlgorithm [1] mgf1(sha256) }` (RFC 4055,
/// with the NULL parameters OpenSSL and AWS-LC write); constant, checked by a unit test.
const OAEP_SHA256_PARAMS: &[u8] = &[
    0x30, 0x2f, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
    0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00,
];
/// Content is written in OCTET STRING chunks of this size (any size is valid BER).
const CONTENT_CHUNK: usize = 1024;

/// Why an attestation document was refused. The variants are categories, not details: the
/// answer says what kind of problem it was, never which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Not a COSE_Sign1 Nitro attestation document (bad CBOR, a member missing or mistyped,
    /// too large, an unsupported algorithm).
    #[error("malformed attestation document")]
    Malformed,
    /// Well-formed, but the signature or the certificate chain does not verify against the
    /// configured trust anchors at this time.
    #[error("attestation document not trusted")]
    Untrusted,
    /// Verified, but it carries no `public_key`.
    #[error("attestation document without a public key")]
    NoPublicKey,
    /// Its `public_key` is not an RSA public key (SubjectPublicKeyInfo DER) usable with
    /// RSAES-OAEP.
    #[error("attestation document public key unusable")]
    BadPublicKey,
}

/// The configured roots a document's chain must end in.
pub struct TrustAnchors {
    roots: Vec<Root>,
}

struct Root {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    spki_der: Vec<u8>,
    /// Kept for its validity and basicConstraints, checked when it issued `cabundle[0]`.
    cert: Certificate,
}

/// Which attested environment a document comes from, by its PCR member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationSource {
    /// A Nitro enclave (`pcrs`; condition keys `kms:RecipientAttestation:ImageSha384`/`PCR<n>`).
    NitroEnclave,
    /// An EC2 instance's NitroTPM (`nitrotpm_pcrs`; `kms:RecipientAttestation:NitroTPMPCR<n>`).
    NitroTpm,
}

/// A verified attestation document: only what Trent uses from it.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// `module_id`: the enclave (or instance) id (logged as `attestationDocumentModuleId`).
    pub module_id: String,
    /// `timestamp` (ms since the epoch) the document was signed at.
    pub timestamp_ms: u64,
    /// Which kind of document it was.
    pub source: AttestationSource,
    /// Each PCR of the document (`pcrs` or `nitrotpm_pcrs`, per `source`), lower-case hex as
    /// KMS's condition keys compare it.
    pcrs: BTreeMap<u8, String>,
    /// `public_key`: the recipient's RSA key, SubjectPublicKeyInfo DER.
    public_key: Vec<u8>,
}

impl Attestation {
    /// Enclave PCR `index` in lower-case hex (`kms:RecipientAttestation:PCR<index>`); none for
    /// a NitroTPM document (AWS: that key is effective only for an enclave's document).
    pub fn pcr_hex(&self, index: u8) -> Option<&str> {
        self.pcr_of(AttestationSource::NitroEnclave, index)
    }

    /// NitroTPM PCR `index` in lower-case hex (`kms:RecipientAttestation:NitroTPMPCR<index>`);
    /// none for an enclave's document.
    pub fn nitrotpm_pcr_hex(&self, index: u8) -> Option<&str> {
        self.pcr_of(AttestationSource::NitroTpm, index)
    }

    fn pcr_of(&self, source: AttestationSource, index: u8) -> Option<&str> {
        if self.source != source {
            return None;
        }
        self.pcrs.get(&index).map(String::as_str)
    }

    /// PCR `index`'s bytes, of whichever kind of document this is (CloudTrail logs them base64).
    pub fn pcr_bytes(&self, index: u8) -> Option<Vec<u8>> {
        hex::decode(self.pcrs.get(&index)?).ok()
    }

    /// `kms:RecipientAttestation:ImageSha384`: the enclave image digest, which is PCR0 (none
    /// for a NitroTPM document).
    pub fn image_sha384_hex(&self) -> Option<&str> {
        self.pcr_hex(0)
    }

    /// Every PCR the document has (of its [`Self::source`]), lower-case hex, by index.
    pub fn pcrs(&self) -> impl Iterator<Item = (u8, &str)> {
        self.pcrs.iter().map(|(i, v)| (*i, v.as_str()))
    }

    /// The recipient's public key (SubjectPublicKeyInfo DER).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
}

impl TrustAnchors {
    /// Roots from PEM text (one or more `CERTIFICATE` blocks) or one DER certificate.
    pub fn parse(bytes: &[u8]) -> Result<Self, der::Error> {
        let certs = if bytes.starts_with(b"-----") {
            Certificate::load_pem_chain(bytes)?
        } else {
            vec![Certificate::from_der(bytes)?]
        };
        let mut roots = Vec::with_capacity(certs.len());
        for cert in certs {
            roots.push(Root {
                der: cert.to_der()?,
                subject_der: cert.tbs_certificate().subject().to_der()?,
                spki_der: cert.tbs_certificate().subject_public_key_info().to_der()?,
                cert,
            });
        }
        Ok(Self { roots })
    }

    /// Joins several parsed sets (one per configured file).
    pub fn extend(&mut self, other: TrustAnchors) {
        self.roots.extend(other.roots);
    }

    /// How many roots are configured.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether no root is configured.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Verifies `document` at `now_ms` (ms since the epoch) and returns what it attests.
    pub fn verify(&self, document: &[u8], now_ms: i64) -> Result<Attestation, AttestationError> {
        if document.is_empty() || document.len() > MAX_DOCUMENT {
            return Err(AttestationError::Malformed);
        }
        let sign1 = CoseSign1::parse(document)?;
        let payload = Payload::parse(&sign1.payload)?;
        let leaf =
            Certificate::from_der(&payload.certificate).map_err(|_| AttestationError::Malformed)?;
        let mut chain = Vec::with_capacity(payload.cabundle.len());
        for der in &payload.cabundle {
            chain.push(Certificate::from_der(der).map_err(|_| AttestationError::Malformed)?);
        }
        self.verify_chain(&chain, &leaf, now_ms)?;
        // The document is signed by the leaf's key over COSE's Sig_structure.
        let leaf_key = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| AttestationError::Malformed)?;
        let to_be_signed = sign1.sig_structure()?;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &leaf_key)
            .verify(&to_be_signed, &sign1.signature)
            .map_err(|_| AttestationError::Untrusted)?;
        let public_key = payload.public_key.ok_or(AttestationError::NoPublicKey)?;
        // Checked now so a bad key is refused before KMS does any work for the request.
        recipient_key(&public_key)?;
        Ok(Attestation {
            module_id: payload.module_id,
            timestamp_ms: payload.timestamp_ms,
            source: payload.source,
            pcrs: payload.pcrs,
            public_key,
        })
    }

    fn verify_chain(
        &self,
        cabundle: &[Certificate],
        leaf: &Certificate,
        now_ms: i64,
    ) -> Result<(), AttestationError> {
        let Some(first) = cabundle.first() else {
            return Err(AttestationError::Malformed);
        };
        let first_der = first.to_der().map_err(|_| AttestationError::Malformed)?;
        let first_issuer = first
            .tbs_certificate()
            .issuer()
            .to_der()
            .map_err(|_| AttestationError::Malformed)?;
        // The bundle starts at a configured root, or at a certificate a configured root issued
        // — a root that is itself valid now and a CA (a root equal to `cabundle[0]` is checked
        // as `cabundle[0]` below).
        let anchored = self.roots.iter().any(|root| {
            root.der == first_der
                || (root.subject_der == first_issuer
                    && signed_by(first, &root.spki_der).is_ok()
                    && check_validity(&root.cert, now_ms).is_ok()
                    && check_is_ca(&root.cert).is_ok())
        });
        if !anchored {
            return Err(AttestationError::Untrusted);
        }
        let mut issuer = first;
        check_validity(issuer, now_ms)?;
        check_is_ca(issuer)?;
        for cert in cabundle.iter().skip(1).chain(std::iter::once(leaf)) {
            let issuer_spki = issuer
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .map_err(|_| AttestationError::Malformed)?;
            if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
                return Err(AttestationError::Untrusted);
            }
            signed_by(cert, &issuer_spki)?;
            check_validity(cert, now_ms)?;
            if !std::ptr::eq(cert, leaf) {
                check_is_ca(cert)?;
            }
            issuer = cert;
        }
        Ok(())
    }
}

/// `cert` carries an ecdsa-with-SHA384 signature that `issuer_spki` (DER) verifies.
fn signed_by(cert: &Certificate, issuer_spki: &[u8]) -> Result<(), AttestationError> {
    if cert.signature_algorithm().oid != ECDSA_WITH_SHA384
        || cert.tbs_certificate().signature().oid != ECDSA_WITH_SHA384
    {
        return Err(AttestationError::Untrusted);
    }
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|_| AttestationError::Malformed)?;
    let signature = cert
        .signature()
        .as_bytes()
        .ok_or(AttestationError::Malformed)?;
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, issuer_spki)
        .verify(&tbs, signature)
        .map_err(|_| AttestationError::Untrusted)
}

fn check_validity(cert: &Certificate, now_ms: i64) -> Result<(), AttestationError> {
    let validity = cert.tbs_certificate().validity();
    let ms = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_millis()).ok();
    match (ms(validity.not_before), ms(validity.not_after)) {
        (Some(from), Some(to)) if from <= now_ms && now_ms <= to => Ok(()),
        _ => Err(AttestationError::Untrusted),
    }
}

/// An issuing certificate must say it is a CA (basicConstraints cA = TRUE).
fn check_is_ca(cert: &Certificate) -> Result<(), AttestationError> {
    match cert.tbs_certificate().get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => Ok(()),
        Ok(_) => Err(AttestationError::Untrusted),
        Err(_) => Err(AttestationError::Malformed),
    }
}

fn recipient_key(spki_der: &[u8]) -> Result<OaepPublicEncryptingKey, AttestationError> {
    PublicEncryptingKey::from_der(spki_der)
        .ok()
        .and_then(|k| OaepPublicEncryptingKey::new(k).ok())
        .ok_or(AttestationError::BadPublicKey)
}

struct CoseSign1 {
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl CoseSign1 {
    fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        let value: Value =
            ciborium::de::from_reader(bytes).map_err(|_| AttestationError::Malformed)?;
        let value = match value {
            Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
            other => other,
        };
        let Value::Array(items) = value else {
            return Err(AttestationError::Malformed);
        };
        let [protected, unprotected, payload, signature]: [Value; 4] =
            items.try_into().map_err(|_| AttestationError::Malformed)?;
        let (
            Value::Bytes(protected),
            Value::Map(_),
            Value::Bytes(payload),
            Value::Bytes(signature),
        ) = (protected, unprotected, payload, signature)
        else {
            return Err(AttestationError::Malformed);
        };
        // The algorithm must be in the protected header (it is signed) and be ES384.
        let header: Value = ciborium::de::from_reader(protected.as_slice())
            .map_err(|_| AttestationError::Malformed)?;
        let Value::Map(header) = header else {
            return Err(AttestationError::Malformed);
        };
        let alg = header.iter().find_map(|(k, v)| match (k, v) {
            (Value::Integer(k), Value::Integer(v)) if i128::from(*k) == 1 => Some(i128::from(*v)),
            _ => None,
        });
        if alg != Some(COSE_ES384) || signature.len() != 96 {
            return Err(AttestationError::Malformed);
        }
        Ok(Self {
            protected,
            payload,
            signature,
        })
    }

    /// `Sig_structure = ["Signature1", body_protected, external_aad = h'', payload]`.
    fn sig_structure(&self) -> Result<Vec<u8>, AttestationError> {
        let structure = Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(self.protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(self.payload.clone()),
        ]);
        let mut out = Vec::with_capacity(self.payload.len() + self.protected.len() + 32);
        ciborium::ser::into_writer(&structure, &mut out)
            .map_err(|_| AttestationError::Malformed)?;
        Ok(out)
    }
}

struct Payload {
    module_id: String,
    timestamp_ms: u64,
    source: AttestationSource,
    pcrs: BTreeMap<u8, String>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
}

impl Payload {
    fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        let value: Value =
            ciborium::de::from_reader(bytes).map_err(|_| AttestationError::Malformed)?;
        let Value::Map(entries) = value else {
            return Err(AttestationError::Malformed);
        };
        let mut module_id = None;
        let mut digest_ok = false;
        let mut timestamp_ms = None;
        let mut pcrs = None;
        let mut nitrotpm_pcrs = None;
        let mut certificate = None;
        let mut cabundle = None;
        let mut public_key = None;
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(AttestationError::Malformed);
            };
            match (key.as_str(), value) {
                ("module_id", Value::Text(s)) if !s.is_empty() && s.len() <= 256 => {
                    module_id = Some(s)
                }
                ("digest", Value::Text(s)) => digest_ok = s == "SHA384",
                ("timestamp", Value::Integer(t)) => timestamp_ms = u64::try_from(t).ok(),
                ("pcrs", Value::Map(map)) => pcrs = Some(parse_pcrs(map)?),
                ("nitrotpm_pcrs", Value::Map(map)) => nitrotpm_pcrs = Some(parse_pcrs(map)?),
                ("certificate", Value::Bytes(b)) if !b.is_empty() => certificate = Some(b),
                ("cabundle", Value::Array(items)) => {
                    if items.is_empty() || items.len() > MAX_CABUNDLE {
                        return Err(AttestationError::Malformed);
                    }
                    let mut certs = Vec::with_capacity(items.len());
                    for item in items {
                        let Value::Bytes(b) = item else {
                            return Err(AttestationError::Malformed);
                        };
                        certs.push(b);
                    }
                    cabundle = Some(certs);
                }
                ("public_key", Value::Bytes(b)) if !b.is_empty() => public_key = Some(b),
                ("public_key", Value::Null) => {}
                // Optional members Trent does not use, of their documented types.
                ("user_data" | "nonce", Value::Bytes(_) | Value::Null) => {}
                // Anything else, or a known member of the wrong type, is malformed.
                _ => return Err(AttestationError::Malformed),
            }
        }
        // One kind of document or the other, never both (nor neither).
        let pcrs = match (pcrs, nitrotpm_pcrs) {
            (Some(p), None) => Some((AttestationSource::NitroEnclave, p)),
            (None, Some(p)) => Some((AttestationSource::NitroTpm, p)),
            _ => None,
        };
        match (
            module_id,
            digest_ok,
            timestamp_ms,
            pcrs,
            certificate,
            cabundle,
        ) {
            (
                Some(module_id),
                true,
                Some(timestamp_ms),
                Some((source, pcrs)),
                Some(certificate),
                Some(cabundle),
            ) => Ok(Self {
                module_id,
                timestamp_ms,
                source,
                pcrs,
                certificate,
                cabundle,
                public_key,
            }),
            _ => Err(AttestationError::Malformed),
        }
    }
}

fn parse_pcrs(map: Vec<(Value, Value)>) -> Result<BTreeMap<u8, String>, AttestationError> {
    if map.is_empty() || map.len() > MAX_PCRS {
        return Err(AttestationError::Malformed);
    }
    let mut pcrs = BTreeMap::new();
    for (index, value) in map {
        let (Value::Integer(index), Value::Bytes(bytes)) = (index, value) else {
            return Err(AttestationError::Malformed);
        };
        let index = u8::try_from(index)
            .ok()
            .filter(|i| usize::from(*i) < MAX_PCRS)
            .ok_or(AttestationError::Malformed)?;
        if ![32, 48, 64].contains(&bytes.len()) || pcrs.insert(index, hex::encode(bytes)).is_some()
        {
            return Err(AttestationError::Malformed);
        }
    }
    Ok(pcrs)
}

/// Errors making an envelope: the key was checked at verification, so these are internal.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the CMS envelope for the recipient")]
pub struct EnvelopeError;

/// `plaintext` enveloped for the attested recipient: `CiphertextForRecipient`.
pub fn envelope(attestation: &Attestation, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let recipient = recipient_key(&attestation.public_key).map_err(|_| EnvelopeError)?;
    // A fresh content-encryption key for this one answer.
    let mut cek = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(cek.as_mut_slice()).map_err(|_| EnvelopeError)?;
    let mut encrypted_key = vec![0u8; recipient.ciphertext_size()];
    let encrypted_key_len = recipient
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            cek.as_slice(),
            &mut encrypted_key,
            None,
        )
        .map_err(|_| EnvelopeError)?
        .len();
    encrypted_key.truncate(encrypted_key_len);

    let cipher = UnboundCipherKey::new(&AES_256, cek.as_slice())
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| EnvelopeError)?;
    let mut content = content_buffer(plaintext);
    let context = cipher.encrypt(&mut *content).map_err(|_| EnvelopeError)?;
    let iv: &[u8] = (&context).try_into().map_err(|_| EnvelopeError)?;

    // RecipientInfos: DER, definite length (the SDK's parser reads it with CBS_get_asn1).
    let ski = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &attestation.public_key);
    let key_enc_alg = AlgorithmIdentifierOwned {
        oid: ID_RSAES_OAEP,
        parameters: Some(Any::from_der(OAEP_SHA256_PARAMS).map_err(|_| EnvelopeError)?),
    };
    let ktri = cms::enveloped_data::KeyTransRecipientInfo {
        version: cms::content_info::CmsVersion::V2,
        rid: cms::enveloped_data::RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(ski.as_ref()).map_err(|_| EnvelopeError)?,
        )),
        key_enc_alg,
        enc_key: OctetString::new(encrypted_key).map_err(|_| EnvelopeError)?,
    };
    let mut set = SetOfVec::new();
    set.insert(cms::enveloped_data::RecipientInfo::Ktri(ktri))
        .map_err(|_| EnvelopeError)?;
    let recipient_infos = cms::enveloped_data::RecipientInfos(set)
        .to_der()
        .map_err(|_| EnvelopeError)?;
    let content_alg = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::from_bytes(ID_AES256_CBC).map_err(|_| EnvelopeError)?,
        parameters: Some(
            Any::encode_from(&OctetStringRef::new(iv).map_err(|_| EnvelopeError)?)
                .map_err(|_| EnvelopeError)?,
        ),
    }
    .to_der()
    .map_err(|_| EnvelopeError)?;

    let mut out = Vec::with_capacity(content.len() + recipient_infos.len() + 128);
    out.extend_from_slice(&[0x30, 0x80]); // ContentInfo ::= SEQUENCE {
    push_oid(&mut out, ID_ENVELOPED_DATA); //   contentType id-envelopedData,
    out.extend_from_slice(&[0xa0, 0x80]); //   content [0] EXPLICIT
    out.extend_from_slice(&[0x30, 0x80]); //     EnvelopedData ::= SEQUENCE {
    out.extend_from_slice(&[0x02, 0x01, 0x02]); //   version 2,
    out.extend_from_slice(&recipient_infos); //        recipientInfos,
    out.extend_from_slice(&[0x30, 0x80]); //           EncryptedContentInfo ::= SEQUENCE {
    push_oid(&mut out, ID_DATA); //                      contentType id-data,
    out.extend_from_slice(&content_alg); //              contentEncryptionAlgorithm,
    out.extend_from_slice(&[0xa0, 0x80]); //             encryptedContent [0] IMPLICIT (constructed)
    for chunk in content.chunks(CONTENT_CHUNK) {
        let chunk = OctetStringRef::new(chunk)
            .and_then(|c| c.to_der())
            .map_err(|_| EnvelopeError)?;
        out.extend_from_slice(&chunk);
    }
    // End-of-contents for [0] content, EncryptedContentInfo, EnvelopedData, [0], ContentInfo.
    out.extend_from_slice(&[0u8; 10]);
    Ok(out)
}

/// The buffer `envelope` encrypts in place: the plaintext until then, zeroized either way. Its
/// capacity already fits the CBC padding (at most one block), so encrypting never reallocates
/// it and so never frees an unzeroized copy of the plaintext.
fn content_buffer(plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    content.extend_from_slice(plaintext);
    content
}

fn push_oid(out: &mut Vec<u8>, oid: &[u8]) {
    out.push(0x06);
    // Every OID written here is shorter than 128 bytes: a one-byte length.
    out.push(u8::try_from(oid.len()).unwrap_or(0));
    out.extend_from_slice(oid);
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn oaep_parameters_are_sha256_with_mgf1_sha256() {
        // RSAES-OAEP-params decoded generically: [0] sha256 AlgorithmIdentifier, [1] mgf1 with
        // sha256 inside.
        let any = Any::from_der(OAEP_SHA256_PARAMS).expect("valid DER");
        assert_eq!(der::Tagged::tag(&any), der::Tag::Sequence);
        let sha256 = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        ];
        let mgf1 = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
        ];
        let hex = hex::encode(OAEP_SHA256_PARAMS);
        assert_eq!(hex.matches(&hex::encode(sha256)).count(), 2);
        assert_eq!(hex.matches(&hex::encode(mgf1)).count(), 1);
    }

    #[test]
    fn encrypting_the_content_never_reallocates_it() {
        let cipher = UnboundCipherKey::new(&AES_256, &[9u8; 32])
            .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
            .expect("AES-256-CBC key");
        for len in 0..80 {
            let mut content = content_buffer(&vec![7u8; len]);
            let (capacity, at) = (content.capacity(), content.as_ptr());
            cipher.encrypt(&mut *content).expect("encrypts");
            assert_eq!(content.len(), (len / 16 + 1) * 16, "padded");
            assert_eq!(
                (content.capacity(), content.as_ptr()),
                (capacity, at),
                "{len}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let anchors = TrustAnchors { roots: Vec::new() };
        for doc in [&b""[..], b"\x84", b"\x84\x40\xa0\x40\x40", &[0xffu8; 64]] {
            assert!(anchors.verify(doc, 0).is_err());
        }
        assert_eq!(
            anchors.verify(&vec![0u8; MAX_DOCUMENT + 1], 0).unwrap_err(),
            AttestationError::Malformed
        );
    }
}

/// A throwaway Nitro-like PKI (root → intermediate → leaf, all ECDSA P-384) and attestation
/// documents signed by it, for tests and the `nitro_attestation` example. Nothing here is used
/// on the request path; the keys are fresh per `TestPki` and never leave the process. Test
/// scaffolding, so it may panic (`expect`) where production code may not.
#[cfg(any(test, feature = "test-pki"))]
#[allow(clippy::expect_used, clippy::cast_possible_truncation)]
pub mod test_pki {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use aws_lc_rs::cipher::AES_256;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    };
    use ciborium::value::Value;
    use der::Encode;
    use der::asn1::UtcTime;

    /// One certificate and its key.
    pub struct Issued {
        /// The certificate, DER.
        pub der: Vec<u8>,
        key: EcdsaKeyPair,
        name: String,
    }

    /// Root, intermediate and leaf.
    pub struct TestPki {
        /// The root (the trust anchor a test configures).
        pub root: Issued,
        /// The intermediate, in `cabundle` after the root.
        pub intermediate: Issued,
        /// The leaf that signs documents.
        pub leaf: Issued,
    }

    /// What a test document says.
    pub struct Document {
        /// `module_id`.
        pub module_id: String,
        /// `timestamp`, ms.
        pub timestamp_ms: u64,
        /// The PCRs (index → bytes).
        pub pcrs: BTreeMap<u8, Vec<u8>>,
        /// The members the PCRs are written under: `["pcrs"]` (a Nitro enclave's document),
        /// `["nitrotpm_pcrs"]` (a NitroTPM's), or, for refusal tests, both or none.
        pub pcr_members: Vec<&'static str>,
        /// `public_key` (SubjectPublicKeyInfo DER), or none.
        pub public_key: Option<Vec<u8>>,
    }

    impl Document {
        /// A Nitro enclave's document: PCRn = 48 bytes of `n + 1` for n in 0..16 (PCR0, the
        /// image digest, is `01…01`).
        pub fn new(public_key: Option<Vec<u8>>, timestamp_ms: u64) -> Self {
            let pcrs = (0u8..16).map(|i| (i, vec![i + 1; 48])).collect();
            Self {
                module_id: "i-0123456789abcdef0-enc0123456789abcdef".into(),
                timestamp_ms,
                pcrs,
                pcr_members: vec!["pcrs"],
                public_key,
            }
        }

        /// A NitroTPM document (an EC2 instance's; the module id in the form of AWS's CloudTrail
        /// example, instance id and TPM id): `nitrotpm_pcrs` with PCRn = 48 bytes of `0x80 + n`
        /// for n in 0..24 (a TPM's 24 PCRs, SHA-384 bank).
        pub fn nitrotpm(public_key: Option<Vec<u8>>, timestamp_ms: u64) -> Self {
            let pcrs = (0u8..24).map(|i| (i, vec![0x80 + i; 48])).collect();
            Self {
                module_id: "i-0123456789abcdef0-tpm0123456789abcdef".into(),
                timestamp_ms,
                pcrs,
                pcr_members: vec!["nitrotpm_pcrs"],
                public_key,
            }
        }
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let significant = bytes.get(skip..).unwrap_or_default();
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    fn name(cn: &str) -> Vec<u8> {
        let atv = seq(&[&[0x06, 0x03, 0x55, 0x04, 0x03], &tlv(0x0c, cn.as_bytes())]);
        seq(&[&tlv(0x31, &atv)])
    }

    fn time(ms: i64) -> Vec<u8> {
        let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
        UtcTime::from_unix_duration(Duration::from_secs(secs))
            .and_then(|t| t.to_der())
            .unwrap_or_default()
    }

    fn generate() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
            .expect("P-384 key generation");
        EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8.as_ref())
            .expect("P-384 key parses")
    }

    /// A certificate for `key` named `cn`, issued by `issuer` (or self-signed), valid
    /// `[from_ms, to_ms]`.
    pub fn certificate(
        key: &EcdsaKeyPair,
        cn: &str,
        issuer: Option<(&EcdsaKeyPair, &str)>,
        ca: bool,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<u8> {
        let ecdsa_sha384: &[u8] = &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        let (issuer_key, issuer_cn) = issuer.unwrap_or((key, cn));
        let spki = key.public_key().as_der().expect("SPKI").as_ref().to_vec();
        let basic = if ca {
            seq(&[&[0x01, 0x01, 0xff]])
        } else {
            seq(&[])
        };
        let extension = seq(&[
            &[0x06, 0x03, 0x55, 0x1d, 0x13],
            &[0x01, 0x01, 0xff],
            &tlv(0x04, &basic),
        ]);
        let serial = aws_lc_rs::rand::generate::<[u8; 8]>(&SystemRandom::new())
            .map(|s| s.expose())
            .unwrap_or([1; 8]);
        let mut serial = serial.to_vec();
        if let Some(first) = serial.first_mut() {
            *first &= 0x7f;
            *first |= 0x01;
        }
        let tbs = seq(&[
            &[0xa0, 0x03, 0x02, 0x01, 0x02],
            &tlv(0x02, &serial),
            ecdsa_sha384,
            &name(issuer_cn),
            &seq(&[&time(from_ms), &time(to_ms)]),
            &name(cn),
            &spki,
            &tlv(0xa3, &seq(&[&extension])),
        ]);
        let signature = issuer_key
            .sign(&SystemRandom::new(), &tbs)
            .expect("ECDSA signature");
        let mut bits = vec![0u8];
        bits.extend_from_slice(signature.as_ref());
        seq(&[&tbs, ecdsa_sha384, &tlv(0x03, &bits)])
    }

    impl Issued {
        /// A fresh key and its certificate named `cn`, issued by `issuer` (or self-signed),
        /// valid `[from_ms, to_ms]`, a CA or not: for chains [`TestPki::new`] does not build.
        pub fn issue(
            cn: &str,
            issuer: Option<&Issued>,
            ca: bool,
            from_ms: i64,
            to_ms: i64,
        ) -> Self {
            Self::new(cn, issuer, ca, from_ms, to_ms)
        }

        fn new(cn: &str, issuer: Option<&Issued>, ca: bool, from_ms: i64, to_ms: i64) -> Self {
            let key = generate();
            let der = certificate(
                &key,
                cn,
                issuer.map(|i| (&i.key, i.name.as_str())),
                ca,
                from_ms,
                to_ms,
            );
            Self {
                der,
                key,
                name: cn.into(),
            }
        }

        /// The certificate as PEM.
        pub fn pem(&self) -> String {
            use base64_like::encode;
            let b64 = encode(&self.der);
            let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
            out
        }
    }

    impl TestPki {
        /// A fresh PKI whose certificates are valid around `now_ms`: the root and intermediate
        /// for ten years before and after, the leaf for a day either side.
        pub fn new(now_ms: i64) -> Self {
            let year = 365 * 24 * 3600 * 1000i64;
            let day = 24 * 3600 * 1000i64;
            let root = Issued::new(
                "Test Nitro root",
                None,
                true,
                now_ms - 10 * year,
                now_ms + 10 * year,
            );
            let intermediate = Issued::new(
                "Test Nitro zonal",
                Some(&root),
                true,
                now_ms - 10 * year,
                now_ms + 10 * year,
            );
            let leaf = Issued::new(
                "i-0123456789abcdef0.test.nitro",
                Some(&intermediate),
                false,
                now_ms - day,
                now_ms + day,
            );
            Self {
                root,
                intermediate,
                leaf,
            }
        }

        /// `document` signed by the leaf, with `cabundle = [root, intermediate]`.
        pub fn document(&self, document: &Document) -> Vec<u8> {
            self.document_with(document, &self.leaf, &[&self.root, &self.intermediate])
        }

        /// `document` signed by `signer`'s key, naming `signer` as `certificate`.
        pub fn document_with(
            &self,
            document: &Document,
            signer: &Issued,
            cabundle: &[&Issued],
        ) -> Vec<u8> {
            let text = |s: &str| Value::Text(s.into());
            let pcrs = Value::Map(
                document
                    .pcrs
                    .iter()
                    .map(|(i, v)| (Value::Integer((*i).into()), Value::Bytes(v.clone())))
                    .collect(),
            );
            let mut payload = vec![
                (text("module_id"), text(&document.module_id)),
                (text("digest"), text("SHA384")),
                (
                    text("timestamp"),
                    Value::Integer(document.timestamp_ms.into()),
                ),
            ];
            for member in &document.pcr_members {
                payload.push((text(member), pcrs.clone()));
            }
            payload.extend([
                (text("certificate"), Value::Bytes(signer.der.clone())),
                (
                    text("cabundle"),
                    Value::Array(
                        cabundle
                            .iter()
                            .map(|c| Value::Bytes(c.der.clone()))
                            .collect(),
                    ),
                ),
            ]);
            payload.push((
                text("public_key"),
                document
                    .public_key
                    .clone()
                    .map_or(Value::Null, Value::Bytes),
            ));
            payload.push((text("user_data"), Value::Null));
            payload.push((text("nonce"), Value::Null));
            let mut payload_bytes = Vec::new();
            ciborium::ser::into_writer(&Value::Map(payload), &mut payload_bytes)
                .expect("CBOR payload");
            let mut protected = Vec::new();
            ciborium::ser::into_writer(
                &Value::Map(vec![(
                    Value::Integer(1.into()),
                    Value::Integer((-35).into()),
                )]),
                &mut protected,
            )
            .expect("CBOR header");
            let mut to_sign = Vec::new();
            ciborium::ser::into_writer(
                &Value::Array(vec![
                    text("Signature1"),
                    Value::Bytes(protected.clone()),
                    Value::Bytes(Vec::new()),
                    Value::Bytes(payload_bytes.clone()),
                ]),
                &mut to_sign,
            )
            .expect("CBOR Sig_structure");
            // COSE wants the fixed-size r||s signature, not DER: re-sign with a FIXED key.
            let fixed = EcdsaKeyPair::from_private_key_der(
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                signer.key.private_key().as_der().expect("key DER").as_ref(),
            )
            .expect("same key");
            let signature = fixed
                .sign(&SystemRandom::new(), &to_sign)
                .expect("ECDSA signature");
            let mut out = Vec::new();
            ciborium::ser::into_writer(
                &Value::Array(vec![
                    Value::Bytes(protected),
                    Value::Map(Vec::new()),
                    Value::Bytes(payload_bytes),
                    Value::Bytes(signature.as_ref().to_vec()),
                ]),
                &mut out,
            )
            .expect("CBOR COSE_Sign1");
            out
        }

        /// A certificate issued by the intermediate but not a CA, for chain tests.
        pub fn issue_leaf(&self, cn: &str, from_ms: i64, to_ms: i64) -> Issued {
            Issued::new(cn, Some(&self.intermediate), false, from_ms, to_ms)
        }
    }

    /// Opens a `CiphertextForRecipient` as an enclave would, with RustCrypto `cms` (BER) and
    /// aws-lc-rs, not with [`super::envelope`]'s code: `None` if any step fails.
    pub fn open_envelope(
        key: &aws_lc_rs::rsa::PrivateDecryptingKey,
        ber: &[u8],
    ) -> Option<Vec<u8>> {
        use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
        use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey};
        use cms::content_info::ContentInfo;
        use cms::enveloped_data::{EnvelopedData, RecipientInfo};
        use der::Decode;
        let info = ContentInfo::from_ber(ber).ok()?;
        if info.content_type.to_string() != "1.2.840.113549.1.7.3" {
            return None;
        }
        let enveloped = EnvelopedData::from_ber(&info.content.to_der().ok()?).ok()?;
        let Some(RecipientInfo::Ktri(ktri)) = enveloped.recip_infos.0.iter().next() else {
            return None;
        };
        if ktri.key_enc_alg.oid.to_string() != "1.2.840.113549.1.1.7" {
            return None;
        }
        let oaep = OaepPrivateDecryptingKey::new(key.clone()).ok()?;
        let mut cek = vec![0u8; oaep.min_output_size()];
        let cek = oaep
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                ktri.enc_key.as_bytes(),
                &mut cek,
                None,
            )
            .ok()?
            .to_vec();
        let content = &enveloped.encrypted_content;
        if content.content_enc_alg.oid.to_string() != "2.16.840.1.101.3.4.1.42" {
            return None;
        }
        let iv = content
            .content_enc_alg
            .parameters
            .as_ref()?
            .decode_as::<der::asn1::OctetString>()
            .ok()?;
        let iv: [u8; 16] = iv.as_bytes().try_into().ok()?;
        let mut data = content.encrypted_content.as_ref()?.as_bytes().to_vec();
        let cipher =
            PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &cek).ok()?)
                .ok()?;
        cipher
            .decrypt(&mut data, DecryptionContext::Iv128(iv.into()))
            .ok()
            .map(|plain| plain.to_vec())
    }

    /// Standard base64 (for PEM), no padding tricks: small enough not to need a crate.
    mod base64_like {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        pub fn encode(bytes: &[u8]) -> String {
            let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
            for chunk in bytes.chunks(3) {
                let b = [
                    chunk.first().copied().unwrap_or(0),
                    chunk.get(1).copied().unwrap_or(0),
                    chunk.get(2).copied().unwrap_or(0),
                ];
                let [b0, b1, b2] = b;
                let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
                for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
                    if i <= chunk.len() {
                        let idx = ((n >> shift) & 63) as usize;
                        out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        }
    }
}
