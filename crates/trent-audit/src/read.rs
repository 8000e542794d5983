//! Reading the trail: `LookupEvents` (newest first, one account's events, one attribute,
//! a time range, pages) and the JSON Lines export per account, Region and day.
//!
//! Lookups scan the segment files (newest first) rather than keeping an index: the trail is
//! already on disk, LookupEvents is rate-limited to 2 requests per second per account by AWS,
//! and a scan holds one segment in memory at a time. Costs are in `docs/audit.md`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::AuditError;
use crate::format::{self, Line};

/// The attribute a lookup filters on (AWS allows one per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl Attribute {
    /// The `AttributeKey` wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        Some(match name {
            "EventId" => Self::EventId,
            "EventName" => Self::EventName,
            "ReadOnly" => Self::ReadOnly,
            "Username" => Self::Username,
            "ResourceType" => Self::ResourceType,
            "ResourceName" => Self::ResourceName,
            "EventSource" => Self::EventSource,
            "AccessKeyId" => Self::AccessKeyId,
            _ => return None,
        })
    }
}

/// One LookupEvents request, as the trail sees it.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Only events recorded in this account (`recipientAccountId`).
    pub account: String,
    pub attribute: Option<(Attribute, String)>,
    /// Seconds since the epoch, inclusive.
    pub start_secs: Option<i64>,
    /// Seconds since the epoch, inclusive.
    pub end_secs: Option<i64>,
    pub max_results: usize,
    /// Where the previous page stopped.
    pub cursor: Option<Cursor>,
}

/// A position in the trail: before byte `offset` of the segment whose first batch is
/// `segment`. Opaque to clients (the `NextToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub segment: u64,
    pub offset: usize,
}

impl Cursor {
    pub fn to_token(self) -> String {
        format!("t1.{}.{}", self.segment, self.offset)
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let mut parts = token.strip_prefix("t1.")?.split('.');
        let segment = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self { segment, offset })
    }
}

/// An event a lookup found, with the summary fields LookupEvents returns beside the record.
#[derive(Debug, Clone)]
pub struct FoundEvent {
    pub event_id: String,
    pub event_name: String,
    pub read_only: Option<bool>,
    pub access_key_id: Option<String>,
    pub event_time_secs: i64,
    pub event_source: String,
    pub username: Option<String>,
    /// (type, name) pairs.
    pub resources: Vec<(String, String)>,
    /// The whole CloudTrail record, as stored.
    pub record: String,
}

/// A page of a lookup.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<FoundEvent>,
    pub next: Option<Cursor>,
}

/// The fields of a record a lookup filters and summarizes on (the rest is skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Indexed<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    event_name: Cow<'a, str>,
    #[serde(borrow)]
    event_source: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    read_only: Option<bool>,
    #[serde(borrow)]
    recipient_account_id: Cow<'a, str>,
    #[serde(borrow)]
    user_identity: Option<Identity<'a>>,
    #[serde(borrow, default)]
    resources: Vec<Resource<'a>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "requestID", borrow)]
    request_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    invoked_by: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ARN", borrow)]
    arn: Option<Cow<'a, str>>,
}

impl Indexed<'_> {
    /// CloudTrail's `Username`: the IAM user's name, the role session's name, `root`, or the
    /// service that acted.
    fn username(&self) -> Option<String> {
        let identity = self.user_identity.as_ref()?;
        if let Some(name) = &identity.user_name {
            return Some(name.to_string());
        }
        match identity.kind.as_deref() {
            Some("Root") => Some("root".into()),
            Some("AssumedRole") => identity
                .arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .map(str::to_string),
            Some("AWSService") => identity.invoked_by.as_deref().map(str::to_string),
            _ => None,
        }
    }

    fn matches(&self, lookup: &Lookup, time: i64) -> bool {
        if self.recipient_account_id != lookup.account {
            return false;
        }
        if lookup.start_secs.is_some_and(|s| time < s) || lookup.end_secs.is_some_and(|e| time > e)
        {
            return false;
        }
        let Some((attribute, value)) = &lookup.attribute else {
            return true;
        };
        let value = value.as_str();
        match attribute {
            Attribute::EventId => self.event_id == value,
            Attribute::EventName => self.event_name == value,
            Attribute::EventSource => self.event_source == value,
            Attribute::ReadOnly => self
                .read_only
                .is_some_and(|r| if r { value == "true" } else { value == "false" }),
            Attribute::Username => self.username().as_deref() == Some(value),
            Attribute::AccessKeyId => {
                self.user_identity
                    .as_ref()
                    .and_then(|i| i.access_key_id.as_deref())
                    == Some(value)
            }
            Attribute::ResourceType => self
                .resources
                .iter()
                .any(|r| r.kind.as_deref() == Some(value)),
            Attribute::ResourceName => self
                .resources
                .iter()
                .any(|r| r.arn.as_deref() == Some(value)),
        }
    }

    fn found(&self, record: &[u8], time: i64) -> FoundEvent {
        FoundEvent {
            event_id: self.event_id.to_string(),
            event_name: self.event_name.to_string(),
            read_only: self.read_only,
            access_key_id: self
                .user_identity
                .as_ref()
                .and_then(|i| i.access_key_id.as_deref())
                .map(str::to_string),
            event_time_secs: time,
            event_source: self.event_source.to_string(),
            username: self.username(),
            resources: self
                .resources
                .iter()
                .filter_map(|r| {
                    Some((
                        r.kind.as_deref()?.to_string(),
                        r.arn.as_deref()?.to_string(),
                    ))
                })
                .collect(),
            record: String::from_utf8_lossy(record).into_owned(),
        }
    }
}

/// What the shared trail (`crate::shared`) indexes of one record: the lookup attributes, the
/// recipient account, and what GetKeyLastUsage asks (success, request id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub recipient_account_id: String,
    pub event_time_secs: i64,
    pub event_id: String,
    pub event_name: String,
    pub event_source: String,
    pub read_only: Option<bool>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    /// The first resource (Trent's records name at most one: the key).
    pub resource_type: Option<String>,
    pub resource_name: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
}

/// The indexed fields of one event line; `None` for a line that is not a readable record.
pub fn summarize(line: &[u8]) -> Option<Summary> {
    let record = serde_json::from_slice::<Indexed>(line).ok()?;
    let time = parse_event_time(&record.event_time)?;
    let first = record.resources.first();
    Some(Summary {
        recipient_account_id: record.recipient_account_id.to_string(),
        event_time_secs: time,
        event_id: record.event_id.to_string(),
        event_name: record.event_name.to_string(),
        event_source: record.event_source.to_string(),
        read_only: record.read_only,
        username: record.username(),
        access_key_id: record
            .user_identity
            .as_ref()
            .and_then(|i| i.access_key_id.as_deref())
            .map(str::to_string),
        resource_type: first.and_then(|r| r.kind.as_deref()).map(str::to_string),
        resource_name: first.and_then(|r| r.arn.as_deref()).map(str::to_string),
        error_code: record.error_code.as_deref().map(str::to_string),
        request_id: record.request_id.as_deref().map(str::to_string),
    })
}

/// One page of the events `lookup` selects, newest first.
pub fn lookup(directory: &Path, lookup: &Lookup) -> Result<Page, AuditError> {
    let mut page = Page::default();
    let segments = format::list_segments(directory)?;
    for (first_batch, path) in segments.iter().rev() {
        let limit = match lookup.cursor {
            Some(c) if *first_batch > c.segment => continue,
            Some(c) if *first_batch == c.segment => Some(c.offset),
            _ => None,
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            // Removed by retention while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        // The complete lines before the limit, newest first.
        let mut lines: Vec<(usize, &[u8])> = format::lines(&text)
            .filter_map(|(offset, line)| match line {
                Line::Event(bytes) => Some((offset, bytes)),
                Line::Digest(_) => None,
            })
            .filter(|(offset, _)| limit.is_none_or(|l| *offset < l))
            .collect();
        lines.reverse();
        for (offset, bytes) in lines {
            // A line still being written (or cut short by a crash) does not parse: skipped.
            let Ok(record) = serde_json::from_slice::<Indexed>(bytes) else {
                continue;
            };
            let Some(time) = parse_event_time(&record.event_time) else {
                continue;
            };
            if !record.matches(lookup, time) {
                continue;
            }
            if page.events.len() == lookup.max_results {
                page.next = Some(Cursor {
                    segment: *first_batch,
                    offset: offset.saturating_add(1),
                });
                return Ok(page);
            }
            page.events.push(record.found(bytes, time));
        }
    }
    Ok(page)
}

/// Writes every event into `out/<account>/<Region>/<yyyy>/<mm>/<dd>.jsonl` (one record a
/// line, in trail order; files are replaced). Returns the number of events and files.
pub fn export(directory: &Path, out: &Path) -> Result<(u64, usize), AuditError> {
    let mut files: HashMap<PathBuf, std::io::BufWriter<std::fs::File>> = HashMap::new();
    let mut events = 0u64;
    for (_, path) in format::list_segments(directory)? {
        let text = std::fs::read(&path)?;
        for (_, line) in format::lines(&text) {
            let Line::Event(bytes) = line else { continue };
            let Ok(record) = serde_json::from_slice::<Indexed>(bytes) else {
                continue;
            };
            let (Some(date), Some(region)) = (record.event_time.get(..10), &record.aws_region)
            else {
                continue;
            };
            let mut parts = date.split('-');
            let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let safe = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if ![&*record.recipient_account_id, region, y, m, d]
                .iter()
                .all(|s| safe(s))
            {
                continue;
            }
            let file = out
                .join(&*record.recipient_account_id)
                .join(&**region)
                .join(y)
                .join(m)
                .join(format!("{d}.jsonl"));
            let writer = match files.entry(file) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    if let Some(parent) = e.key().parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let f = std::fs::File::create(e.key())?;
                    e.insert(std::io::BufWriter::new(f))
                }
            };
            writer.write_all(bytes)?;
            writer.write_all(b"\n")?;
            events += 1;
        }
    }
    let count = files.len();
    for (_, mut writer) in files {
        writer.flush()?;
    }
    Ok((events, count))
}

/// Seconds since the epoch of `yyyy-mm-ddThh:mm:ssZ`.
pub fn parse_event_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20
        || b.get(4) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(19) != Some(&b'Z')
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Howard Hinnant's civil-to-days algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyy-mm-ddThh:mm:ssZ` for seconds since the epoch (UTC).
pub fn format_event_time(secs: i64, out: &mut impl std::fmt::Write) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
}

/// The date form CloudTrail's KMS `responseElements` use (`Nov 18, 2020, 1:29:18 AM`, UTC),
/// e.g. `keyMetadata.creationDate`.
pub fn format_response_time(secs: i64, out: &mut String) {
    use std::fmt::Write as _;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month = usize::try_from(m - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("Jan");
    let hour = rem / 3600;
    let (hour12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    let _ = write!(
        out,
        "{month} {d}, {y}, {hour12}:{:02}:{:02} {half}",
        (rem % 3600) / 60,
        rem % 60
    );
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_times_are_written_as_cloudtrail_writes_them() {
        let at = |text: &str| {
            let mut out = String::new();
            format_response_time(parse_event_time(text).unwrap(), &mut out);
            out
        };
        assert_eq!(at("2020-11-18T01:29:18Z"), "Nov 18, 2020, 1:29:18 AM");
        assert_eq!(at("2022-08-10T22:38:27Z"), "Aug 10, 2022, 10:38:27 PM");
        assert_eq!(at("2021-04-12T00:00:00Z"), "Apr 12, 2021, 12:00:00 AM");
        assert_eq!(at("2021-04-12T12:05:09Z"), "Apr 12, 2021, 12:05:09 PM");
    }
}
