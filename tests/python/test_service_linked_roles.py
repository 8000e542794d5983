"""Service-linked roles through boto3 and the AWS CLI: CreateServiceLinkedRole (description,
custom suffix, KMS's own roles refused), every customer change refused with UnmodifiableEntity
but the description, AssumeRole refused to customers, DeleteServiceLinkedRole and its deletion
status (FAILED while KMS still uses its multi-Region role)."""

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, AKID_A, REGION, SECRET_A
from test_awscli import run_aws

SLR = "AWSServiceRoleForAutoScaling"
SLR_ARN = f"arn:aws:iam::{ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/{SLR}"
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def client(trent, service: str, akid: str = AKID_A, secret: str = SECRET_A):
    return boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret, region_name=REGION).client(
        service, endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1})
    )


def test_create_service_linked_role(trent):
    iam = client(trent, "iam")
    role = iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com", Description="scales")["Role"]
    assert role["Arn"] == SLR_ARN
    assert role["Path"] == "/aws-service-role/autoscaling.amazonaws.com/"
    assert role["Description"] == "scales"
    trust = iam.get_role(RoleName=SLR)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "autoscaling.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    # A second one for the same service needs another suffix.
    with pytest.raises(ClientError) as e:
        iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    assert error_code(e) == "InvalidInput"
    suffixed = iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com", CustomSuffix="web")["Role"]
    assert suffixed["RoleName"] == f"{SLR}_web"
    with pytest.raises(ClientError) as e:
        iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com", CustomSuffix="no spaces")
    assert error_code(e) == "ValidationError"
    # KMS makes its own two roles; customers cannot.
    for service in ["mrk.kms.amazonaws.com", "cks.kms.amazonaws.com"]:
        with pytest.raises(ClientError) as e:
            iam.create_service_linked_role(AWSServiceName=service)
        assert error_code(e) == "InvalidInput", service
    with pytest.raises(ClientError) as e:
        iam.create_service_linked_role(AWSServiceName="Not A Service")
    assert error_code(e) == "InvalidInput"
    # The AWS CLI, as the IAM guide writes it.
    out = run_aws(trent.endpoint, "iam", "create-service-linked-role", "--aws-service-name", "ec2.amazonaws.com")
    assert json.loads(out.stdout)["Role"]["RoleName"] == "AWSServiceRoleForEc2"


def test_service_linked_role_refuses_every_customer_change_but_its_description(trent):
    iam = client(trent, "iam")
    iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    policy_arn = iam.create_policy(PolicyName="p", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_A}, "Action": "sts:AssumeRole"}]})
    changes = {
        "PutRolePolicy": lambda: iam.put_role_policy(RoleName=SLR, PolicyName="x", PolicyDocument=ALLOW_ALL),
        "DeleteRolePolicy": lambda: iam.delete_role_policy(RoleName=SLR, PolicyName="x"),
        "AttachRolePolicy": lambda: iam.attach_role_policy(RoleName=SLR, PolicyArn=policy_arn),
        "DetachRolePolicy": lambda: iam.detach_role_policy(RoleName=SLR, PolicyArn=policy_arn),
        "UpdateAssumeRolePolicy": lambda: iam.update_assume_role_policy(RoleName=SLR, PolicyDocument=trust),
        "UpdateRole": lambda: iam.update_role(RoleName=SLR, MaxSessionDuration=7200),
        "TagRole": lambda: iam.tag_role(RoleName=SLR, Tags=[{"Key": "k", "Value": "v"}]),
        "DeleteRole": lambda: iam.delete_role(RoleName=SLR),
    }
    for name, change in changes.items():
        with pytest.raises(ClientError) as e:
            change()
        assert error_code(e) == "UnmodifiableEntity", name
    role = iam.update_role_description(RoleName=SLR, Description="new words")["Role"]
    assert role["Description"] == "new words"
    assert iam.get_role(RoleName=SLR)["Role"]["Description"] == "new words"
    assert iam.list_role_policies(RoleName=SLR)["PolicyNames"] == []
    # No customer may assume it, not even the account root whose trust it would need.
    sts = client(trent, "sts")
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=SLR_ARN, RoleSessionName="intruder")
    assert error_code(e) == "AccessDenied"
    # An ordinary role is still the customer's to change.
    iam.create_role(RoleName="plain", AssumeRolePolicyDocument=trust)
    iam.update_role(RoleName="plain", MaxSessionDuration=7200)
    assert iam.get_role(RoleName="plain")["Role"]["MaxSessionDuration"] == 7200


def test_delete_service_linked_role(trent):
    iam = client(trent, "iam")
    iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    task = iam.delete_service_linked_role(RoleName=SLR)["DeletionTaskId"]
    assert task.startswith(f"task/aws-service-role/autoscaling.amazonaws.com/{SLR}/")
    status = iam.get_service_linked_role_deletion_status(DeletionTaskId=task)
    assert status["Status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=SLR)
    assert error_code(e) == "NoSuchEntity"
    with pytest.raises(ClientError) as e:
        iam.delete_service_linked_role(RoleName=SLR)
    assert error_code(e) == "NoSuchEntity"
    with pytest.raises(ClientError) as e:
        iam.get_service_linked_role_deletion_status(
            DeletionTaskId=f"task/aws-service-role/autoscaling.amazonaws.com/{SLR}/00000000-0000-0000-0000-000000000000")
    assert error_code(e) == "NoSuchEntity"
    # An ordinary role is not deleted this way.
    iam.create_role(RoleName="plain", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_A}, "Action": "sts:AssumeRole"}]}))
    with pytest.raises(ClientError) as e:
        iam.delete_service_linked_role(RoleName="plain")
    assert error_code(e) == "InvalidInput"


def test_kms_multi_region_role_cannot_be_deleted_while_multi_region_keys_exist(trent):
    iam = client(trent, "iam")
    kms = trent.client()
    key_id = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    name = "AWSServiceRoleForKeyManagementServiceMultiRegionKeys"
    out = run_aws(trent.endpoint, "iam", "delete-service-linked-role", "--role-name", name)
    task = json.loads(out.stdout)["DeletionTaskId"]
    status = iam.get_service_linked_role_deletion_status(DeletionTaskId=task)
    assert status["Status"] == "FAILED"
    usage = status["Reason"]["RoleUsageList"]
    assert usage == [{"Region": REGION, "Resources": [f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{key_id}"]}]
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
    # Its version history is that of its AWS managed policy.
    policy_arn = "arn:aws:iam::aws:policy/aws-service-role/AWSKeyManagementServiceMultiRegionKeysServiceRolePolicy"
    versions = iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2"]


def test_deletion_looks_at_every_region_of_the_store_not_only_those_this_process_served(start_trent, tmp_path):
    """A multi-Region key made in eu-west-1 before a restart still keeps KMS's role: the new
    process has served only us-east-1 (IAM) when it is asked to delete the role."""
    data = tmp_path / "data"
    first = start_trent(data_dir=data)
    key_id = first.client(region="eu-west-1").create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    first.terminate()
    trent = start_trent(data_dir=data)
    iam = client(trent, "iam")
    task = iam.delete_service_linked_role(RoleName="AWSServiceRoleForKeyManagementServiceMultiRegionKeys")
    status = iam.get_service_linked_role_deletion_status(DeletionTaskId=task["DeletionTaskId"])
    assert status["Status"] == "FAILED"
    assert status["Reason"]["RoleUsageList"] == [
        {"Region": "eu-west-1", "Resources": [f"arn:aws:kms:eu-west-1:{ACCOUNT_A}:key/{key_id}"]}]
