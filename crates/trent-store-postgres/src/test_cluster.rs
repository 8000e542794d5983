//! A private PostgreSQL server for tests: `initdb` in a new temporary directory (trust
//! authentication, superuser `postgres`, C locale, no fsync), started with `pg_ctl` on
//! 127.0.0.1 and a free port, its socket in that directory; stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (via
//! `runuser`, or `setpriv` where `runuser` is missing) in a directory chowned to it; as anyone
//! else it runs directly. The binaries (`initdb`, `pg_ctl`, `postgres`) are looked for in
//! `$TRENT_POSTGRES_BIN`, `/usr/local/bin`, `/usr/lib/postgresql/*/bin` (newest first) and
//! `$PATH`; when none has them, [`TestCluster::start`] says so and how to install them.
//!
//! A test binary that panics still stops its server (drop runs while unwinding); one killed
//! outright leaves it running in its `trent-pg-*` directory under the temporary directory.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SUPERUSER: &str = "postgres";

/// A running private PostgreSQL server.
pub struct TestCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// `Some((uid, gid))` of the `postgres` user when we are root and run it as that user.
    run_as: Option<(u32, u32)>,
    port: u16,
    databases: AtomicU32,
    stopped: bool,
}

impl TestCluster {
    /// Creates and starts a server; the error says what is missing or what the server logged.
    pub fn start() -> Result<Self, String> {
        let bin = find_binaries()?;
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = make_temp_dir()?;
        let mut cluster = Self {
            dir,
            bin,
            run_as,
            port: 0,
            databases: AtomicU32::new(0),
            stopped: true,
        };
        cluster.init()?;
        // A free port can be taken between choosing it and the server binding it: try again.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.stopped = false;
                    return Ok(cluster);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn fresh_database(&self) -> Result<String, String> {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("trent_test_{n}");
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to the test PostgreSQL: {e}"))?;
        let task = tokio::spawn(connection);
        let created = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"));
        drop(client);
        let _ = task.await;
        created.map(|()| self.url(&name))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> Result<(), String> {
        let data = self.data();
        let data_arg = data.to_string_lossy().into_owned();
        let out = self.run(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed in {}: {}",
                data.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data();
        // Settings in the data directory's own file (the server reads the last value).
        let settings = format!(
            "\n# trent test cluster\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 100\n",
            self.port,
            self.dir.display()
        );
        let conf = data.join("postgresql.auto.conf");
        std::fs::write(&conf, settings)
            .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        self.give(&conf)?;
        let log = self.dir.join("server.log");
        let (data_arg, log_arg) = (
            data.to_string_lossy().into_owned(),
            log.to_string_lossy().into_owned(),
        );
        let out = self.run(
            "pg_ctl",
            &["-D", &data_arg, "-l", &log_arg, "-w", "-t", "30", "start"],
        )?;
        if out.status.success() {
            return Ok(());
        }
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "the test PostgreSQL did not start on port {}: {}\n{logged}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// Shuts the server down cleanly (`pg_ctl stop -m fast`: every session is ended, what was
    /// committed is kept) and leaves it stopped until [`TestCluster::start_again`]: a test's
    /// way to take the database away from running nodes.
    pub fn shut_down(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        let data_arg = self.data().to_string_lossy().into_owned();
        let out = self.run("pg_ctl", &["-D", &data_arg, "-m", "fast", "-w", "stop"])?;
        if !out.status.success() {
            return Err(format!(
                "the test PostgreSQL did not stop: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.stopped = true;
        Ok(())
    }

    /// Starts a server [`TestCluster::shut_down`] stopped, on the same port and data.
    pub fn start_again(&mut self) -> Result<(), String> {
        if !self.stopped {
            return Ok(());
        }
        self.pg_ctl_start()?;
        self.stopped = false;
        Ok(())
    }

    /// Freezes the server: `SIGSTOP` to the postmaster and every process it started. Its
    /// sockets stay open and the kernel still accepts connections and data, but nothing is
    /// answered: the failure no server-side timeout catches. [`TestCluster::thaw`] resumes it.
    pub fn freeze(&self) -> Result<Vec<u32>, String> {
        let pids = self.server_pids()?;
        self.signal("-STOP", &pids)?;
        Ok(pids)
    }

    /// Resumes a server [`TestCluster::freeze`] stopped.
    pub fn thaw(&self) -> Result<(), String> {
        let pids = self.server_pids()?;
        self.signal("-CONT", &pids)
    }

    /// The postmaster (first line of `postmaster.pid`) and its children (from `/proc`).
    fn server_pids(&self) -> Result<Vec<u32>, String> {
        let file = self.data().join("postmaster.pid");
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let postmaster: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("no pid in {}", file.display()))?;
        let mut pids = vec![postmaster];
        let proc_dir = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
        for entry in proc_dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // `pid (comm) state ppid …`: the command may hold spaces, so read after its `)`.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    fn signal(&self, signal: &str, pids: &[u32]) -> Result<(), String> {
        let out = Command::new("kill")
            .arg(signal)
            .args(pids.iter().map(u32::to_string))
            .output()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "kill {signal} {pids:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // A frozen server would not act on the stop signal (a test failed mid-freeze).
        let _ = self.thaw();
        let data_arg = self.data().to_string_lossy().into_owned();
        let _ = self.run(
            "pg_ctl",
            &["-D", &data_arg, "-m", "immediate", "-w", "stop"],
        );
    }

    /// Runs one of the server binaries, as the `postgres` user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            None => Command::new(&path),
            Some(_) => {
                let (wrapper, prefix): (&str, &[&str]) = if on_path("runuser") {
                    ("runuser", &["-u", SUPERUSER, "--"])
                } else {
                    (
                        "setpriv",
                        &["--reuid", SUPERUSER, "--regid", SUPERUSER, "--init-groups"],
                    )
                };
                let mut c = Command::new(wrapper);
                c.args(prefix).arg(&path);
                c
            }
        };
        // A working directory the `postgres` user can enter.
        command.args(args).current_dir(&self.dir);
        command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))
    }

    /// Hands a file or directory to the `postgres` user when we run the server as it.
    fn give(&self, path: &Path) -> Result<(), String> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_binaries() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("TRENT_POSTGRES_BIN") {
        candidates.push(dir.into());
    }
    candidates.push("/usr/local/bin".into());
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    candidates.extend(versions.into_iter().map(|(_, p)| p));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    find_binaries_in(candidates)
}

/// The first of `candidates` holding `initdb`, `pg_ctl` and `postgres`.
fn find_binaries_in(candidates: Vec<PathBuf>) -> Result<PathBuf, String> {
    for dir in candidates {
        if ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
        {
            // pg_ctl finds `postgres` beside its real path; resolve symlinked directories too.
            let real = dir
                .join("initdb")
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|p| p.join("pg_ctl").is_file() && p.join("postgres").is_file())
                .unwrap_or(dir);
            return Ok(real);
        }
    }
    Err(
        "the PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found in \
         $TRENT_POSTGRES_BIN, /usr/local/bin, /usr/lib/postgresql/*/bin or $PATH: install \
         them (Debian/Ubuntu: apt-get install postgresql; ./scripts/test does this when run \
         as root) or set TRENT_POSTGRES_BIN to their directory"
            .into(),
    )
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map_or_else(
        |_| {
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        },
        |m| m.uid() == 0,
    )
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, SUPERUSER]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(
            "running as root, and PostgreSQL refuses root: there is no `postgres` user \
                  to run the test server as (Debian's postgresql package creates it; or \
                  `useradd --system postgres`)"
                .into(),
        ),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn make_temp_dir() -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = base_dir().join(format!(
        "trent-pg-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    if is_root() {
        let (uid, gid) = postgres_user()?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// The temporary directory, or `/tmp` when we are root and the `postgres` user could not
/// reach into it (e.g. `$TMPDIR` under `/root`).
fn base_dir() -> PathBuf {
    let temp = std::env::temp_dir();
    if !is_root() {
        return temp;
    }
    let reachable = temp
        .ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if reachable {
        temp
    } else {
        PathBuf::from("/tmp")
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

#[cfg(test)]
#[allow(clippy::panic, reason = "test code: a failed check panics")]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_are_named_with_the_way_to_install_them() {
        let Err(message) = find_binaries_in(vec!["/nonexistent".into()]) else {
            panic!("no binaries in /nonexistent");
        };
        assert!(message.contains("initdb") && message.contains("apt-get install postgresql"));
    }
}
