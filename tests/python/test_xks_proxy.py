"""`trent xks-proxy` alone, as a spec client (XKS proxy API v1.0.3) would drive it.

The proxy binary runs over HTTPS with a throwaway CA; requests are signed by independent SigV4
implementations — botocore's `SigV4Auth` and curl's `--aws-sigv4` — with service
`kms-xks-proxy`, so the proxy's verification is checked against signers that are not Trent's.
Keys are made with `trent xks-proxy create-key`, including one added while the proxy runs.
"""

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import trent_bin
from test_tls import make_ca_and_leaf

REGION = "us-east-1"
AKID = "AKIAXKSPROXYTESTKEY2345"
SECRET = "K7gm0U1p5fKZC7mXxSV9o8bR8T2wXQ0hZ7R7mNn4gXs="
META = {
    "awsPrincipalArn": "arn:aws:iam::111122223333:user/alice",
    "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kmsOperation": "Encrypt",
    "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
}


class XksProxy:
    """A running `trent xks-proxy serve`; `base` is `https://localhost:PORT/<prefix>/kms/xks/v1`."""

    def __init__(self, directory: Path, prefix: str = "", pkcs11: dict | None = None):
        """`pkcs11`: `{"module", "token_label", "pin_file"}` for the PKCS#11 backend (the
        process needs `SOFTHSM2_CONF` in its environment); without it, the keys file."""
        ca, cert, key = make_ca_and_leaf(directory / "pki")
        self.ca, self.cert, self.key, self.prefix = ca, cert, key, prefix
        self.pkcs11 = pkcs11
        self.config = directory / "xks-proxy.toml"
        self.port = 0
        self.write_config(SECRET)
        self.create_key("key-1")
        self.create_key("encrypt-only", usage="ENCRYPT")
        self.start()

    def write_config(self, secret: str) -> None:
        """The proxy's configuration, accepting `AKID` with `secret`, on `self.port` (0: any)."""
        self.config.write_text(
            f'listen = "127.0.0.1:{self.port}"\n'
            'data_dir = "xks-data"\n'
            f"tls_cert = {json.dumps(str(self.cert))}\n"
            f"tls_key = {json.dumps(str(self.key))}\n"
            f'region = "{REGION}"\n'
            f'uri_path_prefix = "{self.prefix}"\n'
            f'[[credential]]\naccess_key_id = "{AKID}"\nsecret_access_key = "{secret}"\n'
            + (
                "[pkcs11]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.pkcs11.items())
                if self.pkcs11
                else ""
            )
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [trent_bin(), "xks-proxy", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        timer = threading.Timer(30, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        assert line.startswith("Trent XKS proxy is serving"), line
        path, address = line.split("serving ", 1)[1].split(" on ")
        self.port = int(address.strip().rsplit(":", 1)[1])
        self.base = f"https://localhost:{self.port}{path}"
        self.context = ssl.create_default_context(cafile=str(self.ca))

    def restart(self, secret: str = SECRET) -> None:
        """Stops the proxy and starts it again on the same port, accepting `secret`."""
        self.stop()
        self.write_config(secret)
        self.start()

    def create_key(self, key_id: str, usage: str = "ENCRYPT,DECRYPT") -> None:
        subprocess.run(
            [trent_bin(), "xks-proxy", "create-key", "--config", str(self.config), "--key-id", key_id, "--usage", usage],
            check=True,
            capture_output=True,
        )

    def key_command(self, command: str, key_id: str) -> None:
        """`trent xks-proxy disable-key | enable-key | delete-key` (PKCS#11 backend)."""
        subprocess.run(
            [trent_bin(), "xks-proxy", command, "--config", str(self.config), "--key-id", key_id],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def call(self, suffix: str, body, secret: str = SECRET, method: str = "POST", sign: bool = True):
        """Sends `body` (a dict, or raw text) signed with botocore's SigV4; returns (status, JSON)."""
        data = body if isinstance(body, str) else json.dumps(body)
        request = AWSRequest(
            method=method, url=self.base + suffix, data=data, headers={"Content-Type": "application/json"}
        )
        if sign:
            SigV4Auth(Credentials(AKID, secret), "kms-xks-proxy", REGION).add_auth(request)
        prepared = request.prepare()
        http_request = urllib.request.Request(
            prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
            headers=dict(prepared.headers), method=method,
        )
        try:
            with urllib.request.urlopen(http_request, context=self.context, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None


@pytest.fixture
def proxy(tmp_path):
    running = XksProxy(tmp_path)
    yield running
    running.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_health_and_key_metadata(proxy):
    status, health = proxy.call("/health", {"requestMetadata": {"kmsRequestId": "r1", "kmsOperation": "KmsHealthCheck"}})
    assert status == 200, health
    assert health["xksProxyFleetSize"] == 1
    assert [e["healthStatus"] for e in health["ekmFleetDetails"]] == ["ACTIVE"]

    status, meta = proxy.call("/keys/key-1/metadata", {"requestMetadata": META})
    assert (status, meta) == (200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"})
    status, meta = proxy.call("/keys/encrypt-only/metadata", {"requestMetadata": META})
    assert meta["keyUsage"] == ["ENCRYPT"]

    status, error = proxy.call("/keys/nope/metadata", {"requestMetadata": META})
    assert (status, error["errorName"]) == (404, "KeyNotFoundException")
    # A key created while the proxy runs is served at once.
    proxy.create_key("added-later")
    status, meta = proxy.call("/keys/added-later/metadata", {"requestMetadata": META})
    assert status == 200, meta


def test_encrypt_decrypt_with_aad_and_integrity_value(proxy):
    import hashlib

    plaintext, aad = os.urandom(4300), os.urandom(8192)
    status, sealed = proxy.call(
        "/keys/key-1/encrypt",
        {
            "requestMetadata": META,
            "plaintext": b64(plaintext),
            "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": b64(aad),
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
        },
    )
    assert status == 200, sealed
    raw = {k: base64.b64decode(v) for k, v in sealed.items()}
    assert len(raw["ciphertext"]) == len(plaintext) and raw["ciphertext"] != plaintext
    assert len(raw["initializationVector"]) == 12 and len(raw["authenticationTag"]) == 16
    assert len(raw["ciphertextMetadata"]) <= 20
    expected = hashlib.sha256(
        aad + raw["ciphertextMetadata"] + raw["initializationVector"] + raw["ciphertext"] + raw["authenticationTag"]
    ).digest()
    assert raw["ciphertextDataIntegrityValue"] == expected

    decrypt = {
        "requestMetadata": {**META, "kmsOperation": "Decrypt"},
        "ciphertext": sealed["ciphertext"],
        "encryptionAlgorithm": "AES_GCM",
        "initializationVector": sealed["initializationVector"],
        "authenticationTag": sealed["authenticationTag"],
        "ciphertextMetadata": sealed["ciphertextMetadata"],
        "additionalAuthenticatedData": b64(aad),
    }
    status, opened = proxy.call("/keys/key-1/decrypt", decrypt)
    assert status == 200, opened
    assert base64.b64decode(opened["plaintext"]) == plaintext

    # Tampered ciphertext, AAD or metadata: InvalidCiphertextException.
    flipped = bytes([raw["ciphertext"][0] ^ 1]) + raw["ciphertext"][1:]
    for change in [
        {"ciphertext": b64(flipped)},
        {"additionalAuthenticatedData": b64(aad[:-1])},
        {"ciphertextMetadata": b64(b"other")},
    ]:
        status, error = proxy.call("/keys/key-1/decrypt", {**decrypt, **change})
        assert (status, error["errorName"]) == (400, "InvalidCiphertextException"), change

    # The encrypt-only key cannot decrypt.
    status, error = proxy.call("/keys/encrypt-only/decrypt", decrypt)
    assert (status, error["errorName"]) == (400, "InvalidKeyUsageException")


def test_authentication_and_validation(proxy):
    health = {"requestMetadata": {"kmsRequestId": "r1", "kmsOperation": "KmsHealthCheck"}}
    status, error = proxy.call("/health", health, secret="A" * 43 + "=")
    assert (status, error["errorName"]) == (401, "AuthenticationFailedException")
    status, error = proxy.call("/health", health, sign=False)
    assert (status, error["errorName"]) == (401, "AuthenticationFailedException")
    status, _ = proxy.call("/health", health, method="GET")
    assert status == 405
    status, error = proxy.call("/other/health", health)
    assert (status, error["errorName"]) == (404, "InvalidUriPathException")
    status, error = proxy.call("/health", {})
    assert (status, error["errorName"]) == (400, "ValidationException")
    status, error = proxy.call("/keys/key-1/metadata", {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "CreateKey"}})
    assert (status, error["errorName"]) == (400, "ValidationException")
    status, error = proxy.call(
        "/keys/key-1/encrypt", {"requestMetadata": META, "plaintext": b64(b"x"), "encryptionAlgorithm": "AES_CBC"}
    )
    assert (status, error["errorName"]) == (400, "ValidationException")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_is_accepted(proxy):
    """curl's own SigV4 signer (the spec suggests it for testing proxies) is verified too."""
    body = json.dumps({"requestMetadata": {"kmsRequestId": "r1", "kmsOperation": "KmsHealthCheck"}})
    result = subprocess.run(
        [
            "curl", "-sS", "--cacert", str(proxy.ca), "--aws-sigv4", f"aws:amz:{REGION}:kms-xks-proxy",
            "--user", f"{AKID}:{SECRET}", "-H", "Content-Type: application/json", "--data", body,
            proxy.base + "/health",
        ],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["xksProxyFleetSize"] == 1
