//! Which operations a key's state allows: AWS's key-state table, in one place.
//!
//! Every operation that acts on an existing key calls [`check`] with its [`Op`] after
//! authorization. The table is AWS's ("Key states of AWS KMS keys"): cryptographic operations
//! need an Enabled key (Disabled is `DisabledException`, other states
//! `KMSInvalidStateException`); management operations mostly work in every state but
//! PendingDeletion; a few (CancelKeyDeletion, the import operations) have rules of their own.
//! The multi-Region states follow AWS's table too: a Creating replica allows only reads and
//! management (policy, tags, aliases, description) and ScheduleKeyDeletion; an Updating key
//! still works for cryptography and most management but not for EnableKey, DisableKey,
//! ReplicateKey, ScheduleKeyDeletion or the import-parameter and material-deletion operations; a
//! primary PendingReplicaDeletion is treated like PendingDeletion.

use trent_crypto::spec::KeyState;

use crate::error::{KmsError, KmsResult};
use crate::model::KeyRecord;

/// An operation, as far as key state matters to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Encrypt, Decrypt, ReEncrypt (both sides), GenerateDataKey*, and every other use of the
    /// key's material (Sign, Verify, GenerateMac, ...).
    Cryptographic,
    /// Reads that work in every state: DescribeKey, GetKeyPolicy, ListKeyPolicies,
    /// ListResourceTags, GetKeyRotationStatus, ListKeyRotations, DeleteAlias.
    Read,
    /// EnableKey, DisableKey.
    EnableDisable,
    /// UpdateKeyDescription, TagResource, UntagResource, CreateAlias, UpdateAlias, PutKeyPolicy.
    Manage,
    /// EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand.
    Rotation,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    /// GetParametersForImport, ImportKeyMaterial.
    Import,
    DeleteImportedKeyMaterial,
    /// ReplicateKey (on the primary).
    ReplicateKey,
    /// UpdatePrimaryRegion (on the primary and on the replica becoming primary).
    UpdatePrimaryRegion,
}

/// What the table says for one (operation, state) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// `DisabledException`.
    Disabled,
    /// `KMSInvalidStateException`.
    Invalid,
}

fn outcome(op: Op, state: KeyState) -> Outcome {
    use KeyState::*;
    use Outcome::*;
    match (op, state) {
        (Op::Read, _) => Allowed,

        (Op::Manage | Op::ScheduleKeyDeletion, Creating) => Allowed,
        (_, Creating) => Invalid,

        (Op::UpdatePrimaryRegion, Enabled | Updating) => Allowed,
        (Op::UpdatePrimaryRegion | Op::ReplicateKey, KeyState::Disabled) => Outcome::Disabled,
        (Op::ReplicateKey, Enabled) => Allowed,
        (Op::UpdatePrimaryRegion | Op::ReplicateKey, _) => Invalid,

        (Op::Cryptographic | Op::Manage | Op::Rotation, Updating) => Allowed,
        (Op::Import, Updating) => Allowed,
        (_, Updating) => Invalid,

        (Op::CancelKeyDeletion, PendingReplicaDeletion) => Allowed,
        (_, PendingReplicaDeletion) => Invalid,

        (Op::Cryptographic | Op::Rotation, Enabled) => Allowed,
        (Op::Cryptographic | Op::Rotation, KeyState::Disabled) => Outcome::Disabled,
        (Op::Cryptographic | Op::Rotation, PendingDeletion | PendingImport | Unavailable) => {
            Invalid
        }

        // Unavailable (custom key store disconnected): the change is recorded and shows once
        // the store reconnects, as AWS's table says.
        (Op::EnableDisable, Enabled | KeyState::Disabled | Unavailable) => Allowed,
        (Op::EnableDisable, PendingDeletion | PendingImport) => Invalid,

        (Op::Manage | Op::ScheduleKeyDeletion, PendingDeletion) => Invalid,
        (Op::Manage | Op::ScheduleKeyDeletion, _) => Allowed,

        (Op::CancelKeyDeletion, PendingDeletion) => Allowed,
        (Op::CancelKeyDeletion, _) => Invalid,

        (Op::Import, Enabled | KeyState::Disabled | PendingImport) => Allowed,
        (Op::Import, PendingDeletion | Unavailable) => Invalid,

        (Op::DeleteImportedKeyMaterial, Unavailable) => Invalid,
        (Op::DeleteImportedKeyMaterial, _) => Allowed,
    }
}

/// Refuses `op` on `key` in its current state, with AWS's error and message.
/// The state checked is the one callers see ([`KeyRecord::effective_state`]): a key of a
/// disconnected custom key store is `Unavailable`.
pub fn check(op: Op, key: &KeyRecord) -> KmsResult<()> {
    match outcome(op, key.effective_state()) {
        Outcome::Allowed => Ok(()),
        Outcome::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", key.arn()))),
        Outcome::Invalid => Err(invalid(key, op)),
    }
}

/// `KMSInvalidStateException` naming the key and its state.
pub(crate) fn invalid_state(key: &KeyRecord) -> KmsError {
    invalid(key, Op::Manage)
}

/// `KMSInvalidStateException` naming the key and what its state is.
fn invalid(key: &KeyRecord, op: Op) -> KmsError {
    let arn = key.arn();
    let message = match (op, key.effective_state()) {
        (Op::CancelKeyDeletion, _) => format!("{arn} is not pending deletion."),
        (_, KeyState::PendingDeletion) => format!("{arn} is pending deletion."),
        (_, KeyState::PendingReplicaDeletion) => format!("{arn} is pending replica deletion."),
        (_, KeyState::Creating) => format!("{arn} is creating."),
        (_, KeyState::Updating) => format!("{arn} is updating."),
        (_, KeyState::PendingImport) => format!("{arn} is pending import."),
        (_, KeyState::Unavailable) => format!("{arn} is unavailable."),
        (_, KeyState::Disabled) => format!("{arn} is disabled."),
        (_, KeyState::Enabled) => format!("{arn} is enabled."),
    };
    KmsError::InvalidState(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_aws() {
        use KeyState::*;
        assert_eq!(outcome(Op::Cryptographic, Enabled), Outcome::Allowed);
        assert_eq!(outcome(Op::Cryptographic, Disabled), Outcome::Disabled);
        assert_eq!(outcome(Op::Cryptographic, PendingImport), Outcome::Invalid);
        assert_eq!(
            outcome(Op::Cryptographic, PendingDeletion),
            Outcome::Invalid
        );
        assert_eq!(outcome(Op::Read, PendingDeletion), Outcome::Allowed);
        assert_eq!(outcome(Op::Manage, PendingDeletion), Outcome::Invalid);
        assert_eq!(outcome(Op::Manage, PendingImport), Outcome::Allowed);
        assert_eq!(outcome(Op::EnableDisable, PendingImport), Outcome::Invalid);
        assert_eq!(outcome(Op::CancelKeyDeletion, Enabled), Outcome::Invalid);
        assert_eq!(
            outcome(Op::CancelKeyDeletion, PendingDeletion),
            Outcome::Allowed
        );
        assert_eq!(
            outcome(Op::ScheduleKeyDeletion, PendingImport),
            Outcome::Allowed
        );
        assert_eq!(outcome(Op::Import, PendingDeletion), Outcome::Invalid);
        assert_eq!(outcome(Op::Rotation, Disabled), Outcome::Disabled);
        assert_eq!(
            outcome(Op::DeleteImportedKeyMaterial, PendingDeletion),
            Outcome::Allowed
        );
        assert_eq!(outcome(Op::Manage, Creating), Outcome::Allowed);
        assert_eq!(outcome(Op::Cryptographic, Creating), Outcome::Invalid);
        assert_eq!(outcome(Op::Cryptographic, Updating), Outcome::Allowed);
        assert_eq!(outcome(Op::EnableDisable, Updating), Outcome::Invalid);
        assert_eq!(outcome(Op::ScheduleKeyDeletion, Updating), Outcome::Invalid);
        assert_eq!(outcome(Op::ScheduleKeyDeletion, Creating), Outcome::Allowed);
        assert_eq!(outcome(Op::ReplicateKey, Disabled), Outcome::Disabled);
        assert_eq!(outcome(Op::ReplicateKey, Updating), Outcome::Invalid);
        assert_eq!(outcome(Op::UpdatePrimaryRegion, Updating), Outcome::Allowed);
        assert_eq!(
            outcome(Op::CancelKeyDeletion, PendingReplicaDeletion),
            Outcome::Allowed
        );
        assert_eq!(
            outcome(Op::Cryptographic, PendingReplicaDeletion),
            Outcome::Invalid
        );
    }

    #[test]
    fn errors_carry_aws_codes_and_messages() {
        use trent_crypto::MaterialId;
        use trent_crypto::spec::{KeySpec, KeyUsage, Origin};
        let mut key = KeyRecord {
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            created_ms: 0,
            description: String::new(),
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            state: KeyState::PendingDeletion,
            policy: String::new(),
            policy_principals: Default::default(),
            tags: vec![],
            current_material: MaterialId([0; 32]),
            multi_region: false,
            lifecycle: Default::default(),
            custody: Default::default(),
        };
        let arn = key.arn();
        assert_eq!(
            check(Op::Cryptographic, &key),
            Err(KmsError::InvalidState(format!(
                "{arn} is pending deletion."
            )))
        );
        key.state = KeyState::Disabled;
        assert_eq!(
            check(Op::Cryptographic, &key),
            Err(KmsError::Disabled(format!("{arn} is disabled.")))
        );
        assert_eq!(
            check(Op::CancelKeyDeletion, &key),
            Err(KmsError::InvalidState(format!(
                "{arn} is not pending deletion."
            )))
        );
        key.state = KeyState::PendingImport;
        assert_eq!(
            check(Op::EnableDisable, &key),
            Err(KmsError::InvalidState(format!("{arn} is pending import.")))
        );
        assert_eq!(check(Op::Import, &key), Ok(()));
    }
}
