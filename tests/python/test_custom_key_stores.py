"""AWS_CLOUDHSM custom key stores end to end with boto3: a real trent over a private SoftHSM2
token declared as `[[hsm_cluster]]`. Create, describe, connect, disconnect, reconnect, wrong
PIN, undeclared cluster, wrong trust anchor, GenerateRandom from the token, the
service-linked role, and the password never stored in clear.

(CreateKey in a custom key store is not implemented yet: see docs/custom-key-stores.md.)
"""

import os
import sqlite3
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import ACCOUNT_A, AKID_A, REGION, SECRET_A

MODULES = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
]
CLUSTER = "cluster-1a2b3c4d5e6"
LABEL = "trent-cluster-1"
PIN = "kmsuser-pin-1"
ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTrentTestAnchor\n-----END CERTIFICATE-----\n"
SLR = "AWSServiceRoleForKeyManagementServiceCustomKeyStores"


def softhsm_module() -> str:
    for m in MODULES:
        if os.path.exists(m):
            return m
    pytest.fail("SoftHSM2 is not installed: run `apt-get install -y softhsm2` (as root), or ./scripts/test")


@pytest.fixture
def hsm_trent(start_trent, tmp_path, monkeypatch):
    """A trent with one declared HSM cluster on a fresh SoftHSM2 token (PIN `PIN`)."""
    module = softhsm_module()
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--so-pin", "so-pin-1", "--pin", PIN],
        check=True, env=env, capture_output=True,
    )
    (tmp_path / "cluster-ca.pem").write_text(ANCHOR)
    # trent reads SOFTHSM2_CONF from its environment (conftest passes os.environ on).
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    extra = (
        f'[[hsm_cluster]]\nid = "{CLUSTER}"\npkcs11_module = "{module}"\n'
        f'token_label = "{LABEL}"\ntrust_anchor_certificate = "cluster-ca.pem"\n'
    )
    return start_trent(extra_config=extra)


def store_state(kms, store_id):
    entry = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    return entry["ConnectionState"], entry.get("ConnectionErrorCode")


def create(kms, name="hsm-store", pin=PIN, cluster=CLUSTER, anchor=ANCHOR):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name, CloudHsmClusterId=cluster, TrustAnchorCertificate=anchor, KeyStorePassword=pin
    )["CustomKeyStoreId"]


def test_custom_key_store_lifecycle_with_softhsm(hsm_trent):
    kms = hsm_trent.client()
    iam = boto3.session.Session(aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A, region_name=REGION).client(
        "iam", endpoint_url=hsm_trent.endpoint, config=Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=SLR)

    # An undeclared cluster and a different certificate are refused.
    with pytest.raises(kms.exceptions.CloudHsmClusterNotFoundException):
        create(kms, cluster="cluster-234567abcdefg")
    other = "-----BEGIN CERTIFICATE-----\nMIIBotherAnchor\n-----END CERTIFICATE-----\n"
    with pytest.raises(kms.exceptions.IncorrectTrustAnchorException):
        create(kms, anchor=other)

    store_id = create(kms, pin="wrong-pin-1")
    assert store_id.startswith("cks-")
    role = iam.get_role(RoleName=SLR)["Role"]
    assert role["Path"] == "/aws-service-role/cks.kms.amazonaws.com/"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_A}:role/aws-service-role/cks.kms.amazonaws.com/{SLR}"

    with pytest.raises(kms.exceptions.CustomKeyStoreNameInUseException):
        create(kms)
    entry = kms.describe_custom_key_stores()["CustomKeyStores"][0]
    assert entry["CustomKeyStoreId"] == store_id
    assert entry["CloudHsmClusterId"] == CLUSTER
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert "KeyStorePassword" not in entry

    # A wrong PIN: the connect is accepted, the store ends FAILED / INVALID_CREDENTIALS.
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id) == ("FAILED", "INVALID_CREDENTIALS")
    with pytest.raises(kms.exceptions.CustomKeyStoreInvalidStateException):
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword=PIN)

    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id) == ("CONNECTED", None)
    assert len(kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=store_id)["Plaintext"]) == 32
    with pytest.raises(kms.exceptions.CustomKeyStoreInvalidStateException):
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)

    # Disconnect → refused; reconnect → works.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id) == ("DISCONNECTED", None)
    with pytest.raises(kms.exceptions.CustomKeyStoreInvalidStateException):
        kms.generate_random(NumberOfBytes=16, CustomKeyStoreId=store_id)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert len(kms.generate_random(NumberOfBytes=16, CustomKeyStoreId=store_id)["Plaintext"]) == 16

    # Paging and the name filter.
    page = kms.describe_custom_key_stores(Limit=1)
    assert len(page["CustomKeyStores"]) == 1 and page["Truncated"] is False
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.describe_custom_key_stores(CustomKeyStoreName="nope")

    # The password is not in the database in clear.
    db = sqlite3.connect(hsm_trent.data_dir / "trent.db")
    (wrapped,) = db.execute("SELECT wrapped_password FROM custom_key_stores").fetchone()
    assert PIN.encode() not in bytes(wrapped)
    db.close()

    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.describe_custom_key_stores(CustomKeyStoreId=store_id)
