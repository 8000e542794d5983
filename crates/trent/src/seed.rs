//! The seed file's format: TOML (or YAML, by a `.yaml`/`.yml` name) read into a
//! [`trent_core::seed::Seed`], which the domain validates and applies (`trent_core::seed`).
//!
//! ```toml
//! default_account = "111122223333"   # entries without `account` go here (optional)
//!
//! [[account]]                        # created if missing, with this root key (optional)
//! id = "111122223333"
//! root_access_key_id = "AKIASEEDROOT00000001"
//! root_secret_access_key = "seed-root-secret"
//!
//! [[key]]
//! id = "bc436485-5092-42b8-92a3-0aa8b93536dc"
//! description = "dev data key"
//! backing_keys = ["5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9"]
//! aliases = ["alias/dev"]
//!
//! [[key]]
//! id = "0f4e3b9e-8f4c-4f1a-9d55-3c1f2b7a6e01"
//! key_spec = "ECC_NIST_P256"
//! key_usage = "SIGN_VERIFY"
//! # private_key_pem = """-----BEGIN PRIVATE KEY----- …"""   (PKCS#8; generated if absent)
//!
//! [[alias]]
//! name = "alias/dev-signing"
//! target_key_id = "0f4e3b9e-8f4c-4f1a-9d55-3c1f2b7a6e01"
//!
//! [[user]]
//! name = "app"
//! access_keys = [{ access_key_id = "AKIASEEDAPP000000001", secret_access_key = "app-secret" }]
//! [[user.policy]]
//! name = "use-dev-key"
//! document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}'
//! ```
//!
//! `region` (keys, aliases) defaults to the server's region. Policy documents may be JSON text or
//! a table/mapping, which is turned into JSON. Errors name the entry (`key[1] (0f4e…)`) and the
//! field.

use std::path::Path;

use serde::Deserialize;
use trent_core::model::Tag;
use trent_core::seed::{Seed, SeedAccessKey, SeedAccount, SeedAlias, SeedKey, SeedUser};
use zeroize::Zeroizing;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    default_account: Option<String>,
    #[serde(default)]
    account: Vec<AccountEntry>,
    #[serde(default)]
    key: Vec<KeyEntry>,
    #[serde(default)]
    alias: Vec<AliasEntry>,
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    id: String,
    root_access_key_id: Option<String>,
    root_secret_access_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    account: Option<String>,
    region: Option<String>,
    key_spec: Option<String>,
    key_usage: Option<String>,
    description: Option<String>,
    policy: Option<serde_json::Value>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    /// Hex material versions (symmetric, HMAC), oldest first.
    #[serde(default)]
    backing_keys: Vec<String>,
    /// A PKCS#8 PEM private key (asymmetric keys).
    private_key_pem: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasEntry {
    name: String,
    target_key_id: String,
    account: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    account: Option<String>,
    path: Option<String>,
    #[serde(default)]
    access_keys: Vec<AccessKeyEntry>,
    #[serde(default)]
    policy: Vec<PolicyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessKeyEntry {
    access_key_id: String,
    secret_access_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    name: String,
    document: serde_json::Value,
}

/// A JSON document given as text or as a structure.
fn document(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The DER inside a `BEGIN PRIVATE KEY` PEM block.
fn pkcs8_from_pem(pem: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    use base64::Engine;
    let pem = pem.trim();
    if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        return Err(
            "expected a PKCS#8 PEM block (`-----BEGIN PRIVATE KEY-----`); convert others \
                    with `openssl pkcs8 -topk8 -nocrypt`"
                .into(),
        );
    }
    let body: Zeroizing<String> = Zeroizing::new(
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "the PEM block is not valid base64".to_string())
}

/// Reads and converts the seed at `path`; `region` is the server's default region. Nothing in
/// Trent is looked at yet: this checks only what the file alone shows.
pub fn load(path: &Path, region: &str) -> Result<Seed, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read seed {}: {e}", path.display()))?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let file: SeedFile = if yaml {
        serde_norway::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    }
    .map_err(|e| format!("invalid seed {}: {e}", path.display()))?;
    convert(file, region).map_err(|e| format!("invalid seed {}: {e}", path.display()))
}

fn convert(file: SeedFile, region: &str) -> Result<Seed, String> {
    let mut seed = Seed {
        default_account: file.default_account,
        ..Seed::default()
    };
    for (i, a) in file.account.into_iter().enumerate() {
        let entry = format!("account[{i}] ({})", a.id);
        let root_access_key = match (a.root_access_key_id, a.root_secret_access_key) {
            (Some(id), Some(secret)) => Some(SeedAccessKey {
                access_key_id: id,
                secret_access_key: Zeroizing::new(secret),
            }),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "{entry}: root_access_key_id, root_secret_access_key: give both or neither"
                ));
            }
        };
        seed.accounts.push(SeedAccount {
            entry,
            id: a.id,
            root_access_key,
        });
    }
    for (i, k) in file.key.into_iter().enumerate() {
        let entry = format!("key[{i}] ({})", k.id);
        let mut backing_keys = Vec::new();
        for (j, hex_key) in k.backing_keys.iter().enumerate() {
            let bytes = hex::decode(hex_key.trim())
                .map_err(|_| format!("{entry}: backing_keys[{j}]: not hex digits"))?;
            backing_keys.push(Zeroizing::new(bytes));
        }
        if let Some(pem) = &k.private_key_pem {
            if !backing_keys.is_empty() {
                return Err(format!(
                    "{entry}: private_key_pem: give backing_keys (symmetric, HMAC) or private_key_pem (asymmetric), not both"
                ));
            }
            backing_keys
                .push(pkcs8_from_pem(pem).map_err(|e| format!("{entry}: private_key_pem: {e}"))?);
        }
        let key_region = k.region.unwrap_or_else(|| region.to_string());
        for (j, name) in k.aliases.into_iter().enumerate() {
            seed.aliases.push(SeedAlias {
                entry: format!("{entry} aliases[{j}] ({name})"),
                account: k.account.clone(),
                region: key_region.clone(),
                name,
                target_key_id: k.id.clone(),
            });
        }
        seed.keys.push(SeedKey {
            entry,
            account: k.account,
            region: key_region,
            key_id: k.id,
            key_spec: k.key_spec,
            key_usage: k.key_usage,
            description: k.description,
            policy: k.policy.map(document),
            tags: k
                .tags
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
            backing_keys,
        });
    }
    for (i, a) in file.alias.into_iter().enumerate() {
        seed.aliases.push(SeedAlias {
            entry: format!("alias[{i}] ({})", a.name),
            account: a.account,
            region: a.region.unwrap_or_else(|| region.to_string()),
            name: a.name,
            target_key_id: a.target_key_id,
        });
    }
    for (i, u) in file.user.into_iter().enumerate() {
        seed.users.push(SeedUser {
            entry: format!("user[{i}] ({})", u.name),
            account: u.account,
            name: u.name,
            path: u.path,
            policies: u
                .policy
                .into_iter()
                .map(|p| (p.name, document(p.document)))
                .collect(),
            access_keys: u
                .access_keys
                .into_iter()
                .map(|k| SeedAccessKey {
                    access_key_id: k.access_key_id,
                    secret_access_key: Zeroizing::new(k.secret_access_key),
                })
                .collect(),
        });
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Seed, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&path, "eu-west-1")
    }

    #[test]
    fn the_documented_example_parses_in_toml_and_yaml() {
        let toml_text = r#"
default_account = "111122223333"
[[account]]
id = "111122223333"
root_access_key_id = "AKIASEEDROOT00000001"
root_secret_access_key = "s"
[[key]]
id = "bc436485-5092-42b8-92a3-0aa8b93536dc"
backing_keys = ["5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9"]
aliases = ["alias/dev"]
tags = { team = "dev" }
[[user]]
name = "app"
access_keys = [{ access_key_id = "AKIASEEDAPP000000001", secret_access_key = "x" }]
[[user.policy]]
name = "p"
document = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "kms:*", Resource = "*" }] }
"#;
        let yaml_text = r#"
default_account: "111122223333"
account:
  - id: "111122223333"
    root_access_key_id: AKIASEEDROOT00000001
    root_secret_access_key: s
key:
  - id: bc436485-5092-42b8-92a3-0aa8b93536dc
    backing_keys: [5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9]
    aliases: [alias/dev]
    tags: {team: dev}
user:
  - name: app
    access_keys: [{access_key_id: AKIASEEDAPP000000001, secret_access_key: x}]
    policy:
      - name: p
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "kms:*", Resource: "*"}]}
"#;
        for seed in [
            load_text("seed.toml", toml_text).unwrap(),
            load_text("seed.yaml", yaml_text).unwrap(),
        ] {
            assert_eq!(seed.default_account.as_deref(), Some("111122223333"));
            assert_eq!(seed.keys.len(), 1);
            assert_eq!(seed.keys[0].region, "eu-west-1");
            assert_eq!(seed.keys[0].backing_keys[0].len(), 32);
            assert_eq!(seed.aliases[0].name, "alias/dev");
            assert_eq!(seed.aliases[0].target_key_id, seed.keys[0].key_id);
            let doc: serde_json::Value =
                serde_json::from_str(&seed.users[0].policies[0].1).unwrap();
            assert_eq!(doc["Statement"][0]["Action"], "kms:*");
        }
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let e = load_text(
            "s.toml",
            "[[key]]\nid = \"k1\"\n[[key]]\nid = \"k2\"\nbacking_keys = [\"zz\"]\n",
        )
        .err()
        .unwrap();
        assert!(e.contains("key[1] (k2): backing_keys[0]: not hex"), "{e}");
        let e = load_text("s.toml", "[[key]]\nid = \"k\"\nspec = \"x\"\n")
            .err()
            .unwrap();
        assert!(e.contains("unknown field `spec`"), "{e}");
        let e = load_text(
            "s.toml",
            "[[account]]\nid = \"111122223333\"\nroot_access_key_id = \"A\"\n",
        )
        .err()
        .unwrap();
        assert!(e.contains("account[0] (111122223333)"), "{e}");
        let e = load_text(
            "s.toml",
            "[[key]]\nid = \"k\"\nprivate_key_pem = \"-----BEGIN RSA PRIVATE KEY-----\"\n",
        )
        .err()
        .unwrap();
        assert!(
            e.contains("key[0] (k): private_key_pem: expected a PKCS#8"),
            "{e}"
        );
    }
}
