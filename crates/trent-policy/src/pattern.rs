//! Wildcard patterns (`*` any run, `?` exactly one character) compiled once at
//! parse time, and ARN patterns matched per colon-separated segment.
//!
//! The same matcher serves `Action`, `Resource`, `StringLike` and `ArnLike`.
//! Case-insensitive users (actions) lower-case both the pattern at compile
//! time and the input once per request, so matching itself is always exact.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal character (also used for escaped `${*}` / `${?}`).
    Char(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, including none.
    Star,
}

/// Turn pattern text into tokens, `*` and `?` being wildcards.
pub(crate) fn tokenize(pattern: &str, out: &mut Vec<Tok>) {
    out.extend(pattern.chars().map(|c| match c {
        '*' => Tok::Star,
        '?' => Tok::One,
        c => Tok::Char(c),
    }));
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// The whole pattern is `*` (or only stars): matches everything.
    Any,
    /// No wildcard at all: plain string equality.
    Exact(String),
    /// General case.
    Glob(Vec<Tok>),
}

impl Pattern {
    /// Compile pattern text with `*`/`?` wildcards.
    pub(crate) fn new(pattern: &str) -> Self {
        let mut toks = Vec::with_capacity(pattern.len());
        tokenize(pattern, &mut toks);
        Self::from_tokens(toks)
    }

    /// Compile already tokenized text (used after policy-variable substitution).
    pub(crate) fn from_tokens(toks: Vec<Tok>) -> Self {
        if !toks.is_empty() && toks.iter().all(|t| *t == Tok::Star) {
            return Self::Any;
        }
        if toks.iter().all(|t| matches!(t, Tok::Char(_))) {
            let s = toks
                .iter()
                .filter_map(|t| match t {
                    Tok::Char(c) => Some(*c),
                    Tok::One | Tok::Star => None,
                })
                .collect();
            return Self::Exact(s);
        }
        Self::Glob(toks)
    }

    /// Does `input` match the whole pattern?
    pub(crate) fn matches(&self, input: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == input,
            Self::Glob(toks) => glob(toks, input),
        }
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice,
/// O(n·m) worst case, no recursion and no allocation.
pub(crate) fn glob(pattern: &[Tok], input: &str) -> bool {
    let mut pi = 0usize;
    let mut si = 0usize;
    // Position of the last `*` seen and the input position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    loop {
        let ch = input.get(si..).and_then(|rest| rest.chars().next());
        match (pattern.get(pi), ch) {
            (Some(Tok::Star), _) => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            (Some(Tok::One), Some(c)) => {
                pi += 1;
                si += c.len_utf8();
                continue;
            }
            (Some(Tok::Char(p)), Some(c)) if *p == c => {
                pi += 1;
                si += c.len_utf8();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        // Mismatch: let the last star absorb one more character and retry.
        let Some((star_pi, star_si)) = star else {
            return false;
        };
        let Some(c) = input.get(star_si..).and_then(|rest| rest.chars().next()) else {
            return false;
        };
        let next = star_si + c.len_utf8();
        star = Some((star_pi, next));
        pi = star_pi + 1;
        si = next;
    }
}

/// Number of colon-separated parts of an ARN: `arn:partition:service:region:account:resource`.
pub(crate) const ARN_PARTS: usize = 6;

/// An ARN pattern: wildcards stay within their segment, except that the last
/// (resource) segment may itself contain `:` and `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// Fewer than six segments (e.g. `*`): matched against the whole string.
    Whole(Pattern),
    /// Exactly six segment patterns.
    Segments(Vec<Pattern>),
}

impl ArnPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let parts: Vec<&str> = pattern.splitn(ARN_PARTS, ':').collect();
        if parts.len() == ARN_PARTS {
            Self::Segments(parts.into_iter().map(Pattern::new).collect())
        } else {
            Self::Whole(Pattern::new(pattern))
        }
    }

    /// Compile from tokens (after variable substitution): split at the first
    /// five literal colons.
    pub(crate) fn from_tokens(toks: Vec<Tok>) -> Self {
        let colons = toks.iter().filter(|t| **t == Tok::Char(':')).count();
        if colons + 1 < ARN_PARTS {
            return Self::Whole(Pattern::from_tokens(toks));
        }
        let mut segments = Vec::with_capacity(ARN_PARTS);
        let mut current = Vec::new();
        for t in toks {
            if t == Tok::Char(':') && segments.len() < ARN_PARTS - 1 {
                segments.push(Pattern::from_tokens(std::mem::take(&mut current)));
            } else {
                current.push(t);
            }
        }
        segments.push(Pattern::from_tokens(current));
        Self::Segments(segments)
    }

    pub(crate) fn matches(&self, input: &str) -> bool {
        match self {
            Self::Whole(p) => p.matches(input),
            Self::Segments(segs) => {
                let mut parts = input.splitn(ARN_PARTS, ':');
                let all = segs
                    .iter()
                    .all(|seg| parts.next().is_some_and(|part| seg.matches(part)));
                // A request value with fewer than six parts is not an ARN.
                all && parts.next().is_none()
            }
        }
    }
}

#[cfg(test)]
mod tests;
