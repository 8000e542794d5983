//! The KMS operations, named once: parsed from `X-Amz-Target` a single time per request and
//! dispatched on by `match`.

macro_rules! operations {
    ($($name:ident),+ $(,)?) => {
        /// One KMS API operation (`TrentService.<Name>`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation {
            $($name),+
        }

        impl Operation {
            /// Every operation, in the order of the API reference.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),+];

            /// The operation's name as in `X-Amz-Target`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name)),+
                }
            }
        }
    };
}

operations!(
    // A Trent extension: who can use a key, or what a key policy would change (`access.rs`).
    AnalyzeKeyAccess,
    CancelKeyDeletion,
    ConnectCustomKeyStore,
    CreateAlias,
    CreateCustomKeyStore,
    CreateGrant,
    CreateKey,
    Decapsulate,
    Decrypt,
    DeleteAlias,
    DeleteCustomKeyStore,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeCustomKeyStores,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    DisconnectCustomKeyStore,
    EnableKey,
    EnableKeyRotation,
    Encapsulate,
    Encrypt,
    // A Trent extension: why the caller's own request was denied (`explain.rs`).
    ExplainDecision,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    GenerateRandom,
    GetKeyLastUsage,
    GetKeyPolicy,
    GetKeyRotationStatus,
    GetParametersForImport,
    GetPublicKey,
    ImportKeyMaterial,
    ListAliases,
    ListGrants,
    ListKeyPolicies,
    ListKeyRotations,
    ListKeys,
    ListResourceTags,
    ListRetirableGrants,
    PutKeyPolicy,
    ReEncrypt,
    ReplicateKey,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateCustomKeyStore,
    UpdateKeyDescription,
    UpdatePrimaryRegion,
    Verify,
    VerifyMac,
);

impl Operation {
    /// The operation an `X-Amz-Target` header names (`TrentService.Encrypt`).
    pub fn from_target(target: &[u8]) -> Option<Self> {
        let name = target.strip_prefix(b"TrentService.")?;
        Self::ALL
            .iter()
            .copied()
            .find(|op| op.as_str().as_bytes() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_through_its_target() {
        assert_eq!(Operation::ALL.len(), 58);
        for op in Operation::ALL {
            let target = format!("TrentService.{}", op.as_str());
            assert_eq!(Operation::from_target(target.as_bytes()), Some(*op));
        }
        assert_eq!(Operation::from_target(b"TrentService.encrypt"), None);
        assert_eq!(Operation::from_target(b"Encrypt"), None);
        assert_eq!(Operation::from_target(b"OtherService.Encrypt"), None);
    }
}
