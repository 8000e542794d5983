//! Step one of the pipeline: the policy document exactly as JSON spells it.
//!
//! These serde types accept every shape the grammar allows (a string or a list,
//! a statement object or a list of them, scalar condition values of any JSON
//! type) and reject unknown elements and duplicate keys at every level.
//! `serde_json::Value` would silently keep the last of two duplicate keys, which
//! is why maps here go through [`UniqueMap`]; derived structs get the same check
//! from serde (`duplicate field`). Nothing is validated beyond JSON shape: that
//! is step two, in `parse.rs`. The same types serialize the canonical form.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A whole policy document.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "Statement", default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<Statements>,
}

/// One statement; every element optional here, required-ness is checked later.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect", default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<RawPrincipal>,
    #[serde(
        rename = "NotPrincipal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_principal: Option<RawPrincipal>,
    #[serde(rename = "Action", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Strings>,
    #[serde(rename = "NotAction", default, skip_serializing_if = "Option::is_none")]
    pub not_action: Option<Strings>,
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Strings>,
    #[serde(
        rename = "NotResource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_resource: Option<Strings>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<UniqueMap<UniqueMap<RawValues>>>,
}

/// `Principal` / `NotPrincipal`: the string `"*"` or a map `{"AWS": ..., "Service": ...}`.
#[derive(Debug, Clone)]
pub(crate) enum RawPrincipal {
    /// A bare string; only `"*"` is valid, checked in step two.
    Bare(String),
    /// Principal type → one or more values.
    Map(UniqueMap<Strings>),
}

/// `Statement`: one object or a list of them. Serialized as a list always.
#[derive(Debug, Clone, Default)]
pub(crate) struct Statements(pub Vec<RawStatement>);

/// A string or a list of strings. A one-element list serializes as a bare string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Strings(pub Vec<String>);

/// A JSON object whose keys must be unique (exact spelling), in document order.
#[derive(Debug, Clone)]
pub(crate) struct UniqueMap<V>(pub Vec<(String, V)>);

/// A condition value as written: JSON strings, numbers and booleans are all allowed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawScalar {
    String(String),
    Bool(bool),
    Number(serde_json::Number),
}

/// A derived struct that must come from a JSON object. serde's derived
/// structs also accept a JSON array (fields by position); policies must not.
#[derive(Debug, Clone)]
pub(crate) struct ObjectOnly<T>(pub T);

/// A condition's values: one scalar or a list of scalars.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawValues(pub Vec<RawScalar>);

// ---------------------------------------------------------------------------
// Deserialization. Hand-written visitors instead of `#[serde(untagged)]` so that
// errors name what was expected and keep serde_json's line/column.

impl<'de> Deserialize<'de> for Statements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Statements;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a statement object or a list of statement objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Statements, A::Error> {
                let one = RawStatement::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Statements(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Statements, A::Error> {
                let mut all = Vec::new();
                while let Some(ObjectOnly(s)) = seq.next_element::<ObjectOnly<RawStatement>>()? {
                    all.push(s);
                }
                Ok(Statements(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOnly<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(Strings(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawPrincipal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPrincipal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\" or a map of principal types to principals")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPrincipal, E> {
                Ok(RawPrincipal::Bare(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPrincipal, A::Error> {
                let m =
                    UniqueMap::<Strings>::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawPrincipal::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for UniqueMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = UniqueMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap<T>, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(UniqueMap(entries))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or a list of them")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValues, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<RawScalar>()? {
                    all.push(s);
                }
                Ok(RawValues(all))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValues, E> {
                Ok(RawValues(vec![RawScalar::String(v.to_owned())]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValues, E> {
                Ok(RawValues(vec![RawScalar::Bool(v)]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValues, E> {
                Ok(RawValues(vec![RawScalar::Number(v.into())]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValues, E> {
                Ok(RawValues(vec![RawScalar::Number(v.into())]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValues, E> {
                float(v).map(|n| RawValues(vec![RawScalar::Number(n)]))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar::String(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawScalar, E> {
                Ok(RawScalar::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawScalar, E> {
                float(v).map(RawScalar::Number)
            }
        }
        d.deserialize_any(V)
    }
}

fn float<E: de::Error>(v: f64) -> Result<serde_json::Number, E> {
    serde_json::Number::from_f64(v).ok_or_else(|| E::custom("number out of range"))
}

// ---------------------------------------------------------------------------
// Serialization of the canonical form.

impl Serialize for Statements {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Serialize for Strings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            all => {
                let mut seq = s.serialize_seq(Some(all.len()))?;
                for v in all {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

impl Serialize for RawPrincipal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bare(v) => s.serialize_str(v),
            Self::Map(m) => m.serialize(s),
        }
    }
}

impl<T: Serialize> Serialize for UniqueMap<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for RawScalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(v) => s.serialize_str(v),
            Self::Bool(v) => s.serialize_bool(*v),
            Self::Number(v) => v.serialize(s),
        }
    }
}

impl Serialize for RawValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            all => {
                let mut seq = s.serialize_seq(Some(all.len()))?;
                for v in all {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}
