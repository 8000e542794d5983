"""Harness for the Python end-to-end tests: run the real `trent` binary and point real AWS clients at it.

The binary comes from `$TRENT_BIN` (default `<repo>/target/debug/trent`). Every server runs on an
ephemeral loopback port in its own temporary data directory and is killed when its test ends.
"""

import os
import signal
import subprocess
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]

ACCOUNT_A = "111122223333"
AKID_A = "AKIAEXAMPLE000000001"
SECRET_A = "secret-1"
ACCOUNT_B = "444455556666"
AKID_B = "AKIAEXAMPLE000000002"
SECRET_B = "secret-2"
REGION = "us-east-1"

# Keep the developer's own AWS configuration and credentials out of every client, in this process
# (boto3, the Encryption SDK) and in the subprocesses it starts (the AWS CLI, trent).
for _name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_CA_BUNDLE"]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("TRENT_ROOT_KEY", None)


def trent_bin() -> str:
    path = os.environ.get("TRENT_BIN") or str(REPO / "target" / "debug" / "trent")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"trent binary not found at {path}: build it with `cargo build -p trent --bin trent` or set TRENT_BIN")
    return path


def write_config(path: Path, with_accounts: bool, clock_control: bool = True, extra: str = "") -> None:
    """Writes a `trent.toml`; `extra` is top-level TOML (e.g. `tls_cert`/`tls_key`) put before any table."""
    text = f'listen = "127.0.0.1:0"\nregion = "{REGION}"\n{extra}'
    if with_accounts:
        for account, akid, secret in [(ACCOUNT_A, AKID_A, SECRET_A), (ACCOUNT_B, AKID_B, SECRET_B)]:
            text += f'[[account]]\nid = "{account}"\nroot_access_key_id = "{akid}"\nroot_secret_access_key = "{secret}"\n'
    # The tests call faster than AWS's default management quotas allow (5 CreateKey per
    # second) with retries off, so they run with throttling off (crates/trent/tests/quotas.rs
    # tests throttling).
    text += "[quotas]\nthrottling = false\n"
    # Clock control lets lifecycle tests move time (rotation, deletion, material expiry).
    if clock_control:
        text += "[testing]\nclock_control = true\n"
    path.write_text(text)


class TrentServer:
    """A running `trent serve`. `endpoint` is its base URL; `lines` is everything it printed."""

    def __init__(
        self,
        data_dir: Path,
        with_accounts: bool = True,
        clock_control: bool = True,
        extra_config: str = "",
        extra_args: tuple[str, ...] = (),
    ):
        self.data_dir = data_dir
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.config = data_dir.parent / "trent.toml"
        write_config(self.config, with_accounts, clock_control, extra_config)
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [trent_bin(), "serve", "--config", str(self.config), "--data-dir", str(data_dir), *extra_args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ),
        )
        self.endpoint = self._wait_for_endpoint()
        # Keep draining stdout so the server never blocks on a full pipe.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _wait_for_endpoint(self) -> str:
        timer = threading.Timer(30, self.proc.kill)
        timer.start()
        try:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("Trent is serving") and " on " in line:
                    return line.split(" on ", 1)[1].split()[0]
        finally:
            timer.cancel()
        self.proc.wait()
        raise RuntimeError(f"trent exited ({self.proc.returncode}) before listening; it printed: {self.lines}")

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def kill_9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._drainer.join(timeout=5)

    def terminate(self) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self._drainer.join(timeout=5)
        return code

    def advance_clock(self, seconds: int, token: str | None = None) -> dict:
        """Moves the server's clock forward through the operator's clock control; returns its answer."""
        import json
        import urllib.request

        if token is None:
            token = (self.data_dir / "admin.token").read_text().strip()
        request = urllib.request.Request(
            self.endpoint + "/trent-admin/advance-clock",
            data=json.dumps({"Seconds": seconds}).encode(),
            headers={"X-Trent-Admin-Token": token, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def client(self, akid: str = AKID_A, secret: str = SECRET_A, region: str = REGION, verify=None):
        return kms_client(self.endpoint, akid, secret, region, verify)


def kms_client(endpoint: str, akid: str, secret: str, region: str = REGION, verify=None):
    """A boto3 KMS client for Trent with explicit credentials and no retries.

    `verify` is botocore's: `None` for the default trust store, or a CA bundle path for HTTPS.
    """
    return boto3.session.Session(
        aws_access_key_id=akid, aws_secret_access_key=secret, region_name=region
    ).client(
        "kms",
        endpoint_url=endpoint,
        verify=verify,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


@pytest.fixture
def start_trent(tmp_path):
    """A factory: `start_trent(data_dir=None, with_accounts=True, extra_config="", extra_args=())` starts a server
    (`extra_args` are more `trent serve` flags, e.g. `("--listen", "localhost:0")`); all are killed at teardown."""
    servers: list[TrentServer] = []

    def start(
        data_dir: Path | None = None,
        with_accounts: bool = True,
        clock_control: bool = True,
        extra_config: str = "",
        extra_args: tuple[str, ...] = (),
    ) -> TrentServer:
        server = TrentServer(data_dir or tmp_path / "data", with_accounts, clock_control, extra_config, extra_args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill_9()


@pytest.fixture
def trent(start_trent) -> TrentServer:
    """A fresh Trent with the two test accounts, in its own data directory."""
    return start_trent()


@pytest.fixture
def endpoint(trent) -> str:
    return trent.endpoint


@pytest.fixture
def kms(trent):
    """A boto3 KMS client for account A."""
    return trent.client(AKID_A, SECRET_A)


@pytest.fixture
def kms_b(trent):
    """A boto3 KMS client for account B."""
    return trent.client(AKID_B, SECRET_B)
