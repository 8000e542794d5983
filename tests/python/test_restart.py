"""Durability: what Trent acknowledged survives a SIGKILL and a restart on the same data directory."""

import json

from conftest import AKID_B, SECRET_B


def test_keys_aliases_tags_and_ciphertexts_survive_sigkill(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    first = start_trent(data_dir)
    kms = first.client()
    key = kms.create_key(Description="durable", Tags=[{"TagKey": "k", "TagValue": "v"}])["KeyMetadata"]
    kms.create_alias(AliasName="alias/durable", TargetKeyId=key["KeyId"])
    disabled = kms.create_key(Description="disabled before the crash")["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    policy["Id"] = "edited-before-crash"
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    blob = kms.encrypt(KeyId="alias/durable", Plaintext=b"still here", EncryptionContext={"c": "1"})["CiphertextBlob"]
    b_key = first.client(AKID_B, SECRET_B).create_key()["KeyMetadata"]

    first.kill_9()
    assert first.proc.returncode == -9

    second = start_trent(data_dir)
    assert second.endpoint != "" and second.proc.poll() is None
    kms = second.client()
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"c": "1"})["Plaintext"] == b"still here"

    listed = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert listed == {key["KeyId"], disabled["KeyId"]}
    assert kms.describe_key(KeyId="alias/durable")["KeyMetadata"]["Arn"] == key["Arn"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "durable"
    assert kms.describe_key(KeyId=disabled["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "k", "TagValue": "v"}]
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])["Id"] == "edited-before-crash"
    assert [k["KeyId"] for k in second.client(AKID_B, SECRET_B).list_keys()["Keys"]] == [b_key["KeyId"]]

    # The restarted server keeps working normally.
    again = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after restart")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"after restart"


def test_graceful_shutdown_on_sigterm(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    first = start_trent(data_dir)
    key = first.client().create_key()["KeyMetadata"]
    assert first.terminate() == 0
    assert "Trent stopped" in first.lines

    second = start_trent(data_dir)
    assert [k["KeyId"] for k in second.client().list_keys()["Keys"]] == [key["KeyId"]]


def test_root_key_file_is_private_and_reused(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    first = start_trent(data_dir)
    blob = first.client().encrypt(KeyId=first.client().create_key()["KeyMetadata"]["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    root_key = data_dir / "root.key"
    assert root_key.stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    before = root_key.read_bytes()
    first.kill_9()

    second = start_trent(data_dir)
    assert root_key.read_bytes() == before
    assert second.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
