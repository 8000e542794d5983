"""The deployment files: the container image (Dockerfile) builds and answers a signed request where
docker is available, the systemd unit (deploy/trent.service) passes `systemd-analyze verify`, and
both start `trent serve` with flags the binary has."""

import configparser
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import REGION, REPO, kms_client, trent_bin

UNIT = REPO / "deploy" / "trent.service"
DOCKERFILE = REPO / "Dockerfile"


def docker_unavailable() -> str | None:
    """Why docker cannot be used here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        lines = [line for line in (info.stderr or info.stdout).splitlines() if line.strip()]
        return f"the docker daemon is not reachable ({lines[-1].strip() if lines else 'docker info failed'})"
    return None


def unit_exec_start() -> list[str]:
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].removeprefix("ExecStart="))


def dockerfile_command() -> list[str]:
    """ENTRYPOINT + CMD of the Dockerfile's last stage (both in exec form)."""
    text = DOCKERFILE.read_text()
    entrypoint = re.findall(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    cmd = re.findall(r"^CMD (\[.*\])$", text, re.M)
    assert len(entrypoint) == 1 and len(cmd) == 1, (entrypoint, cmd)
    return json.loads(entrypoint[0]) + json.loads(cmd[0])


def serve_flags() -> set[str]:
    help_text = subprocess.run([trent_bin(), "serve", "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    return set(re.findall(r"--[a-z][a-z-]*", help_text))


@pytest.mark.parametrize("source", ["systemd unit", "Dockerfile"])
def test_deployment_files_start_trent_serve_with_real_flags(source):
    command = unit_exec_start() if source == "systemd unit" else dockerfile_command()
    assert command[0].endswith("trent") and command[1] == "serve", command
    used = {arg.split("=", 1)[0] for arg in command[2:] if arg.startswith("--")}
    assert used == {"--listen", "--data-dir"}, command
    assert used <= serve_flags()
    assert command[command.index("--data-dir") + 1] == "/var/lib/trent"


def test_systemd_unit_verifies():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # `verify` wants ExecStart's program to exist: check a copy that runs the binary under test.
    with_binary = UNIT.read_text().replace("ExecStart=/usr/local/bin/trent ", f"ExecStart={trent_bin()} ")
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "trent.service"
        unit.write_text(with_binary)
        verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        # Unknown or misspelt settings are only warned about (exit 0): any output is a failure.
        assert verified.returncode == 0 and verified.stdout == "" and verified.stderr == "", (
            verified.stdout + verified.stderr
        )
        security = subprocess.run(
            [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60
        )
        if security.returncode == 0:
            level = re.search(r"Overall exposure level for trent\.service: ([0-9.]+)", security.stdout)
            assert level, security.stdout
            assert float(level.group(1)) <= 2.0, security.stdout

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["StateDirectory"] == "trent"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["DynamicUser"] == "yes"


def test_container_image_builds_and_answers_a_signed_request():
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"no usable docker: {reason}")
    tag = f"trent-test:{uuid.uuid4().hex[:12]}"
    built = subprocess.run(["docker", "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    container = None
    try:
        started = subprocess.run(
            ["docker", "run", "-d", "-p", "127.0.0.1::4599", tag], capture_output=True, text=True, timeout=120, check=True
        )
        container = started.stdout.strip()
        deadline = time.monotonic() + 60
        logs = ""
        while "Trent is serving" not in logs:
            assert time.monotonic() < deadline, f"the container did not start serving: {logs}"
            time.sleep(0.5)
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30).stdout
        assert "Created default account" in logs, logs
        port = subprocess.run(
            ["docker", "port", container, "4599/tcp"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()[0].rsplit(":", 1)[1]

        def in_container(*args: str) -> str:
            return subprocess.run(
                ["docker", "exec", container, *args], capture_output=True, text=True, timeout=30, check=True
            ).stdout

        assert in_container("id", "-un").strip() == "trent"
        credentials = configparser.ConfigParser()
        credentials.read_string(in_container("cat", "/var/lib/trent/credentials"))
        profile = credentials["trent"]
        kms = kms_client(f"http://127.0.0.1:{port}", profile["aws_access_key_id"], profile["aws_secret_access_key"], REGION)
        key = kms.create_key(Description="in a container")["KeyMetadata"]
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"contained")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"contained"

        # SIGTERM (docker stop) stops it cleanly.
        subprocess.run(["docker", "stop", "-t", "20", container], capture_output=True, timeout=60, check=True)
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", container], capture_output=True, text=True, timeout=30, check=True
        )
        assert state.stdout.strip() == "0"
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
