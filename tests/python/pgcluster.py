"""A private PostgreSQL server for the several-nodes tests, as `trent_store_postgres::test_cluster`
starts one for the Rust tests: `initdb` in a new temporary directory (trust authentication,
superuser `postgres`, C locale, no fsync), `pg_ctl start` on 127.0.0.1 and a free port, its socket
in that directory; `stop()` (also at exit of the `with` block) stops it and removes the directory.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (through
`runuser`, else `setpriv`) in a directory handed to it. The binaries are looked for in
`$TRENT_POSTGRES_BIN`, `/usr/local/bin`, `/usr/lib/postgresql/*/bin` (newest first) and `$PATH`.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
BINARIES = ("initdb", "pg_ctl", "postgres", "createdb")


def find_binaries() -> Path:
    candidates: list[Path] = []
    if os.environ.get("TRENT_POSTGRES_BIN"):
        candidates.append(Path(os.environ["TRENT_POSTGRES_BIN"]))
    candidates.append(Path("/usr/local/bin"))
    versions = []
    for entry in Path("/usr/lib/postgresql").glob("*"):
        if entry.name.isdigit():
            versions.append((int(entry.name), entry / "bin"))
    candidates.extend(path for _, path in sorted(versions, reverse=True))
    candidates.extend(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p)
    for directory in candidates:
        if all((directory / b).is_file() for b in BINARIES):
            # pg_ctl finds `postgres` beside its real path.
            return (directory / "initdb").resolve().parent
    raise RuntimeError(
        "the PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: install them "
        "(Debian/Ubuntu: apt-get install postgresql; ./scripts/test does this when run as root) "
        "or set TRENT_POSTGRES_BIN"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running private PostgreSQL server; `url(db)` is a database's URL on it."""

    def __init__(self):
        self.bin = find_binaries()
        self.as_postgres = os.geteuid() == 0
        base = Path(tempfile.gettempdir())
        if self.as_postgres and not all(os.stat(p).st_mode & 0o001 for p in [base, *base.parents]):
            base = Path("/tmp")  # the postgres user must be able to reach into it
        self.dir = Path(tempfile.mkdtemp(prefix="trent-pg-py-", dir=base))
        self.data = self.dir / "data"
        self.port = 0
        self.running = False
        self.databases = 0
        if self.as_postgres:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
            self.port = free_port()
            self.start()
        except BaseException:
            self.stop()
            raise

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / program), *args]
        if self.as_postgres:
            wrapper = ["runuser", "-u", SUPERUSER, "--"] if shutil.which("runuser") else [
                "setpriv", "--reuid", SUPERUSER, "--regid", SUPERUSER, "--init-groups"]
            command = wrapper + command
        proc = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            log = self.dir / "server.log"
            logged = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stderr}\n{logged}")
        return proc

    def start(self) -> None:
        """Starts the server (again, after `shut_down`) on its port."""
        settings = (
            f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.dir}'\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\nmax_connections = 200\n"
        )
        conf = self.data / "postgresql.auto.conf"
        conf.write_text(settings)
        if self.as_postgres:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(conf, user.pw_uid, user.pw_gid)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "30", "start")
        self.running = True

    def shut_down(self) -> None:
        """Stops the server cleanly (`-m fast`: sessions ended, commits kept), keeping its data."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def fresh_database(self) -> str:
        """Creates an empty database; returns its URL."""
        self.databases += 1
        name = f"trent_py_{self.databases}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stops the server (immediately) and removes its directory."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
