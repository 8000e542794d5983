//! Encryption context: the string map a caller binds to a ciphertext, and its canonical bytes.
//!
//! The map is bound as AES-GCM additional authenticated data, so the exact same map (in any key
//! order) is needed to decrypt. The canonical form sorts by key and length-prefixes every string,
//! so no two different maps share an encoding.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// An encryption context, ordered by key so its encoding is canonical. Owns its map, or
/// borrows the request's (the hot path copies nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext<'a>(Cow<'a, BTreeMap<String, String>>);

impl EncryptionContext<'static> {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self(Cow::Owned(map))
    }
}

impl<'a> EncryptionContext<'a> {
    /// A view of `map`.
    pub fn borrowed(map: &'a BTreeMap<String, String>) -> Self {
        Self(Cow::Borrowed(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Canonical bytes: `u32 count`, then for each entry in key order `u32 len, key, u32 len, value`
    /// (big-endian lengths).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.canonical_len());
        self.write_canonical(&mut out);
        out
    }

    /// The length of [`Self::canonical_bytes`].
    pub fn canonical_len(&self) -> usize {
        4 + self
            .0
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>()
    }

    /// Appends the canonical bytes to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        self.emit_canonical(|bytes| out.extend_from_slice(bytes));
    }

    /// Hands the canonical bytes to `emit`, piece by piece.
    fn emit_canonical(&self, mut emit: impl FnMut(&[u8])) {
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        // Request bodies are bounded far below 4 GiB, so a length never saturates in practice;
        // saturating keeps the function total anyway.
        emit(&len(self.0.len()));
        for (k, v) in self.0.iter() {
            emit(&len(k.len()));
            emit(k.as_bytes());
            emit(&len(v.len()));
            emit(v.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext<'static> {
        EncryptionContext::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn order_of_insertion_does_not_matter() {
        assert_eq!(
            ctx(&[("a", "1"), ("b", "2")]).canonical_bytes(),
            ctx(&[("b", "2"), ("a", "1")]).canonical_bytes()
        );
    }

    #[test]
    fn boundaries_between_strings_are_unambiguous() {
        assert_ne!(
            ctx(&[("ab", "c")]).canonical_bytes(),
            ctx(&[("a", "bc")]).canonical_bytes()
        );
        assert_ne!(
            ctx(&[]).canonical_bytes(),
            ctx(&[("", "")]).canonical_bytes()
        );
    }
}
