"""Three Trent nodes on one PostgreSQL database (issue 12), with boto3 and the AWS CLI: what is
made on one node is used at once on the others; a grant revoked on one node is refused on another
within a second; every acknowledged write survives `kill -9` of a node in the middle of a burst
from several clients; the nodes ride out a restart of PostgreSQL under load without a restart of
their own. Each test runs its own private PostgreSQL server (`pgcluster.py`), stopped at the end.
"""

import base64
import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import ACCOUNT_A, AKID_A, REGION, SECRET_A, kms_client
from pgcluster import PgCluster
from test_awscli import aws_json, run_aws

ROOT_ARN = f"arn:aws:iam::{ACCOUNT_A}:root"


@pytest.fixture
def pg():
    # Requested before `start_trent`, so torn down after it: the nodes go first.
    with PgCluster() as cluster:
        yield cluster


def three_nodes(start_trent, tmp_path, url):
    """Nodes A, B and C on `url`, with A's root key."""
    a = start_trent(tmp_path / "a" / "data", extra_config=f'database = "{url}"\n')
    root_key = a.data_dir / "root.key"
    extra = f'database = "{url}"\nroot_key_file = "{root_key}"\n'
    b = start_trent(tmp_path / "b" / "data", extra_config=extra)
    c = start_trent(tmp_path / "c" / "data", extra_config=extra)
    return a, b, c


def iam_client(endpoint):
    return boto3.session.Session(
        aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A, region_name=REGION
    ).client("iam", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def error_code(call) -> str:
    """The error code of `call()`, or "ok"."""
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]


def time_until(limit: float, what: str, check) -> float:
    """Calls `check()` every 10 ms until it is true; returns how long that took (fails past `limit`)."""
    started = time.monotonic()
    while True:
        if check():
            took = time.monotonic() - started
            print(f"{what}: {took * 1000:.0f} ms")
            return took
        assert time.monotonic() - started < limit, f"{what}: not within {limit} s"
        time.sleep(0.01)


def new_user(iam, name):
    """An IAM user with an access key; returns (access key id, secret, ARN)."""
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"], arn


def test_a_key_alias_and_grant_made_on_a_are_used_at_once_on_b_and_c(pg, start_trent, tmp_path):
    a, b, c = three_nodes(start_trent, tmp_path, pg.fresh_database())
    akid, secret, arn = new_user(iam_client(a.endpoint), "app")
    # The user's identity reaches B and C with the change feed: refused for want of a
    # permission (known), not as an unknown client.
    for node in (b, c):
        app = kms_client(node.endpoint, akid, secret)
        time_until(1.0, "IAM user known on another node",
                   lambda: error_code(lambda: app.list_aliases()) == "AccessDeniedException")

    kms_a = a.client()
    meta = kms_a.create_key(Description="made on A")["KeyMetadata"]
    kms_a.create_alias(AliasName="alias/shared", TargetKeyId=meta["KeyId"])
    grant = kms_a.create_grant(KeyId=meta["KeyId"], GranteePrincipal=arn, Operations=["Encrypt", "Decrypt"])

    # At once, no waiting: the key by its alias on B and C (boto3, the AWS CLI) ...
    assert b.client().describe_key(KeyId="alias/shared")["KeyMetadata"]["Arn"] == meta["Arn"]
    described = aws_json(c.endpoint, "kms", "describe-key", "--key-id", "alias/shared")
    assert described["KeyMetadata"]["Description"] == "made on A"
    # ... and the grant, with its grant token, on B (boto3) and on C (the AWS CLI).
    app_b = kms_client(b.endpoint, akid, secret)
    blob = app_b.encrypt(KeyId=meta["Arn"], Plaintext=b"from B", GrantTokens=[grant["GrantToken"]])["CiphertextBlob"]
    blob_file = tmp_path / "blob"
    blob_file.write_bytes(blob)
    out = run_aws(c.endpoint, "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob_file}",
                  "--grant-tokens", grant["GrantToken"], "--query", "Plaintext", "--output", "text",
                  akid=akid, secret=secret)
    assert base64.b64decode(out.stdout.strip()) == b"from B"


def test_a_grant_revoked_on_b_is_refused_on_c_within_a_second(pg, start_trent, tmp_path):
    a, b, c = three_nodes(start_trent, tmp_path, pg.fresh_database())
    akid, secret, arn = new_user(iam_client(a.endpoint), "app")
    kms_a = a.client()
    key_arn = kms_a.create_key()["KeyMetadata"]["Arn"]
    grant = kms_a.create_grant(KeyId=key_arn, GranteePrincipal=arn, Operations=["Encrypt"])
    app_c = kms_client(c.endpoint, akid, secret)
    encrypt = lambda: app_c.encrypt(KeyId=key_arn, Plaintext=b"x")  # noqa: E731
    # C knows the grant itself (no token): the user encrypts there.
    time_until(1.0, "grant seen on C", lambda: error_code(encrypt) == "ok")

    b.client().revoke_grant(KeyId=key_arn, GrantId=grant["GrantId"])
    took = time_until(1.0, "grant revoked on B, refused on C", lambda: error_code(encrypt) == "AccessDeniedException")
    assert took < 1.0


class Burst:
    """Clients writing through every node at once: CreateKey, CreateGrant on it, TagResource on
    it; each acknowledged write is recorded (a write whose answer never came is not)."""

    def __init__(self, nodes, clients_per_node=2):
        self.keys: set[str] = set()
        self.grants: set[tuple[str, str]] = set()
        self.tags: set[tuple[str, str]] = set()
        self.failures = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(node.endpoint, f"w{i}-{n}"), daemon=True)
            for i, node in enumerate(nodes)
            for n in range(clients_per_node)
        ]

    def run(self, endpoint, name):
        kms = kms_client(endpoint, AKID_A, SECRET_A)
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                key = kms.create_key()["KeyMetadata"]["KeyId"]
                with self.lock:
                    self.keys.add(key)
                grant = kms.create_grant(KeyId=key, GranteePrincipal=ROOT_ARN, Operations=["Encrypt"])["GrantId"]
                with self.lock:
                    self.grants.add((key, grant))
                tag = f"{name}-{n}"
                kms.tag_resource(KeyId=key, Tags=[{"TagKey": tag, "TagValue": "v"}])
                with self.lock:
                    self.tags.add((key, tag))
            except (ClientError, BotoCoreError):
                with self.lock:
                    self.failures += 1
                time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_every_acknowledged_write_survives_kill_9_of_a_node_mid_burst(pg, start_trent, tmp_path):
    url = pg.fresh_database()
    nodes = list(three_nodes(start_trent, tmp_path, url))
    extra = f'database = "{url}"\nroot_key_file = "{nodes[0].data_dir / "root.key"}"\n'
    for trial in range(3):
        with Burst(nodes) as burst:
            time.sleep(0.7)
            nodes[trial].kill_9()
            time.sleep(0.7)
        survivor = nodes[(trial + 1) % 3].client()
        print(f"trial {trial}: {len(burst.keys)} keys, {len(burst.grants)} grants, "
              f"{len(burst.tags)} tags acknowledged; {burst.failures} calls failed")
        assert len(burst.keys) > 10 and burst.tags, "the burst made writes"
        for key in burst.keys:
            assert survivor.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
        grants_of: dict[str, set[str]] = {}
        for key, grant in burst.grants:
            if key not in grants_of:
                grants_of[key] = {g["GrantId"] for g in survivor.list_grants(KeyId=key)["Grants"]}
            assert grant in grants_of[key], f"acknowledged grant {grant} on {key} lost"
        for key, tag in burst.tags:
            tags = survivor.list_resource_tags(KeyId=key)["Tags"]
            assert {"TagKey": tag, "TagValue": "v"} in tags, f"acknowledged tag {tag} on {key} lost"
        # The killed node starts again on the same data directory and database.
        nodes[trial] = start_trent(nodes[trial].data_dir, extra_config=extra)


def test_nodes_ride_out_a_postgresql_restart_under_load(pg, start_trent, tmp_path):
    nodes = three_nodes(start_trent, tmp_path, pg.fresh_database())
    key = nodes[0].client().create_key()["KeyMetadata"]["KeyId"]
    for node in nodes:
        node.client().encrypt(KeyId=key, Plaintext=b"warm")  # cached on every node

    stop = threading.Event()
    lock = threading.Lock()
    encrypt_errors: list[str] = []
    create_outcomes: list[tuple[str, float]] = []

    def encrypting(endpoint):
        kms = kms_client(endpoint, AKID_A, SECRET_A)
        while not stop.is_set():
            code = error_code(lambda: kms.encrypt(KeyId=key, Plaintext=b"under load"))
            if code != "ok":
                with lock:
                    encrypt_errors.append(code)

    def creating(endpoint):
        kms = kms_client(endpoint, AKID_A, SECRET_A)
        while not stop.is_set():
            started = time.monotonic()
            code = error_code(lambda: kms.create_key())
            with lock:
                create_outcomes.append((code, time.monotonic() - started))
            time.sleep(0.02)

    threads = [threading.Thread(target=f, args=(n.endpoint,), daemon=True)
               for n in nodes for f in (encrypting, creating)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        pg.shut_down()
        time.sleep(2.0)
        with lock:
            during = [c for c, _ in create_outcomes]
        pg.start()
        # Every node writes again by itself.
        for node in nodes:
            kms = node.client()
            time_until(10.0, "CreateKey works again after PostgreSQL restarted",
                       lambda: error_code(lambda: kms.create_key()) == "ok")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    failed = [(c, d) for c, d in create_outcomes if c != "ok"]
    print(f"{len(create_outcomes)} CreateKey calls, {len(failed)} failed "
          f"(slowest failure {max((d for _, d in failed), default=0) * 1000:.0f} ms)")
    assert "DependencyTimeoutException" in during, "CreateKey failed while the database was down"
    assert {c for c, _ in failed} <= {"DependencyTimeoutException"}, failed
    assert all(d < 2.0 for _, d in failed), "failures were fast"
    assert encrypt_errors == [], "Encrypt on a cached key never needed the database"
    # And the change feed runs again: a key disabled on A is refused on C.
    nodes[0].client().disable_key(KeyId=key)
    kms_c = nodes[2].client()
    time_until(3.0, "key disabled on A, refused on C after the restart",
               lambda: error_code(lambda: kms_c.encrypt(KeyId=key, Plaintext=b"x")) == "DisabledException")


def test_one_audit_trail_a_cross_account_decrypt_on_b_is_in_both_accounts_on_c(pg, start_trent, tmp_path):
    """Issue 16 on several nodes: every node ships its committed batches into PostgreSQL, so a
    lookup on any node sees every node's events; a cross-account call is in both accounts, with
    one sharedEventID, whichever node served it and whichever node is asked."""
    from conftest import ACCOUNT_B, AKID_B, SECRET_B
    from test_audit import cloudtrail

    a, b, c = three_nodes(start_trent, tmp_path, pg.fresh_database())
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ROOT_ARN}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
             "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    key_arn = a.client().create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    blob = a.client().encrypt(KeyId=key_arn, Plaintext=b"several-nodes-plain-7c1d")["CiphertextBlob"]
    # Records carry whole seconds: across nodes, GetKeyLastUsage orders uses by second
    # (docs/audit.md), so the Decrypt comes in a later second than the Encrypt.
    second = int(time.time())
    while int(time.time()) == second:
        time.sleep(0.01)
    decrypted = kms_client(b.endpoint, AKID_B, SECRET_B).decrypt(CiphertextBlob=blob)
    request_id = decrypted["ResponseMetadata"]["RequestId"]

    def decrypts_on_c(akid, secret):
        found = []
        for page in cloudtrail(c.endpoint, akid, secret).get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}],
            PaginationConfig={"PageSize": 1},
        ):
            found.extend(json.loads(e["CloudTrailEvent"]) for e in page["Events"])
        return [e for e in found if e["requestID"] == request_id]

    seen = {}
    def in_both():
        seen["a"], seen["b"] = decrypts_on_c(AKID_A, SECRET_A), decrypts_on_c(AKID_B, SECRET_B)
        return len(seen["a"]) == 1 and len(seen["b"]) == 1
    # Within the shipping interval (polled with a deadline, no fixed sleep).
    time_until(10.0, "node B's cross-account Decrypt in both accounts on node C", in_both)
    in_a, in_b = seen["a"][0], seen["b"][0]
    assert in_a["sharedEventID"] == in_b["sharedEventID"]
    assert in_a["eventID"] != in_b["eventID"]
    assert (in_a["recipientAccountId"], in_b["recipientAccountId"]) == (ACCOUNT_A, ACCOUNT_B)
    assert in_a["userIdentity"]["type"] == "AWSAccount"
    assert in_b["userIdentity"]["accessKeyId"] == AKID_B
    assert in_a["resources"][0]["ARN"] == key_arn

    # The AWS CLI, unchanged, on node C: account A finds the Decrypt by the key's ARN.
    proc = run_aws(c.endpoint, "cloudtrail", "lookup-events", "--lookup-attributes",
                   f"AttributeKey=ResourceName,AttributeValue={key_arn}", "--output", "json")
    names = {e["EventName"] for e in json.loads(proc.stdout)["Events"]}
    assert {"CreateKey", "Encrypt", "Decrypt"} <= names, names
    # GetKeyLastUsage on node C: B's Decrypt, served on node B, is the key's last use.
    last = c.client().get_key_last_usage(KeyId=key_arn)["KeyLastUsage"]
    assert (last["Operation"], last["KmsRequestId"]) == ("Decrypt", request_id)
    assert last["CloudTrailEventId"] == in_a["eventID"]
