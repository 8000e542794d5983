//! Instants for `Date*` operators: W3C ISO 8601 profiles or epoch seconds,
//! freely mixed between policy and request (policy-semantics §1.3).

/// Seconds and nanoseconds since the Unix epoch; ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant {
    secs: i64,
    nanos: u32,
}

impl Instant {
    /// Parse epoch seconds (`1546257599`, `1546257599.5`) or an ISO 8601 date
    /// (`2019`, `2019-12`, `2019-12-31`, `2019-12-31T23:59Z`,
    /// `2019-12-31T23:59:59.999+01:00`). A time without zone is taken as UTC.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let s = text.trim();
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        let looks_epoch = !unsigned.is_empty()
            && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && unsigned.bytes().filter(|b| *b == b'.').count() <= 1;
        // All digits is epoch seconds, even four digits ("2019" is not a year here).
        if looks_epoch {
            return parse_epoch(s);
        }
        parse_iso(s)
    }
}

fn parse_epoch(s: &str) -> Option<Instant> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let nanos = parse_fraction(frac)?;
    if negative {
        // -1.5 s is 2 s before the epoch plus 0.5 s.
        if nanos == 0 {
            Some(Instant {
                secs: secs.checked_neg()?,
                nanos: 0,
            })
        } else {
            Some(Instant {
                secs: secs.checked_neg()?.checked_sub(1)?,
                nanos: 1_000_000_000 - nanos,
            })
        }
    } else {
        Some(Instant { secs, nanos })
    }
}

/// Up to nine fraction digits as nanoseconds; further digits are ignored.
fn parse_fraction(frac: &str) -> Option<u32> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: u32 = 0;
    let mut scale = 100_000_000u32;
    for b in frac.bytes().take(9) {
        nanos += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(nanos)
}

/// A byte cursor: `take` returns `None` past the end instead of panicking.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let d = self.rest.get(..n)?;
        if !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = self.rest.get(n..)?;
        d.parse().ok()
    }
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }
    fn eat_any(&mut self, cs: &[char]) -> Option<char> {
        let c = self.rest.chars().next()?;
        if cs.contains(&c) {
            self.rest = self.rest.get(c.len_utf8()..)?;
            Some(c)
        } else {
            None
        }
    }
    fn take_while_digits(&mut self) -> &'a str {
        let n = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        let (d, r) = self.rest.split_at(n);
        self.rest = r;
        d
    }
}

fn parse_iso(s: &str) -> Option<Instant> {
    let mut c = Cursor { rest: s };
    let year = i64::from(c.digits(4)?);
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut offset_secs: i64 = 0;
    if c.eat('-') {
        month = c.digits(2)?;
        if c.eat('-') {
            day = c.digits(2)?;
            if c.eat_any(&['T', 't']).is_some() {
                hour = c.digits(2)?;
                if !c.eat(':') {
                    return None;
                }
                minute = c.digits(2)?;
                if c.eat(':') {
                    second = c.digits(2)?;
                    if c.eat('.') {
                        let frac = c.take_while_digits();
                        if frac.is_empty() {
                            return None;
                        }
                        nanos = parse_fraction(frac)?;
                    }
                }
                offset_secs = parse_zone(&mut c)?;
            }
        }
    }
    if !c.rest.is_empty() {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some(Instant { secs, nanos })
}

/// `Z`, `±hh:mm`, `±hhmm`, `±hh` or nothing (UTC).
fn parse_zone(c: &mut Cursor<'_>) -> Option<i64> {
    if c.rest.is_empty() || c.eat_any(&['Z', 'z']).is_some() {
        return Some(0);
    }
    let sign = match c.eat_any(&['+', '-'])? {
        '-' => -1,
        _ => 1,
    };
    let h = c.digits(2)?;
    c.eat(':');
    let m = if c.rest.is_empty() { 0 } else { c.digits(2)? };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * i64::from(h * 3600 + m * 60))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
