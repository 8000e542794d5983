// Trent console: unit tests of policy.js (the default key policy, the default view, "who can
// use this key") with Node's own test runner; run by tests/python/test_console.py.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defaultKeyPolicy, defaultView, applyDefaultView, whoCanUse, userActions,
} from "../../crates/trent-server/console/policy.js";

const A = "111122223333";
const B = "444455556666";
const key = { account: A, keyUsage: "ENCRYPT_DECRYPT", keySpec: "SYMMETRIC_DEFAULT", origin: "AWS_KMS" };

test("no administrators or users: only the account statement", () => {
  const p = defaultKeyPolicy({ key });
  assert.deepEqual(p.Statement.map((s) => s.Sid), ["Enable IAM User Permissions"]);
});

test("HMAC keys: MAC actions and no grants statement", () => {
  const p = defaultKeyPolicy({ key: { ...key, keyUsage: "GENERATE_VERIFY_MAC", keySpec: "HMAC_256" }, users: [`arn:aws:iam::${A}:user/u`] });
  assert.deepEqual(p.Statement.map((s) => s.Sid), ["Enable IAM User Permissions", "Allow use of the key"]);
  assert.deepEqual(p.Statement[1].Action, ["kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"]);
});

test("signing keys and imported material", () => {
  assert.deepEqual(userActions("SIGN_VERIFY", "ECC_NIST_P256"), ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"]);
  const p = defaultKeyPolicy({ key: { ...key, origin: "EXTERNAL" }, admins: [`arn:aws:iam::${A}:role/r`], adminsMayDelete: false });
  const admin = p.Statement[1];
  assert.equal(admin.Principal.AWS, `arn:aws:iam::${A}:role/r`);
  assert.ok(admin.Action.includes("kms:ImportKeyMaterial"));
  assert.ok(!admin.Action.includes("kms:ScheduleKeyDeletion"));
});

test("the default view reads back what the wizard wrote, and rewrites only principals", () => {
  const users = [`arn:aws:iam::${A}:user/u`, `arn:aws:iam::${A}:role/r`];
  const p = defaultKeyPolicy({ key, admins: [`arn:aws:iam::${A}:user/admin`], users, accounts: [B] });
  const view = defaultView(p, A);
  assert.deepEqual(view.admins, [`arn:aws:iam::${A}:user/admin`]);
  assert.deepEqual(view.users, users);
  assert.deepEqual(view.accounts, [B]);
  // A statement the user added stays where it is.
  const custom = { Sid: "extra", Effect: "Deny", Principal: "*", Action: "kms:Decrypt", Resource: "*" };
  const withCustom = { ...p, Statement: [...p.Statement.slice(0, 2), custom, ...p.Statement.slice(2)] };
  const next = applyDefaultView(withCustom, { ...view, users: [users[1]], accounts: [] }, key);
  assert.deepEqual(next.Statement.map((s) => s.Sid), ["Enable IAM User Permissions", "Allow access for Key Administrators", "extra", "Allow use of the key", "Allow attachment of persistent resources"]);
  assert.equal(next.Statement[3].Principal.AWS, users[1]);
  // Removing every key user removes both key users statements.
  const none = applyDefaultView(p, { ...view, users: [], accounts: [] }, key);
  assert.deepEqual(none.Statement.map((s) => s.Sid), ["Enable IAM User Permissions", "Allow access for Key Administrators"]);
  assert.equal(defaultView({ Statement: [custom] }, A), null);
});

test("who can use: delegation to accounts, everyone, grants", () => {
  const p = defaultKeyPolicy({ key, users: [`arn:aws:iam::${A}:user/u`], accounts: [B] });
  p.Statement.push({ Sid: "open", Effect: "Allow", Principal: { AWS: "*" }, Action: "kms:Encrypt", Resource: "*" });
  const grants = [{ GrantId: "g1", Name: "svc", GranteePrincipal: `arn:aws:iam::${A}:role/svc`, Operations: ["Decrypt", "CreateGrant"], Constraints: { EncryptionContextSubset: { app: "x" } } }];
  const rows = whoCanUse(p, grants, A, ["Encrypt", "Decrypt", "GenerateDataKey"]);
  const root = rows.find((r) => r.principal === `arn:aws:iam::${A}:root`);
  assert.match(root.note, /IAM policies in account 111122223333 decide/);
  assert.deepEqual(root.use, ["All cryptographic operations of this key"]);
  const other = rows.find((r) => r.principal === `arn:aws:iam::${B}:root` && r.via.includes("Allow use of the key"));
  assert.match(other.who, /another account/);
  assert.match(other.note, /by its ARN/);
  const grantRow = rows.find((r) => r.via.startsWith("Grant"));
  assert.deepEqual(grantRow.use, ["Decrypt"]);
  assert.match(grantRow.condition, /EncryptionContextSubset/);
  assert.ok(rows.find((r) => r.principal === "*").warn);
  const attach = rows.find((r) => r.via.includes("persistent resources") && r.principal.endsWith(":user/u"));
  assert.match(attach.condition, /integrated AWS service/);
});
