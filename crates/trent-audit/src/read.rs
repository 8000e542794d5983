//! Reading the trail: `LookupEvents` (newest first, one account's events, one attribute,
//! a time range, pages) and the JSON Lines export per account, Region and day.
//!
//! Lookups scan the segment files (newest first, each read backwards in chunks) rather than
//! keeping an index: the trail is already on disk, LookupEvents is rate-limited to 2 requests
//! per second per account by AWS, a page that fills from the newest records reads only the end
//! of the newest segment, and a scan holds one chunk in memory at a time (a line longer than a
//! chunk, more). Costs are in `docs/audit.md`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
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
    lookup_in_chunks(directory, lookup, SCAN_CHUNK)
}

/// Bytes of a segment a lookup reads at a time, from its end backwards.
const SCAN_CHUNK: usize = 256 << 10;

fn lookup_in_chunks(directory: &Path, lookup: &Lookup, chunk: usize) -> Result<Page, AuditError> {
    let mut page = Page::default();
    let segments = format::list_segments(directory)?;
    for (first_batch, path) in segments.iter().rev() {
        let limit = match lookup.cursor {
            Some(c) if *first_batch > c.segment => continue,
            Some(c) if *first_batch == c.segment => Some(c.offset),
            _ => None,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            // Removed by retention while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let mut full = false;
        event_lines_backwards(&file, limit, chunk, |offset, bytes| {
            // A line still being written (or cut short by a crash) does not parse: skipped.
            let Ok(record) = serde_json::from_slice::<Indexed>(bytes) else {
                return ControlFlow::Continue(());
            };
            let Some(time) = parse_event_time(&record.event_time) else {
                return ControlFlow::Continue(());
            };
            if !record.matches(lookup, time) {
                return ControlFlow::Continue(());
            }
            if page.events.len() == lookup.max_results {
                page.next = Some(Cursor {
                    segment: *first_batch,
                    offset: offset.saturating_add(1),
                });
                full = true;
                return ControlFlow::Break(());
            }
            page.events.push(record.found(bytes, time));
            ControlFlow::Continue(())
        })?;
        if full {
            return Ok(page);
        }
    }
    Ok(page)
}

/// Visits the event lines of the segment `file` that begin before byte `limit` (every one
/// without a limit), newest first, with their offsets, reading the file backwards `chunk`
/// bytes at a time: a lookup whose page fills from the newest records reads the end of the
/// file only, not the whole segment (up to 68 MiB). Lines are as [`format::lines`] gives
/// them: the text ends where the zeros the segment is grown ahead with begin (a record never
/// holds a zero; one being copied may, and then does not parse), and a last line without its
/// newline (being copied, or cut by a crash) is visited too.
fn event_lines_backwards(
    file: &std::fs::File,
    limit: Option<usize>,
    chunk: usize,
    mut visit: impl FnMut(usize, &[u8]) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let chunk = chunk.max(1);
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut end = text_end(file, len, chunk)?;
    if let Some(limit) = limit {
        if limit == 0 {
            return Ok(());
        }
        // The lines that begin before the limit end with the line holding byte `limit - 1`.
        if limit <= end {
            end = line_end_from(file, limit - 1, end, chunk)?;
        }
    }
    // Backwards from `end`: `tail` holds the bytes from `start` to the last line visited,
    // whose first line may have begun before `start`.
    let mut start = end;
    let mut tail: Vec<u8> = Vec::new();
    let mut lines = Vec::new();
    while start > 0 {
        let from = start.saturating_sub(chunk);
        let mut data = read_range(file, from, start)?;
        if data.len() != start - from {
            // Cut (by retention) while we read: nothing trustworthy before here.
            return Ok(());
        }
        data.extend_from_slice(&tail);
        start = from;
        // The lines wholly inside `data`: those after its first newline, or all at offset 0.
        let complete_from = match data.iter().position(|&b| b == b'\n') {
            _ if start == 0 => 0,
            Some(i) => i + 1,
            None => {
                // One line longer than what was read so far: read further back.
                tail = data;
                continue;
            }
        };
        let body = data.get(complete_from..).unwrap_or_default();
        lines.clear();
        let mut line_start = 0;
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' {
                lines.push((line_start, i));
                line_start = i + 1;
            }
        }
        if line_start < body.len() {
            lines.push((line_start, body.len()));
        }
        for &(from_in_body, to_in_body) in lines.iter().rev() {
            let line = body.get(from_in_body..to_in_body).unwrap_or_default();
            if line.starts_with(format::DIGEST_PREFIX) {
                continue;
            }
            if visit(start + complete_from + from_in_body, line).is_break() {
                return Ok(());
            }
        }
        data.truncate(complete_from);
        tail = data;
    }
    Ok(())
}

/// Bytes `from..to` of `file` (fewer if the file is shorter now).
fn read_range(file: &std::fs::File, from: usize, to: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0; to.saturating_sub(from)];
    let mut filled = 0;
    while filled < buffer.len() {
        let at = u64::try_from(from.saturating_add(filled)).unwrap_or(u64::MAX);
        let n = file.read_at(buffer.get_mut(filled..).unwrap_or_default(), at)?;
        if n == 0 {
            buffer.truncate(filled);
            break;
        }
        filled += n;
    }
    Ok(buffer)
}

/// Where the text of a `len`-byte segment ends: after its last byte that is not zero.
fn text_end(file: &std::fs::File, len: usize, chunk: usize) -> std::io::Result<usize> {
    let mut end = len;
    while end > 0 {
        let from = end.saturating_sub(chunk);
        let bytes = read_range(file, from, end)?;
        if let Some(i) = bytes.iter().rposition(|&b| b != 0) {
            return Ok(from + i + 1);
        }
        end = from;
    }
    Ok(0)
}

/// The end (after its newline) of the line holding byte `at`, or `end` if it has none before.
fn line_end_from(
    file: &std::fs::File,
    mut at: usize,
    end: usize,
    chunk: usize,
) -> std::io::Result<usize> {
    while at < end {
        let to = at.saturating_add(chunk).min(end);
        let bytes = read_range(file, at, to)?;
        if let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            return Ok(at + i + 1);
        }
        if bytes.len() < to - at {
            break;
        }
        at = to;
    }
    Ok(end)
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

    /// What `event_lines_backwards` must visit: the whole file read at once, its lines from
    /// [`format::lines`] that begin before `limit`, events only, newest first.
    fn read_whole(text: &[u8], limit: Option<usize>) -> Vec<(usize, Vec<u8>)> {
        let mut lines: Vec<_> = format::lines(text)
            .filter_map(|(offset, line)| match line {
                Line::Event(bytes) => Some((offset, bytes.to_vec())),
                Line::Digest(_) => None,
            })
            .filter(|(offset, _)| limit.is_none_or(|l| *offset < l))
            .collect();
        lines.reverse();
        lines
    }

    #[test]
    fn reading_backwards_in_chunks_visits_what_reading_the_whole_segment_does() {
        // Segments of events of many lengths (some longer than a chunk), digest lines, with
        // or without a last line being copied and the zeros grown ahead; every chunk size
        // from a byte up, every limit a cursor could carry and a few no cursor would.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let dir = tempfile::tempdir().unwrap();
        for case in 0..60 {
            let mut text = Vec::new();
            for n in 0..next(12) {
                if next(4) == 0 {
                    text.extend_from_slice(format::DIGEST_PREFIX);
                    text.extend_from_slice(format!("{n}}}\n").as_bytes());
                } else {
                    let body = "x".repeat(usize::try_from(next(40)).unwrap());
                    text.extend_from_slice(format!("{{\"e\":{n},\"b\":\"{body}\"}}\n").as_bytes());
                }
            }
            if next(3) == 0 {
                text.extend_from_slice(b"{\"torn\":");
            }
            let zeros = usize::try_from(next(3) * next(50)).unwrap();
            let path = dir.path().join(format!("{case}.jsonl"));
            let mut on_disk = text.clone();
            on_disk.resize(text.len() + zeros, 0);
            std::fs::write(&path, &on_disk).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let mut limits: Vec<Option<usize>> = vec![None, Some(0), Some(text.len() + 7)];
            limits.extend(format::lines(&text).map(|(offset, _)| Some(offset + 1)));
            limits.extend(
                (0..3).map(|_| Some(usize::try_from(next(text.len() as u64 + 1)).unwrap())),
            );
            for limit in limits {
                let expected = read_whole(&text, limit);
                for chunk in [1, 2, 3, 5, 16, 61, 4096] {
                    let mut got = Vec::new();
                    event_lines_backwards(&file, limit, chunk, |offset, line| {
                        got.push((offset, line.to_vec()));
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                    assert_eq!(got, expected, "case {case}, limit {limit:?}, chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn a_lookup_stops_reading_when_its_visitor_has_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, b"{\"e\":1}\n{\"e\":2}\n{\"e\":3}\n").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut seen = Vec::new();
        event_lines_backwards(&file, None, 4, |offset, _| {
            seen.push(offset);
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, vec![16, 8]);
    }

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
