"""What the audit trail records of calls an integrated service makes (issue 15's CloudTrail
fields), read back with boto3's `cloudtrail` client: a service-linked role's session and a
forward-access call carry `invokedBy` the service, `sourceIPAddress` and `userAgent` the
service principal, and the role session's `sessionContext`; the customer's own direct calls
keep their address and user agent."""

import base64
import json

from conftest import ACCOUNT_A
from test_integrated_services import (  # noqa: F401 (fixtures)
    call,
    client,
    create_roles,
    example,
    launcher,
    seed_004_policy,
    trent,
    user,
    via_service_key,
)


def records(trent, name: str) -> list[dict]:
    found = []
    for page in client(trent, "cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}]
    ):
        found.extend(json.loads(e["CloudTrailEvent"]) for e in page["Events"])
    return found


def test_service_linked_role_calls_are_recorded_as_made_by_the_service(trent, launcher):
    create_roles(trent)
    slr = example.slr_arn(ACCOUNT_A, example.AUTOSCALING, "AWSServiceRoleForAutoScaling")
    key = client(trent, "kms").create_key(Policy=seed_004_policy(ACCOUNT_A, slr))["KeyMetadata"]
    status, launched = call(launcher, {"Action": "LaunchInstance", "Account": ACCOUNT_A, "KeyId": key["Arn"],
                                       "Data": base64.b64encode(b"volume").decode()})
    assert status == 200, launched
    [grant] = records(trent, "CreateGrant")
    identity = grant["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT_A}:assumed-role/AWSServiceRoleForAutoScaling/autoscaling"
    assert identity["invokedBy"] == example.AUTOSCALING
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert (issuer["type"], issuer["arn"], issuer["userName"], issuer["accountId"]) == (
        "Role", slr, "AWSServiceRoleForAutoScaling", ACCOUNT_A)
    assert issuer["principalId"].startswith("AROA")
    attributes = identity["sessionContext"]["attributes"]
    assert attributes["mfaAuthenticated"] == "false"
    assert attributes["creationDate"].endswith("Z") and "T" in attributes["creationDate"]
    assert grant["sourceIPAddress"] == example.AUTOSCALING
    assert grant["userAgent"] == example.AUTOSCALING
    assert grant["responseElements"] == {"grantId": launched["GrantId"], "keyId": key["Arn"]}


def test_forward_access_calls_carry_the_service_and_direct_calls_the_client(trent, launcher):
    akid, secret = user(trent, "alice")
    key_id = via_service_key(trent, f"arn:aws:iam::{ACCOUNT_A}:user/alice")
    status, answer = call(launcher, {"Action": "PutObject", "KeyId": key_id, "Name": "r",
                                     "Data": base64.b64encode(b"q").decode()}, akid, secret)
    assert status == 200, answer
    client(trent, "kms", akid, secret).describe_key(KeyId=key_id)
    [forwarded] = [r for r in records(trent, "Encrypt") if r["userIdentity"].get("userName") == "alice"]
    assert forwarded["userIdentity"]["invokedBy"] == example.STORAGE
    assert forwarded["userIdentity"]["type"] == "IAMUser"
    assert (forwarded["sourceIPAddress"], forwarded["userAgent"]) == (example.STORAGE, example.STORAGE)
    # Long-term credentials: no session context.
    assert "sessionContext" not in forwarded["userIdentity"]
    [direct] = [r for r in records(trent, "DescribeKey") if r["userIdentity"].get("userName") == "alice"]
    assert "invokedBy" not in direct["userIdentity"]
    assert direct["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3" in direct["userAgent"] or "botocore" in direct["userAgent"]
