"""EXTERNAL_KEY_STORE (XKS) custom key stores through the AWS CLI (v1), against a real `trent serve`
that reaches a real `trent xks-proxy` (started here) over HTTPS with SigV4 — the setup of
test_xks_key_stores.py (its `[xks_client]` names the proxy's CA bundle and port and allows
`localhost`), driven by `aws kms` instead of boto3 (with `cli_follow_urlparam = false`, so the
CLI passes `--xks-proxy-uri-endpoint https://...` on instead of fetching it).

Covered: `create-custom-key-store --custom-key-store-type EXTERNAL_KEY_STORE` with the
`--xks-proxy-*` parameters, `describe-custom-key-stores` (`XksProxyConfiguration`, never the
secret), `connect-custom-key-store` until CONNECTED, `create-key --origin EXTERNAL_KEY_STORE
--custom-key-store-id --xks-key-id` (an unknown external key: XksKeyNotFoundException), encrypt
and decrypt through `fileb://` files, `update-custom-key-store` while CONNECTED (a new
`--xks-proxy-uri-path` is accepted once the proxy serves it; a new `--xks-proxy-uri-endpoint` is
CustomKeyStoreInvalidStateException), the proxy stopped (encrypt and decrypt
KMSInvalidStateException), `disconnect-custom-key-store` and `delete-custom-key-store`
(CustomKeyStoreInvalidStateException while connected, CustomKeyStoreHasCMKsException while it
holds keys). Errors are read as the CLI prints them on stderr (`An error occurred (CODE) when
calling the OPERATION operation: ...`).
"""

import base64
import json
import os
import time

import pytest

from test_custom_key_stores_cli import kms, kms_error, kms_json, store_entry
from test_xks_key_stores import client_config
from test_xks_proxy import AKID, SECRET, XksProxy


@pytest.fixture
def xks_cli(tmp_path, start_trent, monkeypatch):
    """A running `trent xks-proxy` (keys `key-1` and `encrypt-only`) and a Trent that trusts it.

    The CLI (v1) reads a parameter value starting with `https://` as a URL to fetch, so
    `--xks-proxy-uri-endpoint https://localhost` needs `cli_follow_urlparam = false` in its
    configuration (conftest otherwise points AWS_CONFIG_FILE at /dev/null).
    """
    config = tmp_path / "aws-config"
    config.write_text("[default]\ncli_follow_urlparam = false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    proxy = XksProxy(tmp_path / "proxy")
    try:
        server = start_trent(tmp_path / "trent" / "data", extra_config=client_config(proxy))
        yield proxy, server
    finally:
        proxy.stop()


def credential(secret: str = SECRET) -> str:
    # JSON rather than shorthand: the secret ends in "=".
    return json.dumps({"AccessKeyId": AKID, "RawSecretAccessKey": secret})


def create_store_args(name: str = "xks-cli", path: str = "/kms/xks/v1") -> list[str]:
    return [
        "create-custom-key-store", "--custom-key-store-name", name,
        "--custom-key-store-type", "EXTERNAL_KEY_STORE",
        "--xks-proxy-connectivity", "PUBLIC_ENDPOINT",
        "--xks-proxy-uri-endpoint", "https://localhost",
        "--xks-proxy-uri-path", path,
        "--xks-proxy-authentication-credential", credential(),
    ]


def connect_and_wait(server, store_id: str) -> dict:
    kms(server, "connect-custom-key-store", "--custom-key-store-id", store_id)
    deadline = time.time() + 20
    while True:
        entry = store_entry(server, store_id)
        if entry["ConnectionState"] != "CONNECTING" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert entry["ConnectionState"] == "CONNECTED", entry
    assert "ConnectionErrorCode" not in entry
    return entry


def create_xks_key(server, store_id: str, xks_key_id: str = "key-1") -> dict:
    return kms_json(
        server, "create-key", "--origin", "EXTERNAL_KEY_STORE", "--custom-key-store-id", store_id,
        "--xks-key-id", xks_key_id, "--description", "in the external key manager",
    )["KeyMetadata"]


def encrypt_to_file(server, key_id: str, plain_file, cipher_file) -> bytes:
    ct = kms(server, "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{plain_file}",
             "--encryption-context", "app=xks-cli", "--query", "CiphertextBlob", "--output", "text").stdout.strip()
    blob = base64.b64decode(ct, validate=True)
    cipher_file.write_bytes(blob)
    return blob


def test_cli_xks_store_create_describe_connect_key_round_trip_and_updates(xks_cli, tmp_path):
    proxy, server = xks_cli

    store_id = kms_json(server, *create_store_args())["CustomKeyStoreId"]
    assert store_id.startswith("cks-") and len(store_id) == 21
    kms_error(server, "CreateCustomKeyStore", "CustomKeyStoreNameInUseException", *create_store_args())
    kms_error(server, "CreateCustomKeyStore", "XksProxyUriInUseException", *create_store_args(name="xks-cli-2"))

    entry = store_entry(server, store_id)
    assert entry["CustomKeyStoreName"] == "xks-cli"
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": AKID,
        "UriEndpoint": "https://localhost",
        "UriPath": "/kms/xks/v1",
    }
    assert "CloudHsmClusterId" not in entry and "TrustAnchorCertificate" not in entry
    assert SECRET not in json.dumps(entry)

    # Not connected: no keys yet.
    kms_error(
        server, "CreateKey", "CustomKeyStoreInvalidStateException",
        "create-key", "--origin", "EXTERNAL_KEY_STORE", "--custom-key-store-id", store_id, "--xks-key-id", "key-1",
    )
    connect_and_wait(server, store_id)

    # An XksKeyId the proxy does not know, then the proxy's key-1.
    kms_error(
        server, "CreateKey", "XksKeyNotFoundException",
        "create-key", "--origin", "EXTERNAL_KEY_STORE", "--custom-key-store-id", store_id, "--xks-key-id", "no-such-key",
    )
    meta = create_xks_key(server, store_id)
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["XksKeyConfiguration"] == {"Id": "key-1"}
    assert meta["KeyState"] == "Enabled" and meta["KeyManager"] == "CUSTOMER"
    assert kms_json(server, "describe-key", "--key-id", meta["KeyId"])["KeyMetadata"]["XksKeyConfiguration"] == {"Id": "key-1"}

    # Encrypt and decrypt through files; the outer layer of double encryption is version 3.
    plain = os.urandom(100) + b"\x00\n\xff"
    (tmp_path / "plain.bin").write_bytes(plain)
    blob = encrypt_to_file(server, meta["KeyId"], tmp_path / "plain.bin", tmp_path / "cipher.bin")
    assert blob[0] == 3 and plain not in blob
    decrypt = ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "app=xks-cli"]
    out = kms_json(server, *decrypt)
    assert base64.b64decode(out["Plaintext"]) == plain
    assert out["KeyId"] == meta["Arn"]
    kms_error(server, "Decrypt", "KMSInvalidStateException",
              "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "app=other")

    # CONNECTED: the endpoint cannot change (AWS: disconnect first) ...
    update = ["update-custom-key-store", "--custom-key-store-id", store_id]
    kms_error(server, "UpdateCustomKeyStore", "CustomKeyStoreInvalidStateException",
              *update, "--xks-proxy-uri-endpoint", "https://localhost")
    # ... the path can, but only to one the proxy answers at ...
    kms_error(server, "UpdateCustomKeyStore", "XksProxyInvalidConfigurationException",
              *update, "--xks-proxy-uri-path", "/moved/kms/xks/v1")
    assert store_entry(server, store_id)["XksProxyConfiguration"]["UriPath"] == "/kms/xks/v1"
    # ... so the proxy moves under a prefix (same port) and the store follows, still CONNECTED.
    proxy.prefix = "/moved"
    proxy.restart()
    assert proxy.base.endswith("/moved/kms/xks/v1"), proxy.base
    kms(server, *update, "--xks-proxy-uri-path", "/moved/kms/xks/v1")
    entry = store_entry(server, store_id)
    assert entry["ConnectionState"] == "CONNECTED"
    assert entry["XksProxyConfiguration"]["UriPath"] == "/moved/kms/xks/v1"
    assert entry["XksProxyConfiguration"]["UriEndpoint"] == "https://localhost"
    assert base64.b64decode(kms_json(server, *decrypt)["Plaintext"]) == plain
    # A rename is allowed while connected, too.
    kms(server, *update, "--new-custom-key-store-name", "xks-cli-renamed")
    assert store_entry(server, store_id)["CustomKeyStoreName"] == "xks-cli-renamed"


def test_cli_xks_proxy_down_disconnect_and_delete(xks_cli, tmp_path):
    proxy, server = xks_cli
    store_id = kms_json(server, *create_store_args())["CustomKeyStoreId"]
    connect_and_wait(server, store_id)
    meta = create_xks_key(server, store_id)
    key_id = meta["KeyId"]
    (tmp_path / "plain.bin").write_bytes(b"kept outside")
    encrypt_to_file(server, key_id, tmp_path / "plain.bin", tmp_path / "cipher.bin")
    encrypt = ["encrypt", "--key-id", key_id, "--plaintext", f"fileb://{tmp_path / 'plain.bin'}", "--encryption-context", "app=xks-cli"]
    decrypt = ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "app=xks-cli"]

    # The proxy stopped while CONNECTED: AWS maps the unreachable proxy to
    # KMSInvalidStateException; the store stays CONNECTED and the key Enabled.
    proxy.stop()
    kms_error(server, "Encrypt", "KMSInvalidStateException", *encrypt)
    kms_error(server, "Decrypt", "KMSInvalidStateException", *decrypt)
    assert store_entry(server, store_id)["ConnectionState"] == "CONNECTED"
    assert kms_json(server, "describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    proxy.restart()  # same port
    assert base64.b64decode(kms_json(server, *decrypt)["Plaintext"]) == b"kept outside"

    # A connected store cannot be deleted.
    kms_error(server, "DeleteCustomKeyStore", "CustomKeyStoreInvalidStateException",
              "delete-custom-key-store", "--custom-key-store-id", store_id)

    # Disconnected: the key is Unavailable and crypto refused; the store still holds the key.
    kms(server, "disconnect-custom-key-store", "--custom-key-store-id", store_id)
    assert store_entry(server, store_id)["ConnectionState"] == "DISCONNECTED"
    assert kms_json(server, "describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    kms_error(server, "Encrypt", "KMSInvalidStateException", *encrypt)
    kms_error(server, "DisconnectCustomKeyStore", "CustomKeyStoreInvalidStateException",
              "disconnect-custom-key-store", "--custom-key-store-id", store_id)
    kms_error(server, "DeleteCustomKeyStore", "CustomKeyStoreHasCMKsException",
              "delete-custom-key-store", "--custom-key-store-id", store_id)

    # Now disconnected, the endpoint can be updated (to the same proxy).
    kms(server, "update-custom-key-store", "--custom-key-store-id", store_id, "--xks-proxy-uri-endpoint", "https://localhost")

    # The key scheduled for deletion still blocks the delete until it is gone.
    kms(server, "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    kms_error(server, "DeleteCustomKeyStore", "CustomKeyStoreHasCMKsException",
              "delete-custom-key-store", "--custom-key-store-id", store_id)
    assert server.advance_clock(7 * 86400 + 60)["Deleted"] == 1
    kms(server, "delete-custom-key-store", "--custom-key-store-id", store_id)
    kms_error(server, "DescribeCustomKeyStores", "CustomKeyStoreNotFoundException",
              "describe-custom-key-stores", "--custom-key-store-id", store_id)
    assert kms_json(server, "describe-custom-key-stores")["CustomKeyStores"] == []
