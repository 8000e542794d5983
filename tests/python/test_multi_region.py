"""Multi-Region keys through boto3 and the AWS CLI, in three Regions of one account: a primary and
its replicas, ciphertexts crossing Regions, shared rotation, UpdatePrimaryRegion, independent
policies, deletion order, the service-linked role, imported material, and every refusal with
AWS's error code."""

import json
import os
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, AKID_A, AKID_B, SECRET_A, SECRET_B, kms_client
from test_awscli import aws_command, cli_env
from test_lifecycle import import_material

US = "us-east-1"
EU = "eu-west-1"
AP = "ap-southeast-2"
DAY = 86_400


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def iam_client(endpoint: str, akid: str = AKID_A, secret: str = SECRET_A):
    return boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret, region_name=US).client(
        "iam", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1})
    )


def wait_for_state(kms, key_id: str, state: str, timeout: float = 15.0) -> dict:
    """Polls DescribeKey until the key is in `state` (the background task runs every second)."""
    deadline = time.monotonic() + timeout
    while True:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta["KeyState"] == state:
            return meta
        assert time.monotonic() < deadline, f"{key_id} stayed {meta['KeyState']}, not {state}"
        time.sleep(0.2)


@pytest.fixture
def regions(trent):
    """boto3 KMS clients of account A in three Regions."""
    return {r: trent.client(region=r) for r in (US, EU, AP)}


def make_replicated(regions, **create) -> str:
    us, eu = regions[US], regions[EU]
    key_id = us.create_key(MultiRegion=True, **create)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    wait_for_state(eu, key_id, "Enabled" if create.get("Origin") != "EXTERNAL" else "PendingImport")
    return key_id


def test_multi_region_create_replicate_and_describe(regions):
    us, eu = regions[US], regions[EU]
    meta = us.create_key(MultiRegion=True, Description="mrk")["KeyMetadata"]
    key_id = meta["KeyId"]
    assert key_id.startswith("mrk-") and len(key_id) == 36
    assert meta["MultiRegion"] is True
    primary_arn = f"arn:aws:kms:{US}:{ACCOUNT_A}:key/{key_id}"
    assert meta["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": primary_arn, "Region": US},
        "ReplicaKeys": [],
    }
    # Not yet in eu-west-1: AWS's NotFound, by id and (for the other Region's ARN) by ARN.
    with pytest.raises(ClientError) as e:
        eu.describe_key(KeyId=key_id)
    assert error_code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        eu.describe_key(KeyId=primary_arn)
    assert e.value.response["Error"]["Message"] == f"Invalid arn {US}"

    out = us.replicate_key(
        KeyId=key_id, ReplicaRegion=EU, Description="replica", Tags=[{"TagKey": "team", "TagValue": "eu"}]
    )
    replica = out["ReplicaKeyMetadata"]
    replica_arn = f"arn:aws:kms:{EU}:{ACCOUNT_A}:key/{key_id}"
    assert replica["KeyState"] == "Creating" and replica["Enabled"] is False
    assert replica["Arn"] == replica_arn and replica["KeyId"] == key_id
    assert "CurrentKeyMaterialId" not in replica
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["MultiRegionConfiguration"]["PrimaryKey"] == {"Arn": primary_arn, "Region": US}
    assert replica["MultiRegionConfiguration"]["ReplicaKeys"] == [{"Arn": replica_arn, "Region": EU}]
    assert json.loads(out["ReplicaPolicy"])["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}
    assert out["ReplicaTags"] == [{"TagKey": "team", "TagValue": "eu"}]

    enabled = wait_for_state(eu, key_id, "Enabled")
    assert enabled["Description"] == "replica"
    assert enabled["CurrentKeyMaterialId"] == us.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert us.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]["ReplicaKeys"] == [
        {"Arn": replica_arn, "Region": EU}
    ]
    # Listed per Region, aliases per Region.
    assert key_id in [k["KeyId"] for k in eu.list_keys()["Keys"]]
    assert key_id not in [k["KeyId"] for k in regions[AP].list_keys()["Keys"]]
    eu.create_alias(AliasName="alias/mrk", TargetKeyId=key_id)
    assert [a["TargetKeyId"] for a in eu.list_aliases()["Aliases"] if a["AliasName"] == "alias/mrk"] == [key_id]
    with pytest.raises(ClientError):
        us.describe_key(KeyId="alias/mrk")


def test_multi_region_encrypt_in_one_region_decrypt_in_another(regions):
    us, eu, ap = regions[US], regions[EU], regions[AP]
    key_id = make_replicated(regions)
    blob = us.encrypt(KeyId=key_id, Plaintext=b"across", EncryptionContext={"k": "v"})["CiphertextBlob"]
    out = eu.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    assert out["Plaintext"] == b"across"
    assert out["KeyId"] == f"arn:aws:kms:{EU}:{ACCOUNT_A}:key/{key_id}"
    back = eu.encrypt(KeyId=key_id, Plaintext=b"home")["CiphertextBlob"]
    assert us.decrypt(CiphertextBlob=back, KeyId=key_id)["Plaintext"] == b"home"
    # ReEncrypt in the replica's Region from a primary's ciphertext.
    eu.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"k": "v"}, DestinationKeyId=key_id)
    # No related key in ap-southeast-2.
    with pytest.raises(ClientError) as e:
        ap.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    assert error_code(e) == "InvalidCiphertextException"


def test_multi_region_hmac_and_signing_keys_verify_across_regions(regions):
    us, eu = regions[US], regions[EU]
    mac_key = make_replicated(regions, KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")
    mac = us.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert eu.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_384")["MacValid"]
    sign_key = make_replicated(regions, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    sig = eu.sign(KeyId=sign_key, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    assert us.verify(KeyId=sign_key, Message=b"m", Signature=sig, SigningAlgorithm="RSASSA_PSS_SHA_256")[
        "SignatureValid"
    ]
    assert us.get_public_key(KeyId=sign_key)["PublicKey"] == eu.get_public_key(KeyId=sign_key)["PublicKey"]


def test_multi_region_rotation_is_shared(trent, regions):
    us, eu, ap = regions[US], regions[EU], regions[AP]
    key_id = make_replicated(regions)
    old_blob = us.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]
    old_material = eu.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    us.rotate_key_on_demand(KeyId=key_id)
    new_material = us.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert new_material != old_material
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == new_material
    # The new material is used in the replica's Region; old ciphertexts still decrypt there.
    new_blob = eu.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
    assert us.decrypt(CiphertextBlob=new_blob)["KeyMaterialId"] == new_material
    assert eu.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"old"
    # A replica created after the rotation gets the whole history.
    us.replicate_key(KeyId=key_id, ReplicaRegion=AP)
    wait_for_state(ap, key_id, "Enabled")
    assert ap.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"old"
    assert len(ap.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    # Only the primary sets rotation; its setting shows on the replicas.
    with pytest.raises(ClientError) as e:
        eu.rotate_key_on_demand(KeyId=key_id)
    assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        eu.enable_key_rotation(KeyId=key_id)
    assert error_code(e) == "UnsupportedOperationException"
    us.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = eu.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    # Automatic rotation on the primary's schedule reaches every Region.
    trent.advance_clock(91 * DAY)
    rotated = us.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert rotated != new_material
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == rotated
    assert ap.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == rotated


def test_multi_region_update_primary_region(regions):
    us, eu, ap = regions[US], regions[EU], regions[AP]
    key_id = make_replicated(regions)
    us.replicate_key(KeyId=key_id, ReplicaRegion=AP)
    wait_for_state(ap, key_id, "Enabled")
    us.update_primary_region(KeyId=key_id, PrimaryRegion=EU)
    # Both keys are Updating for the next two seconds: asked at once, before anything else.
    with pytest.raises(ClientError) as e:
        eu.disable_key(KeyId=key_id)
    assert error_code(e) == "KMSInvalidStateException"
    assert e.value.response["Error"]["Message"].endswith("is updating.")
    assert us.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Updating"
    # Cryptography still works while Updating.
    eu.encrypt(KeyId=key_id, Plaintext=b"x")
    meta = wait_for_state(eu, key_id, "Enabled")
    wait_for_state(us, key_id, "Enabled")
    config = meta["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"
    assert config["PrimaryKey"]["Region"] == EU
    assert sorted(r["Region"] for r in config["ReplicaKeys"]) == [AP, US]
    assert us.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert ap.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == EU
    # The old primary is a replica now: it cannot be replicated or made to update the primary.
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion="us-west-2")
    assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        us.update_primary_region(KeyId=key_id, PrimaryRegion=AP)
    assert error_code(e) == "UnsupportedOperationException"
    # No related key in the target Region.
    with pytest.raises(ClientError) as e:
        eu.update_primary_region(KeyId=key_id, PrimaryRegion="us-west-2")
    assert error_code(e) == "NotFoundException"


def test_multi_region_refusals_use_aws_codes(trent, regions):
    us, eu = regions[US], regions[EU]
    key_id = make_replicated(regions)
    replica_arn = f"arn:aws:kms:{EU}:{ACCOUNT_A}:key/{key_id}"
    # A replica of a replica (AWS's recorded message).
    with pytest.raises(ClientError) as e:
        eu.replicate_key(KeyId=key_id, ReplicaRegion=AP)
    assert error_code(e) == "UnsupportedOperationException"
    assert e.value.response["Error"]["Message"] == f"{replica_arn} is not a multi-region primary key."
    # A Region that already has one.
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    assert error_code(e) == "AlreadyExistsException"
    # The primary's own Region.
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion=US)
    assert error_code(e) == "UnsupportedOperationException"
    # A single-Region key.
    plain = us.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=plain, ReplicaRegion=EU)
    assert error_code(e) == "UnsupportedOperationException"
    # Another account.
    other = trent.client(AKID_B, SECRET_B)
    with pytest.raises(ClientError) as e:
        other.replicate_key(KeyId=f"arn:aws:kms:{US}:{ACCOUNT_A}:key/{key_id}", ReplicaRegion=AP)
    assert error_code(e) == "AccessDeniedException"
    # An invalid Region name (botocore checks only the length; the pattern is the server's).
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion="not_a_region")
    assert error_code(e) == "ValidationException"
    # A disabled primary.
    us.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion=AP)
    assert error_code(e) == "DisabledException"


def test_multi_region_policies_are_independent(trent, regions):
    us = regions[US]
    iam = iam_client(trent.endpoint)
    iam.create_user(UserName="mia")
    key = iam.create_access_key(UserName="mia")["AccessKey"]
    mia_arn = f"arn:aws:iam::{ACCOUNT_A}:user/mia"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "mia", "Effect": "Allow", "Principal": {"AWS": mia_arn}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
        ],
    }
    key_id = us.create_key(MultiRegion=True, Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    # The replica gets the default policy, not the primary's.
    us.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    wait_for_state(regions[EU], key_id, "Enabled")
    mia_us = kms_client(trent.endpoint, key["AccessKeyId"], key["SecretAccessKey"], US)
    mia_eu = kms_client(trent.endpoint, key["AccessKeyId"], key["SecretAccessKey"], EU)
    blob = mia_us.encrypt(KeyId=key_id, Plaintext=b"mia")["CiphertextBlob"]
    assert mia_us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"mia"
    with pytest.raises(ClientError) as e:
        mia_eu.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "AccessDeniedException"
    # Tags, description and enabled state are per key too.
    regions[EU].disable_key(KeyId=key_id)
    assert us.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True
    us.tag_resource(KeyId=key_id, Tags=[{"TagKey": "home", "TagValue": "us"}])
    assert regions[EU].list_resource_tags(KeyId=key_id)["Tags"] == []


def test_multi_region_replicate_needs_iam_create_key_in_the_replica_region(trent, regions):
    us = regions[US]
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    iam = iam_client(trent.endpoint)
    iam.create_user(UserName="rex")
    access = iam.create_access_key(UserName="rex")["AccessKey"]
    iam.put_user_policy(
        UserName="rex",
        PolicyName="replicate",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "kms:ReplicateKey", "Resource": "*", "Condition": {"StringEquals": {"kms:ReplicaRegion": EU}}},
                    {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": EU}}},
                ],
            }
        ),
    )
    rex = kms_client(trent.endpoint, access["AccessKeyId"], access["SecretAccessKey"], US)
    rex.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    # ap-southeast-2 is refused by kms:ReplicaRegion.
    with pytest.raises(ClientError) as e:
        rex.replicate_key(KeyId=key_id, ReplicaRegion=AP)
    assert error_code(e) == "AccessDeniedException"
    # Tags on a replica need kms:TagResource (in its Region) too.
    other = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        rex.replicate_key(KeyId=other, ReplicaRegion=EU, Tags=[{"TagKey": "k", "TagValue": "v"}])
    assert error_code(e) == "AccessDeniedException"
    assert "kms:TagResource" in e.value.response["Error"]["Message"]


def test_multi_region_deletion_order(trent, regions):
    us, eu = regions[US], regions[EU]
    key_id = make_replicated(regions)
    out = us.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion"
    assert "DeletionDate" not in out and out["PendingWindowInDays"] == 7
    meta = us.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in meta
    with pytest.raises(ClientError) as e:
        us.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "KMSInvalidStateException"
    # The replica is unaffected; deleting it lets the primary's own window start.
    eu.encrypt(KeyId=key_id, Plaintext=b"x")
    eu.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    trent.advance_clock(7 * DAY + 1)
    with pytest.raises(ClientError) as e:
        eu.describe_key(KeyId=key_id)
    assert error_code(e) == "NotFoundException"
    meta = us.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta
    assert meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    trent.advance_clock(7 * DAY + 1)
    with pytest.raises(ClientError) as e:
        us.describe_key(KeyId=key_id)
    assert error_code(e) == "NotFoundException"


def test_multi_region_service_linked_role(trent, regions):
    iam = iam_client(trent.endpoint)
    name = "AWSServiceRoleForKeyManagementServiceMultiRegionKeys"
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=name)
    assert error_code(e) == "NoSuchEntity"
    regions[US].create_key(MultiRegion=True)
    role = iam.get_role(RoleName=name)["Role"]
    assert role["Path"] == "/aws-service-role/mrk.kms.amazonaws.com/"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_A}:role/aws-service-role/mrk.kms.amazonaws.com/{name}"
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "mrk.kms.amazonaws.com"}
    policy_arn = "arn:aws:iam::aws:policy/aws-service-role/AWSKeyManagementServiceMultiRegionKeysServiceRolePolicy"
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy_arn]
    policy = iam.get_policy(PolicyArn=policy_arn)["Policy"]
    assert policy["Arn"] == policy_arn and policy["DefaultVersionId"] == "v2"
    versions = iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2"]
    v2 = iam.get_policy_version(PolicyArn=policy_arn, VersionId="v2")["PolicyVersion"]["Document"]
    assert v2["Statement"][0]["Sid"] == "KMSSynchronizeMultiRegionKey"
    assert v2["Statement"][0]["Action"] == ["kms:SynchronizeMultiRegionKey"]
    v1 = iam.get_policy_version(PolicyArn=policy_arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert "Sid" not in v1["Statement"][0]
    # Protected: not deletable, not editable, not assumable by customers, policy not attachable.
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName=name)
    assert error_code(e) == "UnmodifiableEntity"
    with pytest.raises(ClientError) as e:
        iam.put_role_policy(RoleName=name, PolicyName="x", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    assert error_code(e) == "UnmodifiableEntity"
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT_A}, "Action": "sts:AssumeRole"}]}))
    assert error_code(e) == "UnmodifiableEntity"
    iam.create_user(UserName="sam")
    with pytest.raises(ClientError) as e:
        iam.attach_user_policy(UserName="sam", PolicyArn=policy_arn)
    assert error_code(e) == "PolicyNotAttachable"
    sts = boto3.session.Session(aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A, region_name=US).client(
        "sts", endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="intruder")
    assert error_code(e) == "AccessDenied"
    # A second primary keeps the same role.
    regions[EU].create_key(MultiRegion=True)
    assert iam.get_role(RoleName=name)["Role"]["RoleId"] == role["RoleId"]


def test_multi_region_imported_material_must_match(regions):
    us, eu = regions[US], regions[EU]
    key_id = us.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    import_material(us, key_id, material)
    us.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    # Imported material is never copied: the replica waits for its own import.
    wait_for_state(eu, key_id, "PendingImport")
    with pytest.raises(ClientError) as e:
        import_material(eu, key_id, os.urandom(32))
    assert error_code(e) == "IncorrectKeyMaterialException"
    import_material(eu, key_id, material)
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    blob = us.encrypt(KeyId=key_id, Plaintext=b"byok")["CiphertextBlob"]
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"byok"


def test_multi_region_new_imported_material_rotates_in_every_region(regions):
    """AWS's flow for new imported material of a multi-Region key: NEW_KEY_MATERIAL into the
    primary, the same material into every replica, then RotateKeyOnDemand of the primary."""
    us = regions[US]
    key_id = us.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    first = os.urandom(32)
    first_id = import_material(us, key_id, first)["KeyMaterialId"]
    for region in (EU, AP):
        us.replicate_key(KeyId=key_id, ReplicaRegion=region)
        wait_for_state(regions[region], key_id, "PendingImport")
        import_material(regions[region], key_id, first)
    old_blob = us.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]

    def states(region):
        rotations = regions[region].list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
        return [(r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"]) for r in rotations["Rotations"]]

    second = os.urandom(32)
    second_id = import_material(us, key_id, second, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    pending_all = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
    assert states(US) == [(first_id, "CURRENT", "IMPORTED"), (second_id, pending_all, "IMPORTED")]
    assert states(EU) == [(first_id, "CURRENT", "IMPORTED"), (second_id, pending_all, "PENDING_IMPORT")]
    with pytest.raises(ClientError) as e:
        us.rotate_key_on_demand(KeyId=key_id)
    assert error_code(e) == "KMSInvalidStateException"
    # New material goes into the primary only; a replica imports the primary's.
    with pytest.raises(ClientError) as e:
        import_material(regions[EU], key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    assert error_code(e) == "UnsupportedOperationException"
    import_material(regions[EU], key_id, second, ImportType="EXISTING_KEY_MATERIAL")
    assert states(US)[1] == (second_id, pending_all, "IMPORTED")
    import_material(regions[AP], key_id, second)
    for region in (US, EU, AP):
        assert states(region) == [(first_id, "CURRENT", "IMPORTED"), (second_id, "PENDING_ROTATION", "IMPORTED")]

    with pytest.raises(ClientError) as e:
        regions[EU].rotate_key_on_demand(KeyId=key_id)
    assert error_code(e) == "UnsupportedOperationException"
    assert us.rotate_key_on_demand(KeyId=key_id)["KeyId"] == f"arn:aws:kms:{US}:{ACCOUNT_A}:key/{key_id}"
    for region in (US, EU, AP):
        kms = regions[region]
        assert states(region) == [(first_id, "NON_CURRENT", "IMPORTED"), (second_id, "CURRENT", "IMPORTED")]
        assert kms.list_key_rotations(KeyId=key_id)["Rotations"][0]["RotationType"] == "ON_DEMAND"
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == second_id
        new = kms.encrypt(KeyId=key_id, Plaintext=b"new")
        for other in (US, EU, AP):
            opened = regions[other].decrypt(CiphertextBlob=new["CiphertextBlob"])
            assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"new", second_id)
        opened = kms.decrypt(CiphertextBlob=old_blob)
        assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"old", first_id)


def test_multi_region_replica_finishes_creating_after_restart(start_trent, tmp_path):
    data = tmp_path / "data"
    server = start_trent(data_dir=data)
    us = server.client(region=US)
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion=EU)
    # Killed while the replica is still Creating (the transition takes two seconds).
    server.kill_9()
    again = start_trent(data_dir=data)
    eu = again.client(region=EU)
    wait_for_state(eu, key_id, "Enabled")
    blob = again.client(region=US).encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after"


def test_multi_region_with_the_aws_cli(trent):
    import subprocess

    def aws(region: str, *args: str) -> dict:
        env = cli_env(AWS_ACCESS_KEY_ID=AKID_A, AWS_SECRET_ACCESS_KEY=SECRET_A, AWS_DEFAULT_REGION=region)
        proc = subprocess.run(
            [*aws_command(), "--endpoint-url", trent.endpoint, "--output", "json", "kms", *args],
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    key_id = aws(US, "create-key", "--multi-region")["KeyMetadata"]["KeyId"]
    out = aws(US, "replicate-key", "--key-id", key_id, "--replica-region", EU)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "Creating"
    wait_for_state(trent.client(region=EU), key_id, "Enabled")
    # AWS CLI v1 sends --plaintext as given (v2 would base64-decode it first).
    blob = aws(US, "encrypt", "--key-id", key_id, "--plaintext", "hello")["CiphertextBlob"]
    import base64
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(base64.b64decode(blob))
        f.flush()
        plain = aws(EU, "decrypt", "--ciphertext-blob", f"fileb://{f.name}")["Plaintext"]
    assert base64.b64decode(plain) == b"hello"
    aws(US, "update-primary-region", "--key-id", key_id, "--primary-region", EU)
    meta = wait_for_state(trent.client(region=EU), key_id, "Enabled")
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


def test_multi_region_encryption_sdk_mrk_aware_providers(tmp_path, trent, regions):
    """The AWS Encryption SDK's MRK-aware providers: a message encrypted under the primary in
    us-east-1 is decrypted through the replica in eu-west-1 (the SDK calls Decrypt there)."""
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    from aws_encryption_sdk.key_providers.kms import MRKAwareStrictAwsKmsMasterKeyProvider

    from test_encryption_sdk import botocore_session, record_kms_calls

    key_id = make_replicated(regions)
    primary_arn = f"arn:aws:kms:{US}:{ACCOUNT_A}:key/{key_id}"
    replica_arn = f"arn:aws:kms:{EU}:{ACCOUNT_A}:key/{key_id}"
    session = botocore_session(tmp_path, trent.endpoint, AKID_A, SECRET_A)
    calls = record_kms_calls(session)
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    message, _ = sdk.encrypt(
        source=b"one message, two Regions",
        key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[primary_arn], botocore_session=session),
    )
    plaintext, header = sdk.decrypt(
        source=message,
        key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[replica_arn], botocore_session=session),
    )
    assert plaintext == b"one message, two Regions"
    assert ("Decrypt", None) in calls


def test_multi_region_replica_answers_never_show_the_internal_regional_id(trent, regions):
    """Trent names each related key `mrk-…@<region>` inside; every answer about a replica (its
    aliases, grants, key list, rotation list, errors) must show only AWS's `mrk-…` id and ARN."""
    us, eu = regions[US], regions[EU]
    key_id = make_replicated(regions)
    arn = f"arn:aws:kms:{EU}:{ACCOUNT_A}:key/{key_id}"
    eu.create_alias(AliasName="alias/replica-only", TargetKeyId=key_id)
    grant = eu.create_grant(
        KeyId=arn, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_A}:root", Operations=["Decrypt"]
    )
    answers = [
        eu.list_aliases(KeyId=key_id),
        eu.list_aliases(),
        eu.list_grants(KeyId=key_id),
        eu.list_keys(),
        eu.describe_key(KeyId="alias/replica-only"),
        eu.list_key_rotations(KeyId=key_id),
        eu.get_key_rotation_status(KeyId=key_id),
        us.describe_key(KeyId=key_id),
        grant,
    ]
    for answer in answers:
        answer.pop("ResponseMetadata", None)
        text = json.dumps(answer, default=str)
        assert "@" not in text, text
    aliases = eu.list_aliases(KeyId=key_id)["Aliases"]
    assert [a["TargetKeyId"] for a in aliases] == [key_id]
    assert eu.list_grants(KeyId=key_id)["Grants"][0]["KeyId"] == arn
    assert {"KeyId": key_id, "KeyArn": arn} in eu.list_keys()["Keys"]
    eu.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        eu.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "DisabledException"
    assert "@" not in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]
