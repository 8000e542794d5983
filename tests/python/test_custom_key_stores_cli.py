"""AWS_CLOUDHSM custom key stores through the AWS CLI (v1), against a real trent over a private
SoftHSM2 token declared as `[[hsm_cluster]]` (the `hsm_trent` fixture of
test_custom_key_stores.py): `aws kms create-custom-key-store / describe-custom-key-stores /
update-custom-key-store / connect-custom-key-store / disconnect-custom-key-store /
delete-custom-key-store`, `create-key --origin AWS_CLOUDHSM --custom-key-store-id`, encrypt and
decrypt through files, GenerateRandom from the token, and AWS's error codes as the CLI prints
them on stderr (`An error occurred (CODE) when calling the OPERATION operation: ...`).
"""

import base64
import json
import os

from conftest import ACCOUNT_A, REGION
from test_awscli import run_aws
from test_custom_key_stores import ANCHOR, CLUSTER, PIN, hsm_trent  # noqa: F401 (the fixture)


def kms(trent, *args: str, check: bool = True):
    return run_aws(trent.endpoint, "kms", *args, check=check)


def kms_json(trent, *args: str) -> dict:
    return json.loads(kms(trent, *args, "--output", "json").stdout)


def kms_error(trent, operation: str, code: str, *args: str) -> str:
    """Runs a command that must fail with AWS error `code`; returns its stderr."""
    proc = kms(trent, *args, check=False)
    assert proc.returncode != 0, f"aws kms {' '.join(args)} succeeded: {proc.stdout}"
    assert f"An error occurred ({code}) when calling the {operation} operation" in proc.stderr, proc.stderr
    return proc.stderr


def store_entry(trent, store_id: str) -> dict:
    stores = kms_json(trent, "describe-custom-key-stores", "--custom-key-store-id", store_id)["CustomKeyStores"]
    assert len(stores) == 1
    return stores[0]


def test_cli_custom_key_store_operations_and_errors(hsm_trent, tmp_path):
    anchor = tmp_path / "customerCA.crt"
    anchor.write_text(ANCHOR)
    other_anchor = tmp_path / "other.crt"
    other_anchor.write_text("-----BEGIN CERTIFICATE-----\nMIIBotherAnchor\n-----END CERTIFICATE-----\n")

    # The certificate is passed as AWS's documentation shows: file://customerCA.crt.
    def create(*extra: str, cluster: str = CLUSTER, cert=anchor, name: str = "cli-store"):
        return [
            "create-custom-key-store", "--custom-key-store-name", name, "--cloud-hsm-cluster-id", cluster,
            "--trust-anchor-certificate", f"file://{cert}", "--key-store-password", PIN, *extra,
        ]

    err = kms_error(hsm_trent, "CreateCustomKeyStore", "CloudHsmClusterNotFoundException", *create(cluster="cluster-234567abcdefg"))
    assert PIN not in err
    kms_error(hsm_trent, "CreateCustomKeyStore", "IncorrectTrustAnchorException", *create(cert=other_anchor))

    store_id = kms_json(hsm_trent, *create())["CustomKeyStoreId"]
    assert store_id.startswith("cks-") and len(store_id) == 21
    kms_error(hsm_trent, "CreateCustomKeyStore", "CustomKeyStoreNameInUseException", *create())
    kms_error(hsm_trent, "CreateCustomKeyStore", "CloudHsmClusterInUseException", *create(name="cli-store-2"))

    entry = store_entry(hsm_trent, store_id)
    assert entry["CustomKeyStoreName"] == "cli-store"
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert entry["CloudHsmClusterId"] == CLUSTER
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert "ConnectionErrorCode" not in entry and "KeyStorePassword" not in entry
    by_name = kms_json(hsm_trent, "describe-custom-key-stores", "--custom-key-store-name", "cli-store")["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in by_name] == [store_id]
    kms_error(hsm_trent, "DescribeCustomKeyStores", "CustomKeyStoreNotFoundException", "describe-custom-key-stores", "--custom-key-store-name", "nope")

    # Not connected: no keys, no random bytes, nothing to disconnect.
    kms_error(
        hsm_trent, "CreateKey", "CustomKeyStoreInvalidStateException",
        "create-key", "--origin", "AWS_CLOUDHSM", "--custom-key-store-id", store_id,
    )
    kms_error(hsm_trent, "DisconnectCustomKeyStore", "CustomKeyStoreInvalidStateException", "disconnect-custom-key-store", "--custom-key-store-id", store_id)

    # A wrong password: connect is accepted, the store ends FAILED / INVALID_CREDENTIALS, and
    # a FAILED store must be disconnected before anything else.
    kms(hsm_trent, "update-custom-key-store", "--custom-key-store-id", store_id, "--key-store-password", "not-the-pin")
    kms(hsm_trent, "connect-custom-key-store", "--custom-key-store-id", store_id)
    entry = store_entry(hsm_trent, store_id)
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == ("FAILED", "INVALID_CREDENTIALS")
    kms_error(hsm_trent, "ConnectCustomKeyStore", "CustomKeyStoreInvalidStateException", "connect-custom-key-store", "--custom-key-store-id", store_id)
    kms(hsm_trent, "disconnect-custom-key-store", "--custom-key-store-id", store_id)
    kms(hsm_trent, "update-custom-key-store", "--custom-key-store-id", store_id, "--key-store-password", PIN,
        "--new-custom-key-store-name", "cli-store-renamed")
    entry = store_entry(hsm_trent, store_id)
    assert (entry["CustomKeyStoreName"], entry["ConnectionState"]) == ("cli-store-renamed", "DISCONNECTED")

    # Connected: the password cannot change, the store cannot be deleted.
    kms(hsm_trent, "connect-custom-key-store", "--custom-key-store-id", store_id)
    assert store_entry(hsm_trent, store_id)["ConnectionState"] == "CONNECTED"
    kms_error(
        hsm_trent, "UpdateCustomKeyStore", "CustomKeyStoreInvalidStateException",
        "update-custom-key-store", "--custom-key-store-id", store_id, "--key-store-password", "another-pin-1",
    )
    kms_error(hsm_trent, "DeleteCustomKeyStore", "CustomKeyStoreInvalidStateException", "delete-custom-key-store", "--custom-key-store-id", store_id)
    random = kms(hsm_trent, "generate-random", "--number-of-bytes", "32", "--custom-key-store-id", store_id,
                 "--query", "Plaintext", "--output", "text").stdout
    assert len(base64.b64decode(random.strip(), validate=True)) == 32

    # A key in the store, used through files.
    meta = kms_json(hsm_trent, "create-key", "--origin", "AWS_CLOUDHSM", "--custom-key-store-id", store_id,
                    "--description", "in the token")["KeyMetadata"]
    assert meta["Origin"] == "AWS_CLOUDHSM"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["CloudHsmClusterId"] == CLUSTER
    assert meta["KeyState"] == "Enabled"
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{meta['KeyId']}"
    plain = os.urandom(100)
    (tmp_path / "plain.bin").write_bytes(plain)
    ct = kms(hsm_trent, "encrypt", "--key-id", meta["KeyId"], "--plaintext", f"fileb://{tmp_path / 'plain.bin'}",
             "--encryption-context", "app=cli", "--query", "CiphertextBlob", "--output", "text").stdout.strip()
    (tmp_path / "cipher.bin").write_bytes(base64.b64decode(ct, validate=True))
    decrypt = ["decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}", "--encryption-context", "app=cli"]
    out = kms_json(hsm_trent, *decrypt)
    assert base64.b64decode(out["Plaintext"]) == plain
    assert out["KeyId"] == meta["Arn"]

    # Disconnected: the key is Unavailable, decrypt is refused; the store holds a key.
    kms(hsm_trent, "disconnect-custom-key-store", "--custom-key-store-id", store_id)
    assert kms_json(hsm_trent, "describe-key", "--key-id", meta["KeyId"])["KeyMetadata"]["KeyState"] == "Unavailable"
    kms_error(hsm_trent, "Decrypt", "KMSInvalidStateException", *decrypt)
    kms_error(hsm_trent, "DeleteCustomKeyStore", "CustomKeyStoreHasCMKsException", "delete-custom-key-store", "--custom-key-store-id", store_id)

    # Reconnected: works again. Then the key is deleted and the store can go.
    kms(hsm_trent, "connect-custom-key-store", "--custom-key-store-id", store_id)
    assert base64.b64decode(kms_json(hsm_trent, *decrypt)["Plaintext"]) == plain
    kms(hsm_trent, "schedule-key-deletion", "--key-id", meta["KeyId"], "--pending-window-in-days", "7")
    kms_error(hsm_trent, "DeleteCustomKeyStore", "CustomKeyStoreInvalidStateException", "delete-custom-key-store", "--custom-key-store-id", store_id)
    kms(hsm_trent, "disconnect-custom-key-store", "--custom-key-store-id", store_id)
    kms_error(hsm_trent, "DeleteCustomKeyStore", "CustomKeyStoreHasCMKsException", "delete-custom-key-store", "--custom-key-store-id", store_id)
    assert hsm_trent.advance_clock(7 * 86400 + 60)["Deleted"] == 1
    kms(hsm_trent, "delete-custom-key-store", "--custom-key-store-id", store_id)
    kms_error(hsm_trent, "DescribeCustomKeyStores", "CustomKeyStoreNotFoundException", "describe-custom-key-stores", "--custom-key-store-id", store_id)
    assert kms_json(hsm_trent, "describe-custom-key-stores")["CustomKeyStores"] == []

