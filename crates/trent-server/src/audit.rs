//! The audit trail at the edge: one CloudTrail record per authenticated call, built from what
//! the edge saw (request, source address, user agent, TLS, the answer's error) and what the
//! domain left on the [`Caller`] (the key, the grant that allowed the call, whether
//! authorization denied it), then handed to the trail's writer.
//!
//! The answer waits until its record is synced (group commit: many answers share one sync).
//! A record that cannot be made durable turns the answer into an internal error, so no call
//! is ever answered without its record.
//!
//! Cross-account use of a key is recorded twice, in the caller's account and in the key
//! owner's, with one `sharedEventID`; a cross-account call that authorization denied only in
//! the caller's (as AWS KMS does).

use std::sync::Arc;

use http::HeaderMap;
use trent_audit::record::{
    AdditionalEventData, EVENT_VERSION, InlineText, KeyResource, Parameters, Record,
    SessionAttributes, SessionContext, SessionIssuer, TlsDetails, UserIdentity,
};
use trent_audit::usage::LastUsage;
use trent_audit::{AuditLog, AuditSettings, EventId};
use trent_core::{Caller, Identity};

/// The negotiated TLS parameters of a connection, left on each of its requests.
#[derive(Clone, Copy, Debug)]
pub struct TlsInfo {
    pub version: &'static str,
    pub cipher_suite: &'static str,
}

/// The audit trail as the server uses it.
pub struct Audit {
    pub log: AuditLog,
    pub settings: AuditSettings,
    /// GetKeyLastUsage's table, fed from the records of successful cryptographic calls.
    pub usage: LastUsage,
    /// With several nodes on one database: the shipper of this node's committed batches into
    /// the shared trail, which LookupEvents and GetKeyLastUsage then read (docs/audit.md,
    /// "Several nodes").
    pub shared: Option<Arc<trent_audit::ship::Shipper>>,
}

impl Audit {
    /// Opens the trail and the usage table (tracking starts at `now_ms` for a new trail) and,
    /// inside a runtime, starts writing the table out every few seconds.
    pub fn open(
        settings: AuditSettings,
        now_ms: i64,
    ) -> Result<Arc<Self>, trent_audit::AuditError> {
        Self::open_shared(settings, now_ms, None)
    }

    /// [`Audit::open`], and with `shared` (several nodes on one database) starts shipping this
    /// node's committed batches into it, off the request path.
    pub fn open_shared(
        settings: AuditSettings,
        now_ms: i64,
        shared: Option<Arc<dyn trent_audit::shared::SharedTrail>>,
    ) -> Result<Arc<Self>, trent_audit::AuditError> {
        let log = AuditLog::open(settings.clone())?;
        let usage = LastUsage::open(&settings.directory, now_ms)?;
        let shared = match shared {
            Some(trail) => Some(trent_audit::ship::Shipper::new(&settings, trail)?),
            None => None,
        };
        if let Some(shipper) = &shared
            && tokio::runtime::Handle::try_current().is_ok()
        {
            shipper.spawn();
        }
        let audit = Arc::new(Self {
            log,
            settings,
            usage,
            shared,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&audit);
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(trent_audit::usage::PERSIST_INTERVAL);
                loop {
                    ticks.tick().await;
                    let Some(audit) = weak.upgrade() else { return };
                    let result =
                        tokio::task::spawn_blocking(move || audit.usage.persist()).await;
                    if let Ok(Err(e)) = result {
                        tracing::warn!(target: "trent::audit", error = %e, "writing last-usage.json failed");
                    }
                }
            });
        }
        Ok(audit)
    }
}

/// Which service a call addressed, as CloudTrail names it.
#[derive(Clone, Copy)]
pub enum Source {
    Kms,
    Iam,
    Sts,
    CloudTrail,
}

impl Source {
    fn event_source(self) -> &'static str {
        match self {
            Source::Kms => "kms.amazonaws.com",
            Source::Iam => "iam.amazonaws.com",
            Source::Sts => "sts.amazonaws.com",
            Source::CloudTrail => "cloudtrail.amazonaws.com",
        }
    }
}

/// Everything about one call the record needs.
pub struct Call<'a> {
    pub source: Source,
    pub event_name: &'a str,
    pub request_id: &'a str,
    pub caller: &'a Caller,
    pub headers: &'a HeaderMap,
    pub parameters: Parameters<'a>,
    pub error: Option<(&'a str, &'a str)>,
    /// What the answer's `responseElements` record (see [`kms_response_elements`]).
    pub response_elements: Option<&'a serde_json::value::RawValue>,
    pub tls: Option<TlsInfo>,
    pub secure: bool,
}

/// The record line(s) of `call`: one, or two for cross-account use of a key.
pub struct Lines {
    pub lines: Vec<u8>,
    /// The id of the record in the key owner's account (GetKeyLastUsage reports it).
    pub key_owner_event_id: EventId,
}

/// Builds the record line(s) of `call` at `now_ms`.
pub fn lines(audit: &Audit, call: &Call<'_>, now_ms: i64) -> Result<Lines, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    let key_owner_event_id = lines_into(audit, call, now_ms, &mut out)?;
    Ok(Lines {
        lines: out,
        key_owner_event_id,
    })
}

/// Appends the record line(s) of `call` at `now_ms` to `out` (a buffer the caller reuses, so
/// a record costs no allocation for its text); the id of the key owner's record.
pub fn lines_into(
    audit: &Audit,
    call: &Call<'_>,
    now_ms: i64,
    out: &mut Vec<u8>,
) -> Result<EventId, serde_json::Error> {
    let caller = call.caller;
    // The small formatted fields live on the stack: no allocation per record for them.
    let mut time = InlineText::<20>::new();
    let mut ip_text = InlineText::<48>::new();
    LAST_FORMATTED.with(|last| {
        last.borrow_mut().format(
            now_ms.div_euclid(1000),
            caller.source_ip,
            &mut time,
            &mut ip_text,
        );
    });
    let source_ip = caller.source_ip.map(|_| ip_text.as_str());
    let header = |name: &str| call.headers.get(name).and_then(|v| v.to_str().ok());
    let key_arn = caller.key_arn().map(|a| &**a);
    let key_account = key_arn.and_then(account_of_key_arn);
    let resource = key_arn
        .zip(key_account)
        .map(|(arn, account_id)| KeyResource { account_id, arn });
    let event_id = audit.log.event_id();
    let tls_details = call.secure.then(|| TlsDetails {
        tls_version: call.tls.map(|t| t.version),
        cipher_suite: call.tls.map(|t| t.cipher_suite),
        client_provided_host_header: header("host"),
    });
    let (kind, user_name, invoked_by) = match &caller.identity {
        Identity::Root => ("Root", None, None),
        Identity::User { name, .. } => ("IAMUser", Some(name.as_str()), None),
        Identity::AssumedRole { .. } => ("AssumedRole", None, None),
        // An integrated service with its own credentials, as CloudTrail shows AWS services.
        Identity::Service { name } => ("AWSService", None, Some(name.as_str())),
    };
    // A customer's call forwarded by a service, or a service-linked role's: made by the service.
    let invoked_by = invoked_by.or_else(|| caller.invoked_by());
    // A call an AWS service makes is recorded with the service as its source address and
    // user agent (CloudTrail's form for calls "made by an AWS service"), not the service's
    // own host and SDK.
    let (source_ip, user_agent) = match invoked_by {
        Some(service) => (Some(service), Some(service)),
        None => (source_ip, header("user-agent")),
    };
    let mut created_text = InlineText::<20>::new();
    let creation_date = match caller.session_created_ms {
        Some(ms) => {
            trent_audit::read::format_event_time(ms.div_euclid(1000), &mut created_text);
            Some(created_text.as_str())
        }
        None => None,
    };
    let session_context = match &caller.identity {
        Identity::AssumedRole {
            role_name, role_id, ..
        } => Some(SessionContext {
            session_issuer: Some(SessionIssuer {
                kind: "Role",
                principal_id: role_id,
                arn: caller.principal_role_arn(),
                account_id: &caller.account,
                user_name: role_name,
            }),
            attributes: SessionAttributes {
                creation_date,
                mfa_authenticated: "false",
            },
        }),
        _ if caller.temporary => Some(SessionContext {
            session_issuer: None,
            attributes: SessionAttributes {
                creation_date,
                mfa_authenticated: "false",
            },
        }),
        _ => None,
    };
    let cross_account = key_account.filter(|a| *a != caller.account);
    let denied = caller
        .explanation()
        .is_some_and(|e| matches!(e, trent_core::explain::Explanation::Denied(_)));
    let shared = match cross_account {
        Some(_) if !denied => Some(audit.log.event_id()),
        _ => None,
    };
    // A Recipient request's measurements, base64 as KMS logs them (`additionalEventData.recipient`).
    let measurements = caller.recipient().map(recipient_measurements);
    let recipient =
        caller
            .recipient()
            .zip(measurements.as_deref())
            .map(
                |(attestation, measurements)| trent_audit::record::RecipientEvent {
                    module_id: &attestation.module_id,
                    measurements,
                },
            );
    let mut record = Record {
        event_version: EVENT_VERSION,
        user_identity: UserIdentity {
            kind: Some(kind),
            principal_id: Some(caller.user_id()),
            arn: Some(&caller.principal_arn),
            account_id: Some(&caller.account),
            access_key_id: Some(&caller.access_key_id),
            user_name,
            session_context,
            invoked_by,
        },
        event_time: time.as_str(),
        event_source: call.source.event_source(),
        event_name: call.event_name,
        aws_region: &caller.region,
        source_ip_address: source_ip,
        user_agent,
        error_code: call.error.map(|(code, _)| code),
        error_message: call
            .error
            .map(|(_, message)| message)
            .filter(|m| !m.is_empty()),
        request_parameters: &call.parameters,
        response_elements: call.response_elements,
        additional_event_data: AdditionalEventData {
            grant_id: caller.allowing_grant_id(),
            key_id: None,
            recipient,
        },
        request_id: Some(call.request_id),
        event_id: event_id.as_str(),
        read_only: read_only(call.source, call.event_name),
        resources: resource,
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: &caller.account,
        shared_event_id: shared.as_ref().map(|s| s.as_str()),
        event_category: "Management",
        tls_details,
    };
    record.write_line(out)?;
    let mut key_owner_event_id = event_id;
    if let (Some(owner), Some(_)) = (cross_account, &shared) {
        // The key owner's copy: who called is another account, as CloudTrail shows it.
        let owner_event_id = audit.log.event_id();
        record.user_identity = UserIdentity {
            kind: Some("AWSAccount"),
            principal_id: Some(caller.user_id()),
            account_id: Some(&caller.account),
            access_key_id: Some(&caller.access_key_id),
            ..UserIdentity::default()
        };
        record.event_id = owner_event_id.as_str();
        record.recipient_account_id = owner;
        record.write_line(out)?;
        key_owner_event_id = owner_event_id;
    }
    Ok(key_owner_event_id)
}

thread_local! {
    /// The event time and source address this thread formatted last: under load most records
    /// of a thread fall in the same second and many come from the same address, so they are
    /// copied instead of formatted again (`write!` of six padded numbers, of an address).
    static LAST_FORMATTED: std::cell::RefCell<LastFormatted> =
        std::cell::RefCell::new(LastFormatted::default());
}

#[derive(Default)]
struct LastFormatted {
    time: Option<(i64, InlineText<20>)>,
    ip: Option<(std::net::IpAddr, InlineText<48>)>,
}

impl LastFormatted {
    /// Writes the event time of `secs` into `time` and `ip` (if any) into `ip_text`.
    fn format(
        &mut self,
        secs: i64,
        ip: Option<std::net::IpAddr>,
        time: &mut InlineText<20>,
        ip_text: &mut InlineText<48>,
    ) {
        use std::fmt::Write as _;
        match &self.time {
            Some((at, text)) if *at == secs => {
                let _ = time.write_str(text.as_str());
            }
            _ => {
                let mut text = InlineText::new();
                trent_audit::read::format_event_time(secs, &mut text);
                let _ = time.write_str(text.as_str());
                self.time = Some((secs, text));
            }
        }
        let Some(ip) = ip else { return };
        match &self.ip {
            Some((last, text)) if *last == ip => {
                let _ = ip_text.write_str(text.as_str());
            }
            _ => {
                let mut text = InlineText::new();
                let _ = write!(text, "{ip}");
                let _ = ip_text.write_str(text.as_str());
                self.ip = Some((ip, text));
            }
        }
    }
}

/// A successful KMS answer's `responseElements`, left on the response for [`lines`].
#[derive(Clone)]
pub struct ResponseElements(pub Box<serde_json::value::RawValue>);

/// The `responseElements` KMS logs for a successful call of `operation` that answered `body`
/// (`key_arn`: the key the call resolved). Reads and cryptographic (data) operations log
/// null, as do the alias operations; management operations on a key log the key's ARN as
/// `keyId` (what KMS writes since December 2022) plus, for some, a summary of the answer:
/// CreateKey's `keyMetadata`, ReplicateKey's `replicaKeyMetadata`, CreateGrant's `grantId`,
/// ScheduleKeyDeletion's deletion date, state and window, ImportKeyMaterial's material id,
/// CreateCustomKeyStore's id. Only these named members are copied: never a grant token,
/// import token, public key, policy, plaintext or ciphertext.
pub fn kms_response_elements(
    operation: &str,
    body: &[u8],
    key_arn: Option<&str>,
) -> Option<ResponseElements> {
    use serde_json::{Map, Value};
    if read_only(Source::Kms, operation)
        || matches!(
            operation,
            "CreateAlias"
                | "UpdateAlias"
                | "DeleteAlias"
                | "ConnectCustomKeyStore"
                | "DisconnectCustomKeyStore"
                | "DeleteCustomKeyStore"
                | "UpdateCustomKeyStore"
        )
    {
        return None;
    }
    let answer: Value = serde_json::from_slice(body).ok()?;
    let member = |name: &str| answer.get(name).cloned();
    let mut out = Map::new();
    match operation {
        "CreateKey" => {
            out.insert(
                "keyMetadata".into(),
                cloudtrail_shape(member("KeyMetadata")?, true),
            );
        }
        "ReplicateKey" => {
            // KMS's own record of ReplicateKey lower-cases every first letter (`aWSAccountId`).
            out.insert(
                "replicaKeyMetadata".into(),
                cloudtrail_shape(member("ReplicaKeyMetadata")?, false),
            );
        }
        "CreateCustomKeyStore" => {
            out.insert("customKeyStoreId".into(), member("CustomKeyStoreId")?);
        }
        _ => {
            out.insert("keyId".into(), Value::String(key_arn?.to_string()));
            match operation {
                "CreateGrant" => {
                    if let Some(id) = member("GrantId") {
                        out.insert("grantId".into(), id);
                    }
                }
                "ScheduleKeyDeletion" => {
                    if let Some(date) = member("DeletionDate") {
                        out.insert("deletionDate".into(), response_time(&date));
                    }
                    for (from, to) in [
                        ("KeyState", "keyState"),
                        ("PendingWindowInDays", "pendingWindowInDays"),
                    ] {
                        if let Some(v) = member(from) {
                            out.insert(to.into(), v);
                        }
                    }
                }
                "ImportKeyMaterial" => {
                    if let Some(id) = member("KeyMaterialId") {
                        out.insert("keyMaterialId".into(), id);
                    }
                }
                _ => {}
            }
        }
    }
    let text = serde_json::to_string(&Value::Object(out)).ok()?;
    serde_json::value::RawValue::from_string(text)
        .ok()
        .map(ResponseElements)
}

/// An answer's member as CloudTrail writes it: member names with a lower-case first letter
/// (`AWSAccountId` kept as is when `keep_aws`, as CreateKey's record has it), timestamps as
/// [`trent_audit::read::format_response_time`] dates.
fn cloudtrail_shape(value: serde_json::Value, keep_aws: bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, v)| {
                    let v = if matches!(name.as_str(), "CreationDate" | "DeletionDate" | "ValidTo")
                    {
                        response_time(&v)
                    } else {
                        cloudtrail_shape(v, keep_aws)
                    };
                    let name = if keep_aws && name == "AWSAccountId" {
                        name
                    } else {
                        lower_first(&name)
                    };
                    (name, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| cloudtrail_shape(v, keep_aws))
                .collect(),
        ),
        other => other,
    }
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// awsJson epoch seconds as a CloudTrail response date; anything else unchanged.
fn response_time(value: &serde_json::Value) -> serde_json::Value {
    match value.as_f64() {
        Some(secs) if secs.is_finite() => {
            let mut out = String::with_capacity(24);
            trent_audit::read::format_response_time(secs.floor() as i64, &mut out);
            serde_json::Value::String(out)
        }
        _ => value.clone(),
    }
}

/// The account of `arn:aws:kms:REGION:ACCOUNT:key/ID`.
fn account_of_key_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Whether CloudTrail marks the operation read-only: reads, and KMS's cryptographic
/// operations (which change no resource).
fn read_only(source: Source, name: &str) -> bool {
    match source {
        Source::Sts | Source::CloudTrail => true,
        Source::Iam => {
            name.starts_with("Get") || name.starts_with("List") || name.starts_with("Simulate")
        }
        Source::Kms => {
            name.starts_with("Get")
                || name.starts_with("List")
                || name.starts_with("Describe")
                || matches!(
                    name,
                    "Encrypt"
                        | "Decrypt"
                        | "ReEncrypt"
                        | "GenerateDataKey"
                        | "GenerateDataKeyWithoutPlaintext"
                        | "GenerateDataKeyPair"
                        | "GenerateDataKeyPairWithoutPlaintext"
                        | "GenerateRandom"
                        | "GenerateMac"
                        | "VerifyMac"
                        | "Sign"
                        | "Verify"
                        | "DeriveSharedSecret"
                        | "Encapsulate"
                        | "Decapsulate"
                        // Trent's extensions: both only read.
                        | "ExplainDecision"
                        | "AnalyzeKeyAccess"
                )
        }
    }
}

/// CloudTrail's names for rustls' protocol versions.
pub fn tls_version_name(version: Option<rustls::ProtocolVersion>) -> &'static str {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    }
}

/// The IANA name of a cipher suite (rustls prefixes TLS 1.3 suites with `TLS13_`).
pub fn cipher_suite_name(suite: Option<rustls::SupportedCipherSuite>) -> &'static str {
    let Some(name) = suite.and_then(|s| s.suite().as_str()) else {
        return "unknown";
    };
    match name {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        other => other,
    }
}

/// Records the domain's background work as the `AwsServiceEvent`s AWS KMS writes.
pub struct ServiceEvents {
    audit: Arc<Audit>,
}

impl ServiceEvents {
    pub fn new(audit: Arc<Audit>) -> Arc<Self> {
        Arc::new(Self { audit })
    }
}

impl trent_core::service_events::ServiceEventSink for ServiceEvents {
    fn record(&self, event: trent_core::service_events::ServiceEvent<'_>) {
        let mut time = String::with_capacity(20);
        trent_audit::read::format_event_time(event.time_ms.div_euclid(1000), &mut time);
        let event_id = self.audit.log.event_id();
        let record = Record {
            event_version: EVENT_VERSION,
            user_identity: UserIdentity {
                account_id: Some(event.account),
                invoked_by: Some("kms.amazonaws.com"),
                ..UserIdentity::default()
            },
            event_time: &time,
            event_source: "kms.amazonaws.com",
            event_name: event.name,
            aws_region: event.region,
            source_ip_address: Some("kms.amazonaws.com"),
            user_agent: Some("kms.amazonaws.com"),
            error_code: None,
            error_message: None,
            request_parameters: &Parameters::None,
            response_elements: None,
            additional_event_data: AdditionalEventData {
                grant_id: None,
                key_id: Some(event.key_arn),
                recipient: None,
            },
            request_id: None,
            event_id: event_id.as_str(),
            read_only: false,
            resources: Some(KeyResource {
                account_id: event.account,
                arn: event.key_arn,
            }),
            event_type: "AwsServiceEvent",
            management_event: true,
            recipient_account_id: event.account,
            shared_event_id: None,
            event_category: "Management",
            tls_details: None,
        };
        let mut line = Vec::with_capacity(512);
        if let Err(e) = record.write_line(&mut line) {
            tracing::error!(target: "trent::audit", error = %e, "a service event could not be serialized");
            return;
        }
        // The step is already in the store; its record follows without holding up the
        // lifecycle task (which runs under the write lock).
        let audit = self.audit.clone();
        let name = event.name;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = audit.log.append(&line).await {
                        tracing::error!(target: "trent::audit", event = name, error = %e, "a service event was not recorded");
                    }
                });
            }
            Err(_) => {
                tracing::error!(target: "trent::audit", event = name, "a service event was not recorded: no runtime");
            }
        }
    }
}

/// The measurements KMS logs of this kind of document, each base64 where the document has it.
fn recipient_measurements(
    attestation: &trent_crypto::nitro::Attestation,
) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use trent_audit::record::{ENCLAVE_MEASUREMENTS, NITROTPM_MEASUREMENTS};
    use trent_crypto::nitro::AttestationSource;
    let logged = match attestation.source {
        AttestationSource::NitroEnclave => &ENCLAVE_MEASUREMENTS,
        AttestationSource::NitroTpm => &NITROTPM_MEASUREMENTS,
    };
    logged
        .iter()
        .filter_map(|(index, name)| {
            let bytes = attestation.pcr_bytes(*index)?;
            Some((
                *name,
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        })
        .collect()
}
