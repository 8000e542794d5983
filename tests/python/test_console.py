"""The web console (issue 18), end to end: a real `trent serve`, the real console in headless
Chromium (tests/console/e2e.mjs, playwright-core driving Debian's /usr/bin/chromium), and boto3
checking what the browser did.

The browser test needs Node.js, the npm packages of tests/console (installed here with `npm ci`
when missing) and Chromium. Without them the test is skipped on a developer's machine, but fails
in CI (CI=true), where scripts/test installs them.
"""

import base64
import json
import os
import shutil
import subprocess
import threading
import urllib.request

import boto3
import pytest
from botocore.config import Config

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, REGION, REPO, SECRET_A

CONSOLE_TESTS = REPO / "tests" / "console"
SCREENSHOTS = REPO / "docs" / "console"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: CI must run the console's browser test (scripts/test installs it)")
    pytest.skip(what)


def client(service: str, endpoint: str, akid: str = AKID_A, secret: str = SECRET_A):
    return boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret, region_name=REGION).client(
        service, endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1})
    )


def expected_policy(admin: str, users: list[str]) -> dict:
    """The key policy AWS's KMS console writes for a symmetric encryption key (AWS KMS
    Developer Guide, "Default key policy"), for these administrators and key users."""
    return {
        "Id": "key-consolepolicy-3",
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": admin},
                "Action": [
                    "kms:Create*",
                    "kms:Describe*",
                    "kms:Enable*",
                    "kms:List*",
                    "kms:Put*",
                    "kms:Update*",
                    "kms:Revoke*",
                    "kms:Disable*",
                    "kms:Get*",
                    "kms:Delete*",
                    "kms:TagResource",
                    "kms:UntagResource",
                    "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": users},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": {"AWS": users},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
            },
        ],
    }


def test_console_is_served_with_security_headers(endpoint):
    with urllib.request.urlopen(endpoint + "/console/", timeout=10) as response:
        body = response.read().decode()
        headers = response.headers
    assert '<script type="module" src="app.js"></script>' in body
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_console_modules():
    """The console's pure modules on their own (Node's test runner): policy.js (other key types'
    default policies, the default view's round trip, "who can use this key") and sigv4.js (AWS's
    SigV4 test vector)."""
    node = shutil.which("node")
    if not node:
        missing("Node.js is not installed")
    tests = [str(CONSOLE_TESTS / "policy.test.mjs"), str(CONSOLE_TESTS / "sigv4.test.mjs")]
    run = subprocess.run([node, "--test", *tests], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "# fail 0" in run.stdout


def test_console_end_to_end_in_chromium(trent, kms):
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        missing("Node.js and npm are not installed")
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    if not (CONSOLE_TESTS / "node_modules" / "playwright-core").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CONSOLE_TESTS, check=True, timeout=600)

    # The account's IAM principals the wizard offers, and a user with no permission at all.
    iam = client("iam", trent.endpoint)
    admin = iam.create_user(UserName="kms-admin")["User"]["Arn"]
    user = iam.create_user(UserName="app-user")["User"]["Arn"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.create_user(UserName="nobody")
    denied = iam.create_access_key(UserName="nobody")["AccessKey"]
    session = client("sts", trent.endpoint).assume_role(RoleArn=role, RoleSessionName="console")["Credentials"]
    signing_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]

    # The "Recent events" tab reads the audit trail through CloudTrail's LookupEvents.
    try:
        client("cloudtrail", trent.endpoint).lookup_events(MaxResults=1)
        audit = "1"
    except Exception:  # noqa: BLE001 - a server without the audit trail: the tab is not checked
        audit = "0"

    # The "Regionality" tab, on servers with multi-Region keys.
    try:
        mrk = kms.create_key(MultiRegion=True, Description="replicated")["KeyMetadata"]["KeyId"]
    except Exception:  # noqa: BLE001 - a server without multi-Region keys: the tab is not checked
        mrk = ""

    env = dict(os.environ)
    env.update(
        TRENT_ENDPOINT=trent.endpoint,
        TRENT_AKID=AKID_A,
        TRENT_SECRET=SECRET_A,
        TRENT_ACCOUNT=ACCOUNT_A,
        TRENT_OTHER_ACCOUNT=ACCOUNT_B,
        TRENT_ADMIN_ARN=admin,
        TRENT_USER_ARN=user,
        TRENT_ROLE_ARN=role,
        TRENT_DENIED_AKID=denied["AccessKeyId"],
        TRENT_DENIED_SECRET=denied["SecretAccessKey"],
        TRENT_ASYMMETRIC_KEY_ID=signing_key,
        SCREENSHOT_DIR=str(SCREENSHOTS),
        CHROMIUM=CHROMIUM,
        TRENT_AUDIT=audit,
        TRENT_MRK_KEY_ID=mrk,
        TRENT_SESSION_AKID=session["AccessKeyId"],
        TRENT_SESSION_SECRET=session["SecretAccessKey"],
        TRENT_SESSION_TOKEN=session["SessionToken"],
    )
    browser = subprocess.Popen(
        [node, str(CONSOLE_TESTS / "e2e.mjs")],
        cwd=CONSOLE_TESTS,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(600, browser.kill)
    killer.start()
    try:
        # The browser has created the key through the wizard: check its policy before any edit.
        created = None
        printed = []
        for line in browser.stdout:
            printed.append(line)
            if line.startswith('{"event":"created"'):
                created = json.loads(line)
                break
        assert created, f"the wizard did not create a key:\n{''.join(printed)}\n{browser.stderr.read()}"
        key_id = created["keyId"]
        # The wizard wrote exactly the AWS console's default key policy, and showed it first.
        stored = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        expected = expected_policy(admin, [user, role, f"arn:aws:iam::{ACCOUNT_B}:root"])
        assert json.loads(stored) == expected
        assert json.loads(created["previewPolicy"]) == expected
        out, err = browser.communicate("continue\n", timeout=580)
    finally:
        killer.cancel()
        browser.kill()
    assert browser.returncode == 0, f"browser test failed:\n{out}\n{err}"
    summary = json.loads(out.strip().splitlines()[-1])

    # The default view's edit removed app-user from both key users statements and changed
    # nothing else; the rejected edits (validation error, lockout) changed nothing at all.
    edited = expected_policy(admin, [role, f"arn:aws:iam::{ACCOUNT_B}:root"])
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == edited
    assert "could no longer change the key policy" in summary["lockoutText"]

    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["Description"] == "Created through the console test"
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["PendingDeletionWindowInDays"] == 7
    aliases = kms.list_aliases(KeyId=key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/console-e2e"]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "security"}]
    # The grant was created and then revoked.
    assert summary["grantId"]
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    rotation = kms.get_key_rotation_status(KeyId=key_id)
    assert rotation["KeyRotationEnabled"] is True and rotation["RotationPeriodInDays"] == 180
    # "Rotate now" rotated the key once, on demand (the history the page showed).
    assert [r["RotationType"] for r in kms.list_key_rotations(KeyId=key_id)["Rotations"]] == ["ON_DEMAND"]

    # The PEM the console shows is the key's public key.
    der = kms.get_public_key(KeyId=signing_key)["PublicKey"]
    assert base64.b64decode("".join(summary["publicKeyPem"].strip().splitlines()[1:-1])) == der
    if mrk:
        eu = boto3.session.Session(aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A, region_name="eu-west-1").client(
            "kms", endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1})
        )
        config = eu.describe_key(KeyId=mrk)["KeyMetadata"]["MultiRegionConfiguration"]
        assert config["MultiRegionKeyType"] == "REPLICA" and config["PrimaryKey"]["Region"] == REGION
        # The replica got the primary's key policy.
        assert eu.get_key_policy(KeyId=mrk, PolicyName="default")["Policy"] == kms.get_key_policy(KeyId=mrk, PolicyName="default")["Policy"]
    signer = kms.describe_key(KeyId=signing_key)["KeyMetadata"]
    assert signer["KeyState"] == "Enabled" and signer["Description"] == "signs releases"
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=signing_key)["Aliases"]] == ["alias/console-signer"]
    assert kms.list_resource_tags(KeyId=signing_key)["Tags"] == [{"TagKey": "env", "TagValue": "test"}]
    assert summary["accessDenied"].startswith("Access denied")
    for name in ["sign-in", "keys", "create-key-review", "key-policy-default-view", "key-who-can-use", "key-grants", "access-denied"]:
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 1000
