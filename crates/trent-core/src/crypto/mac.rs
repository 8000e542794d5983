//! Operations on HMAC keys (GENERATE_VERIFY_MAC): GenerateMac and VerifyMac, one function
//! since they differ only in whether a MAC is given to compare.

use trent_crypto::spec::{KeyUsage, MacAlgorithm, WireEnum};
use zeroize::Zeroizing;

use super::{MAX_MESSAGE, MAX_SIGNATURE, incompatible, require_usage};
use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate::{self, Violations};

#[derive(Default)]
pub struct MacInput {
    pub key_id: Option<String>,
    pub message: Option<Zeroizing<Vec<u8>>>,
    pub mac_algorithm: Option<String>,
    /// VerifyMac only.
    pub mac: Option<Vec<u8>>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct MacOutput {
    pub key_arn: String,
    /// The MAC (GenerateMac); empty for VerifyMac.
    pub mac: Vec<u8>,
    pub mac_algorithm: MacAlgorithm,
}

impl Kms {
    /// GenerateMac (`verify` false) or VerifyMac (`verify` true; a wrong MAC is
    /// `KMSInvalidMacException`).
    pub async fn mac(
        &self,
        caller: &Caller,
        input: MacInput,
        verify: bool,
    ) -> KmsResult<MacOutput> {
        // Members in the API model's order: Message, KeyId, MacAlgorithm, Mac (VerifyMac).
        let mut v = Violations::default();
        let message = v.take(
            validate::required("message", input.message.as_ref()).and_then(|message| {
                validate::blob_length("message", message, 1, MAX_MESSAGE).map(|()| message)
            }),
        );
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let alg = v.take(
            validate::required("macAlgorithm", input.mac_algorithm.as_deref())
                .and_then(|name| validate::enum_value::<MacAlgorithm>("macAlgorithm", name)),
        );
        let expected = if verify {
            v.take(
                validate::required("mac", input.mac.as_deref()).and_then(|mac| {
                    validate::blob_length("mac", mac, 1, MAX_SIGNATURE).map(|()| Some(mac))
                }),
            )
        } else {
            Some(None)
        };
        v.finish()?;
        let (Some(message), Some(key_id), Some(alg), Some(expected)) =
            (message, key_id, alg, expected)
        else {
            return Err(Violations::checked());
        };
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        let action = if verify {
            "kms:VerifyMac"
        } else {
            "kms:GenerateMac"
        };
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .named_as(key_id)
                .condition("kms:MacAlgorithm", alg.as_str())
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_usage(&key, KeyUsage::GenerateVerifyMac, action)?;
        if !key.record.key_spec.mac_algorithms().contains(&alg) {
            return Err(incompatible(alg.as_str(), key.record.key_spec));
        }
        let hmac = key
            .hmac()
            .ok_or_else(|| KmsError::Internal("HMAC key without HMAC material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let mac = match expected {
            Some(mac) => {
                if !hmac.verify(message, mac) {
                    // AWS's KMSInvalidMacException carries no message.
                    return Err(KmsError::InvalidMac(String::new()));
                }
                Vec::new()
            }
            None => hmac.mac(message),
        };
        Ok(MacOutput {
            key_arn: key.arn().to_string(),
            mac,
            mac_algorithm: alg,
        })
    }
}
