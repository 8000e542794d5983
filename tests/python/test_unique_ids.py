"""Principals bound to IAM unique ids, through boto3 (issue 11): a key policy naming a user or role
names the entity that held the ARN when the policy was set. Deleted and re-created under the same
name, the new user is denied, and GetKeyPolicy shows the old unique id where the ARN was, as AWS
does; a role trust policy behaves the same way."""

import json
import sqlite3

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, SECRET_A, kms_client
from test_iam_sts import client, error_code


def key_policy(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "use", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
            ],
        }
    )


def use_principal(policy_text: str):
    statement = next(s for s in json.loads(policy_text)["Statement"] if s["Sid"] == "use")
    return statement["Principal"]["AWS"]


def new_user(iam, endpoint, name):
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user_id = iam.get_user(UserName=name)["User"]["UserId"]
    return key, kms_client(endpoint, key["AccessKeyId"], key["SecretAccessKey"]), user_id


def test_recreated_user_is_denied_and_get_key_policy_shows_the_unique_id(endpoint, kms):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    arn = f"arn:aws:iam::{ACCOUNT_A}:user/ursula"
    key, ursula, old_id = new_user(iam, endpoint, "ursula")
    assert old_id.startswith("AIDA")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy(arn))
    assert ursula.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)
    assert use_principal(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == arn

    iam.delete_access_key(UserName="ursula", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="ursula")
    # AWS shows the deleted user's unique id in place of its ARN.
    assert use_principal(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == old_id

    _, again, new_id = new_user(iam, endpoint, "ursula")
    assert new_id != old_id
    with pytest.raises(ClientError) as e:
        again.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    assert use_principal(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == old_id

    # A unique id written into a policy is not a principal KMS accepts.
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy(new_id))
    assert error_code(e) == "MalformedPolicyDocumentException"

    # Setting the policy again binds the ARN to the new user.
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy(arn))
    assert again.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)


def test_recreated_role_in_a_trust_policy_is_refused_and_get_role_shows_its_unique_id(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    sts = client("sts", endpoint, AKID_A, SECRET_A)
    root_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "sts:AssumeRole"}]}
    first = iam.create_role(RoleName="phoenix", AssumeRolePolicyDocument=json.dumps(root_trust))["Role"]
    trust_phoenix = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": first["Arn"]}, "Action": "sts:AssumeRole"}]}
    target = iam.create_role(RoleName="ember", AssumeRolePolicyDocument=json.dumps(trust_phoenix))["Role"]

    def chained():
        creds = sts.assume_role(RoleArn=first["Arn"], RoleSessionName="s1")["Credentials"]
        session = client("sts", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        return session.assume_role(RoleArn=target["Arn"], RoleSessionName="s2")

    assert chained()["AssumedRoleUser"]["Arn"].endswith("assumed-role/ember/s2")
    iam.delete_role(RoleName="phoenix")
    iam.create_role(RoleName="phoenix", AssumeRolePolicyDocument=json.dumps(root_trust))
    with pytest.raises(ClientError) as e:
        chained()
    assert error_code(e) == "AccessDenied"
    shown = iam.get_role(RoleName="ember")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"]["AWS"] == first["RoleId"]


def test_grant_to_a_recreated_user_is_not_usable(endpoint, kms):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    arn = f"arn:aws:iam::{ACCOUNT_A}:user/gideon"
    key, gideon, _ = new_user(iam, endpoint, "gideon")
    # The default key policy: gideon (no IAM policy) can use the key only through the grant.
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_grant(KeyId=key_id, GranteePrincipal=arn, Operations=["Encrypt"])
    assert gideon.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)

    iam.delete_access_key(UserName="gideon", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="gideon")
    _, again, _ = new_user(iam, endpoint, "gideon")
    with pytest.raises(ClientError) as e:
        again.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    # ListGrants keeps the grantee as it was given (docs/decisions.md: AWS does not say).
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [g["GranteePrincipal"] for g in grants] == [arn]


def trust_of(principal: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


def test_trust_policy_naming_a_missing_user_or_role_is_malformed(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    nobody = f"arn:aws:iam::{ACCOUNT_A}:user/nobody"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="orphan", AssumeRolePolicyDocument=trust_of({"AWS": nobody}))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_code(e) == "MalformedPolicyDocument"
    assert e.value.response["Error"]["Message"] == f'Invalid principal in policy: "AWS":"{nobody}"'
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="orphan")
    assert error_code(e) == "NoSuchEntity"

    # An account root, another account, a service principal: accepted, as in AWS.
    iam.create_role(RoleName="by-root", AssumeRolePolicyDocument=trust_of({"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}))
    iam.create_role(RoleName="by-other", AssumeRolePolicyDocument=trust_of({"AWS": ACCOUNT_B}))
    iam.create_role(RoleName="by-service", AssumeRolePolicyDocument=trust_of({"Service": "ec2.amazonaws.com"}))

    ghost = f"arn:aws:iam::{ACCOUNT_A}:role/ghost"
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="by-root", PolicyDocument=trust_of({"AWS": ghost}))
    assert error_code(e) == "MalformedPolicyDocument"
    assert e.value.response["Error"]["Message"] == f'Invalid principal in policy: "AWS":"{ghost}"'
    shown = iam.get_role(RoleName="by-root")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}


def test_key_policy_naming_a_missing_user_or_role_is_malformed(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for principal in (f"arn:aws:iam::{ACCOUNT_A}:user/nobody", f"arn:aws:iam::{ACCOUNT_A}:role/nobody"):
        for call in (
            lambda: kms.create_key(Policy=key_policy(principal)),
            lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy(principal)),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert error_code(e) == "MalformedPolicyDocumentException"
            assert e.value.response["Error"]["Message"] == "Policy contains a statement with one or more invalid principals."


def test_key_policy_stored_before_bindings_is_bound_at_start_up(start_trent, tmp_path):
    """A key policy stored before schema version 12 (no bindings, no record of the start-up pass)
    is bound when Trent starts to the user holding the ARN then: a re-created user is denied."""
    data = tmp_path / "data"
    server = start_trent(data_dir=data)
    iam = client("iam", server.endpoint, AKID_A, SECRET_A)
    kms = server.client()
    arn = f"arn:aws:iam::{ACCOUNT_A}:user/odette"
    key, odette, old_id = new_user(iam, server.endpoint, "odette")
    key_id = kms.create_key(Policy=key_policy(arn))["KeyMetadata"]["KeyId"]
    assert server.terminate() == 0

    db = sqlite3.connect(data / "trent.db")
    with db:
        assert db.execute("SELECT policy_principals FROM keys WHERE key_id = ?", (key_id,)).fetchone()[0] is not None
        db.execute("UPDATE keys SET policy_principals = NULL WHERE key_id = ?", (key_id,))
        db.execute("DELETE FROM service_settings WHERE name = 'pass_done:principal_bindings'")
    db.close()

    again = start_trent(data_dir=data)
    db = sqlite3.connect(data / "trent.db")
    (stored,) = db.execute("SELECT policy_principals FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    db.close()
    assert json.loads(stored) == {arn: old_id}

    iam = client("iam", again.endpoint, AKID_A, SECRET_A)
    kms = again.client()
    iam.delete_access_key(UserName="odette", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="odette")
    _, recreated, new_id = new_user(iam, again.endpoint, "odette")
    assert new_id != old_id
    with pytest.raises(ClientError) as e:
        recreated.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    assert use_principal(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == old_id
