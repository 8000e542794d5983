"""HTTPS end to end: `trent serve` with `tls_cert`/`tls_key`, driven by boto3 over TLS.

A throwaway CA and a leaf certificate for `127.0.0.1`/`localhost` are made with pyca/cryptography
(rustls-based clients refuse a self-signed CA:TRUE certificate used directly as a server
certificate, so the chain is a real CA plus a leaf). boto3 trusts only that CA (`verify=ca.pem`).
Also checked: the start-up line names `https://`, plain HTTP to the TLS port gets no KMS answer,
and the policy condition key `aws:SecureTransport` is `true` over TLS and `false` without it.
"""

import datetime
import http.client
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import ACCOUNT_A, AKID_A, SECRET_A, kms_client


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca_and_leaf(directory: Path) -> tuple[Path, Path, Path]:
    """Writes `ca.pem`, `server.pem` (leaf then CA) and `server.key`; returns their paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Trent test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(
        leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    key_pem.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


@pytest.fixture
def tls_files(tmp_path) -> tuple[Path, Path, Path]:
    return make_ca_and_leaf(tmp_path / "pki")


@pytest.fixture
def tls_trent(start_trent, tmp_path, tls_files):
    """A Trent serving HTTPS with a leaf certificate issued by a fresh test CA."""
    _, cert, key = tls_files
    # TOML basic strings: the paths are plain temporary paths, but escape defensively.
    extra = f"tls_cert = {json.dumps(str(cert))}\ntls_key = {json.dumps(str(key))}\n"
    return start_trent(tmp_path / "tls" / "data", extra_config=extra)


@pytest.fixture
def tls_kms(tls_trent, tls_files):
    ca, _, _ = tls_files
    return tls_trent.client(verify=str(ca))


def deny_plaintext_transport_policy(root_policy: str) -> str:
    """The key's default policy plus a Deny of kms:Encrypt when the request is not over TLS."""
    policy = json.loads(root_policy)
    assert any(
        s.get("Principal", {}).get("AWS") == f"arn:aws:iam::{ACCOUNT_A}:root" for s in policy["Statement"]
    ), "the root statement must stay so the lockout safety check passes"
    policy["Statement"].append(
        {
            "Sid": "DenyEncryptWithoutTLS",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    return json.dumps(policy)


def test_startup_line_names_https(tls_trent):
    assert tls_trent.endpoint.startswith("https://127.0.0.1:"), tls_trent.endpoint
    serving = [line for line in tls_trent.lines if line.startswith("Trent is serving")]
    assert serving and "https://" in serving[0], tls_trent.lines


def test_boto3_over_tls_creates_key_and_round_trips(tls_kms):
    key = tls_kms.create_key(Description="over TLS")["KeyMetadata"]
    enc = tls_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret over tls", EncryptionContext={"t": "tls"})
    dec = tls_kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"t": "tls"})
    assert dec["Plaintext"] == b"secret over tls"
    assert dec["KeyId"] == key["Arn"]


def test_localhost_name_is_also_valid(tls_trent, tls_files):
    ca, _, _ = tls_files
    port = tls_trent.endpoint.rsplit(":", 1)[1]
    kms = kms_client(f"https://localhost:{port}", AKID_A, SECRET_A, verify=str(ca))
    assert isinstance(kms.list_keys()["Keys"], list)


def test_client_without_the_ca_refuses_the_server(tls_trent, tmp_path):
    # An unrelated CA: the handshake must fail certificate verification.
    other_ca, _, _ = make_ca_and_leaf(tmp_path / "other-pki")
    kms = tls_trent.client(verify=str(other_ca))
    with pytest.raises(Exception) as excinfo:
        kms.list_keys()
    assert "SSL" in type(excinfo.value).__name__ or "certificate" in str(excinfo.value).lower(), excinfo.value


def test_plain_http_to_the_tls_port_fails(tls_trent, tls_kms):
    host, port = tls_trent.endpoint.removeprefix("https://").rsplit(":", 1)
    request = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    ).encode()
    # The TLS listener reads the request as a bad TLS record: it answers with at most a TLS alert
    # (content type 0x15) and closes. Never an HTTP response.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert not answer.startswith(b"HTTP/"), answer[:80]
    assert answer == b"" or answer[0] == 0x15, answer[:80]

    # An HTTP client gets an error, not a KMS answer.
    plain = urllib.request.Request(
        f"http://{host}:{port}/",
        data=b"{}",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
        method="POST",
    )
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        with urllib.request.urlopen(plain, timeout=10) as response:
            response.read()
    # The server is unharmed and still serves TLS.
    assert tls_trent.proc.poll() is None
    assert isinstance(tls_kms.list_keys()["Keys"], list)


def test_secure_transport_is_true_over_tls_and_false_without(start_trent, tmp_path, tls_kms):
    # Over TLS: the Deny-unless-TLS statement does not apply, so Encrypt works.
    key_id = tls_kms.create_key()["KeyMetadata"]["KeyId"]
    policy = deny_plaintext_transport_policy(tls_kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    tls_kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    blob = tls_kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert tls_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    # Without TLS, on a second server: the same policy denies Encrypt (and only Encrypt).
    plain = start_trent(tmp_path / "plain" / "data")
    assert plain.endpoint.startswith("http://")
    kms = plain.client()
    plain_key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=plain_key, PolicyName="default", Policy=policy)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=plain_key, Plaintext=b"x")
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny" in excinfo.value.response["Error"]["Message"], excinfo.value.response["Error"]
    # Other operations the root statement allows still work over plain HTTP.
    assert kms.describe_key(KeyId=plain_key)["KeyMetadata"]["KeyId"] == plain_key
