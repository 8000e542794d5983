//! The admin CLI: `trent account list`, `trent account create`, `trent credentials rotate`.
//!
//! Each talks to the `trent serve` running on the data directory, over its loopback operator
//! listener (`trent-server`'s `operator.rs`): the address is in `<data_dir>/admin.addr`, the
//! token in `<data_dir>/admin.token`, both written by `trent serve` at start. The server applies
//! the change through its domain, so its in-memory credentials and accounts stay coherent (a
//! rotated key stops working with the next request). Without a running server these commands
//! stop and say to start it: writing the database behind a server's back would not be seen by
//! it, and two writers of one data directory are not safe.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The profile of the default account in `<data_dir>/credentials`.
pub const DEFAULT_PROFILE: &str = "trent";

/// Where `trent serve` writes the operator listener's address.
pub fn admin_addr_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.addr")
}

/// Calls the operator endpoint `path` of the server running on `data_dir`.
async fn call(
    data_dir: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let start_first = |why: String| {
        format!(
            "{why}: start `trent serve --data-dir {}` first (these commands act through the running server)",
            data_dir.display()
        )
    };
    let addr_file = admin_addr_file(data_dir);
    let addr = match std::fs::read_to_string(&addr_file) {
        Ok(a) => a.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(start_first(format!(
                "no Trent server is running on data directory {} (no {})",
                data_dir.display(),
                addr_file.display()
            )));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", addr_file.display())),
    };
    let token_file = data_dir.join("admin.token");
    let token = Zeroizing::new(
        std::fs::read_to_string(&token_file)
            .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?
            .trim()
            .to_string(),
    );
    let stream = tokio::net::TcpStream::connect(&addr).await.map_err(|e| {
        start_first(format!(
            "no Trent server is running on data directory {} ({addr} from {}: {e})",
            data_dir.display(),
            addr_file.display()
        ))
    })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot talk to the server at {addr}: {e}"))?;
    tokio::spawn(connection);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &addr)
        .header("content-type", "application/json")
        .header(trent_server::admin::TOKEN_HEADER, token.as_str())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the server at {addr} did not answer: {e}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the server at {addr} did not answer: {e}"))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"Message": String::from_utf8_lossy(&bytes).to_string()}));
    if status.is_success() {
        Ok(value)
    } else if status == http::StatusCode::FORBIDDEN {
        Err(format!(
            "the server at {addr} refused the token in {} ({}): is the server on that address \
             the one running on this data directory?",
            token_file.display(),
            at(&value, "Message").as_str().unwrap_or_default()
        ))
    } else {
        Err(at(&value, "Message")
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {status}")))
    }
}

/// `v[field]`, or null.
fn at<'a>(v: &'a Value, field: &str) -> &'a Value {
    v.get(field).unwrap_or(&Value::Null)
}

fn text(v: &Value, field: &str) -> Result<String, String> {
    at(v, field)
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the server's answer has no {field}"))
}

/// `trent account list`.
pub async fn account_list(data_dir: &Path) -> Result<(), String> {
    let answer = call(data_dir, "GET", trent_server::ACCOUNTS_PATH, None).await?;
    let default_key = default_access_key_id(data_dir);
    println!("{:<14}{:<22}ROOT ACCESS KEYS", "ACCOUNT", "CREATED (UTC)");
    for a in at(&answer, "Accounts").as_array().into_iter().flatten() {
        let keys: Vec<&str> = at(a, "RootAccessKeyIds")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut notes = Vec::new();
        if default_key.as_deref().is_some_and(|d| keys.contains(&d)) {
            notes.push(format!(
                "default: profile {DEFAULT_PROFILE} in {}",
                data_dir.join("credentials").display()
            ));
        }
        if at(a, "Declared").as_bool() == Some(true) {
            notes.push("declared in the config".to_string());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        println!(
            "{:<14}{:<22}{}{notes}",
            at(a, "AccountId").as_str().unwrap_or_default(),
            utc(at(a, "CreatedAt").as_i64().unwrap_or_default()),
            if keys.is_empty() {
                "-".to_string()
            } else {
                keys.join(",")
            },
        );
    }
    Ok(())
}

/// `trent account create`: prints the new account's root credentials, or writes them as
/// `profile` into `credentials_file` (which must not have that profile yet).
pub async fn account_create(
    data_dir: &Path,
    id: Option<&str>,
    profile: Option<&str>,
    credentials_file: Option<&Path>,
) -> Result<(), String> {
    if let Some(id) = id {
        trent_core::operator::check_account_id(id).map_err(|e| e.to_string())?;
    }
    let default_file = data_dir.join("credentials");
    let file = credentials_file.unwrap_or(&default_file);
    if let Some(profile) = profile {
        check_profile_name(profile)?;
        // Refuse before creating anything.
        if profile_section(&read_or_empty(file)?, profile).is_some() {
            return Err(format!(
                "profile {profile} exists already in {}: choose another --profile",
                file.display()
            ));
        }
    } else if credentials_file.is_some() {
        return Err("--credentials-file needs --profile".into());
    }
    let body = json!({ "AccountId": id });
    let answer = call(data_dir, "POST", trent_server::ACCOUNTS_PATH, Some(body)).await?;
    let account = text(&answer, "AccountId")?;
    let key_id = text(&answer, "AccessKeyId")?;
    let secret = Zeroizing::new(text(&answer, "SecretAccessKey")?);
    match profile {
        Some(profile) => {
            if let Err(e) = set_profile(file, profile, &key_id, &secret, false) {
                // The account exists now: its secret must not be lost with the file.
                println!(
                    "Created account {account}\naws_access_key_id = {key_id}\naws_secret_access_key = {}",
                    secret.as_str()
                );
                return Err(e);
            }
            println!(
                "Created account {account}; its root credentials ({key_id}) are profile {profile} in {}",
                file.display()
            );
        }
        None => println!(
            "Created account {account}\naws_access_key_id = {key_id}\naws_secret_access_key = {}",
            secret.as_str()
        ),
    }
    Ok(())
}

/// `trent credentials rotate`: a new root access key for `account` (default: the account of
/// profile `trent` in `<data_dir>/credentials`); the old ones are deleted. Every profile of
/// `<data_dir>/credentials` that held an old key is rewritten with the new one; when none did,
/// the new secret is printed.
pub async fn credentials_rotate(data_dir: &Path, account: Option<&str>) -> Result<(), String> {
    let credentials_file = data_dir.join("credentials");
    let default_key = default_access_key_id(data_dir);
    let listed = call(data_dir, "GET", trent_server::ACCOUNTS_PATH, None).await?;
    let accounts = at(&listed, "Accounts")
        .as_array()
        .cloned()
        .unwrap_or_default();
    let holds_default = |a: &Value| {
        default_key.as_deref().is_some_and(|d| {
            at(a, "RootAccessKeyIds")
                .as_array()
                .is_some_and(|ks| ks.iter().any(|k| k.as_str() == Some(d)))
        })
    };
    let account = match account {
        Some(a) => {
            trent_core::operator::check_account_id(a).map_err(|e| e.to_string())?;
            a.to_string()
        }
        None => accounts
            .iter()
            .find(|a| holds_default(a))
            .and_then(|a| at(a, "AccountId").as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "no default account ({} names no account's root key): name one with --account",
                    credentials_file.display()
                )
            })?,
    };
    let answer = call(
        data_dir,
        "POST",
        trent_server::ROTATE_PATH,
        Some(json!({ "AccountId": account })),
    )
    .await?;
    let key_id = text(&answer, "AccessKeyId")?;
    let secret = Zeroizing::new(text(&answer, "SecretAccessKey")?);
    let deleted: Vec<&str> = at(&answer, "DeletedAccessKeyIds")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // Every profile of <data_dir>/credentials that held a deleted key gets the new one.
    let text = read_or_empty(&credentials_file)?;
    let profiles: Vec<String> = deleted
        .iter()
        .flat_map(|k| profiles_with_key(&text, k))
        .collect();
    let deleted = if deleted.is_empty() {
        "none".to_string()
    } else {
        deleted.join(", ")
    };
    if !profiles.is_empty() {
        for profile in &profiles {
            if let Err(e) = set_profile(&credentials_file, profile, &key_id, &secret, true) {
                println!(
                    "Rotated the root access key of account {account} (deleted: {deleted})\naws_access_key_id = {key_id}\naws_secret_access_key = {}",
                    secret.as_str()
                );
                return Err(e);
            }
        }
        println!(
            "Rotated the root access key of account {account}: new key {key_id} in profile {} of {} (deleted: {deleted})",
            profiles.join(", "),
            credentials_file.display()
        );
    } else {
        println!(
            "Rotated the root access key of account {account} (deleted: {deleted})\naws_access_key_id = {key_id}\naws_secret_access_key = {}",
            secret.as_str()
        );
    }
    Ok(())
}

/// The access key id of profile `trent` in `<data_dir>/credentials`, if any.
fn default_access_key_id(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("credentials")).ok()?;
    profile_key_id(&text, DEFAULT_PROFILE)
}

/// The `aws_access_key_id` of `[profile]` in a shared-credentials text.
fn profile_key_id(text: &str, profile: &str) -> Option<String> {
    let (start, end) = profile_section(text, profile)?;
    text.lines()
        .skip(start + 1)
        .take(end - start - 1)
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "aws_access_key_id").then(|| v.trim().to_string())
        })
}

/// The profiles of a shared-credentials text whose access key id is `key_id`.
fn profiles_with_key(text: &str, key_id: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
        .filter(|p| profile_key_id(text, p).as_deref() == Some(key_id))
        .map(str::to_string)
        .collect()
}

fn check_profile_name(profile: &str) -> Result<(), String> {
    if !profile.is_empty()
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "profile name `{profile}` must be letters, digits, `-`, `_` or `.`"
        ))
    }
}

fn read_or_empty(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The lines `[start, end)` of `[profile]`'s section in a shared-credentials text: its header
/// line and the lines up to the next header.
fn profile_section(text: &str, profile: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("[{profile}]"))?;
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| l.trim_start().starts_with('['))
        .map_or(lines.len(), |(i, _)| i);
    Some((start, end))
}

/// Writes `[profile]` with the key into the shared-credentials file `path` (0600), through a
/// temporary file and a rename; other profiles are kept as they are. An existing section is
/// replaced when `replace`, else refused.
fn set_profile(
    path: &Path,
    profile: &str,
    access_key_id: &str,
    secret: &str,
    replace: bool,
) -> Result<(), String> {
    let current = read_or_empty(path)?;
    let section = format!(
        "[{profile}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
    );
    let mut out = Zeroizing::new(String::new());
    match profile_section(&current, profile) {
        Some(_) if !replace => {
            return Err(format!(
                "profile {profile} exists already in {}",
                path.display()
            ));
        }
        Some((start, end)) => {
            for (i, line) in current.lines().enumerate() {
                if i == start {
                    out.push_str(&section);
                } else if !(start..end).contains(&i) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        None => {
            out.push_str(&current);
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&section);
        }
    }
    let mut staging = path.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    f.write_all(out.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", staging.display()))?;
    std::fs::rename(&staging, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

/// `YYYY-MM-DD HH:MM:SS` of epoch seconds (UTC).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `trent access KEY [--policy FILE]`: who can use the key, as the operator endpoint analyses
/// it; with a policy file, what setting that key policy would change.
pub async fn key_access(
    data_dir: &Path,
    key: &str,
    as_json: bool,
    policy: Option<&Path>,
) -> Result<(), String> {
    let body = match policy {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            json!({ "KeyId": key, "Policy": text })
        }
        None => json!({ "KeyId": key }),
    };
    let answer = call(data_dir, "POST", trent_server::KEY_ACCESS_PATH, Some(body)).await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if policy.is_some() {
        print_policy_change(&answer)?;
        return Ok(());
    }
    print_key_access(&answer)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn print_policy_change(answer: &Value) -> Result<(), String> {
    println!("{} with the proposed key policy:", text(answer, "KeyArn")?);
    let changes = at(answer, "Changes")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if changes.is_empty() {
        println!("  no principal gains or loses an operation");
    }
    for c in &changes {
        println!(
            "\n{} ({})",
            at(c, "Principal").as_str().unwrap_or_default(),
            at(c, "Kind").as_str().unwrap_or_default()
        );
        for (label, field) in [("gains", "Gained"), ("loses", "Lost")] {
            let ops = strings(at(c, field));
            if !ops.is_empty() {
                println!("  {label}: {}", ops.join(", "));
            }
        }
        for g in at(c, "GainedConditional").as_array().into_iter().flatten() {
            println!(
                "  gains {} under conditions on {}",
                at(g, "Action").as_str().unwrap_or_default(),
                strings(at(g, "ConditionKeys")).join(", ")
            );
        }
        let lost = strings(at(c, "LostConditional"));
        if !lost.is_empty() {
            println!("  loses (conditional): {}", lost.join(", "));
        }
    }
    for (label, field) in [
        ("new findings", "NewFindings"),
        ("resolved findings", "ResolvedFindings"),
    ] {
        let list = at(answer, field).as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            println!("\n{label}:");
            for f in &list {
                println!(
                    "  [{}] {}",
                    at(f, "Severity").as_str().unwrap_or_default(),
                    at(f, "Message").as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn print_key_access(answer: &Value) -> Result<(), String> {
    let answer = answer.clone();
    println!("{}", text(&answer, "KeyArn")?);
    for p in at(&answer, "Principals").as_array().into_iter().flatten() {
        println!(
            "\n{} ({})",
            at(p, "Principal").as_str().unwrap_or_default(),
            at(p, "Kind").as_str().unwrap_or_default()
        );
        let allowed = strings(at(p, "Allowed"));
        if !allowed.is_empty() {
            println!("  allowed: {}", allowed.join(", "));
            let keys = strings(at(p, "AllowedConditionKeys"));
            if !keys.is_empty() {
                println!("    (statements read: {})", keys.join(", "));
            }
        }
        for c in at(p, "Conditional").as_array().into_iter().flatten() {
            println!(
                "  {} only under conditions on {}",
                at(c, "Action").as_str().unwrap_or_default(),
                strings(at(c, "ConditionKeys")).join(", ")
            );
        }
    }
    let grants = at(&answer, "Grants")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !grants.is_empty() {
        println!("\ngrants:");
        for g in &grants {
            println!(
                "  {} -> {}: {}{}",
                at(g, "GrantId").as_str().unwrap_or_default(),
                at(g, "Grantee").as_str().unwrap_or_default(),
                strings(at(g, "Operations")).join(", "),
                if at(g, "Constrained").as_bool() == Some(true) {
                    " (with encryption-context constraints)"
                } else {
                    ""
                }
            );
        }
    }
    let findings = at(&answer, "Findings")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !findings.is_empty() {
        println!("\nfindings:");
        for f in &findings {
            println!(
                "  [{}] {}",
                at(f, "Severity").as_str().unwrap_or_default(),
                at(f, "Message").as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59");
    }

    #[test]
    fn profiles_are_added_and_replaced_keeping_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[trent]\naws_access_key_id = OLD\naws_secret_access_key = old\n[other]\nx = 1\n",
        )
        .unwrap();
        set_profile(&path, "dev", "K1", "s1", false).unwrap();
        assert!(set_profile(&path, "dev", "K2", "s2", false).is_err());
        set_profile(&path, "trent", "NEW", "new", true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "[trent]\naws_access_key_id = NEW\naws_secret_access_key = new\n[other]\nx = 1\n\
             [dev]\naws_access_key_id = K1\naws_secret_access_key = s1\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
