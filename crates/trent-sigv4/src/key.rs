//! The derived SigV4 signing key: an opaque HMAC key that never prints its bytes.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// A SigV4 signing key, `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`. It is valid for one access key, day, region and service, which is what
/// makes caching it safe (see [`SigningKeyCache`](crate::SigningKeyCache)).
///
/// Opaque: not `Clone`, and `Debug` shows no bytes. The bytes live inside an AWS-LC HMAC key.
pub struct SigningKey {
    key: hmac::Key,
}

impl SigningKey {
    /// Derives the key for `secret_access_key` and the credential scope
    /// (`scope_date` is `yyyymmdd`).
    pub fn derive(
        secret_access_key: &str,
        scope_date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        // The only copy of the secret this crate makes; wiped when dropped.
        let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        seed.extend_from_slice(b"AWS4");
        seed.extend_from_slice(secret_access_key.as_bytes());

        let mut key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
        for part in [scope_date, region, service, "aws4_request"] {
            let tag = hmac::sign(&key, part.as_bytes());
            key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
        }
        SigningKey { key }
    }

    /// The lower-case hex HMAC-SHA256 of `string_to_sign`: the SigV4 signature.
    pub(crate) fn signature_hex(&self, string_to_sign: &str) -> String {
        hex::encode(hmac::sign(&self.key, string_to_sign.as_bytes()))
    }

    /// The raw HMAC-SHA256 of the concatenation of `parts` (a string to sign given in pieces).
    pub(crate) fn signature(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(part);
        }
        context.sign()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_material() {
        let key = SigningKey::derive(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(format!("{key:?}"), "SigningKey { .. }");
    }

    #[test]
    fn signs_like_the_aws_documentation_example() {
        // From AWS's "Create a signature for AWS Signature Version 4" worked example
        // (IAM ListUsers, 20150830T123600Z), whose expected signature is published there.
        let key = SigningKey::derive(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        let sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        assert_eq!(
            key.signature_hex(sts),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }
}
