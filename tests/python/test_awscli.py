"""The AWS CLI (v1) against Trent, including the zero-configuration default-account bootstrap."""

import base64
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ACCOUNT_A, AKID_A, REGION, SECRET_A


def aws_command() -> list[str]:
    """The `aws` of the Python running the tests (where `pip install awscli` put it)."""
    beside = Path(sys.executable).parent / "aws"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("aws")
    if found:
        return [found]
    return [sys.executable, "-m", "awscli"]


def cli_env(**extra: str) -> dict:
    env = dict(os.environ)  # conftest already pointed AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE at /dev/null
    env.update({"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard", "AWS_PAGER": ""})
    # Make a bare `aws` in a shell command line resolve to the one aws_command() found.
    env["PATH"] = str(Path(aws_command()[0]).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def run_aws(endpoint: str, *args: str, akid: str = AKID_A, secret: str = SECRET_A, check: bool = True) -> subprocess.CompletedProcess:
    env = cli_env(AWS_ACCESS_KEY_ID=akid, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION)
    proc = subprocess.run(
        [*aws_command(), "--endpoint-url", endpoint, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert proc.returncode == 0, f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc


def aws_json(endpoint: str, *args: str, **kw) -> dict:
    return json.loads(run_aws(endpoint, *args, "--output", "json", **kw).stdout)


def test_cli_encrypt_decrypt_round_trip_through_files(endpoint, tmp_path):
    key = aws_json(endpoint, "kms", "create-key", "--description", "from the cli")["KeyMetadata"]
    assert key["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{key['KeyId']}"
    assert key["Description"] == "from the cli"

    original = os.urandom(200) + b"\x00\n\r binary-safe \xff"
    (tmp_path / "plain.bin").write_bytes(original)
    ct_b64 = run_aws(
        endpoint,
        "kms", "encrypt",
        "--key-id", key["KeyId"],
        "--plaintext", f"fileb://{tmp_path / 'plain.bin'}",
        "--encryption-context", "purpose=cli,team=sec",
        "--query", "CiphertextBlob",
        "--output", "text",
    ).stdout.strip()
    ciphertext = base64.b64decode(ct_b64, validate=True)
    assert original not in ciphertext
    (tmp_path / "cipher.bin").write_bytes(ciphertext)

    pt_b64 = run_aws(
        endpoint,
        "kms", "decrypt",
        "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}",
        "--encryption-context", "purpose=cli,team=sec",
        "--query", "Plaintext",
        "--output", "text",
    ).stdout.strip()
    assert base64.b64decode(pt_b64, validate=True) == original

    full = aws_json(
        endpoint, "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "purpose=cli,team=sec"
    )
    assert full["KeyId"] == key["Arn"]
    assert full["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    wrong = run_aws(
        endpoint, "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "purpose=other", check=False
    )
    assert wrong.returncode != 0
    assert "InvalidCiphertextException" in wrong.stderr


def test_cli_aliases_and_generate_random(endpoint):
    key = aws_json(endpoint, "kms", "create-key")["KeyMetadata"]
    run_aws(endpoint, "kms", "create-alias", "--alias-name", "alias/cli-app", "--target-key-id", key["KeyId"])

    aliases = aws_json(endpoint, "kms", "list-aliases")["Aliases"]
    by_name = {a["AliasName"]: a for a in aliases}
    assert by_name["alias/cli-app"]["TargetKeyId"] == key["KeyId"]
    assert by_name["alias/cli-app"]["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_A}:alias/cli-app"
    assert [a["AliasName"] for a in aws_json(endpoint, "kms", "list-aliases", "--key-id", key["KeyId"])["Aliases"]] == ["alias/cli-app"]
    assert aws_json(endpoint, "kms", "describe-key", "--key-id", "alias/cli-app")["KeyMetadata"]["KeyId"] == key["KeyId"]

    out = run_aws(endpoint, "kms", "generate-random", "--number-of-bytes", "32", "--query", "Plaintext", "--output", "text").stdout
    random_bytes = base64.b64decode(out.strip(), validate=True)
    assert len(random_bytes) == 32
    assert random_bytes != bytes(32)

    dk = aws_json(endpoint, "kms", "generate-data-key", "--key-id", "alias/cli-app", "--key-spec", "AES_256")
    assert len(base64.b64decode(dk["Plaintext"])) == 32
    assert dk["KeyId"] == key["Arn"]


def test_cli_list_keys_follows_pagination(endpoint):
    created = {aws_json(endpoint, "kms", "create-key")["KeyMetadata"]["KeyId"] for _ in range(3)}
    # With --page-size 1 the CLI fetches one key per request and follows NextMarker to the end.
    listed = aws_json(endpoint, "kms", "list-keys", "--page-size", "1")["Keys"]
    assert sorted(k["KeyId"] for k in listed) == sorted(created)
    # --max-items stops early and hands back a token to continue from.
    first = aws_json(endpoint, "kms", "list-keys", "--page-size", "1", "--max-items", "2")
    assert len(first["Keys"]) == 2
    rest = aws_json(endpoint, "kms", "list-keys", "--page-size", "1", "--starting-token", first["NextToken"])
    assert {k["KeyId"] for k in first["Keys"] + rest["Keys"]} == created


def test_cli_reports_aws_errors(endpoint):
    missing = run_aws(endpoint, "kms", "describe-key", "--key-id", "alias/nope", check=False)
    assert missing.returncode != 0
    assert "NotFoundException" in missing.stderr

    bad_secret = run_aws(endpoint, "kms", "list-keys", secret="wrong", check=False)
    assert bad_secret.returncode != 0
    assert "InvalidSignatureException" in bad_secret.stderr

    stranger = run_aws(endpoint, "kms", "list-keys", akid="AKIANOBODY0000000000", check=False)
    assert stranger.returncode != 0
    assert "UnrecognizedClientException" in stranger.stderr


def test_configured_accounts_write_no_credentials_file(trent):
    assert not (trent.data_dir / "credentials").exists()
    assert not any(line.startswith("Created default account") for line in trent.lines)


def read_profile(path: Path) -> dict:
    parser = configparser.ConfigParser()
    parser.read_string(path.read_text())
    return dict(parser["trent"])


def test_default_account_bootstrap_works_with_the_cli(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    server = start_trent(data_dir, with_accounts=False)
    credentials = data_dir / "credentials"

    created = [line for line in server.lines if line.startswith("Created default account")]
    assert len(created) == 1, server.lines
    m = re.fullmatch(r"Created default account (\d{12}) with root credentials in (.+)", created[0])
    assert m, created[0]
    account = m.group(1)
    assert Path(m.group(2)) == credentials

    assert credentials.stat().st_mode & 0o777 == 0o600
    profile = read_profile(credentials)
    assert set(profile) == {"aws_access_key_id", "aws_secret_access_key"}
    assert profile["aws_access_key_id"]
    assert profile["aws_secret_access_key"]

    # Exactly what a user types: the credentials file and profile Trent made, and nothing else
    # but a region (which AWS clients always need; conftest points AWS_CONFIG_FILE at /dev/null).
    command = f"AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=trent aws --endpoint-url {server.endpoint} kms list-keys"
    env = cli_env(AWS_DEFAULT_REGION=REGION)
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_PROFILE" not in env
    listed = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["Keys"] == []

    # The hints Trent prints run as printed: the first through the AWS config file Trent wrote
    # (region and endpoint_url), the second through environment variables alone (cli_env() keeps
    # AWS_CONFIG_FILE at /dev/null, so nothing else could supply them): AWS_REGION for the SDKs
    # that read it (JavaScript, Go, Java, CLI v2), AWS_DEFAULT_REGION for botocore and CLI v1.
    config = data_dir / "config"
    hints = [line for line in server.lines if line.startswith("Try: ")]
    assert len(hints) == 1, server.lines
    hint = hints[0].removeprefix("Try: ")
    assert hint == (
        f"AWS_CONFIG_FILE={config} AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=trent aws kms list-keys"
    )
    env_prefix = "Or, for tools that ignore endpoint_url in a config file: "
    env_hints = [line for line in server.lines if line.startswith(env_prefix)]
    assert len(env_hints) == 1, server.lines
    env_hint = env_hints[0].removeprefix(env_prefix)
    assert env_hint == (
        f"AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=trent AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION} "
        f"AWS_ENDPOINT_URL_KMS={server.endpoint} aws kms list-keys"
    )
    assert server.lines.index(hints[0]) == server.lines.index(env_hints[0]) - 1
    listed_by_hint = subprocess.run(["bash", "-c", env_hint], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert listed_by_hint.returncode == 0, listed_by_hint.stderr
    assert json.loads(listed_by_hint.stdout)["Keys"] == []
    created_key = subprocess.run(
        ["bash", "-c", hint.replace("kms list-keys", "kms create-key")], env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert created_key.returncode == 0, created_key.stderr
    key = json.loads(created_key.stdout)["KeyMetadata"]
    assert key["AWSAccountId"] == account
    assert key["Arn"].startswith(f"arn:aws:kms:{REGION}:{account}:key/")

    # Restarting on the same data directory reuses the account and its credentials file untouched.
    before = credentials.read_bytes()
    before_stat = credentials.stat()
    server.kill_9()
    again = start_trent(data_dir, with_accounts=False)
    assert not any(line.startswith("Created default account") for line in again.lines), again.lines
    assert credentials.read_bytes() == before
    assert credentials.stat().st_ino == before_stat.st_ino
    assert credentials.stat().st_mtime_ns == before_stat.st_mtime_ns
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith("credentials")) == ["credentials"]

    command = f"AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=trent aws --endpoint-url {again.endpoint} kms list-keys"
    relisted = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert relisted.returncode == 0, relisted.stderr
    assert [k["KeyArn"] for k in json.loads(relisted.stdout)["Keys"]] == [key["Arn"]]
