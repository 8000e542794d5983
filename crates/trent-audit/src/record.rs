//! The CloudTrail record: field names, order and shapes as CloudTrail writes them
//! (`eventVersion` 1.11). Borrowed throughout (small formatted fields in [`InlineText`], up to
//! eight request parameters inline), so building one allocates nothing but what its output
//! buffer needs; request parameters are copied as the raw JSON text the request carried.
//!
//! [`Record::write_line`] writes the JSON text directly (the `json` module below), not through
//! serde's serializer; the derived `Serialize` stays as the definition it must match (tested).

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::value::RawValue;

/// The record format version CloudTrail writes today.
pub const EVENT_VERSION: &str = "1.11";

/// One CloudTrail record.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    pub event_version: &'static str,
    pub user_identity: UserIdentity<'a>,
    pub event_time: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub aws_region: &'a str,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    pub request_parameters: &'a Parameters<'a>,
    /// What KMS logs of a successful management call's answer (JSON; `None` writes null):
    /// summaries and ids, never key material, plaintext or tokens (`docs/audit.md`).
    pub response_elements: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "AdditionalEventData::is_empty")]
    pub additional_event_data: AdditionalEventData<'a>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(rename = "eventID")]
    pub event_id: &'a str,
    pub read_only: bool,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "one_resource"
    )]
    pub resources: Option<KeyResource<'a>>,
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: &'a str,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<&'a str>,
    pub event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails<'a>>,
}

impl Record<'_> {
    /// Appends this record and a newline to `out`: the bytes `serde_json` writes for the
    /// derived `Serialize`, written field by field (about half the CPU of serde's serializer,
    /// `cargo bench -p trent --bench request_path -- audit_parts`).
    pub fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut o = json::Object::new(out);
        o.str("eventVersion", self.event_version);
        o.object("userIdentity", |u| self.user_identity.write(u));
        o.str("eventTime", self.event_time);
        o.str("eventSource", self.event_source);
        o.str("eventName", self.event_name);
        o.str("awsRegion", self.aws_region);
        o.opt_str("sourceIPAddress", self.source_ip_address);
        o.opt_str("userAgent", self.user_agent);
        o.opt_str("errorCode", self.error_code);
        o.opt_str("errorMessage", self.error_message);
        self.request_parameters
            .write_json(o.with("requestParameters"))?;
        o.raw(
            "responseElements",
            self.response_elements.map_or("null", RawValue::get),
        );
        if !self.additional_event_data.is_empty() {
            let data = &self.additional_event_data;
            o.object("additionalEventData", |a| {
                a.opt_str("grantId", data.grant_id);
                a.opt_str("keyId", data.key_id);
                if let Some(recipient) = &data.recipient {
                    a.object("recipient", |r| {
                        for (k, v) in recipient.members() {
                            r.str(k, v);
                        }
                    });
                }
            });
        }
        o.opt_str("requestID", self.request_id);
        o.str("eventID", self.event_id);
        o.bool("readOnly", self.read_only);
        if let Some(r) = &self.resources {
            let list = o.with("resources");
            list.push(b'[');
            let mut entry = json::Object::new(list);
            entry.str("accountId", r.account_id);
            entry.str("type", "AWS::KMS::Key");
            entry.str("ARN", r.arn);
            entry.end();
            list.push(b']');
        }
        o.str("eventType", self.event_type);
        o.bool("managementEvent", self.management_event);
        o.str("recipientAccountId", self.recipient_account_id);
        o.opt_str("sharedEventID", self.shared_event_id);
        o.str("eventCategory", self.event_category);
        if let Some(t) = &self.tls_details {
            o.object("tlsDetails", |d| {
                d.opt_str("tlsVersion", t.tls_version);
                d.opt_str("cipherSuite", t.cipher_suite);
                d.opt_str("clientProvidedHostHeader", t.client_provided_host_header);
            });
        }
        o.end();
        out.push(b'\n');
        Ok(())
    }
}

/// Short text written on the stack (an event time, an IP address): a record's small fields
/// without an allocation each. Text past `N` bytes is cut off at a character boundary.
pub struct InlineText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> InlineText<N> {
    pub fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    pub fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl<const N: usize> Default for InlineText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Write for InlineText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut take = s.len().min(N.saturating_sub(self.len));
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        if let (Some(dst), Some(src)) = (
            self.bytes.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// `userIdentity`. Absent fields are left out, as CloudTrail does.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<&'a str>,
}

impl UserIdentity<'_> {
    fn write(&self, u: &mut json::Object<'_>) {
        u.opt_str("type", self.kind);
        u.opt_str("principalId", self.principal_id);
        u.opt_str("arn", self.arn);
        u.opt_str("accountId", self.account_id);
        u.opt_str("accessKeyId", self.access_key_id);
        u.opt_str("userName", self.user_name);
        if let Some(session) = &self.session_context {
            u.object("sessionContext", |s| {
                if let Some(issuer) = &session.session_issuer {
                    s.object("sessionIssuer", |i| {
                        i.str("type", issuer.kind);
                        i.str("principalId", issuer.principal_id);
                        i.str("arn", issuer.arn);
                        i.str("accountId", issuer.account_id);
                        i.str("userName", issuer.user_name);
                    });
                }
                s.object("attributes", |a| {
                    a.opt_str("creationDate", session.attributes.creation_date);
                    a.str("mfaAuthenticated", session.attributes.mfa_authenticated);
                });
            });
        }
        u.opt_str("invokedBy", self.invoked_by);
    }
}

/// `userIdentity.sessionContext` of temporary credentials.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuer<'a>>,
    pub attributes: SessionAttributes<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub principal_id: &'a str,
    pub arn: &'a str,
    pub account_id: &'a str,
    pub user_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes<'a> {
    /// When the session was issued (`yyyy-mm-ddThh:mm:ssZ`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<&'a str>,
    /// Trent has no MFA: always `"false"` (a string, as CloudTrail writes it).
    pub mfa_authenticated: &'static str,
}

/// `requestParameters`: what the request said, minus everything that is secret or data
/// (plaintext, ciphertext, messages, signatures, key material, tokens).
#[expect(
    clippy::large_enum_variant,
    reason = "held on the stack for one record; the inline fields are what spares an allocation"
)]
pub enum Parameters<'a> {
    None,
    /// awsJson fields: (logged name, the request's raw JSON value).
    Json(JsonFields<'a>),
    /// Query-protocol parameters: (logged name, value).
    Strings(Vec<(&'static str, &'a str)>),
    /// Built by the service itself (background work).
    Value(serde_json::Value),
}

impl Serialize for Parameters<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Parameters::None => s.serialize_none(),
            Parameters::Json(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Parameters::Strings(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Parameters::Value(v) => v.serialize(s),
        }
    }
}

impl Parameters<'_> {
    /// Writes the parameters as JSON (what `Serialize` writes).
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Parameters::None => out.extend_from_slice(b"null"),
            Parameters::Json(fields) => {
                let mut o = json::Object::new(out);
                for (k, v) in fields.iter() {
                    o.raw(k, v.get());
                }
                o.end();
            }
            Parameters::Strings(fields) => {
                let mut o = json::Object::new(out);
                for (k, v) in fields {
                    o.str(k, v);
                }
                o.end();
            }
            Parameters::Value(v) => serde_json::to_writer(&mut *out, v)?,
        }
        Ok(())
    }
}

/// Fields kept inline (every KMS data operation logs fewer): a record's parameters cost no
/// allocation unless a request carries more.
const INLINE_FIELDS: usize = 8;

/// The logged fields of an awsJson request, in request order.
#[derive(Default)]
pub struct JsonFields<'a> {
    inline: [Option<(&'static str, &'a RawValue)>; INLINE_FIELDS],
    more: Vec<(&'static str, &'a RawValue)>,
}

impl<'a> JsonFields<'a> {
    pub fn push(&mut self, name: &'static str, value: &'a RawValue) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((name, value)),
            None => self.more.push((name, value)),
        }
    }

    pub fn len(&self) -> usize {
        self.inline.iter().filter(|f| f.is_some()).count() + self.more.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'a RawValue)> + '_ {
        self.inline
            .iter()
            .flatten()
            .copied()
            .chain(self.more.iter().copied())
    }
}

/// `additionalEventData`.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalEventData<'a> {
    /// The grant that allowed the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<&'a str>,
    /// The key a service event acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
    /// What a request's Nitro Enclaves attestation document (`Recipient`) attested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientEvent<'a>>,
}

impl AdditionalEventData<'_> {
    fn is_empty(&self) -> bool {
        self.grant_id.is_none() && self.key_id.is_none() && self.recipient.is_none()
    }
}

/// `additionalEventData.recipient`, as KMS logs it: the module id and the measurements of
/// [`ENCLAVE_MEASUREMENTS`] or [`NITROTPM_MEASUREMENTS`], base64-encoded. Measurements only:
/// never the public key.
#[derive(Clone, Copy)]
pub struct RecipientEvent<'a> {
    pub module_id: &'a str,
    /// (member name, base64 value), in the order KMS logs them; absent PCRs are left out.
    pub measurements: &'a [(&'static str, String)],
}

/// What KMS logs of a Nitro enclave's document: the image digest (PCR0) and PCR1, 2, 3, 4, 8
/// (the KMS developer guide, "Monitoring requests for Nitro Enclaves").
pub const ENCLAVE_MEASUREMENTS: [(u8, &str); 6] = [
    (0, "attestationDocumentEnclaveImageDigest"),
    (1, "attestationDocumentEnclavePCR1"),
    (2, "attestationDocumentEnclavePCR2"),
    (3, "attestationDocumentEnclavePCR3"),
    (4, "attestationDocumentEnclavePCR4"),
    (8, "attestationDocumentEnclavePCR8"),
];

/// What KMS logs of a NitroTPM document: PCR4, 7, 8, 9, 16 and 23 (the KMS developer guide,
/// "Monitoring requests for NitroTPM").
pub const NITROTPM_MEASUREMENTS: [(u8, &str); 6] = [
    (4, "attestationDocumentNitroTPMPCR4"),
    (7, "attestationDocumentNitroTPMPCR7"),
    (8, "attestationDocumentNitroTPMPCR8"),
    (9, "attestationDocumentNitroTPMPCR9"),
    (16, "attestationDocumentNitroTPMPCR16"),
    (23, "attestationDocumentNitroTPMPCR23"),
];

impl RecipientEvent<'_> {
    fn members(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once(("attestationDocumentModuleId", self.module_id)).chain(
            self.measurements
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
    }
}

impl Serialize for RecipientEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.members() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The KMS key a record is about.
#[derive(Clone, Copy)]
pub struct KeyResource<'a> {
    pub account_id: &'a str,
    pub arn: &'a str,
}

fn one_resource<S: serde::Serializer>(
    resource: &Option<KeyResource<'_>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(rename = "accountId")]
        account_id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(rename = "ARN")]
        arn: &'a str,
    }
    let mut seq = s.serialize_seq(Some(usize::from(resource.is_some())))?;
    if let Some(r) = resource {
        seq.serialize_element(&Entry {
            account_id: r.account_id,
            kind: "AWS::KMS::Key",
            arn: r.arn,
        })?;
    }
    seq.end()
}

/// `tlsDetails`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<&'a str>,
}

/// The record's JSON text written directly (field by field, in [`Record`]'s order, with
/// serde_json's escaping), not through serde's serializer: the same bytes `serde_json` writes
/// for the derived `Serialize` (tested below against it), at about half the CPU per record.
mod json {

    /// A JSON object being written: `{`, then `"key":value` pairs comma-separated.
    pub(super) struct Object<'o> {
        out: &'o mut Vec<u8>,
        first: bool,
    }

    impl<'o> Object<'o> {
        pub(super) fn new(out: &'o mut Vec<u8>) -> Self {
            out.push(b'{');
            Self { out, first: true }
        }

        /// Starts the member `key` (a name without characters to escape); the value follows.
        fn key(&mut self, key: &str) -> &mut Vec<u8> {
            if !self.first {
                self.out.push(b',');
            }
            self.first = false;
            self.out.push(b'"');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
            self.out
        }

        pub(super) fn str(&mut self, key: &str, value: &str) {
            string(self.key(key), value);
        }

        pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
            if let Some(value) = value {
                self.str(key, value);
            }
        }

        pub(super) fn bool(&mut self, key: &str, value: bool) {
            let text: &[u8] = if value { b"true" } else { b"false" };
            self.key(key).extend_from_slice(text);
        }

        /// A member whose value is JSON text as it is (a raw value).
        pub(super) fn raw(&mut self, key: &str, value: &str) {
            self.key(key).extend_from_slice(value.as_bytes());
        }

        /// A member whose value is an object, written by `f`.
        pub(super) fn object(&mut self, key: &str, f: impl FnOnce(&mut Object<'_>)) {
            let out = self.key(key);
            let mut inner = Object::new(out);
            f(&mut inner);
            inner.end();
        }

        /// The member's value written by `f` into the output.
        pub(super) fn with(&mut self, key: &str) -> &mut Vec<u8> {
            self.key(key)
        }

        pub(super) fn end(self) {
            self.out.push(b'}');
        }
    }

    /// `value` as a JSON string, escaped as serde_json escapes: `"`, `\` and the control
    /// characters below U+0020 (`\b \t \n \f \r` by name, the others `\u00XX`), nothing else.
    pub(super) fn string(out: &mut Vec<u8>, value: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(b'"');
        let bytes = value.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let named: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0c => b"\\f",
                b'\r' => b"\\r",
                0x00..=0x1f => b"",
                _ => continue,
            };
            out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
            start = i + 1;
            if named.is_empty() {
                let hex = |n: u8| HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]);
            } else {
                out.extend_from_slice(named);
            }
        }
        out.extend_from_slice(bytes.get(start..).unwrap_or_default());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json writes for the derived `Serialize`: the definition `write_line` keeps.
    fn by_serde(record: &Record<'_>) -> String {
        let mut out = serde_json::to_vec(record).unwrap();
        out.push(b'\n');
        String::from_utf8(out).unwrap()
    }

    fn by_hand(record: &Record<'_>) -> String {
        let mut out = Vec::new();
        record.write_line(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn minimal<'a>(parameters: &'a Parameters<'a>) -> Record<'a> {
        Record {
            event_version: EVENT_VERSION,
            user_identity: UserIdentity::default(),
            event_time: "2026-12-03T16:00:00Z",
            event_source: "kms.amazonaws.com",
            event_name: "RotateKey",
            aws_region: "us-east-1",
            source_ip_address: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            request_parameters: parameters,
            response_elements: None,
            additional_event_data: AdditionalEventData::default(),
            request_id: None,
            event_id: "00000000-0000-0000-0000-000000000001",
            read_only: false,
            resources: None,
            event_type: "AwsServiceEvent",
            management_event: true,
            recipient_account_id: "111122223333",
            shared_event_id: None,
            event_category: "Management",
            tls_details: None,
        }
    }

    #[test]
    fn a_minimal_record_is_what_serde_writes() {
        for parameters in [
            Parameters::None,
            Parameters::Value(serde_json::json!({"keyId": "k", "n": [1, 2.5, null, true]})),
            Parameters::Strings(Vec::new()),
            Parameters::Json(JsonFields::default()),
        ] {
            let record = minimal(&parameters);
            assert_eq!(by_hand(&record), by_serde(&record));
        }
    }

    #[test]
    fn a_full_record_with_text_to_escape_is_what_serde_writes() {
        // Every character class the escaping treats differently: quotes, backslashes, the
        // named and the \u00XX control characters, DEL, non-ASCII, astral plane.
        let awkward = "a\"b\\c\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{7f}é–😀/end";
        let body = br#"{"KeyId":"alias/x","EncryptionContext":{"k":"v\"\u00e9"},"Limit":10,"Plaintext":"AAAA"}"#;
        let json_parameters = crate::parameters::json_parameters(body);
        let string_parameters = Parameters::Strings(vec![("userName", awkward), ("path", "/")]);
        let response =
            RawValue::from_string(r#"{"keyId":"arn:aws:kms:us-east-1:1:key/k"}"#.into()).unwrap();
        let measurements = [
            ("attestationDocumentEnclaveImageDigest", "AQEB".to_owned()),
            ("attestationDocumentEnclavePCR1", "AgIC".to_owned()),
        ];
        for (parameters, is_json) in [(&json_parameters, true), (&string_parameters, false)] {
            for with_issuer in [true, false] {
                let mut record = minimal(parameters);
                record.user_identity = UserIdentity {
                    kind: Some("AssumedRole"),
                    principal_id: Some("AROAEXAMPLE:session"),
                    arn: Some(awkward),
                    account_id: Some("111122223333"),
                    access_key_id: Some("ASIAEXAMPLE"),
                    user_name: Some(awkward),
                    session_context: Some(SessionContext {
                        session_issuer: with_issuer.then_some(SessionIssuer {
                            kind: "Role",
                            principal_id: "AROAEXAMPLE",
                            arn: "arn:aws:iam::111122223333:role/r",
                            account_id: "111122223333",
                            user_name: awkward,
                        }),
                        attributes: SessionAttributes {
                            creation_date: with_issuer.then_some("2026-12-03T15:00:00Z"),
                            mfa_authenticated: "false",
                        },
                    }),
                    invoked_by: Some("autoscaling.amazonaws.com"),
                };
                record.source_ip_address = Some("2001:db8::1");
                record.user_agent = Some(awkward);
                record.error_code = Some("AccessDeniedException");
                record.error_message = Some(awkward);
                record.response_elements = Some(&response);
                record.additional_event_data = AdditionalEventData {
                    grant_id: Some("g\"1"),
                    key_id: with_issuer.then_some("k"),
                    recipient: with_issuer.then_some(RecipientEvent {
                        module_id: "i-0123-enc0456",
                        measurements: &measurements,
                    }),
                };
                record.request_id = Some("5c5ae4a2-52d4-4a6f-8f3a-0e2d2f7f0c11");
                record.read_only = true;
                record.resources = Some(KeyResource {
                    account_id: "444455556666",
                    arn: "arn:aws:kms:us-east-1:444455556666:key/k",
                });
                record.shared_event_id = Some("00000000-0000-0000-0000-000000000002");
                record.tls_details = Some(TlsDetails {
                    tls_version: Some("TLSv1.3"),
                    cipher_suite: with_issuer.then_some("TLS_AES_128_GCM_SHA256"),
                    client_provided_host_header: Some(awkward),
                });
                let hand = by_hand(&record);
                assert_eq!(hand, by_serde(&record));
                if is_json {
                    assert!(
                        hand.contains(r#""encryptionContext":{"k":"v\"\u00e9"}"#),
                        "{hand}"
                    );
                    assert!(
                        !hand.contains("Plaintext") && !hand.contains("AAAA"),
                        "{hand}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_single_character_escapes_as_serde_escapes_it() {
        for c in (0u32..0x100).chain([0x2028, 0x2029, 0xfeff, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            let text = format!("x{c}y");
            let mut out = Vec::new();
            json::string(&mut out, &text);
            assert_eq!(
                out,
                serde_json::to_vec(&text).unwrap(),
                "U+{:04X}",
                c as u32
            );
        }
    }
}
