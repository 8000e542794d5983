"""IAM, STS and KMS authorization through boto3 and the AWS CLI: the same endpoint serves all
three services, and KMS decisions follow key policies, IAM policies and STS sessions."""

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, AKID_B, REGION, SECRET_A, SECRET_B, kms_client
from test_awscli import run_aws


def client(service: str, endpoint: str, akid: str, secret: str, token: str | None = None):
    return boto3.session.Session(
        aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
    ).client(service, endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def allow(actions, resource="*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})


def test_boto3_user_with_and_without_identity_policy(endpoint, kms):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="ivy", Path="/team/")
    key = iam.create_access_key(UserName="ivy")["AccessKey"]
    ivy = kms_client(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    with pytest.raises(ClientError) as e:
        ivy.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    assert "arn:aws:iam::111122223333:user/team/ivy" in e.value.response["Error"]["Message"]

    iam.put_user_policy(UserName="ivy", PolicyName="enc", PolicyDocument=allow(["kms:Encrypt", "kms:Decrypt"]))
    # botocore URL-decodes and parses the policy document IAM returns.
    got = iam.get_user_policy(UserName="ivy", PolicyName="enc")["PolicyDocument"]
    assert got["Statement"][0]["Action"] == ["kms:Encrypt", "kms:Decrypt"]
    blob = ivy.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert ivy.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    who = client("sts", endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    assert who["Arn"] == "arn:aws:iam::111122223333:user/team/ivy"
    assert who["UserId"].startswith("AIDA")


def test_boto3_assume_role_cross_account_and_use_a_key(endpoint, kms):
    key_arn = kms.create_key(
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
                    {"Sid": "b", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"},
                ],
            }
        )
    )["KeyMetadata"]["Arn"]
    iam_b = client("iam", endpoint, AKID_B, SECRET_B)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": "sts:AssumeRole"}]}
    role = iam_b.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
    iam_b.put_role_policy(RoleName="worker", PolicyName="use", PolicyDocument=allow("kms:Encrypt", key_arn))

    creds = client("sts", endpoint, AKID_B, SECRET_B).assume_role(RoleArn=role["Arn"], RoleSessionName="job-1")["Credentials"]
    session = client("kms", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert session.encrypt(KeyId=key_arn, Plaintext=b"b")["KeyId"] == key_arn
    with pytest.raises(ClientError) as e:
        session.describe_key(KeyId=key_arn)  # the key policy allows it, the role's IAM policy does not
    assert error_code(e) == "AccessDeniedException"
    who = client("sts", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT_B}:assumed-role/worker/job-1"

    bad = client("kms", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"][:-4] + "AAAA")
    with pytest.raises(ClientError) as e:
        bad.list_keys()
    assert error_code(e) == "UnrecognizedClientException"


def test_boto3_iam_errors_are_aws_codes(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="dup")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="dup")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="missing")
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName="dup", PolicyName="p", PolicyDocument='{"Statement": "nope"}')
    iam.put_user_policy(UserName="dup", PolicyName="p", PolicyDocument=allow("kms:*"))
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName="dup")
    with pytest.raises(ClientError) as e:
        client("iam", endpoint, AKID_A, "wrong").list_users()
    assert error_code(e) == "SignatureDoesNotMatch"


def test_cli_iam_sts_and_kms_grant(endpoint, kms):
    run_aws(endpoint, "iam", "create-user", "--user-name", "cli-user")
    created = json.loads(run_aws(endpoint, "iam", "create-access-key", "--user-name", "cli-user").stdout)["AccessKey"]
    who = json.loads(run_aws(endpoint, "sts", "get-caller-identity", akid=created["AccessKeyId"], secret=created["SecretAccessKey"]).stdout)
    assert who["Arn"] == "arn:aws:iam::111122223333:user/cli-user"

    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    denied = run_aws(endpoint, "kms", "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256",
                     akid=created["AccessKeyId"], secret=created["SecretAccessKey"], check=False)
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    grant = json.loads(run_aws(endpoint, "kms", "create-grant", "--key-id", key_id, "--grantee-principal", who["Arn"],
                               "--operations", "GenerateDataKey").stdout)
    allowed = run_aws(endpoint, "kms", "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256",
                      akid=created["AccessKeyId"], secret=created["SecretAccessKey"])
    assert json.loads(allowed.stdout)["KeyId"].endswith(key_id)
    grants = json.loads(run_aws(endpoint, "kms", "list-grants", "--key-id", key_id).stdout)["Grants"]
    assert [g["GrantId"] for g in grants] == [grant["GrantId"]]
    run_aws(endpoint, "kms", "revoke-grant", "--key-id", key_id, "--grant-id", grant["GrantId"])
    again = run_aws(endpoint, "kms", "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256",
                    akid=created["AccessKeyId"], secret=created["SecretAccessKey"], check=False)
    assert again.returncode != 0 and "AccessDeniedException" in again.stderr


def test_get_session_token_credentials_cannot_call_iam(endpoint):
    # AWS: credentials from GetSessionToken without MFA may call any service but IAM (and no
    # STS operation but AssumeRole and GetCallerIdentity); IAM answers InvalidClientTokenId.
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="gst-user")
    iam.put_user_policy(UserName="gst-user", PolicyName="all", PolicyDocument=allow("*"))
    key = iam.create_access_key(UserName="gst-user")["AccessKey"]
    creds = client("sts", endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_session_token(DurationSeconds=900)[
        "Credentials"
    ]
    temp = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(ClientError) as e:
        client("iam", endpoint, *temp).create_user(UserName="made-by-session")
    assert error_code(e) == "InvalidClientTokenId"
    with pytest.raises(ClientError) as e:
        client("iam", endpoint, *temp).create_access_key(UserName="gst-user")
    assert error_code(e) == "InvalidClientTokenId"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="made-by-session")
    # The same credentials still work for KMS and GetCallerIdentity.
    assert client("sts", endpoint, *temp).get_caller_identity()["Arn"].endswith(":user/gst-user")
    assert "Keys" in client("kms", endpoint, *temp).list_keys()
