"""Integrated services (docs/integrated-services.md) end to end: seed 004 run as written with
the example instance launcher (examples/instance_launcher), forward access with
`kms:ViaService`, `kms:GrantIsForAWSResource`, and every refusal — a service acting for a
principal who did not call it, a request signed for another service, a customer forwarding."""

import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, AKID_B, REGION, REPO, SECRET_A, SECRET_B
from test_awscli import run_aws

sys.path.insert(0, str(REPO / "examples" / "instance_launcher"))
import launcher as example  # noqa: E402

SERVICES = [example.AUTOSCALING, example.EC2, example.STORAGE]
CONFIG = "".join(f'[[integrated_service]]\nname = "{s}"\n' for s in SERVICES)


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def client(trent, api: str, akid: str = AKID_A, secret: str = SECRET_A, token: str | None = None):
    return boto3.session.Session(
        aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
    ).client(api, endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def trent(start_trent):
    return start_trent(extra_config=CONFIG)


@pytest.fixture
def launcher(trent):
    credentials = {s: example.read_credentials(trent.data_dir, s) for s in SERVICES}
    service = example.Launcher(trent.endpoint, REGION, credentials)
    server = service.serve()
    service.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield service
    server.shutdown()


def user(trent, name: str, account_akid=AKID_A, account_secret=SECRET_A, policy: dict | None = None):
    """An IAM user with an access key (and an identity policy, if given)."""
    iam = client(trent, "iam", account_akid, account_secret)
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def signed(url: str, service: str, akid: str, secret: str, body: dict) -> AWSRequest:
    """A customer's request to an integrated service, SigV4-signed for that service."""
    request = AWSRequest(method="POST", url=url, data=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(akid, secret), service, REGION).add_auth(request)
    return request


def call(launcher, body: dict, akid: str = AKID_A, secret: str = SECRET_A, service: str = example.STORAGE):
    """Calls the launcher as a customer; returns (status, answer)."""
    request = signed(launcher.url, service, akid, secret, body)
    http = urllib.request.Request(launcher.url, data=request.body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def seed_004_policy(account: str, slr: str) -> str:
    """The key policy of seed 004: the account, and the two statements for the Auto Scaling role."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Allow service-linked role use of the customer managed key", "Effect": "Allow",
         "Principal": {"AWS": [slr]},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*"},
        {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
         "Principal": {"AWS": [slr]}, "Action": ["kms:CreateGrant"], "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}},
    ]})


def create_roles(trent, akid=AKID_A, secret=SECRET_A):
    iam = client(trent, "iam", akid, secret)
    for service in [example.AUTOSCALING, example.EC2]:
        iam.create_service_linked_role(AWSServiceName=service)


def test_service_credentials_are_written_and_stable(start_trent, tmp_path):
    server = start_trent(data_dir=tmp_path / "data", extra_config=CONFIG)
    first = {s: example.read_credentials(server.data_dir, s) for s in SERVICES}
    assert all(akid.startswith("AKIS") for akid, _ in first.values())
    assert (server.data_dir / "services" / "autoscaling.amazonaws.com.credentials").stat().st_mode & 0o077 == 0
    sts = client(server, "sts", *first[example.EC2])
    identity = sts.get_caller_identity()
    assert identity["Arn"] == "ec2.amazonaws.com"
    # A service is not a customer: it has no permissions of its own.
    with pytest.raises(ClientError) as e:
        client(server, "kms", *first[example.EC2]).create_key()
    assert error_code(e) == "AccessDeniedException"
    server.terminate()
    again = start_trent(data_dir=tmp_path / "data", extra_config=CONFIG)
    (again.data_dir / "services" / "ec2.amazonaws.com.credentials").unlink()
    assert client(again, "sts", *first[example.EC2]).get_caller_identity()["Arn"] == "ec2.amazonaws.com"


def test_only_the_service_assumes_its_service_linked_role(trent, launcher):
    create_roles(trent)
    autoscaling_role = example.slr_arn(ACCOUNT_A, example.AUTOSCALING, "AWSServiceRoleForAutoScaling")
    sts = launcher.as_role(example.AUTOSCALING, autoscaling_role, api="sts")
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{ACCOUNT_A}:assumed-role/AWSServiceRoleForAutoScaling/autoscaling")
    # Another service may not, nor may the customer.
    with pytest.raises(ClientError) as e:
        launcher.as_role(example.EC2, autoscaling_role)
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        client(trent, "sts").assume_role(RoleArn=autoscaling_role, RoleSessionName="me")
    assert error_code(e) == "AccessDenied"
    # A service's own credentials are no IAM identity: IAM does not know them.
    with pytest.raises(ClientError) as e:
        launcher.service_client(example.AUTOSCALING, "iam").delete_role(RoleName="AWSServiceRoleForAutoScaling")
    assert error_code(e) == "InvalidClientTokenId"


def test_seed_004_same_account(trent, launcher):
    create_roles(trent)
    slr = example.slr_arn(ACCOUNT_A, example.AUTOSCALING, "AWSServiceRoleForAutoScaling")
    kms = client(trent, "kms")
    key = kms.create_key(Policy=seed_004_policy(ACCOUNT_A, slr))["KeyMetadata"]
    status, launched = call(launcher, {"Action": "LaunchInstance", "Account": ACCOUNT_A, "KeyId": key["Arn"],
                                       "Data": base64.b64encode(b"boot volume").decode()})
    assert status == 200, launched
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [g["GrantId"] for g in grants] == [launched["GrantId"]]
    assert grants[0]["GranteePrincipal"] == example.slr_arn(ACCOUNT_A, example.EC2, "AWSServiceRoleForEc2")
    status, read = call(launcher, {"Action": "ReadVolume", "VolumeId": launched["VolumeId"]})
    assert status == 200 and base64.b64decode(read["Data"]) == b"boot volume"
    records = [json.loads(e["CloudTrailEvent"]) for e in client(trent, "cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateGrant"}])["Events"]]
    assert [r["userIdentity"].get("invokedBy") for r in records] == [example.AUTOSCALING]
    # The seed's warning: revoking the grant that gives the service access leaves the volume unreadable.
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=launched["GrantId"])
    status, read = call(launcher, {"Action": "ReadVolume", "VolumeId": launched["VolumeId"]})
    assert (status, read["Error"]) == (403, "AccessDeniedException")
    # An asymmetric key is refused for volumes.
    rsa = kms.create_key(Policy=seed_004_policy(ACCOUNT_A, slr), KeySpec="RSA_2048",
                         KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    status, _ = call(launcher, {"Action": "LaunchInstance", "Account": ACCOUNT_A, "KeyId": rsa["Arn"], "Data": ""})
    assert status == 400


def test_grant_is_for_aws_resource_only_when_a_service_creates_the_grant(trent, launcher):
    """The seed 004 attachment statement, given to a customer user: its direct CreateGrant has
    kms:GrantIsForAWSResource false (present: a `Bool false` statement matches it)."""
    create_roles(trent)
    akid, secret = user(trent, "operator")
    operator = f"arn:aws:iam::{ACCOUNT_A}:user/operator"
    grantee = example.slr_arn(ACCOUNT_A, example.EC2, "AWSServiceRoleForEc2")

    def policy(value: bool) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": operator}, "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": value}}}]})

    kms = client(trent, "kms")
    for_resources = kms.create_key(Policy=policy(True))["KeyMetadata"]["KeyId"]
    direct_only = kms.create_key(Policy=policy(False))["KeyMetadata"]["KeyId"]
    as_operator = client(trent, "kms", akid, secret)
    with pytest.raises(ClientError) as e:
        as_operator.create_grant(KeyId=for_resources, GranteePrincipal=grantee, Operations=["Decrypt"])
    assert error_code(e) == "AccessDeniedException"
    as_operator.create_grant(KeyId=direct_only, GranteePrincipal=grantee, Operations=["Decrypt"])
    # The service's CreateGrant is the other way round.
    slr = launcher.as_role(example.AUTOSCALING,
                           example.slr_arn(ACCOUNT_A, example.AUTOSCALING, "AWSServiceRoleForAutoScaling"))
    key_policy = json.loads(policy(True))
    key_policy["Statement"][1]["Principal"]["AWS"] = example.slr_arn(
        ACCOUNT_A, example.AUTOSCALING, "AWSServiceRoleForAutoScaling")
    kms.put_key_policy(KeyId=for_resources, PolicyName="default", Policy=json.dumps(key_policy))
    slr.create_grant(KeyId=for_resources, GranteePrincipal=grantee, Operations=["Decrypt"])
    key_policy["Statement"][1]["Condition"]["Bool"]["kms:GrantIsForAWSResource"] = False
    kms.put_key_policy(KeyId=direct_only, PolicyName="default", Policy=json.dumps(key_policy))
    with pytest.raises(ClientError) as e:
        slr.create_grant(KeyId=direct_only, GranteePrincipal=grantee, Operations=["Decrypt"])
    assert error_code(e) == "AccessDeniedException"


def test_seed_004_cross_account(trent, launcher):
    """Key in A; the instances in B. A's key policy allows account B; B's admin creates the
    grant for B's Auto Scaling role with the seed's command line; the launcher then works for B."""
    create_roles(trent, AKID_B, SECRET_B)
    kms = client(trent, "kms")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
                    "kms:CreateGrant"], "Resource": "*"}]})
    key = kms.create_key(Policy=policy)["KeyMetadata"]
    # B's admin: an IAM policy allowing kms:CreateGrant on the key ARN (the seed's example).
    admin_akid, admin_secret = user(trent, "admin", AKID_B, SECRET_B, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": key["Arn"]}]})
    slr_b = example.slr_arn(ACCOUNT_B, example.AUTOSCALING, "AWSServiceRoleForAutoScaling")
    out = run_aws(trent.endpoint, "kms", "create-grant", "--region", REGION, "--key-id", key["Arn"],
                  "--grantee-principal", slr_b, "--operations", "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo",
                  "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant",
                  akid=admin_akid, secret=admin_secret)
    admin_grant = json.loads(out.stdout)["GrantId"]
    status, launched = call(launcher, {"Action": "LaunchInstance", "Account": ACCOUNT_B, "KeyId": key["Arn"],
                                       "Data": base64.b64encode(b"cross-account volume").decode()})
    assert status == 200, launched
    status, read = call(launcher, {"Action": "ReadVolume", "VolumeId": launched["VolumeId"]})
    assert status == 200 and base64.b64decode(read["Data"]) == b"cross-account volume"
    grants = {g["GrantId"]: g for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]}
    assert grants[admin_grant]["GranteePrincipal"] == slr_b
    assert grants[launched["GrantId"]]["GranteePrincipal"] == example.slr_arn(
        ACCOUNT_B, example.EC2, "AWSServiceRoleForEc2")
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=launched["GrantId"])
    status, read = call(launcher, {"Action": "ReadVolume", "VolumeId": launched["VolumeId"]})
    assert (status, read["Error"]) == (403, "AccessDeniedException")
    # Without the admin's grant, B's Auto Scaling role cannot use A's key at all.
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=admin_grant)
    status, answer = call(launcher, {"Action": "LaunchInstance", "Account": ACCOUNT_B, "KeyId": key["Arn"], "Data": ""})
    assert (status, answer["Error"]) == (403, "AccessDeniedException")


def via_service_key(trent, alice: str) -> str:
    """A key alice may use only through the example object store."""
    kms = client(trent, "kms")
    return kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"},
         "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Create*", "kms:ScheduleKeyDeletion"],
         "Resource": "*"},
        {"Sid": "Only through the object store", "Effect": "Allow", "Principal": {"AWS": alice},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": example.STORAGE, "kms:CallerAccount": ACCOUNT_A}}},
        {"Sid": "Direct calls only", "Effect": "Allow", "Principal": {"AWS": alice},
         "Action": "kms:DescribeKey", "Resource": "*", "Condition": {"Null": {"kms:ViaService": "true"}}},
    ]}))["KeyMetadata"]["KeyId"]


def test_via_service_forward_access(trent, launcher):
    akid, secret = user(trent, "alice")
    alice = f"arn:aws:iam::{ACCOUNT_A}:user/alice"
    key_id = via_service_key(trent, alice)
    as_alice = client(trent, "kms", akid, secret)
    # Direct: kms:ViaService is absent, so only the Null statement applies.
    with pytest.raises(ClientError) as e:
        as_alice.encrypt(KeyId=key_id, Plaintext=b"direct")
    assert error_code(e) == "AccessDeniedException"
    assert as_alice.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    # Through the service: alice's authorization, kms:ViaService the service's name.
    status, answer = call(launcher, {"Action": "PutObject", "KeyId": key_id, "Name": "report",
                                     "Data": base64.b64encode(b"quarterly").decode()}, akid, secret)
    assert status == 200, answer
    status, answer = call(launcher, {"Action": "GetObject", "Name": "report"}, akid, secret)
    assert status == 200 and base64.b64decode(answer["Data"]) == b"quarterly"
    # The ciphertext is alice's: decrypting it directly is still refused.
    with pytest.raises(ClientError) as e:
        as_alice.decrypt(CiphertextBlob=launcher.objects["report"], EncryptionContext={"object": "report"})
    assert error_code(e) == "AccessDeniedException"
    # The trail says who made each call: alice, and through which service.
    trail = client(trent, "cloudtrail")
    records = [json.loads(e["CloudTrailEvent"]) for e in trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}])["Events"]]
    by_alice = [r["userIdentity"] for r in records if r["userIdentity"].get("userName") == "alice"]
    assert sorted(u.get("invokedBy", "") for u in by_alice) == ["", example.STORAGE], by_alice
    # Another principal calling the service gets its own authorization, not alice's.
    bob_akid, bob_secret = user(trent, "bob")
    status, answer = call(launcher, {"Action": "GetObject", "Name": "report"}, bob_akid, bob_secret)
    assert (status, answer["Error"]) == (403, "AccessDeniedException")


def forwarded_encrypt(launcher, service: str, forwarded: str, key_id: str):
    return launcher.service_client(service, "kms", forwarded=forwarded).encrypt(KeyId=key_id, Plaintext=b"x")


def test_a_service_cannot_act_for_a_principal_who_did_not_call_it(trent, launcher):
    akid, secret = user(trent, "alice")
    key_id = via_service_key(trent, f"arn:aws:iam::{ACCOUNT_A}:user/alice")
    body = {"Action": "PutObject", "KeyId": key_id, "Name": "n", "Data": ""}

    def forwarded(request: AWSRequest, body_bytes: bytes | None = None) -> str:
        # What the service received: the client's headers, with the Host it sent.
        headers = [("Host", launcher.url.split("/")[2]), *request.headers.items()]
        return example.forwarded_value("POST", "/", headers,
                                       request.body if body_bytes is None else body_bytes)

    genuine = signed(launcher.url, example.STORAGE, akid, secret, body)
    assert forwarded_encrypt(launcher, example.STORAGE, forwarded(genuine), key_id)["KeyId"].endswith(key_id)
    refusals = {
        # The service does not know alice's secret: a request it signs itself proves nothing.
        "forged": forwarded(signed(launcher.url, example.STORAGE, akid, "not-alices-secret", body)),
        # The service changed what alice asked for.
        "tampered": forwarded(genuine, json.dumps({**body, "Name": "other"}).encode()),
        # Alice called another service (Auto Scaling), not this one.
        "other service": forwarded(signed(launcher.url, "autoscaling", akid, secret, body)),
        "garbage": base64.b64encode(b"{not json").decode(),
    }
    for name, value in refusals.items():
        with pytest.raises(ClientError) as e:
            forwarded_encrypt(launcher, example.STORAGE, value, key_id)
        assert error_code(e) == "AccessDeniedException", name
    # Another service cannot use a request alice signed for the object store.
    with pytest.raises(ClientError) as e:
        forwarded_encrypt(launcher, example.EC2, forwarded(genuine), key_id)
    assert error_code(e) == "AccessDeniedException"
    # Nor can a customer forward someone else's request: only services forward.
    mallory = boto3.session.Session(aws_access_key_id=AKID_B, aws_secret_access_key=SECRET_B,
                                    region_name=REGION).client("kms", endpoint_url=trent.endpoint,
                                                               config=Config(retries={"total_max_attempts": 1}))
    value = forwarded(genuine)
    mallory.meta.events.register_first("before-sign.kms", lambda request, **_: request.headers.__setitem__(
        example.FORWARDED_HEADER, value))
    with pytest.raises(ClientError) as e:
        mallory.encrypt(KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{key_id}", Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    # A forwarded request added after the service signed (swapped in transit) is refused.
    unsigned = launcher.service_client(example.STORAGE, "kms")
    unsigned.meta.events.register("request-created.kms", lambda request, **_: request.headers.__setitem__(
        example.FORWARDED_HEADER, value))
    with pytest.raises(ClientError) as e:
        unsigned.encrypt(KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{key_id}", Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
    assert "must cover" in e.value.response["Error"]["Message"]
    # The service acting as itself, without the customer's request, is no one in the key policy.
    with pytest.raises(ClientError) as e:
        launcher.service_client(example.STORAGE, "kms").encrypt(
            KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_A}:key/{key_id}", Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"
