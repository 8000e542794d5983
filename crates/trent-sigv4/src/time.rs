//! Conversions between Unix seconds and SigV4's `yyyymmddThhmmssZ` timestamps.
//!
//! Hand-written (Howard Hinnant's days-from-civil algorithm, proleptic Gregorian, UTC) so the
//! crate needs no date library for two tiny conversions.

const SECS_PER_DAY: i64 = 86_400;

/// Formats Unix seconds as SigV4's ISO-8601 basic format, e.g. `20261123T010000Z`.
///
/// Years outside 0000–9999 produce a string that [`parse_amz_date`] (and AWS) would reject;
/// a clock that far off fails verification either way.
pub fn format_amz_date(unix: i64) -> String {
    let days = unix.div_euclid(SECS_PER_DAY);
    let secs_of_day = unix.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Parses a strict `yyyymmddThhmmssZ` timestamp into Unix seconds; `None` if it is not exactly
/// that shape or not a real calendar date and time (no leap seconds).
pub(crate) fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 4, 6)?;
    let day = digits(bytes, 6, 8)?;
    let hour = digits(bytes, 9, 11)?;
    let minute = digits(bytes, 11, 13)?;
    let second = digits(bytes, 13, 15)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * SECS_PER_DAY + hour * 3600 + minute * 60 + second)
}

/// The decimal number in `bytes[start..end]`, which must be all ASCII digits.
fn digits(bytes: &[u8], start: usize, end: usize) -> Option<i64> {
    let slice = bytes.get(start..end)?;
    slice.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March so the leap day is the last day of the "year".
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month 1–12, day 1–31)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        // 2026-11-23 01:00:00 UTC.
        assert_eq!(format_amz_date(1_795_395_600), "20261123T010000Z");
    }

    #[test]
    fn parse_inverts_format_across_four_centuries() {
        // Step by an odd number of seconds so times of day and month ends vary.
        let mut t = -2_208_988_800; // 1900-01-01
        while t < 10_413_792_000 {
            // 2300-01-01
            let s = format_amz_date(t);
            assert_eq!(parse_amz_date(&s), Some(t), "{s}");
            t += 86_400 * 13 + 3_607;
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "20150830",
            "20150830T123600",
            "20150830T123600z",
            "2015-08-30T12:36:00Z",
            "20150830 123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150229T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "20150800T123600Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "20150830T123600Z ",
            "２0150830T123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
        assert!(parse_amz_date("20160229T000000Z").is_some());
        assert!(parse_amz_date("20000229T235959Z").is_some());
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let _ = format_amz_date(i64::MIN);
        let _ = format_amz_date(i64::MAX);
    }
}
