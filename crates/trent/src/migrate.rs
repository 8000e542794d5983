//! Moving up from the embedded store: `trent backup` (an online, consistent copy of
//! `<data_dir>/trent.db`) and `trent migrate --to postgres://…` (every row of it copied into an
//! empty PostgreSQL database, for several nodes).
//!
//! Both read SQLite directly, not through the `Store` trait: they copy rows as stored (wrapped
//! key material, wrapped secrets, tombstones, rotation history, lifecycle dates), so nothing is
//! decrypted and the root key is not needed; the nodes on the copy need the same root key.
//! `migrate` copies every table the PostgreSQL schema has (but the schema's own bookkeeping,
//! the change feed and step claims), column by column by name, so a table a later migration
//! adds to both stores is copied without a change here; a table or column PostgreSQL has and
//! SQLite lacks is refused, as are schemas of different versions.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use crate::config::{DatabaseUrl, Settings};

/// PostgreSQL tables that are not state to copy: the schema version (the target has its own),
/// the change feed (about writes on that database) and step claims (leases of its nodes).
const NOT_COPIED: &[&str] = &["schema_version", "changes", "step_claims"];

/// `trent backup --to FILE`: the SQLite store copied with `VACUUM INTO`, which reads one
/// snapshot (a server writing meanwhile is neither stopped nor seen half-way) and writes a
/// compact file; the copy is checked (`PRAGMA integrity_check`) before success is reported.
pub fn backup(settings: &Settings, to: &Path) -> Result<(), String> {
    if let Some(url) = &settings.database {
        return Err(format!(
            "the store is the PostgreSQL database {}: back it up with PostgreSQL's tools \
             (pg_dump, or the server's base backups); trent backup copies the embedded SQLite \
             store",
            url.shown()
        ));
    }
    let db = settings.data_dir.join("trent.db");
    let source = open_existing(&db)?;
    // The copy holds wrapped secrets: owner-only from the start. VACUUM INTO writes into an
    // empty existing file; one that exists already is refused here, never overwritten.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let result = copy_into(&source, to).and_then(|()| check_copy(to));
    match result {
        Ok(keys) => {
            println!(
                "Backed up {} to {} ({keys} keys). Keep the root key with it (root.key, \
                 root_key_file or $TRENT_ROOT_KEY): the copy is useless without it.",
                db.display(),
                to.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(to);
            Err(e)
        }
    }
}

/// Opens an existing SQLite store (never creating one), waiting out a writer's lock.
fn open_existing(db: &Path) -> Result<rusqlite::Connection, String> {
    if !db.try_exists().unwrap_or(false) {
        return Err(format!(
            "there is no SQLite store at {} (check --data-dir or --config)",
            db.display()
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    Ok(conn)
}

fn copy_into(source: &rusqlite::Connection, to: &Path) -> Result<(), String> {
    let target = to
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", to.display()))?;
    source
        .execute("VACUUM INTO ?1", [target])
        .map_err(|e| format!("cannot copy the store into {}: {e}", to.display()))?;
    // VACUUM INTO does not sync what it wrote.
    std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", to.display()))
}

/// Checks the copy's integrity; returns how many keys it holds.
fn check_copy(to: &Path) -> Result<i64, String> {
    let copy =
        rusqlite::Connection::open_with_flags(to, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open the copy {}: {e}", to.display()))?;
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("cannot check the copy {}: {e}", to.display()))?;
    if verdict != "ok" {
        return Err(format!("the copy {} is damaged: {verdict}", to.display()));
    }
    copy.query_row("SELECT COUNT(*) FROM keys", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the copy {}: {e}", to.display()))
}

/// One table read from SQLite: its PostgreSQL columns (name, type) and the rows in that order.
struct Table {
    name: String,
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Value>>,
}

/// `trent migrate --to URL`: the SQLite store (brought to this build's schema first) copied
/// into the PostgreSQL database at `to` (migrated to the same schema), which must hold no
/// state yet, in one transaction: on any failure nothing is left in it.
pub async fn migrate(settings: &Settings, to: &str) -> Result<(), String> {
    if settings.database.is_some() {
        return Err(
            "the configuration already names a PostgreSQL database: trent migrate copies the \
             embedded SQLite store (<data_dir>/trent.db) into one"
                .into(),
        );
    }
    let url = DatabaseUrl::parse(to.to_string())?;
    let db = settings.data_dir.join("trent.db");
    if !db.try_exists().unwrap_or(false) {
        return Err(format!(
            "there is no SQLite store at {} (check --data-dir or --config)",
            db.display()
        ));
    }
    // Both schemas at this build's version (a no-op for an up-to-date store).
    drop(
        trent_store_sqlite::SqliteStore::open(&db)
            .map_err(|e| format!("cannot open {}: {e}", db.display()))?,
    );
    drop(
        trent_store_postgres::PostgresStore::connect(url.as_str())
            .await
            .map_err(|e| format!("cannot open database {}: {e}", url.shown()))?,
    );
    let (mut client, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", url.shown()))?;
    let connection = tokio::spawn(connection);
    let result = copy_to_postgres(&db, &mut client, &url).await;
    drop(client);
    let _ = connection.await;
    let copied = result?;
    let summary: Vec<String> = copied.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "Copied {} into {}: {}. Start every node with `database = \"{}\"` and the same root \
         key as this data directory's (root_key_file = \"{}\", or $TRENT_ROOT_KEY).",
        db.display(),
        url.shown(),
        summary.join(", "),
        url.shown(),
        settings
            .root_key_file
            .clone()
            .unwrap_or_else(|| settings.data_dir.join("root.key"))
            .display()
    );
    Ok(())
}

async fn copy_to_postgres(
    db: &Path,
    client: &mut tokio_postgres::Client,
    url: &DatabaseUrl,
) -> Result<Vec<(String, usize)>, String> {
    let pg = |e: tokio_postgres::Error| format!("database {}: {e}", url.shown());
    let tx = client.transaction().await.map_err(pg)?;
    let target_version: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(pg)?;
    let mut names: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(pg)?;
    names.retain(|n| !NOT_COPIED.contains(&n.as_str()));
    // Foreign keys between the tables: (referencing, referenced).
    let references = tx
        .query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(String, String)>, tokio_postgres::Error>>()
        .map_err(pg)?;
    let names = in_reference_order(names, &references);
    let mut layout = Vec::new();
    for name in &names {
        let holds_rows: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM \"{name}\")"), &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if holds_rows {
            return Err(format!(
                "the database {} is not empty (table {name} has rows): trent migrate copies \
                 into a database no Trent has used yet",
                url.shown()
            ));
        }
        let columns = tx
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[name],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(String, String)>, tokio_postgres::Error>>()
            .map_err(pg)?;
        layout.push((name.clone(), columns));
    }
    let tables = read_sqlite(db, layout, target_version)?;

    let mut copied = Vec::new();
    for table in &tables {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect();
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO \"{}\" ({}) VALUES ({})",
                table.name,
                columns.join(", "),
                placeholders.join(", ")
            ))
            .await
            .map_err(pg)?;
        for row in &table.rows {
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(row.len());
            for (value, (column, pg_type)) in row.iter().zip(&table.columns) {
                params.push(
                    parameter(value, pg_type)
                        .map_err(|e| format!("{}.{column}: {e}", table.name))?,
                );
            }
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&insert, &refs)
                .await
                .map_err(|e| format!("copying a row of {}: {}", table.name, pg(e)))?;
        }
        copied.push((table.name.clone(), table.rows.len()));
    }
    // The triggers logged every copied row as a change: no node has seen this database, so
    // there is nothing for one to replay.
    tx.batch_execute("DELETE FROM changes").await.map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(copied)
}

/// `tables` ordered so that each comes after every table it references (accounts before keys
/// before what names a key), ties by name; tables in a reference cycle (none today) last, by
/// name: their copy fails on the constraint rather than reordering forever.
fn in_reference_order(mut tables: Vec<String>, references: &[(String, String)]) -> Vec<String> {
    tables.sort();
    let mut ordered: Vec<String> = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| {
            references.iter().all(|(from, to)| {
                from != t || to == t || ordered.contains(to) || !tables.contains(to)
            })
        });
        match ready {
            Some(i) => ordered.push(tables.remove(i)),
            None => {
                ordered.append(&mut tables);
            }
        }
    }
    ordered
}

/// Reads every table of `layout` from the SQLite store in one read transaction (one snapshot,
/// whatever a running server writes meanwhile), after checking its schema version is
/// `version`.
fn read_sqlite(
    db: &Path,
    layout: Vec<(String, Vec<(String, String)>)>,
    version: i64,
) -> Result<Vec<Table>, String> {
    let sqlite = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let mut conn = open_existing(db)?;
    let tx = conn.transaction().map_err(sqlite)?;
    let source_version: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if source_version != version {
        return Err(format!(
            "the SQLite store's schema is version {source_version} and the PostgreSQL \
             database's {version}: run trent migrate with the Trent version that wrote the store"
        ));
    }
    let mut tables = Vec::new();
    for (name, columns) in layout {
        let names: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let mut statement = tx
            .prepare(&format!("SELECT {} FROM \"{name}\"", names.join(", ")))
            .map_err(|e| {
                format!(
                    "table {name} (or one of its columns) of the PostgreSQL schema is missing \
                     from the SQLite store: {}",
                    sqlite(e)
                )
            })?;
        let width = columns.len();
        let rows = statement
            .query_map([], |r| {
                (0..width)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sqlite)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite)?;
        drop(statement);
        tables.push(Table {
            name,
            columns,
            rows,
        });
    }
    tx.commit().map_err(sqlite)?;
    Ok(tables)
}

/// A SQLite value as a parameter for a PostgreSQL column of type `pg_type` (the types the
/// PostgreSQL migrations use for SQLite's INTEGER, TEXT and BLOB columns).
fn parameter(value: &Value, pg_type: &str) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    let wrong = || format!("a {} value cannot go into a {pg_type} column", kind(value));
    Ok(match (pg_type, value) {
        ("text" | "character varying", Value::Null) => Box::new(None::<String>),
        ("text" | "character varying", Value::Text(s)) => Box::new(Some(s.clone())),
        ("bigint", Value::Null) => Box::new(None::<i64>),
        ("bigint", Value::Integer(i)) => Box::new(Some(*i)),
        ("integer", Value::Null) => Box::new(None::<i32>),
        ("integer", Value::Integer(i)) => Box::new(Some(i32::try_from(*i).map_err(|_| wrong())?)),
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("boolean", Value::Integer(i)) => Box::new(Some(*i != 0)),
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        ("bytea", Value::Blob(b)) => Box::new(Some(b.clone())),
        ("double precision", Value::Null) => Box::new(None::<f64>),
        ("double precision", Value::Real(f)) => Box::new(Some(*f)),
        ("text" | "character varying" | "bigint" | "integer" | "boolean" | "bytea", _)
        | ("double precision", _) => return Err(wrong()),
        _ => return Err(format!("trent migrate cannot copy a {pg_type} column")),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "INTEGER",
        Value::Real(_) => "REAL",
        Value::Text(_) => "TEXT",
        Value::Blob(_) => "BLOB",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_after_the_tables_they_reference() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let refs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
                .collect::<Vec<_>>()
        };
        let ordered = in_reference_order(
            names(&[
                "aliases",
                "keys",
                "accounts",
                "custom_key_stores",
                "grants",
                "sessions",
            ]),
            &refs(&[
                ("aliases", "keys"),
                ("keys", "accounts"),
                ("keys", "custom_key_stores"),
                ("grants", "keys"),
                ("custom_key_stores", "accounts"),
                ("keys", "keys"),
            ]),
        );
        assert_eq!(
            ordered,
            names(&[
                "accounts",
                "custom_key_stores",
                "keys",
                "aliases",
                "grants",
                "sessions"
            ])
        );
        // A cycle is not reordered forever.
        let ordered = in_reference_order(names(&["b", "a"]), &refs(&[("a", "b"), ("b", "a")]));
        assert_eq!(ordered, names(&["a", "b"]));
    }
}
