//! The CloudTrail record: field names, order and shapes as CloudTrail writes them
//! (`eventVersion` 1.11). Borrowed throughout (small formatted fields in [`InlineText`], up to
//! eight request parameters inline), so building one allocates nothing but what its output
//! buffer needs; request parameters are copied as the raw JSON text the request carried.

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
    /// Appends this record and a newline to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut *out, self)?;
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
}

impl AdditionalEventData<'_> {
    fn is_empty(&self) -> bool {
        self.grant_id.is_none() && self.key_id.is_none()
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
