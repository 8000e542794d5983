//! Exact decimal numbers for `Numeric*` operators: integers and decimals such
//! as `"1546257599.0"`, compared without floating-point rounding.

use std::cmp::Ordering;

/// A parsed decimal: `0.d1d2d3… × 10^magnitude`, digits without leading or
/// trailing zeros (empty for zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    magnitude: i64,
}

/// Exponents beyond this are rejected rather than risking overflow.
const MAX_EXPONENT: i64 = 1_000_000;

impl Decimal {
    /// Parse `[+-]digits[.digits][(e|E)[+-]digits]`; `None` if unparseable.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let s = text.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, s.get(1..)?),
            Some(b'+') => (false, s.get(1..)?),
            _ => (false, s),
        };
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (s.get(..i)?, parse_exponent(s.get(i + 1..)?)?),
            None => (s, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let leading = all.iter().take_while(|d| **d == 0).count();
        let int_len = i64::try_from(int.len()).ok()?;
        let lead = i64::try_from(leading).ok()?;
        let mut digits: Vec<u8> = all.into_iter().skip(leading).collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Self {
                negative: false,
                digits,
                magnitude: 0,
            });
        }
        Some(Self {
            negative,
            digits,
            magnitude: int_len - lead + exponent,
        })
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // Same leading position: digit strings compare lexicographically
            // because trailing zeros were stripped.
            (false, false) => self
                .magnitude
                .cmp(&other.magnitude)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

fn parse_exponent(s: &str) -> Option<i64> {
    let v: i64 = s.parse().ok()?;
    (v.abs() <= MAX_EXPONENT).then_some(v)
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }
}
