"""Grants to integrated services (docs/integrated-services.md, "Grants to a service principal"):
CreateGrant's GranteeServicePrincipal / RetiringServicePrincipal with their SourceArn rule,
ListGrants' and ListRetirableGrants' service-principal filters, the GrantListEntry fields, and
the call a service makes for one of its resources (X-Trent-Source-Arn, aws:SourceArn).

The installed botocore's KMS model predates these members, so the clients here load the same
model with them added (as AWS's current model has them): real boto3 clients, real SigV4."""

import gzip
import json
from pathlib import Path

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, AKID_A, REGION, SECRET_A
from test_integrated_services import CONFIG, example

STORAGE = example.STORAGE
VOLUME = f"arn:aws:storage:{REGION}:{ACCOUNT_A}:volume/vol-1"
SOURCE_ARN_HEADER = "X-Trent-Source-Arn"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """botocore's KMS model with the service-principal members of AWS's current model."""
    data = Path(botocore.__file__).parent / "data" / "kms" / "2014-11-01"
    source = data / "service-2.json.gz"
    model = json.loads(gzip.open(source).read()) if source.exists() else json.loads((data / "service-2.json").read_text())
    shapes = model["shapes"]
    shapes["ServicePrincipalType"] = {
        "type": "string", "max": 128, "min": 1,
        "pattern": "^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$"}
    service = {"shape": "ServicePrincipalType"}
    for shape in ["CreateGrantRequest", "GrantListEntry"]:
        shapes[shape]["members"]["GranteeServicePrincipal"] = service
        shapes[shape]["members"]["RetiringServicePrincipal"] = service
    shapes["CreateGrantRequest"]["required"] = ["KeyId", "Operations"]
    shapes["ListGrantsRequest"]["members"]["GranteeServicePrincipal"] = service
    shapes["ListRetirableGrantsRequest"]["members"]["RetiringServicePrincipal"] = service
    shapes["ListRetirableGrantsRequest"].pop("required", None)
    if "SourceArn" not in shapes["GrantConstraints"]["members"]:
        shapes["GrantConstraintSourceArnType"] = {"type": "string", "max": 512, "min": 20}
        shapes["GrantConstraints"]["members"]["SourceArn"] = {"shape": "GrantConstraintSourceArnType"}
    out = tmp_path_factory.mktemp("botocore-data")
    target = out / "kms" / "2014-11-01"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return out


@pytest.fixture
def trent(start_trent):
    return start_trent(extra_config=CONFIG)


def client(trent, model_dir, akid, secret, source_arn=None):
    core = botocore.session.get_session()
    core.get_component("data_loader").search_paths.insert(0, str(model_dir))
    session = boto3.session.Session(botocore_session=core, aws_access_key_id=akid,
                                    aws_secret_access_key=secret, region_name=REGION)
    kms = session.client("kms", endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1}))
    if source_arn is not None:
        def add(request, **_):
            request.headers[SOURCE_ARN_HEADER] = source_arn  # added before signing: it is signed
        kms.meta.events.register_first("before-sign.kms", add)
    return kms


def service(trent, model_dir, name=STORAGE, source_arn=None):
    akid, secret = example.read_credentials(trent.data_dir, name)
    return client(trent, model_dir, akid, secret, source_arn)


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def service_grant(kms, key_id, **extra):
    args = dict(KeyId=key_id, GranteeServicePrincipal=STORAGE, RetiringServicePrincipal=STORAGE,
                Operations=["Encrypt", "Decrypt", "GenerateDataKey", "RetireGrant"],
                Constraints={"SourceArn": VOLUME})
    args.update(extra)
    return kms.create_grant(**{k: v for k, v in args.items() if v is not None})


def test_a_grant_to_a_service_principal_is_usable_by_that_services_calls_for_its_resource(trent, model_dir):
    root = client(trent, model_dir, AKID_A, SECRET_A)
    key = root.create_key()["KeyMetadata"]["Arn"]
    as_service = service(trent, model_dir)
    # Before the grant: the default key policy does not name the service.
    with pytest.raises(ClientError) as e:
        service(trent, model_dir, source_arn=VOLUME).encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"

    grant = service_grant(root, key)
    for_volume = service(trent, model_dir, source_arn=VOLUME)
    blob = for_volume.encrypt(KeyId=key, Plaintext=b"volume data")["CiphertextBlob"]
    assert for_volume.decrypt(CiphertextBlob=blob)["Plaintext"] == b"volume data"
    # The SourceArn constraint: not without the resource, not for another one.
    for kms in [as_service, service(trent, model_dir, source_arn=VOLUME.replace("vol-1", "vol-2"))]:
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key, Plaintext=b"x")
        assert code(e) == "AccessDeniedException"
    # Another service, even for the same resource: not its grant.
    with pytest.raises(ClientError) as e:
        service(trent, model_dir, example.EC2, source_arn=VOLUME).encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"

    # GrantListEntry: GranteePrincipal holds the service principal too (as AWS documents).
    [entry] = root.list_grants(KeyId=key)["Grants"]
    assert entry["GranteePrincipal"] == STORAGE
    assert entry["GranteeServicePrincipal"] == STORAGE
    assert entry["RetiringServicePrincipal"] == STORAGE
    assert "RetiringPrincipal" not in entry
    assert entry["Constraints"] == {"SourceArn": VOLUME}

    # The retiring service lists and retires it (RetireGrant is not bound to the SourceArn).
    retirable = as_service.list_retirable_grants(RetiringServicePrincipal=STORAGE)["Grants"]
    assert [g["GrantId"] for g in retirable] == [grant["GrantId"]]
    as_service.retire_grant(KeyId=key, GrantId=grant["GrantId"])
    with pytest.raises(ClientError) as e:
        for_volume.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"


def test_service_principal_filters_are_only_for_that_service(trent, model_dir):
    root = client(trent, model_dir, AKID_A, SECRET_A)
    key = root.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"Service": STORAGE}, "Action": "kms:ListGrants", "Resource": "*"}]})
    )["KeyMetadata"]["Arn"]
    grant = service_grant(root, key)
    root.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_A}:root", Operations=["Decrypt"])
    listed = service(trent, model_dir).list_grants(KeyId=key, GranteeServicePrincipal=STORAGE)["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    for call in [lambda: root.list_grants(KeyId=key, GranteeServicePrincipal=STORAGE),
                 lambda: root.list_retirable_grants(RetiringServicePrincipal=STORAGE),
                 lambda: service(trent, model_dir, example.EC2).list_retirable_grants(RetiringServicePrincipal=STORAGE)]:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDeniedException"


def test_create_grant_refuses_what_aws_refuses(trent, model_dir):
    root = client(trent, model_dir, AKID_A, SECRET_A)
    key = root.create_key()["KeyMetadata"]["Arn"]
    user = f"arn:aws:iam::{ACCOUNT_A}:root"
    refused = [
        dict(GranteePrincipal=user),  # both grantees
        dict(Constraints=None),  # a service grantee needs a SourceArn constraint
        dict(RetiringServicePrincipal=None),  # … and a retiring principal
        dict(RetiringPrincipal=user),  # both retiring principals
        dict(GranteeServicePrincipal="storage"),  # not a service principal
        dict(Constraints={"SourceArn": "arn:aws:storage:us-east-1:not-an-account:volume/v"}),
    ]
    for extra in refused:
        with pytest.raises(ClientError) as e:
            service_grant(root, key, **extra)
        assert code(e) == "ValidationException", extra
    # A SourceArn grant to an IAM principal is allowed (and then needs the resource too).
    root.create_grant(KeyId=key, GranteePrincipal=user, Operations=["Decrypt"],
                      Constraints={"SourceArn": VOLUME})


def test_only_an_integrated_service_may_name_the_resource_of_a_call(trent, model_dir):
    root = client(trent, model_dir, AKID_A, SECRET_A, source_arn=VOLUME)
    with pytest.raises(ClientError) as e:
        root.list_keys()
    assert code(e) == "AccessDeniedException"
    assert "X-Trent-Source-Arn" in e.value.response["Error"]["Message"]


def test_a_service_role_is_the_customers_role_not_the_service(trent, model_dir):
    """A customer role whose trust policy names a service (a "service role", not service-linked):
    the service may assume it, but the session's calls are the role's — as in AWS, not "made by
    the service": kms:GrantIsForAWSResource is false and kms:ViaService absent."""
    iam = boto3.session.Session(aws_access_key_id=AKID_A, aws_secret_access_key=SECRET_A,
                                region_name=REGION).client("iam", endpoint_url=trent.endpoint)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": STORAGE}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="StorageServiceRole", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # Customers cannot make a role pass for a service-linked one by its path.
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="Fake", Path=f"/aws-service-role/{STORAGE}/",
                        AssumeRolePolicyDocument=json.dumps(trust))
    assert code(e) == "InvalidInput"

    def key(grant_condition: dict, encrypt_condition: dict) -> str:
        return client(trent, model_dir, AKID_A, SECRET_A).create_key(Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
                {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "kms:CreateGrant",
                 "Resource": "*", "Condition": grant_condition},
                {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "kms:Encrypt",
                 "Resource": "*", "Condition": encrypt_condition}]}))["KeyMetadata"]["Arn"]

    via = {"StringLike": {"kms:ViaService": "*"}}
    for_resources = key({"Bool": {"kms:GrantIsForAWSResource": True}}, via)
    via_service = key(via, via)
    not_via = {"Null": {"kms:ViaService": "true"}}
    direct = key({"Bool": {"kms:GrantIsForAWSResource": False}, **not_via}, not_via)

    akid, secret = example.read_credentials(trent.data_dir, STORAGE)
    sts = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                region_name=REGION).client("sts", endpoint_url=trent.endpoint)
    creds = sts.assume_role(RoleArn=role, RoleSessionName="storage")["Credentials"]
    session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=REGION)
    as_role = session.client("kms", endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1}))
    grant = dict(GranteePrincipal=f"arn:aws:iam::{ACCOUNT_A}:root", Operations=["Decrypt"])
    for refused in [for_resources, via_service]:
        with pytest.raises(ClientError) as e:
            as_role.create_grant(KeyId=refused, **grant)
        assert code(e) == "AccessDeniedException"
        with pytest.raises(ClientError) as e:
            as_role.encrypt(KeyId=refused, Plaintext=b"x")
        assert code(e) == "AccessDeniedException"
    as_role.create_grant(KeyId=direct, **grant)
    as_role.encrypt(KeyId=direct, Plaintext=b"x")
    # Nor may its calls name a resource as a service's would.
    with pytest.raises(ClientError) as e:
        session.client("sts", endpoint_url=trent.endpoint)  # a client is fine …
        named = session.client("kms", endpoint_url=trent.endpoint, config=Config(retries={"total_max_attempts": 1}))
        named.meta.events.register_first("before-sign.kms", lambda request, **_: request.headers.__setitem__(SOURCE_ARN_HEADER, VOLUME))
        named.encrypt(KeyId=direct, Plaintext=b"x")  # … naming a resource is not
    assert code(e) == "AccessDeniedException"
