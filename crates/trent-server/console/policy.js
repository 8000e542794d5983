// Trent console: key policies in the AWS KMS console's own terms.
//
// `defaultKeyPolicy` writes exactly the policy AWS's KMS console writes for a new key (AWS KMS
// Developer Guide, "Default key policy"): "Enable IAM User Permissions" for the account,
// "Allow access for Key Administrators", and for key users "Allow use of the key" and
// "Allow attachment of persistent resources" (CreateGrant/ListGrants/RevokeGrant only when
// kms:GrantIsForAWSResource is true; seed 002 quotes the same two statements for other
// accounts). `defaultView` reads those statements back as lists for the key policy page, and
// `whoCanUse` explains a key policy and its grants in plain words. Pure functions, no I/O.

export const SID_ROOT = "Enable IAM User Permissions";
export const SID_ADMINS = "Allow access for Key Administrators";
export const SID_USE = "Allow use of the key";
export const SID_GRANTS = "Allow attachment of persistent resources";

// The key administrators statement's actions, in the console's order. The last two are
// dropped when "Allow key administrators to delete this key" is cleared.
const ADMIN_ACTIONS = [
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
];
const DELETION_ACTIONS = ["kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"];

/** The key users statement's actions for a key of this usage and spec (the console's lists). */
export function userActions(keyUsage, keySpec) {
  if (keyUsage === "GENERATE_VERIFY_MAC") return ["kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"];
  if (keyUsage === "SIGN_VERIFY") return ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"];
  if (keyUsage === "KEY_AGREEMENT") return ["kms:DescribeKey", "kms:GetPublicKey", "kms:DeriveSharedSecret"];
  if (keyUsage === "ENCAPSULATE_DECAPSULATE") return ["kms:DescribeKey", "kms:GetPublicKey", "kms:Decapsulate"];
  if (keySpec && keySpec !== "SYMMETRIC_DEFAULT") {
    return ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:DescribeKey", "kms:GetPublicKey"];
  }
  return ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"];
}

/** Whether the console adds the grants statement: keys that integrated services can attach. */
export function hasGrantsStatement(keyUsage, keySpec) {
  return keyUsage === "ENCRYPT_DECRYPT" && (!keySpec || keySpec === "SYMMETRIC_DEFAULT" || keySpec.startsWith("RSA_") || keySpec === "SM2");
}

export function accountRoot(account) {
  return `arn:aws:iam::${account}:root`;
}

// The console writes one principal as a string and several as a list.
function principal(arns) {
  return { AWS: arns.length === 1 ? arns[0] : arns };
}

/**
 * The console's default key policy.
 * `key`: {account, keyUsage, keySpec, origin}; `admins`, `users`: ARNs of IAM users/roles;
 * `accounts`: other account ids (key users); `adminsMayDelete`: keep the deletion actions.
 */
export function defaultKeyPolicy({ key, admins = [], users = [], accounts = [], adminsMayDelete = true }) {
  const statements = [
    {
      Sid: SID_ROOT,
      Effect: "Allow",
      Principal: { AWS: accountRoot(key.account) },
      Action: "kms:*",
      Resource: "*",
    },
  ];
  const adminList = unique(admins);
  if (adminList.length) {
    const actions = [...ADMIN_ACTIONS];
    if (key.origin === "EXTERNAL") actions.push("kms:ImportKeyMaterial");
    if (key.multiRegion) actions.push("kms:ReplicateKey", "kms:UpdatePrimaryRegion");
    if (adminsMayDelete) actions.push(...DELETION_ACTIONS);
    statements.push({ Sid: SID_ADMINS, Effect: "Allow", Principal: principal(adminList), Action: actions, Resource: "*" });
  }
  const userList = unique([...users, ...accounts.map(accountRoot)]);
  if (userList.length) {
    statements.push({
      Sid: SID_USE,
      Effect: "Allow",
      Principal: principal(userList),
      Action: userActions(key.keyUsage, key.keySpec),
      Resource: "*",
    });
    if (hasGrantsStatement(key.keyUsage, key.keySpec)) {
      statements.push({
        Sid: SID_GRANTS,
        Effect: "Allow",
        Principal: principal(userList),
        Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
        Resource: "*",
        Condition: { Bool: { "kms:GrantIsForAWSResource": true } },
      });
    }
  }
  return { Id: "key-consolepolicy-3", Version: "2012-10-17", Statement: statements };
}

function unique(list) {
  return [...new Set(list.filter(Boolean))];
}

export function list(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function awsPrincipals(statement) {
  const p = statement.Principal;
  if (p === "*") return ["*"];
  if (!p || typeof p !== "object") return [];
  return list(p.AWS).map(String);
}

/**
 * Reads a key policy as the console's default view: key administrators, key users and other
 * accounts, or `null` when the policy is not in the default form (then only the JSON editor
 * can change it, as in AWS's console).
 */
export function defaultView(policy, account) {
  const statements = list(policy && policy.Statement);
  const bySid = (sid) => statements.find((s) => s.Sid === sid);
  const root = bySid(SID_ROOT);
  if (!root) return null;
  const admin = bySid(SID_ADMINS);
  const use = bySid(SID_USE);
  const grants = bySid(SID_GRANTS);
  const admins = admin ? awsPrincipals(admin) : [];
  const keyUsers = use ? awsPrincipals(use) : [];
  const ownRoot = accountRoot(account);
  const accounts = [];
  const users = [];
  for (const arn of keyUsers) {
    const m = /^arn:aws:iam::(\d{12}):root$/.exec(arn) || /^(\d{12})$/.exec(arn);
    if (m && arn !== ownRoot) accounts.push(m[1]);
    else users.push(arn);
  }
  const adminsMayDelete = admin ? list(admin.Action).includes("kms:ScheduleKeyDeletion") : true;
  return { admins, users, accounts, adminsMayDelete, hasGrants: Boolean(grants) };
}

/**
 * A copy of `policy` with the default view's statements rewritten from lists (other
 * statements kept as they are, in place). Statements whose list becomes empty are removed.
 */
export function applyDefaultView(policy, view, key) {
  const fresh = defaultKeyPolicy({ key, ...view });
  const wanted = new Map(fresh.Statement.map((s) => [s.Sid, s]));
  const managed = [SID_ADMINS, SID_USE, SID_GRANTS];
  const out = [];
  const seen = new Set();
  for (const s of list(policy.Statement)) {
    if (managed.includes(s.Sid)) {
      const replacement = wanted.get(s.Sid);
      if (replacement) {
        // Keep the statement's own actions (a user may have edited them), change only who.
        out.push({ ...s, Principal: replacement.Principal });
      }
      seen.add(s.Sid);
    } else {
      out.push(s);
    }
  }
  for (const sid of managed) {
    if (!seen.has(sid) && wanted.has(sid)) out.push(wanted.get(sid));
  }
  return { ...policy, Statement: out };
}

// Which KMS actions count as using a key and which as managing it.
const USE_ACTIONS = [
  "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
  "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GenerateMac", "VerifyMac",
  "DeriveSharedSecret", "Encapsulate", "Decapsulate", "GetPublicKey",
];
const MANAGE_ACTIONS = [
  "PutKeyPolicy", "ScheduleKeyDeletion", "CancelKeyDeletion", "DisableKey", "EnableKey", "CreateGrant",
  "RevokeGrant", "UpdateKeyDescription", "TagResource", "UntagResource", "EnableKeyRotation",
  "DisableKeyRotation", "RotateKeyOnDemand", "CreateAlias", "DeleteAlias", "UpdateAlias", "ImportKeyMaterial",
  "DeleteImportedKeyMaterial", "GetKeyPolicy",
];

function wildcard(pattern) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`, "i");
}

/** The KMS operations a statement's Action (or NotAction) covers. */
export function coveredActions(statement) {
  const all = [...USE_ACTIONS, ...MANAGE_ACTIONS, "DescribeKey", "ListGrants", "RetireGrant", "GetKeyRotationStatus", "ListResourceTags", "ListKeyRotations"];
  const matches = (patterns) => all.filter((a) => patterns.some((p) => p === "*" || wildcard(p).test(`kms:${a}`)));
  if (statement.NotAction !== undefined) {
    const excluded = new Set(matches(list(statement.NotAction).map(String)));
    return all.filter((a) => !excluded.has(a));
  }
  return matches(list(statement.Action).map(String));
}

/** A principal ARN in words. */
export function describePrincipal(arn, account) {
  if (arn === "*") return "Everyone (any principal of any account)";
  const root = /^arn:aws:iam::(\d{12}):root$/.exec(arn) || /^(\d{12})$/.exec(arn);
  if (root) return root[1] === account ? `Account ${root[1]} (this account)` : `Account ${root[1]} (another account)`;
  const m = /^arn:aws:(iam|sts)::(\d{12}):(user|role|assumed-role)\/(.+)$/.exec(arn);
  if (m) {
    const kind = { user: "IAM user", role: "IAM role", "assumed-role": "Role session" }[m[3]];
    const where = m[2] === account ? "" : ` in account ${m[2]}`;
    return `${kind} ${m[4]}${where}`;
  }
  return arn;
}

function conditionWords(condition) {
  if (!condition) return "";
  const parts = [];
  for (const [operator, pairs] of Object.entries(condition)) {
    for (const [key, value] of Object.entries(pairs || {})) {
      if (key === "kms:GrantIsForAWSResource" && String(value) === "true") {
        parts.push("only for grants an integrated AWS service creates for them");
      } else {
        parts.push(`${operator} ${key} = ${list(value).join(", ")}`);
      }
    }
  }
  return parts.join("; ");
}

/**
 * Who can use or manage a key: one row per principal and route (policy statement or grant).
 * Rows: {principal, who, effect, use, manage, other, via, condition, note, warn}.
 */
export function whoCanUse(policy, grants, account, applicable) {
  const rows = [];
  // Only the operations this key's type supports are worth listing (kms:Get* on a symmetric
  // key does not make GetPublicKey possible); "all" when a statement covers every one of them.
  const usable = (ops) => {
    const list2 = applicable ? ops.filter((a) => applicable.includes(a)) : ops;
    const all = applicable ? applicable.filter((a) => USE_ACTIONS.includes(a)) : USE_ACTIONS;
    return all.length > 1 && all.every((a) => list2.includes(a)) ? ["All cryptographic operations of this key"] : list2;
  };
  const manageable = (ops) => (MANAGE_ACTIONS.every((a) => ops.includes(a)) ? ["Everything (kms:*)"] : ops);
  for (const statement of list(policy && policy.Statement)) {
    const principals = awsPrincipals(statement);
    if (statement.NotPrincipal !== undefined) {
      rows.push({
        principal: "NotPrincipal",
        who: "Everyone except the principals listed in NotPrincipal",
        effect: statement.Effect,
        use: [], manage: [], other: coveredActions(statement),
        via: `Key policy statement ${statement.Sid || "(no Sid)"}`,
        condition: conditionWords(statement.Condition),
        note: "", warn: true,
      });
      continue;
    }
    const actions = coveredActions(statement);
    const useRaw = actions.filter((a) => USE_ACTIONS.includes(a));
    const manageRaw = actions.filter((a) => MANAGE_ACTIONS.includes(a));
    const other = actions.filter((a) => !useRaw.includes(a) && !manageRaw.includes(a));
    const use = usable(useRaw);
    const manage = manageable(manageRaw);
    for (const arn of principals) {
      const root = /^arn:aws:iam::(\d{12}):root$/.exec(arn) || /^(\d{12})$/.exec(arn);
      let note = "";
      let warn = false;
      if (arn === "*") {
        note = statement.Condition
          ? "Any identity of any account whose IAM policies allow it, when the condition holds."
          : "Any identity of any account whose IAM policies allow it: no condition limits this statement.";
        warn = statement.Effect === "Allow";
      } else if (root && root[1] === account) {
        note = `IAM policies in account ${root[1]} decide which of its users and roles may do this.`;
      } else if (root) {
        note = `IAM policies in account ${root[1]} decide which of its users and roles may do this; they need this key policy and their own IAM policy, and must name the key by its ARN.`;
      } else if (!arn.includes(`::${account}:`)) {
        note = "A principal of another account: its own account's IAM policy must allow it too.";
      }
      rows.push({
        principal: arn,
        who: describePrincipal(arn, account),
        effect: statement.Effect,
        use, manage, other,
        via: `Key policy statement "${statement.Sid || "(no Sid)"}"`,
        condition: conditionWords(statement.Condition),
        note, warn,
      });
    }
  }
  for (const grant of grants || []) {
    const ops = list(grant.Operations);
    const constraints = grant.Constraints
      ? Object.entries(grant.Constraints).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join("; ")
      : "";
    rows.push({
      principal: grant.GranteePrincipal,
      who: describePrincipal(grant.GranteePrincipal, account),
      effect: "Allow",
      use: usable(ops.filter((a) => USE_ACTIONS.includes(a))),
      manage: ops.filter((a) => MANAGE_ACTIONS.includes(a)),
      other: ops.filter((a) => !USE_ACTIONS.includes(a) && !MANAGE_ACTIONS.includes(a)),
      via: `Grant ${grant.Name ? `"${grant.Name}" ` : ""}${grant.GrantId}`,
      condition: constraints,
      note: "Grants only allow; an explicit deny in a policy still wins.",
      warn: false,
    });
  }
  return rows;
}
