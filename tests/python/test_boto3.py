"""boto3 (botocore's KMS model, SigV4 signing and error parsing) against a real Trent."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, REGION


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def key_arn(key_id: str, account: str = ACCOUNT_A, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def new_key(kms, description: str = "") -> dict:
    return kms.create_key(Description=description)["KeyMetadata"]


def test_create_key_and_describe_it_by_id_arn_and_alias(kms):
    meta = new_key(kms, "python e2e")
    key_id = meta["KeyId"]
    uuid.UUID(key_id)  # a key id is a UUID
    assert meta["Arn"] == key_arn(key_id)
    assert meta["AWSAccountId"] == ACCOUNT_A
    assert meta["Description"] == "python e2e"
    assert meta["Enabled"] is True
    assert meta["KeyState"] == "Enabled"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["CreationDate"].year >= 2024

    kms.create_alias(AliasName="alias/describe-me", TargetKeyId=key_id)
    for ref in [key_id, meta["Arn"], "alias/describe-me", f"arn:aws:kms:{REGION}:{ACCOUNT_A}:alias/describe-me"]:
        described = kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert described["KeyId"] == key_id, ref
        assert described["Arn"] == meta["Arn"], ref

    kms.update_key_description(KeyId=key_id, Description="renamed")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "renamed"


def test_encrypt_decrypt_round_trip_with_encryption_context(kms):
    key = new_key(kms)
    plaintext = b"\x00attack at dawn\xff" * 10
    context = {"purpose": "e2e", "tenant": "acme"}

    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context)
    assert enc["KeyId"] == key["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = enc["CiphertextBlob"]
    assert plaintext not in blob
    assert len(blob) > len(plaintext)

    # Symmetric ciphertext names its key, so Decrypt needs no KeyId.
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    # With the matching KeyId it works too; two encryptions of the same plaintext differ.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=key["Arn"])["Plaintext"] == plaintext
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"] != blob


def test_wrong_or_missing_encryption_context_is_invalid_ciphertext(kms):
    key = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext={"a": "1"})["CiphertextBlob"]

    for context in [{"a": "2"}, {"a": "1", "b": "2"}, {"A": "1"}]:
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob)


def test_tampered_ciphertext_is_invalid_ciphertext(kms):
    key = new_key(kms)
    blob = bytearray(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"])
    blob[-1] ^= 0x01
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=bytes(blob))
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=b"not a kms ciphertext at all")


def test_decrypt_with_a_different_key_id_is_incorrect_key(kms):
    k1, k2 = new_key(kms), new_key(kms)
    blob = kms.encrypt(KeyId=k1["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(kms.exceptions.IncorrectKeyException):
        kms.decrypt(CiphertextBlob=blob, KeyId=k2["KeyId"])


def test_generate_data_key_and_without_plaintext(kms):
    key = new_key(kms)
    context = {"file": "report.pdf"}

    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=context)
    assert dk["KeyId"] == key["Arn"]
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == dk["Plaintext"]

    dk16 = kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16)
    assert len(dk16["Plaintext"]) == 16
    assert kms.decrypt(CiphertextBlob=dk16["CiphertextBlob"])["Plaintext"] == dk16["Plaintext"]
    assert dk16["Plaintext"] != dk["Plaintext"][:16]

    wo = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_128", EncryptionContext=context)
    assert "Plaintext" not in wo
    assert wo["KeyId"] == key["Arn"]
    assert len(kms.decrypt(CiphertextBlob=wo["CiphertextBlob"], EncryptionContext=context)["Plaintext"]) == 16


def test_generate_random(kms):
    a = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert len(a) == len(b) == 32
    assert a != b
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024


def test_re_encrypt_moves_ciphertext_to_another_key_and_context(kms):
    k1, k2 = new_key(kms), new_key(kms)
    plaintext = b"rotate me"
    blob = kms.encrypt(KeyId=k1["KeyId"], Plaintext=plaintext, EncryptionContext={"v": "1"})["CiphertextBlob"]

    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "1"},
        DestinationKeyId=k2["KeyId"],
        DestinationEncryptionContext={"v": "2"},
    )
    assert out["SourceKeyId"] == k1["Arn"]
    assert out["KeyId"] == k2["Arn"]
    assert out["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert out["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    dec = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"v": "2"})
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == k2["Arn"]
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"v": "1"})

    # The source context is checked too.
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"v": "2"}, DestinationKeyId=k2["KeyId"])


def test_aliases_create_list_update_delete(kms):
    k1, k2 = new_key(kms), new_key(kms)
    kms.create_alias(AliasName="alias/app", TargetKeyId=k1["KeyId"])

    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/app"]["TargetKeyId"] == k1["KeyId"]
    assert aliases["alias/app"]["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_A}:alias/app"
    by_key = kms.list_aliases(KeyId=k1["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in by_key] == ["alias/app"]
    assert kms.list_aliases(KeyId=k2["KeyId"])["Aliases"] == []

    # An alias works wherever a key id does.
    blob = kms.encrypt(KeyId="alias/app", Plaintext=b"via alias")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == k1["Arn"]

    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName="alias/app", TargetKeyId=k2["KeyId"])

    kms.update_alias(AliasName="alias/app", TargetKeyId=k2["KeyId"])
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == k2["KeyId"]
    assert kms.encrypt(KeyId="alias/app", Plaintext=b"x")["KeyId"] == k2["Arn"]

    kms.delete_alias(AliasName="alias/app")
    assert "alias/app" not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="alias/app")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.delete_alias(AliasName="alias/app")
    # The keys themselves are untouched.
    assert kms.describe_key(KeyId=k1["KeyId"])["KeyMetadata"]["Enabled"] is True


def test_alias_names_are_validated(kms):
    key = new_key(kms)
    # The alias/aws/ prefix belongs to AWS managed keys (an error code outside the KMS model).
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/aws/reserved", TargetKeyId=key["KeyId"])
    assert error_code(e) == "NotAuthorizedException"
    for bad in ["alias/bad name!", "no-prefix"]:
        with pytest.raises(ClientError) as e:
            kms.create_alias(AliasName=bad, TargetKeyId=key["KeyId"])
        assert error_code(e) == "ValidationException", bad
    assert kms.list_aliases()["Aliases"] == []


def test_tags_tag_list_untag(kms):
    key = new_key(kms)
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == []

    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "env", "TagValue": "test"}, {"TagKey": "team", "TagValue": "sec"}])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert tags == {"env": "test", "team": "sec"}

    # Tagging an existing key replaces its value.
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "env", "TagValue": "prod"}])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert tags == {"env": "prod", "team": "sec"}

    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]

    # Tags given at creation.
    tagged = kms.create_key(Tags=[{"TagKey": "born", "TagValue": "tagged"}])["KeyMetadata"]
    assert kms.list_resource_tags(KeyId=tagged["KeyId"])["Tags"] == [{"TagKey": "born", "TagValue": "tagged"}]


def test_key_policy_get_put_list(kms):
    key = new_key(kms)
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]

    default = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    statements = default["Statement"]
    assert any(
        s["Effect"] == "Allow" and s.get("Principal", {}).get("AWS") == f"arn:aws:iam::{ACCOUNT_A}:root" and s["Action"] in ("kms:*", ["kms:*"])
        for s in statements
    ), default

    new_policy = {
        "Version": "2012-10-17",
        "Id": "python-e2e",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Let B encrypt",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
                "Action": ["kms:Encrypt", "kms:DescribeKey"],
                "Resource": "*",
            },
        ],
    }
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(new_policy))
    stored = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert stored == new_policy

    # GetKeyPolicy without a PolicyName defaults to "default" (the 2024 API change).
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"])["Policy"]) == new_policy


def test_malformed_key_policy_is_rejected(kms):
    key = new_key(kms)
    with pytest.raises(kms.exceptions.MalformedPolicyDocumentException):
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json")
    # The old policy is still in force.
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"]


def test_disabled_key_refuses_crypto_until_enabled(kms):
    key = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]

    kms.disable_key(KeyId=key["KeyId"])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["Enabled"] is False
    assert meta["KeyState"] == "Disabled"
    with pytest.raises(kms.exceptions.DisabledException):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after")
    with pytest.raises(kms.exceptions.DisabledException):
        kms.decrypt(CiphertextBlob=blob)
    with pytest.raises(kms.exceptions.DisabledException):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")

    kms.enable_key(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_unknown_key_is_not_found(kms):
    missing = str(uuid.uuid4())
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=missing)
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.encrypt(KeyId=key_arn(missing), Plaintext=b"x")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.encrypt(KeyId="alias/does-not-exist", Plaintext=b"x")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.enable_key(KeyId=missing)


def test_invalid_parameters_are_validation_exceptions(kms):
    key = new_key(kms)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.generate_random(NumberOfBytes=1025)
    assert error_code(e) == "ValidationException"


def test_wrong_secret_is_invalid_signature(trent):
    bad = trent.client(AKID_A, "not-the-secret")
    with pytest.raises(ClientError) as e:
        bad.list_keys()
    assert error_code(e) == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_access_key_is_unrecognized_client(trent):
    stranger = trent.client("AKIAUNKNOWN000000000", "whatever")
    with pytest.raises(ClientError) as e:
        stranger.list_keys()
    assert error_code(e) == "UnrecognizedClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_accounts_are_isolated(kms, kms_b):
    key = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"a's data")["CiphertextBlob"]

    # By ARN, another account's key exists but B is not allowed to use it.
    with pytest.raises(ClientError) as e:
        kms_b.describe_key(KeyId=key["Arn"])
    assert error_code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        kms_b.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "AccessDeniedException"
    # A bare key id is looked up in the caller's own account.
    with pytest.raises(kms_b.exceptions.NotFoundException):
        kms_b.describe_key(KeyId=key["KeyId"])

    b_keys = {k["KeyId"] for k in kms_b.list_keys()["Keys"]}
    assert key["KeyId"] not in b_keys
    b_key = new_key(kms_b)
    assert b_key["Arn"] == key_arn(b_key["KeyId"], account=ACCOUNT_B)
    assert b_key["KeyId"] not in {k["KeyId"] for k in kms.list_keys()["Keys"]}


def test_key_policy_can_grant_another_account(kms, kms_b):
    key = new_key(kms)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    blob = kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"from b")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from b"
    # Only Encrypt was granted.
    with pytest.raises(ClientError) as e:
        kms_b.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "AccessDeniedException"


def test_keys_are_regional(trent):
    east = trent.client(region="us-east-1")
    west = trent.client(region="eu-west-1")
    key = west.create_key()["KeyMetadata"]
    assert key["Arn"] == key_arn(key["KeyId"], region="eu-west-1")
    assert west.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    with pytest.raises(east.exceptions.NotFoundException):
        east.describe_key(KeyId=key["KeyId"])
    assert key["KeyId"] not in {k["KeyId"] for k in east.list_keys()["Keys"]}


def test_list_keys_paginates(kms):
    created = {new_key(kms)["KeyId"] for _ in range(7)}

    first = kms.list_keys(Limit=3)
    assert len(first["Keys"]) == 3
    assert first["Truncated"] is True
    assert first["NextMarker"]

    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    assert len(pages) == 3
    seen = [k["KeyId"] for page in pages for k in page["Keys"]]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == created
    for page in pages:
        for k in page["Keys"]:
            assert k["KeyArn"] == key_arn(k["KeyId"])
    assert pages[-1]["Truncated"] is False
    assert "NextMarker" not in pages[-1]

    with pytest.raises(ClientError) as e:
        kms.list_keys(Marker="garbage-marker")
    assert error_code(e) == "InvalidMarkerException"


def test_list_aliases_paginates(kms):
    key = new_key(kms)
    names = {f"alias/page-{i}" for i in range(5)}
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    pages = list(kms.get_paginator("list_aliases").paginate(KeyId=key["KeyId"], PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert {a["AliasName"] for p in pages for a in p["Aliases"]} == names

