//! Which request fields an event records, by allowlist: a field is logged only if it is named
//! here, so a field added to the API later (or sent by mistake) stays out until someone
//! decides it is safe. Never listed: plaintext, ciphertext, messages, signatures, MACs,
//! key material, import tokens, public keys of a key agreement, grant tokens, MFA codes,
//! external ids.

use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::record::{JsonFields, Parameters};

/// awsJson (KMS) request fields that are logged, with their logged (camelCase) names.
const JSON_FIELDS: &[(&str, &str)] = &[
    ("AliasName", "aliasName"),
    (
        "BypassPolicyLockoutSafetyCheck",
        "bypassPolicyLockoutSafetyCheck",
    ),
    ("Constraints", "constraints"),
    ("CustomKeyStoreId", "customKeyStoreId"),
    ("CustomerMasterKeySpec", "customerMasterKeySpec"),
    ("Description", "description"),
    (
        "DestinationEncryptionAlgorithm",
        "destinationEncryptionAlgorithm",
    ),
    (
        "DestinationEncryptionContext",
        "destinationEncryptionContext",
    ),
    ("DestinationKeyId", "destinationKeyId"),
    ("DryRun", "dryRun"),
    ("EncryptionAlgorithm", "encryptionAlgorithm"),
    ("EncryptionContext", "encryptionContext"),
    ("ExpirationModel", "expirationModel"),
    ("GrantId", "grantId"),
    ("GranteePrincipal", "granteePrincipal"),
    ("IncludeKeyMaterial", "includeKeyMaterial"),
    ("KeyAgreementAlgorithm", "keyAgreementAlgorithm"),
    ("KeyId", "keyId"),
    ("KeyMaterialDescription", "keyMaterialDescription"),
    ("KeyMaterialId", "keyMaterialId"),
    ("KeyPairSpec", "keyPairSpec"),
    ("KeySpec", "keySpec"),
    ("KeyUsage", "keyUsage"),
    ("Limit", "limit"),
    ("MacAlgorithm", "macAlgorithm"),
    ("Marker", "marker"),
    ("MessageType", "messageType"),
    ("MultiRegion", "multiRegion"),
    ("Name", "name"),
    ("NumberOfBytes", "numberOfBytes"),
    ("Operations", "operations"),
    ("Origin", "origin"),
    ("PendingWindowInDays", "pendingWindowInDays"),
    ("Policy", "policy"),
    ("PolicyName", "policyName"),
    ("PrimaryRegion", "primaryRegion"),
    ("ReplicaRegion", "replicaRegion"),
    ("RetiringPrincipal", "retiringPrincipal"),
    ("RotationPeriodInDays", "rotationPeriodInDays"),
    ("SigningAlgorithm", "signingAlgorithm"),
    ("SourceEncryptionAlgorithm", "sourceEncryptionAlgorithm"),
    ("SourceEncryptionContext", "sourceEncryptionContext"),
    ("SourceKeyId", "sourceKeyId"),
    ("TagKeys", "tagKeys"),
    ("Tags", "tags"),
    ("TargetKeyId", "targetKeyId"),
    ("ValidTo", "validTo"),
    ("WrappingAlgorithm", "wrappingAlgorithm"),
    ("WrappingKeySpec", "wrappingKeySpec"),
];

/// Query (IAM, STS) parameters that are logged, with their logged names.
const QUERY_FIELDS: &[(&str, &str)] = &[
    ("AccessKeyId", "accessKeyId"),
    ("AssumeRolePolicyDocument", "assumeRolePolicyDocument"),
    ("Description", "description"),
    ("DurationSeconds", "durationSeconds"),
    ("GroupName", "groupName"),
    ("Marker", "marker"),
    ("MaxItems", "maxItems"),
    ("MaxSessionDuration", "maxSessionDuration"),
    ("NewGroupName", "newGroupName"),
    ("NewPath", "newPath"),
    ("NewUserName", "newUserName"),
    ("OnlyAttached", "onlyAttached"),
    ("Path", "path"),
    ("PathPrefix", "pathPrefix"),
    ("PermissionsBoundary", "permissionsBoundary"),
    ("PolicyArn", "policyArn"),
    ("PolicyDocument", "policyDocument"),
    ("PolicyName", "policyName"),
    ("PolicySourceArn", "policySourceArn"),
    ("RoleArn", "roleArn"),
    ("RoleName", "roleName"),
    ("RoleSessionName", "roleSessionName"),
    ("Scope", "scope"),
    ("SetAsDefault", "setAsDefault"),
    ("Status", "status"),
    ("UserName", "userName"),
    ("VersionId", "versionId"),
];

fn logged_name(table: &'static [(&'static str, &'static str)], wire: &str) -> Option<&'static str> {
    table
        .binary_search_by(|(w, _)| (*w).cmp(wire))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, logged)| *logged)
}

/// The logged fields of an awsJson request body; `Parameters::None` when the body is not a
/// JSON object (the call then failed, and nothing of it is recorded).
pub fn json_parameters(body: &[u8]) -> Parameters<'_> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = JsonFields<'de>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = JsonFields::default();
            while let Some(key) = map.next_key::<&'de str>()? {
                match logged_name(JSON_FIELDS, key) {
                    Some(name) => fields.push(name, map.next_value::<&'de RawValue>()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(fields)
        }
    }
    if body.is_empty() {
        return Parameters::None;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match deserializer.deserialize_map(Fields) {
        Ok(fields) if fields.is_empty() => Parameters::None,
        Ok(fields) => Parameters::Json(fields),
        Err(_) => Parameters::None,
    }
}

/// The logged fields of a Query request's parameters.
pub fn query_parameters<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Parameters<'a> {
    let fields: Vec<_> = params
        .filter_map(|(k, v)| Some((logged_name(QUERY_FIELDS, k)?, v)))
        .collect();
    if fields.is_empty() {
        Parameters::None
    } else {
        Parameters::Strings(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [JSON_FIELDS, QUERY_FIELDS] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "{table:?}");
        }
    }

    #[test]
    fn secrets_and_data_are_left_out() {
        let body = br#"{"KeyId":"alias/a","Plaintext":"c2VjcmV0","EncryptionContext":{"Plaintext":"x"},"GrantTokens":["t"]}"#;
        let json = serde_json::to_string(&json_parameters(body)).unwrap();
        assert_eq!(
            json,
            r#"{"keyId":"alias/a","encryptionContext":{"Plaintext":"x"}}"#
        );
        assert!(matches!(json_parameters(b"not json"), Parameters::None));
        assert!(matches!(json_parameters(b""), Parameters::None));
        // Past the inline fields, the rest still come, in request order.
        let many = br#"{"KeyId":"k","Description":"d","Origin":"o","KeySpec":"s","KeyUsage":"u","Policy":"p","Tags":[],"MultiRegion":true,"CustomKeyStoreId":"c","DryRun":false}"#;
        let json = serde_json::to_string(&json_parameters(many)).unwrap();
        assert_eq!(
            json,
            r#"{"keyId":"k","description":"d","origin":"o","keySpec":"s","keyUsage":"u","policy":"p","tags":[],"multiRegion":true,"customKeyStoreId":"c","dryRun":false}"#
        );
        let query = [
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:r"),
            ("TokenCode", "123456"),
        ];
        let json = serde_json::to_string(&query_parameters(query.into_iter())).unwrap();
        assert_eq!(json, r#"{"roleArn":"arn:r"}"#);
    }
}
