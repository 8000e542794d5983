"""AWS_CLOUDHSM custom key stores end to end with boto3: a real trent over a private SoftHSM2
token declared as `[[hsm_cluster]]`. Create, describe, connect, disconnect, reconnect, wrong
PIN, undeclared cluster, wrong trust anchor, GenerateRandom from the token, the
service-linked role, and the password never stored in clear. Keys in the store: made in the
token (its material not in Trent's database), used for Encrypt/Decrypt/GenerateDataKey*/
ReEncrypt, Unavailable while the store is disconnected, AWS's errors for what such keys do not
support, deletion, and the store refused deletion while it holds keys.
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


hsm_trent_env: dict = {}


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
    hsm_trent_env["tokens"] = tokens
    # trent reads SOFTHSM2_CONF from its environment (conftest passes os.environ on).
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    extra = (
        f'[[hsm_cluster]]\nid = "{CLUSTER}"\npkcs11_module = "{module}"\n'
        f'token_label = "{LABEL}"\ntrust_anchor_certificate = "cluster-ca.pem"\nmax_keys = 2\n'
    )
    # For a test that restarts the server on the same data directory and token.
    hsm_trent_env["restart"] = lambda data_dir: start_trent(data_dir=data_dir, extra_config=extra)
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


def token_objects() -> int:
    """How many objects the token holds, as its directory shows (SoftHSM2 keeps one file per
    object; a private object's attributes, its label too, are encrypted with the user PIN)."""
    return len(list(Path(hsm_trent_env["tokens"]).rglob("*.object")))


def test_keys_in_a_cloudhsm_store_live_in_the_token(hsm_trent):
    kms = hsm_trent.client()
    store_id = create(kms)

    # Not connected: refused; wrong origin and spec combinations as AWS.
    with pytest.raises(kms.exceptions.CustomKeyStoreInvalidStateException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId="cks-1234567890abcdef0")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, MultiRegion=True)
    with pytest.raises(kms.exceptions.ClientError) as e:
        kms.create_key(Origin="AWS_CLOUDHSM")
    assert e.value.response["Error"]["Code"] == "ValidationException"

    before = token_objects()
    meta = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, Description="in the HSM")["KeyMetadata"]
    key_id, arn = meta["KeyId"], meta["Arn"]
    assert meta["Origin"] == "AWS_CLOUDHSM"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["CloudHsmClusterId"] == CLUSTER
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (described["CustomKeyStoreId"], described["CloudHsmClusterId"]) == (store_id, CLUSTER)
    # The key was made in the token: one more object there.
    assert token_objects() == before + 1

    ctx = {"purpose": "e2e"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hsm secret", EncryptionContext=ctx)["CiphertextBlob"]
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert out["Plaintext"] == b"hsm secret" and out["KeyId"] == arn
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob)
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    dk2 = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=16)
    assert len(kms.decrypt(CiphertextBlob=dk2["CiphertextBlob"])["Plaintext"]) == 16
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=other)
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key_id)
    assert back["KeyId"] == arn
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"hsm secret"

    # What these keys do not support, as AWS answers.
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.get_key_rotation_status(KeyId=key_id)
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.enable_key_rotation(KeyId=key_id)
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.import_key_material(
            KeyId=key_id, ImportToken=b"x" * 16, EncryptedKeyMaterial=b"y" * 16,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )

    # The key's row names its store; its material row holds a root-wrapped reference to the
    # token key (AES-GCM of a 70-byte label reference), not 32 bytes of key material wrapped
    # (the built-in key's row).
    db = sqlite3.connect(hsm_trent.data_dir / "trent.db")
    row = db.execute("SELECT custom_key_store_id FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    assert row == (store_id,)
    (held_len,) = db.execute("SELECT length(wrapped) FROM key_materials WHERE key_id = ?", (key_id,)).fetchone()
    (own_len,) = db.execute("SELECT length(wrapped) FROM key_materials WHERE key_id = ?", (other,)).fetchone()
    assert held_len - own_len == len(f"trent:held-key:v1:pkcs11-label:{key_id}") - 32
    db.close()

    # Disconnected: Unavailable, crypto refused with AWS's error; DisableKey is accepted and
    # shows after the reconnect; the store cannot be deleted while it holds keys.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    with pytest.raises(kms.exceptions.KMSInvalidStateException) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert e.value.response["Error"]["Message"] == f"{arn} is unavailable."
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    with pytest.raises(kms.exceptions.CustomKeyStoreHasCMKsException):
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"hsm secret"

    # The store's key quota (max_keys = 2 in this cluster's declaration).
    second = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.LimitExceededException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)

    # Deletion: ScheduleKeyDeletion works on an Unavailable key; a key deleted while the store
    # is connected has its token key destroyed.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    for k in (key_id, second):
        assert kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=second)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert hsm_trent.advance_clock(7 * 86400 + 60)["Deleted"] == 2
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=key_id)
    assert token_objects() == before, "both token keys destroyed with their KMS keys"

    # No keys left: the store can be deleted once disconnected.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)


def test_a_store_key_works_after_a_restart(hsm_trent):
    """The store row says CONNECTED; the restarted server has no connection of its own and
    opens one on the key's first use (no token I/O at start)."""
    kms = hsm_trent.client()
    store_id = create(kms)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    key_id = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"across a restart")["CiphertextBlob"]
    assert hsm_trent.terminate() == 0

    again = hsm_trent_env["restart"](hsm_trent.data_dir)
    kms = again.client()
    assert store_state(kms, store_id) == ("CONNECTED", None)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["CloudHsmClusterId"]) == ("Enabled", CLUSTER)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across a restart"


def test_cks_service_linked_role_cannot_be_deleted_while_a_store_exists(hsm_trent):
    kms = hsm_trent.client()
    iam = boto3.session.Session(aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A, region_name=REGION).client(
        "iam", endpoint_url=hsm_trent.endpoint, config=Config(retries={"total_max_attempts": 1})
    )
    store_id = create(kms)
    task = iam.delete_service_linked_role(RoleName=SLR)["DeletionTaskId"]
    status = iam.get_service_linked_role_deletion_status(DeletionTaskId=task)
    assert status["Status"] == "FAILED"
    usage = status["Reason"]["RoleUsageList"]
    assert usage[0]["Region"] == REGION
    assert usage[0]["Resources"] == [f"arn:aws:kms:{REGION}:{ACCOUNT_A}:custom-key-store/{store_id}"]
    iam.get_role(RoleName=SLR)

    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    task = iam.delete_service_linked_role(RoleName=SLR)["DeletionTaskId"]
    assert iam.get_service_linked_role_deletion_status(DeletionTaskId=task)["Status"] == "SUCCEEDED"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=SLR)


def test_root_key_held_in_a_pkcs11_token(start_trent, tmp_path, monkeypatch, capfd):
    """`[root_key_pkcs11]`: the root key is generated in a token on first start (no root.key),
    wraps everything at rest, is found again after a restart, and a database without its
    token key is refused rather than given a new root key."""
    module = softhsm_module()
    tokens = tmp_path / "root-tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2-root.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "trent-root", "--so-pin", "so-pin-1", "--pin", PIN],
        check=True, env=env, capture_output=True,
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    pin_file = tmp_path / "root.pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    extra = (
        f'[root_key_pkcs11]\npkcs11_module = "{module}"\ntoken_label = "trent-root"\n'
        f'pin_file = "{pin_file}"\n'
    )
    data = tmp_path / "data"
    server = start_trent(data_dir=data, extra_config=extra)
    assert not (data / "root.key").exists()
    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"under a token root")["CiphertextBlob"]
    assert server.terminate() == 0

    # Everything at rest is wrapped by the token (version 2), none by a file root key.
    db = sqlite3.connect(data / "trent.db")
    versions = {bytes(w)[0] for (w,) in db.execute("SELECT wrapped FROM key_materials")}
    db.close()
    assert versions == {2}

    again = start_trent(data_dir=data, extra_config=extra)
    assert again.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"under a token root"
    assert again.terminate() == 0

    # Another key label: that key is not in the token and the database exists: refused.
    other = extra + 'key_label = "another-root"\n'
    capfd.readouterr()
    with pytest.raises(RuntimeError):
        start_trent(data_dir=data, extra_config=other)
    assert "refusing to generate a new root key" in capfd.readouterr().err
    # A wrong PIN is refused at start, naming no PIN.
    monkeypatch.setenv("TRENT_ROOT_KEY_PIN", "wrong-pin-9")
    with pytest.raises(RuntimeError):
        start_trent(data_dir=data, extra_config=extra)
    err = capfd.readouterr().err
    assert "refused the key store password" in err and "wrong-pin-9" not in err


def test_two_nodes_follow_a_store_connected_and_disconnected_on_the_other(start_trent, tmp_path, monkeypatch):
    """Two nodes on one PostgreSQL database and one token: a key made on A is used on B (B
    opens its own connection to the store persisted CONNECTED); A's disconnect reaches B
    through the change feed (B's key reads Unavailable and is refused), A's reconnect too."""
    import time

    from pgcluster import PgCluster

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
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    hsm = (
        f'[[hsm_cluster]]\nid = "{CLUSTER}"\npkcs11_module = "{module}"\n'
        f'token_label = "{LABEL}"\ntrust_anchor_certificate = "{tmp_path / "cluster-ca.pem"}"\n'
    )

    def until(what, check, limit=5.0):
        started = time.monotonic()
        while not check():
            assert time.monotonic() - started < limit, f"{what}: not within {limit} s"
            time.sleep(0.02)

    with PgCluster() as pg:
        url = pg.fresh_database()
        a = start_trent(tmp_path / "a" / "data", extra_config=f'database = "{url}"\n' + hsm)
        root_key = a.data_dir / "root.key"
        b = start_trent(
            tmp_path / "b" / "data", extra_config=f'database = "{url}"\nroot_key_file = "{root_key}"\n' + hsm
        )
        ka, kb = a.client(), b.client()
        store_id = create(ka)
        ka.connect_custom_key_store(CustomKeyStoreId=store_id)
        key_id = ka.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)["KeyMetadata"]["KeyId"]
        blob = ka.encrypt(KeyId=key_id, Plaintext=b"two nodes")["CiphertextBlob"]
        assert kb.decrypt(CiphertextBlob=blob)["Plaintext"] == b"two nodes"
        assert kb.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"

        ka.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        until("B sees the key Unavailable",
              lambda: kb.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable")
        with pytest.raises(kb.exceptions.KMSInvalidStateException):
            kb.decrypt(CiphertextBlob=blob)

        ka.connect_custom_key_store(CustomKeyStoreId=store_id)
        until("B sees the key Enabled again",
              lambda: kb.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled")
        assert kb.decrypt(CiphertextBlob=blob)["Plaintext"] == b"two nodes"
        for node in (a, b):
            node.kill_9()
