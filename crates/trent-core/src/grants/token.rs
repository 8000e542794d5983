//! Grant tokens: a grant's contents sealed with AES-256-GCM under a key derived from the root
//! key (`derive_subkey("grant-tokens")`, once, when `Kms` opens: `Kms::grant_token_key`).
//!
//! Any node sharing the root key can open a token and use the grant at once, even before it
//! has seen the grant in the database; a grant the node knows as retired is refused. The token
//! reveals nothing about the grant to anyone without the root key, and cannot be forged.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trent_crypto::random;

use super::model::Grant;
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;
use crate::validate;

/// The root-key derivation label of the grant-token key.
pub(crate) const GRANT_TOKEN_LABEL: &str = "grant-tokens";

/// Additional data every token is sealed with.
const TOKEN_AAD: &[u8] = b"trent:grant-token:v1";

/// The grants a request's `GrantTokens` carry, opened and authenticated. Empty (and not
/// allocated) for the usual request without tokens.
#[derive(Default, Clone)]
pub struct GrantTokens(Vec<Arc<Grant>>);

/// No grant tokens (what a request without `GrantTokens` carries).
pub static NO_GRANT_TOKENS: GrantTokens = GrantTokens(Vec::new());

impl GrantTokens {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Grant>> {
        self.0.iter()
    }
}

impl Kms {
    pub(crate) fn seal_token(&self, grant: &Grant) -> KmsResult<String> {
        let payload = serde_json::to_vec(grant).map_err(|e| KmsError::Internal(e.to_string()))?;
        let nonce = random::array::<12>()?;
        let sealed = self.grant_token_key.seal(nonce, TOKEN_AAD, &payload);
        let mut out = vec![1u8];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    pub(crate) fn open_token(&self, token: &str) -> KmsResult<Grant> {
        let invalid = || KmsError::InvalidGrantToken("Invalid grant token".into());
        let bytes = STANDARD.decode(token.as_bytes()).map_err(|_| invalid())?;
        let (&version, rest) = bytes.split_first().ok_or_else(invalid)?;
        if version != 1 || rest.len() < 12 {
            return Err(invalid());
        }
        let (nonce, sealed) = rest.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| invalid())?;
        let payload = self
            .grant_token_key
            .open(nonce, TOKEN_AAD, sealed)
            .ok_or_else(invalid)?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }

    /// Validates a request's `GrantTokens` and opens them.
    pub fn open_grant_tokens(&self, tokens: &[String]) -> KmsResult<GrantTokens> {
        validate::grant_tokens(tokens)?;
        tokens
            .iter()
            .map(|t| self.open_token(t).map(Arc::new))
            .collect::<KmsResult<Vec<_>>>()
            .map(GrantTokens)
    }
}
