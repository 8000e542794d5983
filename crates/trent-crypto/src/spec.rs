//! The closed AWS KMS enums (key specs, usages, algorithms) and their wire names.
//!
//! Each enum is exhaustive so that adding a variant forces every `match` to decide what it means.
//! Wire names are exactly AWS's; parsing an unknown name yields `None` and the caller answers
//! with a ValidationException naming the allowed set ([`WireEnum::allowed`]).

/// An AWS enum with a fixed set of wire names.
pub trait WireEnum: Sized + Copy + 'static {
    const ALL: &'static [Self];
    /// Every value in the order AWS lists them in its validation messages — not sorted, not
    /// the API model's order (AWS's recorded responses: MacAlgorithm is
    /// `[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]`). [`Self::ALL`] unless an
    /// enum names its own.
    const LISTED: &'static [Self] = Self::ALL;
    fn as_str(self) -> &'static str;

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// The allowed values as AWS lists them in validation messages: `[A, B, C]`.
    fn allowed() -> String {
        let names: Vec<&str> = Self::LISTED.iter().map(|v| v.as_str()).collect();
        format!("[{}]", names.join(", "))
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl WireEnum for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }
    };
    // With `listed [...]`: the order of AWS's validation messages (every variant, once).
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }
        listed [$($listed:ident),+ $(,)?]) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl WireEnum for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            const LISTED: &'static [Self] = &[$(Self::$listed),+];
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }
    };
}

wire_enum!(
    /// `KeySpec`: what kind of key material a KMS key holds.
    KeySpec {
        Rsa2048 = "RSA_2048", Rsa3072 = "RSA_3072", Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256", EccNistP384 = "ECC_NIST_P384", EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1", SymmetricDefault = "SYMMETRIC_DEFAULT",
        Hmac224 = "HMAC_224", Hmac256 = "HMAC_256", Hmac384 = "HMAC_384", Hmac512 = "HMAC_512",
        Sm2 = "SM2", MlDsa44 = "ML_DSA_44", MlDsa65 = "ML_DSA_65", MlDsa87 = "ML_DSA_87",
        EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        MlKem512 = "ML_KEM_512", MlKem768 = "ML_KEM_768", MlKem1024 = "ML_KEM_1024",
    }
    // AWS's recorded order of the twelve specs of 2023, then the later ones (whose place in
    // AWS's list is not recorded) in the model's order.
    listed [
        Rsa2048, EccNistP384, EccNistP256, EccNistP521, Hmac384, Rsa3072, EccSecgP256k1, Rsa4096,
        SymmetricDefault, Hmac256, Hmac224, Hmac512,
        Sm2, MlDsa44, MlDsa65, MlDsa87, EccNistEdwards25519, MlKem512, MlKem768, MlKem1024,
    ]
);

wire_enum!(
    /// `KeyUsageType`: the cryptographic operations a key may be used for.
    KeyUsage {
        SignVerify = "SIGN_VERIFY", EncryptDecrypt = "ENCRYPT_DECRYPT",
        GenerateVerifyMac = "GENERATE_VERIFY_MAC", KeyAgreement = "KEY_AGREEMENT",
        EncapsulateDecapsulate = "ENCAPSULATE_DECAPSULATE",
    }
    // AWS's recorded order of the first three, then the later ones.
    listed [EncryptDecrypt, SignVerify, GenerateVerifyMac, KeyAgreement, EncapsulateDecapsulate]
);

wire_enum!(
    /// `EncryptionAlgorithmSpec`.
    EncryptionAlgorithm {
        SymmetricDefault = "SYMMETRIC_DEFAULT", RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256", Sm2Pke = "SM2PKE",
    }
);

wire_enum!(
    /// `DataKeySpec`: the size of a data key from GenerateDataKey.
    DataKeySpec { Aes256 = "AES_256", Aes128 = "AES_128" }
);

wire_enum!(
    /// `OriginType`: where a key's material came from.
    Origin {
        AwsKms = "AWS_KMS", External = "EXTERNAL", AwsCloudHsm = "AWS_CLOUDHSM",
        ExternalKeyStore = "EXTERNAL_KEY_STORE",
    }
);

wire_enum!(
    /// `KeyState`: the lifecycle state of a key.
    KeyState {
        Creating = "Creating", Enabled = "Enabled", Disabled = "Disabled",
        PendingDeletion = "PendingDeletion", PendingImport = "PendingImport",
        PendingReplicaDeletion = "PendingReplicaDeletion", Unavailable = "Unavailable",
        Updating = "Updating",
    }
);

wire_enum!(
    /// `SigningAlgorithmSpec`.
    SigningAlgorithm {
        RsassaPssSha256 = "RSASSA_PSS_SHA_256", RsassaPssSha384 = "RSASSA_PSS_SHA_384",
        RsassaPssSha512 = "RSASSA_PSS_SHA_512", RsassaPkcs1V15Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 = "RSASSA_PKCS1_V1_5_SHA_512", EcdsaSha256 = "ECDSA_SHA_256",
        EcdsaSha384 = "ECDSA_SHA_384", EcdsaSha512 = "ECDSA_SHA_512", Sm2Dsa = "SM2DSA",
        MlDsaShake256 = "ML_DSA_SHAKE_256", Ed25519Sha512 = "ED25519_SHA_512",
        Ed25519PhSha512 = "ED25519_PH_SHA_512",
    }
);

wire_enum!(
    /// `MessageType` of Sign and Verify.
    MessageType { Raw = "RAW", Digest = "DIGEST", ExternalMu = "EXTERNAL_MU" }
);

wire_enum!(
    /// `MacAlgorithmSpec`.
    MacAlgorithm {
        HmacSha224 = "HMAC_SHA_224", HmacSha256 = "HMAC_SHA_256", HmacSha384 = "HMAC_SHA_384",
        HmacSha512 = "HMAC_SHA_512",
    }
    listed [HmacSha384, HmacSha256, HmacSha224, HmacSha512]
);

wire_enum!(
    /// `KeyAgreementAlgorithmSpec`.
    KeyAgreementAlgorithm { Ecdh = "ECDH" }
);

wire_enum!(
    /// `EncapsulationAlgorithmSpec` (Encapsulate, Decapsulate).
    EncapsulationAlgorithm { MlKem = "ML_KEM" }
);

wire_enum!(
    /// `DataKeyPairSpec`: the kind of key pair GenerateDataKeyPair returns.
    DataKeyPairSpec {
        Rsa2048 = "RSA_2048", Rsa3072 = "RSA_3072", Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256", EccNistP384 = "ECC_NIST_P384", EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1", Sm2 = "SM2", EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        MlKem512 = "ML_KEM_512", MlKem768 = "ML_KEM_768", MlKem1024 = "ML_KEM_1024",
    }
);

impl SigningAlgorithm {
    /// Length of the digest a `MessageType: DIGEST` message must have (the hash this algorithm
    /// applies to a RAW message); `None` where DIGEST does not apply.
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 | Sm2Dsa => Some(32),
            RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(48),
            RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519PhSha512 => Some(64),
            MlDsaShake256 | Ed25519Sha512 => None,
        }
    }
}

impl MacAlgorithm {
    /// Length of the MAC in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            MacAlgorithm::HmacSha224 => 28,
            MacAlgorithm::HmacSha256 => 32,
            MacAlgorithm::HmacSha384 => 48,
            MacAlgorithm::HmacSha512 => 64,
        }
    }
}

impl DataKeyPairSpec {
    /// The key spec of the same name (every data key pair spec is also a key spec).
    pub fn key_spec(self) -> KeySpec {
        use DataKeyPairSpec::*;
        match self {
            Rsa2048 => KeySpec::Rsa2048,
            Rsa3072 => KeySpec::Rsa3072,
            Rsa4096 => KeySpec::Rsa4096,
            EccNistP256 => KeySpec::EccNistP256,
            EccNistP384 => KeySpec::EccNistP384,
            EccNistP521 => KeySpec::EccNistP521,
            EccSecgP256k1 => KeySpec::EccSecgP256k1,
            Sm2 => KeySpec::Sm2,
            EccNistEdwards25519 => KeySpec::EccNistEdwards25519,
            MlKem512 => KeySpec::MlKem512,
            MlKem768 => KeySpec::MlKem768,
            MlKem1024 => KeySpec::MlKem1024,
        }
    }
}

impl DataKeySpec {
    pub fn byte_len(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

impl KeySpec {
    /// The key usages AWS accepts for this spec, first one being the default (where one exists).
    pub fn allowed_usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        use KeyUsage::*;
        match self {
            SymmetricDefault => &[EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[EncryptDecrypt, SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => &[SignVerify, KeyAgreement],
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => &[SignVerify],
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[GenerateVerifyMac],
            Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
            MlKem512 | MlKem768 | MlKem1024 => &[EncapsulateDecapsulate],
        }
    }

    /// The encryption algorithms a key of this spec supports for ENCRYPT_DECRYPT.
    pub fn encryption_algorithms(self) -> &'static [EncryptionAlgorithm] {
        use EncryptionAlgorithm::*;
        match self {
            KeySpec::SymmetricDefault => &[SymmetricDefault],
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                &[RsaesOaepSha1, RsaesOaepSha256]
            }
            KeySpec::Sm2 => &[Sm2Pke],
            _ => &[],
        }
    }
}

impl KeySpec {
    /// The signing algorithms of a SIGN_VERIFY key of this spec, in AWS's order.
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm::*;
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[EcdsaSha256],
            KeySpec::EccNistP384 => &[EcdsaSha384],
            KeySpec::EccNistP521 => &[EcdsaSha512],
            KeySpec::EccNistEdwards25519 => &[Ed25519Sha512, Ed25519PhSha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[MlDsaShake256],
            KeySpec::Sm2 => &[Sm2Dsa],
            _ => &[],
        }
    }

    /// The MAC algorithm of an HMAC key spec.
    pub fn mac_algorithms(self) -> &'static [MacAlgorithm] {
        match self {
            KeySpec::Hmac224 => &[MacAlgorithm::HmacSha224],
            KeySpec::Hmac256 => &[MacAlgorithm::HmacSha256],
            KeySpec::Hmac384 => &[MacAlgorithm::HmacSha384],
            KeySpec::Hmac512 => &[MacAlgorithm::HmacSha512],
            _ => &[],
        }
    }

    /// The key agreement algorithms of a KEY_AGREEMENT key of this spec.
    pub fn key_agreement_algorithms(self) -> &'static [KeyAgreementAlgorithm] {
        match self {
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::Sm2 => {
                &[KeyAgreementAlgorithm::Ecdh]
            }
            _ => &[],
        }
    }

    /// The key encapsulation algorithms of an ENCAPSULATE_DECAPSULATE key of this spec.
    pub fn encapsulation_algorithms(self) -> &'static [EncapsulationAlgorithm] {
        match self {
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
                &[EncapsulationAlgorithm::MlKem]
            }
            _ => &[],
        }
    }

    /// The raw key lengths in bytes AWS accepts for imported material of an HMAC spec (from the
    /// spec's bit count up to the hash's block size), `None` for other specs. Generated keys
    /// have [`Self::hmac_key_len`] bytes, the lower bound.
    pub fn hmac_key_lengths(self) -> Option<std::ops::RangeInclusive<usize>> {
        match self {
            KeySpec::Hmac224 => Some(28..=64),
            KeySpec::Hmac256 => Some(32..=64),
            KeySpec::Hmac384 => Some(48..=128),
            KeySpec::Hmac512 => Some(64..=128),
            _ => None,
        }
    }

    /// HMAC key length in bytes (the spec's bit count), `None` for other specs.
    pub fn hmac_key_len(self) -> Option<usize> {
        match self {
            KeySpec::Hmac224 => Some(28),
            KeySpec::Hmac256 => Some(32),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            _ => None,
        }
    }
}

/// The algorithm lists AWS shows for a key (KeyMetadata, GetPublicKey): each list only for the
/// usage it belongs to, so an RSA SIGN_VERIFY key lists no encryption algorithms.
pub struct AlgorithmLists {
    pub encryption: &'static [EncryptionAlgorithm],
    pub signing: &'static [SigningAlgorithm],
    pub mac: &'static [MacAlgorithm],
    pub key_agreement: &'static [KeyAgreementAlgorithm],
    pub encapsulation: &'static [EncapsulationAlgorithm],
}

impl AlgorithmLists {
    pub fn for_key(spec: KeySpec, usage: KeyUsage) -> Self {
        let pick = |u: KeyUsage| usage == u;
        AlgorithmLists {
            encryption: if pick(KeyUsage::EncryptDecrypt) {
                spec.encryption_algorithms()
            } else {
                &[]
            },
            signing: if pick(KeyUsage::SignVerify) {
                spec.signing_algorithms()
            } else {
                &[]
            },
            mac: if pick(KeyUsage::GenerateVerifyMac) {
                spec.mac_algorithms()
            } else {
                &[]
            },
            key_agreement: if pick(KeyUsage::KeyAgreement) {
                spec.key_agreement_algorithms()
            } else {
                &[]
            },
            encapsulation: if pick(KeyUsage::EncapsulateDecapsulate) {
                spec.encapsulation_algorithms()
            } else {
                &[]
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An enum's message order lists every value exactly once.
    fn listed_is_a_permutation<E: WireEnum + PartialEq>() {
        assert_eq!(E::LISTED.len(), E::ALL.len());
        for v in E::ALL {
            assert_eq!(E::LISTED.iter().filter(|l| *l == v).count(), 1);
        }
    }

    #[test]
    fn enum_lists_follow_aws_order() {
        listed_is_a_permutation::<KeySpec>();
        listed_is_a_permutation::<KeyUsage>();
        listed_is_a_permutation::<MacAlgorithm>();
        assert_eq!(
            MacAlgorithm::allowed(),
            "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
        );
        assert!(
            KeyUsage::allowed().starts_with("[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC")
        );
    }

    #[test]
    fn wire_names_round_trip() {
        for spec in KeySpec::ALL {
            assert_eq!(KeySpec::parse(spec.as_str()), Some(*spec));
        }
        assert_eq!(KeySpec::parse("symmetric_default"), None);
        assert_eq!(DataKeySpec::allowed(), "[AES_256, AES_128]");
    }
}
