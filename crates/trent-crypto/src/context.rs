//! Encryption context: the string map a caller binds to a ciphertext, and its canonical bytes.
//!
//! The map is bound as AES-GCM additional authenticated data, so the exact same map (in any key
//! order) is needed to decrypt. The canonical form sorts by key and length-prefixes every string,
//! so no two different maps share an encoding.

use std::collections::BTreeMap;

/// An encryption context, ordered by key so its encoding is canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self(map)
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
        let size = 4 + self
            .0
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        push_len(&mut out, self.0.len());
        for (k, v) in &self.0 {
            push_len(&mut out, k.len());
            out.extend_from_slice(k.as_bytes());
            push_len(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Request bodies are bounded far below 4 GiB, so a length never saturates in practice;
    // saturating keeps the function total anyway.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
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
