"""Principals bound to IAM unique ids, through boto3 (issue 11): a key policy naming a user or role
names the entity that held the ARN when the policy was set. Deleted and re-created under the same
name, the new user is denied, and GetKeyPolicy shows the old unique id where the ARN was, as AWS
does; a role trust policy behaves the same way."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, AKID_A, SECRET_A, kms_client
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
