"""A newcomer's set-up: start-up refusals that leave nothing wrong behind (a missing or wrong root
key, a port in use, an unwritable data directory), the AWS config file `trent serve` writes for
the default account, and the listen address forms (`localhost:PORT`, `:PORT`)."""

import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import botocore
import pytest

from conftest import REGION, trent_bin, write_config

NOBODY = 65534


def run_trent(config: Path, data_dir: Path, *args: str, env: dict | None = None, prefix: tuple[str, ...] = ()):
    """Runs `trent serve` expecting it to refuse to start; returns the finished process."""
    proc = subprocess.Popen(
        [*prefix, trent_bin(), "serve", "--config", str(config), "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env if env is not None else dict(os.environ),
    )
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"trent kept running where it should have refused to start; it printed {out!r} {err!r}")
    proc.stdout_text, proc.stderr_text = out, err
    return proc


def a_config(tmp_path: Path) -> Path:
    config = tmp_path / "trent.toml"
    write_config(config, with_accounts=False, clock_control=False)
    return config


def made_data_dir(start_trent, tmp_path: Path) -> Path:
    """A data directory with a default account, a key and a stopped server."""
    data_dir = tmp_path / "data"
    server = start_trent(data_dir, with_accounts=False)
    assert server.lines[0].startswith("Created default account"), server.lines
    server.terminate()
    return data_dir


def test_a_missing_root_key_beside_a_database_refuses_to_start(start_trent, tmp_path):
    data_dir = made_data_dir(start_trent, tmp_path)
    root_key = data_dir / "root.key"
    root_key.unlink()
    before = sorted(p.name for p in data_dir.iterdir())

    proc = run_trent(a_config(tmp_path), data_dir)
    assert proc.returncode != 0
    assert "Trent is serving" not in proc.stdout_text
    assert f"root key {root_key} is missing but the database {data_dir / 'trent.db'} exists" in proc.stderr_text, proc.stderr_text
    assert "refusing to generate a new root key" in proc.stderr_text
    # No new root key was written (a user might back it up in place of the lost one).
    assert not root_key.exists()
    assert sorted(p.name for p in data_dir.iterdir()) == before


def test_a_wrong_root_key_is_refused_naming_where_it_came_from(start_trent, tmp_path):
    data_dir = made_data_dir(start_trent, tmp_path)
    root_key = data_dir / "root.key"
    right = root_key.read_text()
    wrong = os.urandom(32).hex() + "\n"
    root_key.write_text(wrong)
    root_key.chmod(0o600)

    proc = run_trent(a_config(tmp_path), data_dir)
    assert proc.returncode != 0
    assert f"the root key in {root_key} does not decrypt the database {data_dir / 'trent.db'}" in proc.stderr_text, proc.stderr_text
    assert root_key.read_text() == wrong, "the key file is left as it was"

    env = dict(os.environ, TRENT_ROOT_KEY=os.urandom(32).hex())
    proc = run_trent(a_config(tmp_path), data_dir, env=env)
    assert proc.returncode != 0
    assert "the root key in $TRENT_ROOT_KEY does not decrypt the database" in proc.stderr_text, proc.stderr_text

    # The right key still opens it.
    root_key.write_text(right)
    again = start_trent(data_dir, with_accounts=False)
    assert again.proc.poll() is None


def test_a_port_in_use_exits_and_creates_nothing(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = tmp_path / "data"
        proc = run_trent(a_config(tmp_path), data_dir, "--listen", f"127.0.0.1:{port}")
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr_text, proc.stderr_text
    assert not data_dir.exists(), sorted(p.name for p in data_dir.iterdir())
    assert proc.stdout_text == ""


@pytest.mark.parametrize("listen", ["localhost:0", ":0"])
def test_listen_accepts_localhost_and_a_bare_port_as_loopback(start_trent, tmp_path, listen):
    server = start_trent(tmp_path / "data", extra_args=("--listen", listen))
    assert server.endpoint.startswith("http://127.0.0.1:"), server.endpoint
    assert not server.endpoint.endswith(":0")
    assert server.client().list_keys()["Keys"] == []


def test_an_unknown_listen_host_is_refused_before_anything_is_made(tmp_path):
    data_dir = tmp_path / "data"
    proc = run_trent(a_config(tmp_path), data_dir, "--listen", "trent.example:4599")
    assert proc.returncode != 0
    assert "invalid listen address `trent.example:4599`" in proc.stderr_text, proc.stderr_text
    assert not data_dir.exists()


def read_aws_config(path: Path) -> dict:
    parser = configparser.ConfigParser()
    parser.read_string(path.read_text())
    assert parser.sections() == ["profile trent"]
    return dict(parser["profile trent"])


def profile_only_env(data_dir: Path) -> dict:
    """The environment of a user who set only the three variables Trent's hint names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(data_dir / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(data_dir / "credentials"),
        AWS_PROFILE="trent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


# boto3 with no endpoint, region or credentials in the code: all of it from the files.
BOTO3_SCRIPT = """
import json, sys, boto3
kms = boto3.client("kms")
key = kms.create_key(Description="from the profile")["KeyMetadata"]
blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"profile only")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"profile only"
print(json.dumps({"arn": key["Arn"], "endpoint": kms.meta.endpoint_url, "region": kms.meta.region_name}))
"""


def test_the_aws_config_file_makes_boto3_work_with_the_profile_alone(start_trent, tmp_path):
    # endpoint_url in a config file needs botocore 1.31 or newer.
    assert tuple(int(p) for p in botocore.__version__.split(".")[:2]) >= (1, 31), botocore.__version__
    data_dir = tmp_path / "data"
    server = start_trent(data_dir, with_accounts=False)
    config = data_dir / "config"
    assert config.stat().st_mode & 0o777 == 0o600
    assert read_aws_config(config) == {"region": REGION, "endpoint_url": server.endpoint}

    done = subprocess.run(
        [sys.executable, "-c", BOTO3_SCRIPT], env=profile_only_env(data_dir), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["endpoint"] == server.endpoint
    assert answer["region"] == REGION
    assert answer["arn"].startswith(f"arn:aws:kms:{REGION}:")

    # A restart on another port brings the file up to date; one on the same endpoint leaves it alone.
    server.terminate()
    moved = start_trent(data_dir, with_accounts=False)
    assert read_aws_config(config) == {"region": REGION, "endpoint_url": moved.endpoint}
    assert config.stat().st_mode & 0o777 == 0o600
    assert not (data_dir / "config.tmp").exists()
    done = subprocess.run(
        [sys.executable, "-c", BOTO3_SCRIPT], env=profile_only_env(data_dir), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["endpoint"] == moved.endpoint

    port = moved.endpoint.rsplit(":", 1)[1]
    moved.terminate()
    before = config.stat()
    same = start_trent(data_dir, with_accounts=False, extra_args=("--listen", f"127.0.0.1:{port}"))
    assert same.endpoint == moved.endpoint
    after = config.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_declared_accounts_write_no_aws_config_file(trent):
    assert not (trent.data_dir / "config").exists()
    assert not any(line.startswith(("Try: ", "Or, ")) for line in trent.lines), trent.lines


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    data_dir = blocker / "data"
    proc = run_trent(a_config(tmp_path), data_dir)
    assert proc.returncode != 0
    assert f"cannot create data directory {data_dir}: Not a directory" in proc.stderr_text, proc.stderr_text


def as_another_user(tmp_path: Path) -> tuple[str, ...]:
    """A command prefix running trent as a user without root's powers (root ignores permissions)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot run trent as an unprivileged user")
    prefix = (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    probe = subprocess.run([*prefix, trent_bin(), "--version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"the trent binary cannot be run as uid {NOBODY}: {probe.stderr.strip()}")
    return prefix


@pytest.fixture
def open_dir():
    """A fresh directory every user can enter (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="trent-perm-"))
    path.chmod(0o755)
    yield path
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
    shutil.rmtree(path, ignore_errors=True)


def test_an_unwritable_parent_is_named_with_the_reason(tmp_path, open_dir):
    prefix = as_another_user(tmp_path)
    config = open_dir / "trent.toml"
    write_config(config, with_accounts=False, clock_control=False)
    config.chmod(0o644)
    parent = open_dir / "parent"
    parent.mkdir(mode=0o555)
    parent.chmod(0o555)
    data_dir = parent / "data"
    proc = run_trent(config, data_dir, prefix=prefix)
    assert proc.returncode != 0
    assert f"cannot create data directory {data_dir}: Permission denied" in proc.stderr_text, proc.stderr_text
    assert not data_dir.exists()


def test_an_existing_data_dir_that_is_not_writable_is_named(tmp_path, open_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a data directory the server's user cannot write (its own it may chmod)")
    prefix = as_another_user(tmp_path)
    config = open_dir / "trent.toml"
    write_config(config, with_accounts=False, clock_control=False)
    config.chmod(0o644)
    # Another user's private directory: the server's user cannot make files in it.
    data_dir = open_dir / "data"
    data_dir.mkdir(mode=0o700)
    data_dir.chmod(0o755)
    proc = run_trent(config, data_dir, prefix=prefix)
    assert proc.returncode != 0
    assert f"cannot restrict data directory {data_dir} to its owner (mode 700): Operation not permitted" in proc.stderr_text, (
        proc.stderr_text
    )
    # Already private to its owner, so nothing to restrict: the check that files can be made in it names it.
    data_dir.chmod(0o700)
    proc = run_trent(config, data_dir, prefix=prefix)
    assert proc.returncode != 0
    assert f"cannot write in data directory {data_dir}: Permission denied" in proc.stderr_text, proc.stderr_text
    assert list(data_dir.iterdir()) == []


def test_a_database_the_server_cannot_write_is_named(start_trent, tmp_path, open_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the database to another user")
    prefix = as_another_user(tmp_path)
    data_dir = open_dir / "data"
    server = start_trent(data_dir, with_accounts=False)
    assert server.terminate() == 0
    # The data directory and its files now belong to the server's user, except the database.
    for path in [data_dir, *data_dir.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    db = data_dir / "trent.db"
    os.chown(db, 0, 0)
    db.chmod(0o644)
    config = open_dir / "trent.toml"
    write_config(config, with_accounts=False, clock_control=False)
    config.chmod(0o644)
    proc = run_trent(config, data_dir, prefix=prefix)
    assert proc.returncode != 0
    assert f"cannot open database {db} for writing: Permission denied" in proc.stderr_text, proc.stderr_text
