"""The audit trail through the clients people already use: boto3's `cloudtrail` client and
`aws cloudtrail lookup-events` (unchanged, pointed at Trent's endpoint), plus the raw files."""

import json
import subprocess
import time

import boto3
from botocore.config import Config

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, AKID_B, REGION, SECRET_A, SECRET_B, trent_bin
from test_awscli import run_aws


def cloudtrail(endpoint: str, akid: str, secret: str):
    return boto3.session.Session(
        aws_access_key_id=akid, aws_secret_access_key=secret, region_name=REGION
    ).client("cloudtrail", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def events(client, name: str, value: str) -> list[dict]:
    """Every record LookupEvents returns for one attribute, following NextToken."""
    found = []
    for page in client.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": name, "AttributeValue": value}], PaginationConfig={"PageSize": 2}
    ):
        found.extend(json.loads(e["CloudTrailEvent"]) for e in page["Events"])
    return found


def test_cross_account_decrypt_and_denied_call_with_boto3(trent, kms, kms_b):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    key_arn = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    blob = kms.encrypt(KeyId=key_arn, Plaintext=b"py-plaintext-0f3a")["CiphertextBlob"]
    kms_b.decrypt(CiphertextBlob=blob)
    try:
        kms_b.encrypt(KeyId=key_arn, Plaintext=b"x")
        raise AssertionError("B may not encrypt")
    except kms_b.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException"

    in_a = events(cloudtrail(trent.endpoint, AKID_A, SECRET_A), "EventName", "Decrypt")
    in_b = events(cloudtrail(trent.endpoint, AKID_B, SECRET_B), "EventName", "Decrypt")
    assert len(in_a) == 1 and len(in_b) == 1
    assert in_a[0]["sharedEventID"] == in_b[0]["sharedEventID"]
    assert (in_a[0]["recipientAccountId"], in_b[0]["recipientAccountId"]) == (ACCOUNT_A, ACCOUNT_B)
    denied = events(cloudtrail(trent.endpoint, AKID_B, SECRET_B), "EventName", "Encrypt")
    assert [e["errorCode"] for e in denied] == ["AccessDeniedException"]
    raw = "".join(p.read_text() for p in sorted((trent.data_dir / "audit").glob("*.jsonl")))
    assert "py-plaintext-0f3a" not in raw


def test_aws_cli_lookup_events_unchanged(trent, kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=key_id)
    proc = run_aws(
        trent.endpoint,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=DescribeKey",
        "--start-time",
        str(int(time.time()) - 600),
        "--output",
        "json",
    )
    answer = json.loads(proc.stdout)
    assert len(answer["Events"]) == 1, answer
    event = answer["Events"][0]
    assert event["EventSource"] == "kms.amazonaws.com"
    assert event["Username"] == "root"
    assert event["Resources"][0]["ResourceName"].endswith(key_id)
    record = json.loads(event["CloudTrailEvent"])
    assert record["requestParameters"] == {"keyId": key_id}
    assert record["userIdentity"]["accessKeyId"] == AKID_A


def test_kill_9_keeps_acknowledged_events_and_verify_catches_a_change(trent, kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    ids = [kms.encrypt(KeyId=key_id, Plaintext=b"burst")["ResponseMetadata"]["RequestId"] for _ in range(40)]
    trent.kill_9()
    segment = sorted((trent.data_dir / "audit").glob("*.jsonl"))[-1]
    raw = segment.read_text()
    for request_id in ids:
        assert f'"requestID":"{request_id}"' in raw
    verify = [trent_bin(), "audit", "verify", "--data-dir", str(trent.data_dir)]
    assert subprocess.run(verify, capture_output=True).returncode == 0
    segment.write_text(raw.replace('"eventName":"Encrypt"', '"eventName":"Decrypt"', 1))
    result = subprocess.run(verify, capture_output=True, text=True)
    assert result.returncode != 0
    assert "does not match its digest" in result.stdout
