//! Raw library speed of the operations Trent's Sign and GenerateMac perform per request: one
//! signature (RSA-2048 PSS, ECDSA P-256, Ed25519, ML-DSA-65) or one HMAC-SHA-256 over a 64-byte
//! message, with keys already parsed (as they are in Trent's key cache). Compare with
//! `trent bench --operation sign|generate-mac` for the cost of the full HTTP path.
#![expect(clippy::unwrap_used, reason = "benchmark setup on fixed, valid input")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use trent_crypto::HmacKey;
use trent_crypto::asymmetric::{AsymmetricKey, generate_pkcs8};
use trent_crypto::spec::{KeySpec, KeyUsage, MessageType, SigningAlgorithm};

fn signing(c: &mut Criterion) {
    let message = [0x42u8; 64];
    for (spec, alg) in [
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPssSha256),
        (KeySpec::EccNistP256, SigningAlgorithm::EcdsaSha256),
        (
            KeySpec::EccNistEdwards25519,
            SigningAlgorithm::Ed25519Sha512,
        ),
        (KeySpec::MlDsa65, SigningAlgorithm::MlDsaShake256),
    ] {
        let der = generate_pkcs8(spec).unwrap();
        let key = AsymmetricKey::from_pkcs8(spec, KeyUsage::SignVerify, &der).unwrap();
        c.bench_function(&format!("sign/{}", spec_name(spec)), |b| {
            b.iter(|| {
                key.sign(alg, MessageType::Raw, black_box(&message))
                    .unwrap()
            })
        });
    }
    let hmac = HmacKey::generate(KeySpec::Hmac256).unwrap().unwrap();
    c.bench_function("generate-mac/HMAC_256", |b| {
        b.iter(|| hmac.mac(black_box(&message)))
    });
}

fn spec_name(spec: KeySpec) -> &'static str {
    use trent_crypto::spec::WireEnum;
    spec.as_str()
}

criterion_group!(benches, signing);
criterion_main!(benches);
