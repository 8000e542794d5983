"""IAM's policy simulator on Trent (issue 17): `SimulateCustomPolicy` and `SimulatePrincipalPolicy`
through boto3 and the AWS CLI, with AWS's `EvaluationResults` shape and KMS's decision rules (the key
policy must allow; root delegation; cross-account rules)."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, ACCOUNT_B, AKID_A, AKID_B, SECRET_A, SECRET_B
from test_awscli import run_aws
from test_iam_sts import client, error_code

KEY_A = f"arn:aws:kms:us-east-1:{ACCOUNT_A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
USER_B = f"arn:aws:iam::{ACCOUNT_B}:user/bob"

# Seed 002: the key's account delegates to its own IAM and lets account B use the key.
CROSS_ACCOUNT_KEY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"},
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            },
        ],
    },
    indent=2,
)


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resource="*") -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def by_action(response) -> dict:
    return {r["EvalActionName"]: r for r in response["EvaluationResults"]}


def test_simulate_custom_policy_cli_matches_aws_published_example(endpoint):
    # The AWS CLI's own example for simulate-custom-policy, with its published output.
    doc = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
    out = run_aws(
        endpoint,
        "iam", "simulate-custom-policy",
        "--policy-input-list", doc,
        "--action-names", "dynamodb:CreateBackup",
        "--context-entries", "ContextKeyName='aws:CurrentTime',ContextKeyValues='2019-04-25T11:00:00Z',ContextKeyType=date",
    )
    [result] = json.loads(out.stdout)["EvaluationResults"]
    assert result["EvalActionName"] == "dynamodb:CreateBackup"
    assert result["EvalResourceName"] == "*"
    assert result["EvalDecision"] == "allowed"
    [statement] = result["MatchedStatements"]
    assert statement["SourcePolicyId"] == "PolicyInputList.1"
    assert statement["StartPosition"] == {"Line": 1, "Column": 38}
    assert statement["EndPosition"] == {"Line": 1, "Column": 167}
    assert result["MissingContextValues"] == []
    assert "EvalDecisionDetails" not in result  # resource `*`: not returned

    out = run_aws(
        endpoint,
        "iam", "simulate-custom-policy",
        "--policy-input-list", doc,
        "--action-names", "dynamodb:CreateBackup",
        "--context-entries", "ContextKeyName='aws:CurrentTime',ContextKeyValues='2014-04-25T11:00:00Z',ContextKeyType=date",
    )
    [result] = json.loads(out.stdout)["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MatchedStatements"] == []

    # Without the key the condition needs, it is reported missing.
    out = run_aws(endpoint, "iam", "simulate-custom-policy", "--policy-input-list", doc, "--action-names", "dynamodb:CreateBackup")
    [result] = json.loads(out.stdout)["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MissingContextValues"] == ["aws:CurrentTime"]


def test_simulate_cross_account_key_policy_seed_002(endpoint):
    iam = client("iam", endpoint, AKID_B, SECRET_B)
    identity = policy(allow("kms:*", KEY_A))
    response = iam.simulate_custom_policy(
        PolicyInputList=[identity],
        ActionNames=["kms:Encrypt", "kms:ScheduleKeyDeletion", "kms:Sign"],
        ResourceArns=[KEY_A],
        ResourcePolicy=CROSS_ACCOUNT_KEY_POLICY,
        CallerArn=USER_B,
    )
    results = by_action(response)
    assert response["IsTruncated"] is False

    encrypt = results["kms:Encrypt"]
    assert encrypt["EvalResourceName"] == KEY_A
    assert encrypt["EvalDecision"] == "allowed"
    sources = {(s["SourcePolicyId"], s["SourcePolicyType"]) for s in encrypt["MatchedStatements"]}
    assert sources == {("ResourcePolicy", "resource"), ("PolicyInputList.1", "none")}
    key_statement = next(s for s in encrypt["MatchedStatements"] if s["SourcePolicyId"] == "ResourcePolicy")
    # The second statement of the pretty-printed key policy: lines 13 to 27, after its braces.
    assert key_statement["StartPosition"] == {"Line": 13, "Column": 6}
    assert key_statement["EndPosition"] == {"Line": 27, "Column": 6}
    assert encrypt["EvalDecisionDetails"] == {"IAM Policy": "allowed", "Resource Policy": "allowed"}
    [specific] = encrypt["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == KEY_A
    assert specific["EvalResourceDecision"] == "allowed"
    assert specific["EvalDecisionDetails"] == {"IAM Policy": "allowed", "Resource Policy": "allowed"}

    # Allowed by both policies, but not an operation another account can ever perform.
    assert results["kms:ScheduleKeyDeletion"]["EvalDecision"] == "implicitDeny"
    # Allowed by IAM, but the key policy does not give it to account B.
    sign = results["kms:Sign"]
    assert sign["EvalDecision"] == "implicitDeny"
    assert sign["EvalDecisionDetails"] == {"IAM Policy": "allowed", "Resource Policy": "implicitDeny"}

    # The key policy alone is not enough: account B's IAM must allow too.
    response = iam.simulate_custom_policy(
        PolicyInputList=[policy(allow("kms:DescribeKey", KEY_A))],
        ActionNames=["kms:Encrypt"],
        ResourceArns=[KEY_A],
        ResourcePolicy=CROSS_ACCOUNT_KEY_POLICY,
        CallerArn=USER_B,
    )
    [result] = response["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["EvalDecisionDetails"] == {"IAM Policy": "implicitDeny", "Resource Policy": "allowed"}


def test_simulate_explicit_deny_reports_only_the_deny(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    doc = policy(allow("kms:*"), {"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})
    response = iam.simulate_custom_policy(PolicyInputList=[doc], ActionNames=["kms:Decrypt", "kms:Encrypt"])
    results = by_action(response)
    decrypt = results["kms:Decrypt"]
    assert decrypt["EvalDecision"] == "explicitDeny"
    [deny] = decrypt["MatchedStatements"]
    assert deny["SourcePolicyId"] == "PolicyInputList.1"
    # 1-based column just after the brace, as AWS counts.
    assert deny["StartPosition"] == {"Line": 1, "Column": doc.index('{"Sid": "NoDecrypt"') + 2}
    assert deny["EndPosition"] == {"Line": 1, "Column": len(doc) - 1}
    assert results["kms:Encrypt"]["EvalDecision"] == "allowed"


def test_simulate_same_account_key_policy_needs_root_delegation(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    caller = f"arn:aws:iam::{ACCOUNT_A}:user/alice"
    only_carol = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:user/carol"}, "Action": "kms:*", "Resource": "*"})
    delegating = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*", "Resource": "*"})
    naming_alice = policy(
        {"Sid": "Alice", "Effect": "Allow", "Principal": {"AWS": caller}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:app": "billing"}}}
    )

    def decide(key_policy, identity, context=()):
        response = iam.simulate_custom_policy(
            PolicyInputList=[identity],
            ActionNames=["kms:Decrypt"],
            ResourceArns=[KEY_A],
            ResourcePolicy=key_policy,
            CallerArn=caller,
            ContextEntries=list(context),
        )
        [result] = response["EvaluationResults"]
        return result

    allow_all = policy(allow("kms:*"))
    nothing = policy(allow("s3:GetObject"))
    assert decide(only_carol, allow_all)["EvalDecision"] == "implicitDeny"
    assert decide(delegating, allow_all)["EvalDecision"] == "allowed"
    assert decide(delegating, nothing)["EvalDecision"] == "implicitDeny"
    # A key policy naming the caller needs no IAM policy in the key's account, but its
    # condition needs the encryption context: reported missing, per resource.
    missing = decide(naming_alice, nothing)
    assert missing["EvalDecision"] == "implicitDeny"
    assert missing["MissingContextValues"] == []
    assert missing["ResourceSpecificResults"][0]["MissingContextValues"] == ["kms:EncryptionContext:app"]
    assert missing["EvalDecisionDetails"] == {}  # same account, named resource: present, empty
    given = decide(naming_alice, nothing, [{"ContextKeyName": "kms:EncryptionContext:app", "ContextKeyValues": ["billing"], "ContextKeyType": "string"}])
    assert given["EvalDecision"] == "allowed"
    assert [s["SourcePolicyId"] for s in given["MatchedStatements"]] == ["ResourcePolicy"]


def test_simulate_principal_policy_uses_the_users_and_groups_policies(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    user = iam.create_user(UserName="dana", Path="/ops/")["User"]
    iam.put_user_policy(UserName="dana", PolicyName="encrypt-only", PolicyDocument=policy(allow("kms:Encrypt")))
    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="dana")
    iam.put_group_policy(GroupName="readers", PolicyName="describe", PolicyDocument=policy(allow("kms:DescribeKey")))
    managed = iam.create_policy(PolicyName="deny-decrypt", PolicyDocument=policy({"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}))
    iam.attach_user_policy(UserName="dana", PolicyArn=managed["Policy"]["Arn"])

    response = iam.simulate_principal_policy(
        PolicySourceArn=user["Arn"], ActionNames=["kms:Encrypt", "kms:DescribeKey", "kms:Decrypt", "kms:Sign"]
    )
    results = by_action(response)
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in results["kms:Encrypt"]["MatchedStatements"]] == [("encrypt-only", "user")]
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in results["kms:DescribeKey"]["MatchedStatements"]] == [("describe", "group")]
    assert results["kms:Decrypt"]["EvalDecision"] == "explicitDeny"
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in results["kms:Decrypt"]["MatchedStatements"]] == [("deny-decrypt", "user-managed")]
    assert results["kms:Sign"]["EvalDecision"] == "implicitDeny"

    # The same through the AWS CLI, with a policy added to the user's for the simulation.
    out = run_aws(
        endpoint,
        "iam", "simulate-principal-policy",
        "--policy-source-arn", user["Arn"],
        "--policy-input-list", policy(allow("kms:Sign")),
        "--action-names", "kms:Sign",
    )
    [result] = json.loads(out.stdout)["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"


def test_simulate_errors_and_authorization(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT_A}:user/nobody", ActionNames=["kms:Encrypt"])
    assert error_code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:s3:::not-an-iam-entity", ActionNames=["kms:Encrypt"])
    assert error_code(e) == "InvalidInput"
    with pytest.raises(ClientError) as e:
        iam.simulate_custom_policy(PolicyInputList=["{not json"], ActionNames=["kms:Encrypt"])
    assert error_code(e) == "InvalidInput"
    with pytest.raises(ClientError) as e:
        iam.simulate_custom_policy(PolicyInputList=[policy(allow("kms:*"))], ActionNames=["kms:*"])
    assert error_code(e) == "InvalidInput"
    with pytest.raises(ClientError) as e:  # a resource policy needs a caller
        iam.simulate_custom_policy(PolicyInputList=[policy(allow("kms:*"))], ActionNames=["kms:Encrypt"], ResourcePolicy=CROSS_ACCOUNT_KEY_POLICY)
    assert error_code(e) == "InvalidInput"

    # A user may simulate only with iam:SimulateCustomPolicy / iam:SimulatePrincipalPolicy.
    iam.create_user(UserName="eve")
    key = iam.create_access_key(UserName="eve")["AccessKey"]
    eve = client("iam", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        eve.simulate_custom_policy(PolicyInputList=[policy(allow("kms:*"))], ActionNames=["kms:Encrypt"])
    assert error_code(e) == "AccessDenied"
    assert "iam:SimulateCustomPolicy" in e.value.response["Error"]["Message"]
    iam.put_user_policy(UserName="eve", PolicyName="sim", PolicyDocument=policy(allow("iam:SimulateCustomPolicy")))
    assert eve.simulate_custom_policy(PolicyInputList=[policy(allow("kms:*"))], ActionNames=["kms:Encrypt"])["EvaluationResults"][0]["EvalDecision"] == "allowed"
    with pytest.raises(ClientError) as e:
        eve.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT_A}:user/eve", ActionNames=["kms:Encrypt"])
    assert error_code(e) == "AccessDenied"


def test_simulate_pagination_and_permissions_boundary(endpoint):
    iam = client("iam", endpoint, AKID_A, SECRET_A)
    args = dict(
        PolicyInputList=[policy(allow(["kms:Encrypt", "kms:Decrypt", "kms:Sign"]))],
        PermissionsBoundaryPolicyInputList=[policy(allow(["kms:Encrypt", "kms:Sign"]))],
        ActionNames=["kms:Encrypt", "kms:Decrypt", "kms:Sign"],
    )
    first = iam.simulate_custom_policy(MaxItems=2, **args)
    assert first["IsTruncated"] is True
    assert [r["EvalActionName"] for r in first["EvaluationResults"]] == ["kms:Encrypt", "kms:Decrypt"]
    second = iam.simulate_custom_policy(MaxItems=2, Marker=first["Marker"], **args)
    assert second["IsTruncated"] is False
    assert [r["EvalActionName"] for r in second["EvaluationResults"]] == ["kms:Sign"]

    results = by_action(iam.simulate_custom_policy(**args))
    assert results["kms:Encrypt"]["EvalDecision"] == "allowed"
    assert results["kms:Encrypt"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert results["kms:Decrypt"]["EvalDecision"] == "implicitDeny"
    assert results["kms:Decrypt"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}

    # The whole list through botocore's paginator (MaxItems/Marker as AWS defines them).
    pages = iam.get_paginator("simulate_custom_policy").paginate(PaginationConfig={"PageSize": 1}, **args)
    assert [r["EvalActionName"] for page in pages for r in page["EvaluationResults"]] == ["kms:Encrypt", "kms:Decrypt", "kms:Sign"]


def test_trent_access_lists_who_can_use_a_key(trent, kms):
    import subprocess

    from conftest import trent_bin

    key_arn = kms.create_key(Policy=CROSS_ACCOUNT_KEY_POLICY.replace("kms:DescribeKey", "kms:CreateGrant"))["KeyMetadata"]["Arn"]
    iam = client("iam", trent.endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="keyadmin")
    iam.put_user_policy(UserName="keyadmin", PolicyName="admin", PolicyDocument=policy(allow("kms:*")))

    def access(*extra):
        return subprocess.run(
            [trent_bin(), "access", key_arn, "--data-dir", str(trent.data_dir), *extra],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )

    out = access("--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["KeyArn"] == key_arn
    principals = {p["Principal"]: p for p in answer["Principals"]}
    external = principals[f"arn:aws:iam::{ACCOUNT_B}:root"]
    assert external["Kind"] == "external account"
    assert "kms:Encrypt" in external["Allowed"] and "kms:CreateGrant" in external["Allowed"]
    assert "kms:PutKeyPolicy" in principals[f"arn:aws:iam::{ACCOUNT_A}:user/keyadmin"]["Allowed"]
    messages = [f["Message"] for f in answer["Findings"]]
    assert any(m.startswith(f"arn:aws:iam::{ACCOUNT_B}:root (external account) may create grants") for m in messages), messages
    assert any("keyadmin is a key administrator" in m for m in messages), messages

    text = access()
    assert text.returncode == 0, text.stderr
    assert f"arn:aws:iam::{ACCOUNT_B}:root (external account)" in text.stdout
    assert "findings:" in text.stdout

    missing = subprocess.run(
        [trent_bin(), "access", "1234abcd-12ab-34cd-56ef-1234567890ab", "--data-dir", str(trent.data_dir)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr


def test_simulate_considers_grants_when_asked_cli(trent, kms):
    # A grant gives user `granted` Encrypt on a key whose policy only delegates to the account;
    # the user has no IAM policy. AWS's simulator knows nothing of grants; Trent considers the
    # key's grants when the context entry trent:SimulateGrants=true asks for them.
    iam = client("iam", trent.endpoint, AKID_A, SECRET_A)
    user_arn = iam.create_user(UserName="granted")["User"]["Arn"]
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    grant_id = kms.create_grant(KeyId=key_arn, GranteePrincipal=user_arn, Operations=["Encrypt", "Decrypt"],
                                Constraints={"EncryptionContextSubset": {"app": "billing"}})["GrantId"]

    def simulate(*context):
        args = ["iam", "simulate-principal-policy", "--policy-source-arn", user_arn,
                "--action-names", "kms:Encrypt", "kms:Sign", "--resource-arns", key_arn]
        if context:
            args += ["--context-entries", *context]
        return by_action(json.loads(run_aws(trent.endpoint, *args).stdout))

    plain = simulate()
    assert plain["kms:Encrypt"]["EvalDecision"] == "implicitDeny"

    asked = "ContextKeyName=trent:SimulateGrants,ContextKeyValues=true,ContextKeyType=boolean"
    # The grant's constraint is checked against the simulated encryption context.
    wrong = simulate(asked, "ContextKeyName=kms:EncryptionContext:app,ContextKeyValues=payroll,ContextKeyType=string")
    assert wrong["kms:Encrypt"]["EvalDecision"] == "implicitDeny"

    results = simulate(asked, "ContextKeyName=kms:EncryptionContext:app,ContextKeyValues=billing,ContextKeyType=string")
    encrypt = results["kms:Encrypt"]
    assert encrypt["EvalDecision"] == "allowed"
    assert encrypt["MatchedStatements"] == [{"SourcePolicyId": f"grant/{grant_id}", "SourcePolicyType": "resource"}]
    [specific] = encrypt["ResourceSpecificResults"]
    assert specific["EvalResourceDecision"] == "allowed"
    assert specific["MatchedStatements"] == encrypt["MatchedStatements"]
    assert results["kms:Sign"]["EvalDecision"] == "implicitDeny"  # not an operation of the grant


def test_trent_access_dry_run_of_a_policy_change(trent, kms, tmp_path):
    import subprocess

    from conftest import trent_bin

    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    proposed = tmp_path / "policy.json"
    proposed.write_text(CROSS_ACCOUNT_KEY_POLICY)

    def access(*extra):
        return subprocess.run(
            [trent_bin(), "access", key_arn, "--data-dir", str(trent.data_dir), "--policy", str(proposed), *extra],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )

    out = access("--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["KeyArn"] == key_arn
    changes = {c["Principal"]: c for c in answer["Changes"]}
    assert set(changes) == {f"arn:aws:iam::{ACCOUNT_B}:root"}, changes
    external = changes[f"arn:aws:iam::{ACCOUNT_B}:root"]
    assert external["Kind"] == "external account"
    assert {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptTo", "kms:DescribeKey"} <= set(external["Gained"])
    assert external["Lost"] == []
    # Nothing changed: the key's own analysis does not list account B.
    assert kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"] != CROSS_ACCOUNT_KEY_POLICY

    text = access()
    assert text.returncode == 0, text.stderr
    assert f"arn:aws:iam::{ACCOUNT_B}:root (external account)" in text.stdout
    assert "gains: " in text.stdout and "kms:Encrypt" in text.stdout

    proposed.write_text("{not json")
    bad = access()
    assert bad.returncode != 0
    assert "MalformedPolicyDocument" in bad.stderr or "policy" in bad.stderr.lower()


def test_explain_decision_for_the_callers_own_denied_call(trent, kms):
    # ExplainDecision is a Trent extension of the KMS API; boto3 has no method for it, so it is
    # called with a SigV4-signed request as any KMS operation is.
    from test_http import call

    iam = client("iam", trent.endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="eve")
    iam.put_user_policy(UserName="eve", PolicyName="p", PolicyDocument=policy(
        allow(["kms:Encrypt", "trent:ExplainDecision"]),
        {"Sid": "NoEncryptWithoutContext", "Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*",
         "Condition": {"Null": {"kms:EncryptionContextKeys": "true"}}},
    ))
    keys = iam.create_access_key(UserName="eve")["AccessKey"]
    eve_kms = trent.client(keys["AccessKeyId"], keys["SecretAccessKey"])
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]

    with pytest.raises(ClientError) as denied:
        eve_kms.encrypt(KeyId=key_arn, Plaintext=b"x")
    assert error_code(denied) == "AccessDeniedException"
    request_id = denied.value.response["ResponseMetadata"]["RequestId"]

    def explain(rid, akid=keys["AccessKeyId"], secret=keys["SecretAccessKey"]):
        return call(trent.endpoint, "TrentService.ExplainDecision", json.dumps({"RequestId": rid}).encode(),
                    akid=akid, secret=secret)

    r = explain(request_id)
    assert r.status == 200, r.body
    answer = r.json()
    assert answer["RequestId"] == request_id
    assert answer["Action"] == "kms:Encrypt"
    assert answer["KeyArn"] == key_arn
    assert answer["Decision"] == "ExplicitDeny" and answer["DecidedBy"] == "IdentityPolicy"
    # Eve may not read her own policies (no iam:SimulatePrincipalPolicy): the statement is withheld.
    assert answer["Statements"] == [] and answer["WithheldStatements"] == 1
    assert isinstance(answer["RequestTime"], float)

    # The account root did not make the request: to it the id names nothing.
    other = explain(request_id, akid=AKID_A, secret=SECRET_A)
    assert other.status == 400 and other.error_type == "NotFoundException", other.body
    assert explain("no-such-request").error_type == "NotFoundException"
    missing = call(trent.endpoint, "TrentService.ExplainDecision", b"{}",
                   akid=keys["AccessKeyId"], secret=keys["SecretAccessKey"])
    assert missing.error_type == "ValidationException"


def test_analyze_key_access_for_a_caller(trent, kms):
    # AnalyzeKeyAccess: the key-access analysis and dry run as a Trent extension of the KMS API,
    # for a caller that may read the key policy, the grants and the account's IAM policies.
    from test_http import call

    key_arn = kms.create_key(Policy=CROSS_ACCOUNT_KEY_POLICY)["KeyMetadata"]["Arn"]
    iam = client("iam", trent.endpoint, AKID_A, SECRET_A)
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="read", PolicyDocument=policy(
        allow(["kms:GetKeyPolicy", "kms:ListGrants"])))
    keys = iam.create_access_key(UserName="auditor")["AccessKey"]

    def analyze(body: dict):
        return call(trent.endpoint, "TrentService.AnalyzeKeyAccess", json.dumps(body).encode(),
                    akid=keys["AccessKeyId"], secret=keys["SecretAccessKey"])

    denied = analyze({"KeyId": key_arn})
    assert denied.status == 400 and denied.error_type == "AccessDeniedException", denied.body
    assert "iam:GetAccountAuthorizationDetails" in denied.json()["message"]

    iam.put_user_policy(UserName="auditor", PolicyName="iam", PolicyDocument=policy(
        allow("iam:GetAccountAuthorizationDetails")))
    r = analyze({"KeyId": key_arn})
    assert r.status == 200, r.body
    principals = {p["Principal"]: p for p in r.json()["Principals"]}
    assert "kms:Encrypt" in principals[f"arn:aws:iam::{ACCOUNT_B}:root"]["Allowed"]

    dry = analyze({"KeyId": key_arn, "Policy": policy(
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"},
         "Action": "kms:*", "Resource": "*"})})
    assert dry.status == 200, dry.body
    [change] = dry.json()["Changes"]
    assert change["Principal"] == f"arn:aws:iam::{ACCOUNT_B}:root" and "kms:Encrypt" in change["Lost"]
