// Differential test of Trent's KMS authorization (issue 17): random key policies, identity
// policies and requests, each decided by Trent (`cargo build -p trent-policy --example decide`,
// which calls `trent_policy::kms::authorize`, the function real requests go through) and by the
// independent evaluator @cloud-copilot/iam-simulate (AGPL-3.0: installed by `npm ci` here at test
// time and only run, never copied). Its core engine is driven directly, because its front-end
// drops `kms:EncryptionContext:*` keys. Fails on any disagreement that is not one of the
// documented, decided differences (KNOWN_DIFFERENCES below; docs/decisions.md, "Differential
// testing against an independent evaluator").
//
// Usage: node tests/differential/run.mjs [--scenarios N] [--seed S] [--decide PATH] [--show K]
// (defaults: 3000 scenarios, seed 17, target/debug/examples/decide, show 5).

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const SCENARIOS = Number(arg('scenarios', '3000'));
const SEED = Number(arg('seed', '17'));
const SHOW = Number(arg('show', '5'));
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
const DECIDE = arg('decide', path.join(targetDir, 'debug/examples/decide'));

// The package's `exports` name only its front-end; its core engine is loaded by file.
const engineDir = path.join(here, 'node_modules/@cloud-copilot/iam-simulate/dist/esm');
const load = (rel) => import(pathToFileURL(path.join(engineDir, rel)).href);
const { authorize: simulate } = await load('core_engine/CoreSimulatorEngine.js');
const { AwsRequestImpl } = await load('request/request.js');
const { RequestContextImpl } = await load('requestContext.js');
const { DiscoveryContextKeyConstraints } = await load(
  'context_keys/discoveryContextKeyConstraints.js',
);
const { loadPolicy } = await import(
  pathToFileURL(path.join(here, 'node_modules/@cloud-copilot/iam-policy/dist/esm/index.js')).href
);

// ---------------------------------------------------------------- random choices (seeded)

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(SEED);
const chance = (p) => random() < p;
const pick = (xs) => xs[Math.floor(random() * xs.length)];
const between = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
function some(xs, lo, hi) {
  const n = Math.min(between(lo, hi), xs.length);
  const pool = [...xs];
  const out = [];
  while (out.length < n) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]);
  return out;
}
const one = (xs) => (xs.length === 1 ? xs[0] : xs);

// ---------------------------------------------------------------- the world

const A = '111122223333'; // owns the key
const B = '444455556666'; // another account
const KEY_ARN = `arn:aws:kms:us-east-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const CALLERS = [
  { kind: 'user', arn: `arn:aws:iam::${A}:user/alice`, account: A, name: 'alice' },
  { kind: 'user', arn: `arn:aws:iam::${A}:user/ops/bob`, account: A, name: 'bob' },
  {
    kind: 'role',
    arn: `arn:aws:sts::${A}:assumed-role/app/s1`,
    roleArn: `arn:aws:iam::${A}:role/app`,
    account: A,
  },
  { kind: 'user', arn: `arn:aws:iam::${B}:user/carol`, account: B, name: 'carol' },
  { kind: 'root', arn: `arn:aws:iam::${A}:root`, account: A },
  { kind: 'root', arn: `arn:aws:iam::${B}:root`, account: B },
  {
    kind: 'role',
    arn: `arn:aws:sts::${B}:assumed-role/ext/s2`,
    roleArn: `arn:aws:iam::${B}:role/ext`,
    account: B,
  },
];

const ACTIONS = [
  'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyPair',
  'kms:ReEncryptFrom', 'kms:DescribeKey', 'kms:CreateGrant', 'kms:ListGrants',
  'kms:RevokeGrant', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion',
  'kms:TagResource', 'kms:Sign', 'kms:GetPublicKey', 'kms:EnableKeyRotation',
];
const ACTION_PATTERNS = [
  ...ACTIONS, 'kms:*', 'kms:Generate*', 'kms:ReEncrypt*', 'kms:*Grant*', 'kms:Get*',
  'kms:?ncrypt', '*', 'kms:encrypt', 'KMS:Decrypt', 'kms:*Key*',
];

const POLICY_PRINCIPALS = [
  `arn:aws:iam::${A}:root`, A, `arn:aws:iam::${B}:root`, B,
  `arn:aws:iam::${A}:user/alice`, `arn:aws:iam::${A}:user/ops/bob`,
  `arn:aws:iam::${B}:user/carol`, `arn:aws:iam::${A}:role/app`, `arn:aws:iam::${B}:role/ext`,
  '*',
];

const RESOURCES = [
  '*', KEY_ARN, `arn:aws:kms:*:${A}:key/*`, `arn:aws:kms:us-east-1:${B}:key/*`,
  `arn:aws:kms:us-east-1:${A}:alias/*`, 'arn:aws:kms:*:*:key/1234abcd-*',
];

// Condition keys: type, values a request may carry, values a policy may test.
const KEYS = {
  'kms:EncryptionContext:app': {
    type: 'string',
    request: ['billing', 'payroll', 'Billing'],
    policy: ['billing', 'payroll', 'BILLING', 'bill*', '*roll', 'pay?oll'],
  },
  'kms:EncryptionContextKeys': {
    type: 'multi',
    request: ['app', 'team', 'env'],
    policy: ['app', 'team', 'env', 'a*', 't?am'],
  },
  'kms:ViaService': {
    type: 'string',
    request: ['ec2.us-east-1.amazonaws.com', 's3.us-east-1.amazonaws.com'],
    policy: ['ec2.us-east-1.amazonaws.com', 's3.*.amazonaws.com', 'ec2.*'],
  },
  'kms:EncryptionAlgorithm': {
    type: 'string',
    request: ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_256'],
    policy: ['SYMMETRIC_DEFAULT', 'RSAES_*'],
  },
  'kms:CallerAccount': { type: 'string', request: null, policy: [A, B, '1111*'] },
  'aws:PrincipalAccount': { type: 'string', request: null, policy: [A, B] },
  'aws:PrincipalArn': {
    type: 'arn',
    request: null,
    policy: [
      `arn:aws:iam::${A}:user/alice`, `arn:aws:iam::${A}:user/*`, `arn:aws:iam::*:role/app`,
      `arn:aws:iam::${B}:*`, `arn:aws:iam::${A}:user/\${aws:username}`,
    ],
  },
  'aws:username': { type: 'string', request: null, policy: ['alice', 'bob', 'c*'] },
  'kms:GrantIsForAWSResource': { type: 'bool', request: ['true', 'false'], policy: ['true', 'false'] },
  'aws:SecureTransport': { type: 'bool', request: ['true', 'false'], policy: ['true', 'false'] },
  'aws:SourceIp': {
    type: 'ip',
    request: ['10.0.0.5', '192.168.1.7', '2001:db8::1'],
    policy: ['10.0.0.0/8', '192.168.1.7/32', '2001:db8::/32', '192.168.1.7'],
  },
  'aws:CurrentTime': {
    type: 'date',
    request: ['2026-01-01T00:00:00Z', '2027-06-01T12:00:00Z'],
    policy: ['2026-06-01T00:00:00Z', '2027-06-01T12:00:00Z'],
  },
  'kms:RotationPeriodInDays': { type: 'numeric', request: ['90', '365', '30'], policy: ['90', '100', '30'] },
};

const OPERATORS = {
  string: ['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike'],
  multi: ['StringEquals', 'StringLike', 'StringNotEquals', 'StringNotLike'],
  arn: ['ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'StringEquals', 'StringLike', 'StringNotLike'],
  bool: ['Bool'],
  ip: ['IpAddress', 'NotIpAddress'],
  date: ['DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals'],
  numeric: ['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals'],
};

// `forKeyPolicy`: set operators only on multi-valued keys, since KMS refuses a key policy that
// puts `ForAllValues` on a single-valued key (Trent too: "overly permissive condition").
function condition(forKeyPolicy) {
  const block = {};
  for (let i = between(1, 2); i > 0; i--) {
    const key = pick(Object.keys(KEYS));
    const spec = KEYS[key];
    let op;
    if (chance(0.1)) {
      op = 'Null';
      block[op] = { ...block[op], [key]: pick(['true', 'false']) };
      continue;
    }
    op = pick(OPERATORS[spec.type]);
    if (spec.type === 'multi' || (!forKeyPolicy && chance(0.1))) op = `${pick(['ForAnyValue', 'ForAllValues'])}:${op}`;
    if (chance(0.2)) op += 'IfExists';
    const values = some(spec.policy, 1, 2);
    block[op] = { ...block[op], [key]: one(values) };
  }
  return block;
}

let sids = 0;
function statement(withPrincipal) {
  const s = { Effect: chance(0.75) ? 'Allow' : 'Deny' };
  // Statement ids are unique within a policy (Trent refuses duplicates, as IAM does).
  if (chance(0.3)) s.Sid = `S${++sids}`;
  if (withPrincipal) {
    const p = some(POLICY_PRINCIPALS, 1, 2);
    // NotPrincipal only in Deny statements, as AWS recommends (and only with AWS principals).
    const element = s.Effect === 'Deny' && chance(0.2) && !p.includes('*') ? 'NotPrincipal' : 'Principal';
    s[element] = p.length === 1 && p[0] === '*' && chance(0.5) ? '*' : { AWS: one(p) };
  }
  s[chance(0.15) ? 'NotAction' : 'Action'] = one(some(ACTION_PATTERNS, 1, 3));
  if (withPrincipal) s.Resource = '*';
  else s[chance(0.1) ? 'NotResource' : 'Resource'] = one(some(RESOURCES, 1, 2));
  if (chance(0.4)) s.Condition = condition(withPrincipal);
  return s;
}

function scenario() {
  const keyPolicy = { Version: '2012-10-17', Statement: [] };
  if (chance(0.6)) {
    keyPolicy.Statement.push({
      Sid: 'Enable IAM User Permissions',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${A}:root` },
      Action: 'kms:*',
      Resource: '*',
    });
  }
  for (let i = between(1, 3); i > 0; i--) keyPolicy.Statement.push(statement(true));
  const caller = pick(CALLERS);
  // An account's root user has no IAM policies; it has every identity permission implicitly.
  const identityPolicies = [];
  for (let i = caller.kind === 'root' ? 0 : between(0, 2); i > 0; i--) {
    const st = [];
    for (let j = between(1, 3); j > 0; j--) st.push(statement(false));
    identityPolicies.push({ Version: '2012-10-17', Statement: st });
  }
  // What Trent puts in every request from this caller, then some operation keys.
  const context = {
    'aws:PrincipalArn': caller.kind === 'role' ? caller.roleArn : caller.arn,
    'aws:PrincipalAccount': caller.account,
    'kms:CallerAccount': caller.account,
    'aws:PrincipalType': { role: 'AssumedRole', user: 'User', root: 'Account' }[caller.kind],
  };
  if (caller.name) context['aws:username'] = caller.name;
  for (const [key, spec] of Object.entries(KEYS)) {
    if (!spec.request || !chance(0.6)) continue;
    context[key] = spec.type === 'multi' ? some(spec.request, 1, 3) : pick(spec.request);
  }
  return {
    keyPolicy,
    identityPolicies,
    principal: { kind: caller.kind, arn: caller.arn, account: caller.account, roleArn: caller.roleArn },
    action: pick(ACTIONS),
    keyArn: KEY_ARN,
    keyAccount: A,
    context,
  };
}

// ---------------------------------------------------------------- the independent evaluator

const ROOT_IMPLICIT = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

function independent(s) {
  const policy = (doc, name) => loadPolicy(doc, { name });
  const request = new AwsRequestImpl(
    s.principal.arn,
    { resource: s.keyArn, accountId: s.keyAccount },
    s.action,
    new RequestContextImpl(s.context),
  );
  return simulate({
    request,
    sessionPolicy: undefined,
    // The root user's implicit identity permissions, written out for the evaluator.
    identityPolicies: (s.principal.kind === 'root' ? [ROOT_IMPLICIT] : s.identityPolicies).map(
      (p, i) => policy(p, `identity${i}`),
    ),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: policy(s.keyPolicy, 'keyPolicy'),
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]),
    },
  }).result;
}

// ---------------------------------------------------------------- documented differences

const allStatements = (s) => [
  ...s.keyPolicy.Statement,
  ...s.identityPolicies.flatMap((p) => p.Statement),
];
const conditionEntries = (s) =>
  allStatements(s).flatMap((st) =>
    Object.entries(st.Condition ?? {}).flatMap(([op, entries]) =>
      Object.entries(entries).map(([key, value]) => ({ op, key, value })),
    ),
  );

// Actions a principal of another account can ever be allowed on a key (the KMS developer
// guide's list; `trent_policy::kms::CROSS_ACCOUNT_PERMISSIONS`).
const CROSS_ACCOUNT = new Set(
  [
    'Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKey',
    'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
    'GenerateMac', 'VerifyMac', 'Sign', 'Verify', 'DeriveSharedSecret', 'Encapsulate', 'Decapsulate',
    'CreateGrant', 'DescribeKey', 'GetKeyRotationStatus', 'GetPublicKey', 'ListGrants',
    'RetireGrant', 'RevokeGrant',
  ].map((a) => `kms:${a}`.toLowerCase()),
);

// Each: a name, where it is decided, and whether a disagreement (scenario, Trent's decision, the
// independent evaluator's) is one of its cases. A disagreement is excluded only when a
// predicate matching it names a decided difference.
// The levels of a caller's chain a NotPrincipal may list: its account (root ARN or bare id),
// then the user, or the role and the session.
function chainLevels(p) {
  const account = [`arn:aws:iam::${p.account}:root`, p.account];
  if (p.kind === 'root') return [account];
  if (p.kind === 'role') return [account, [p.roleArn], [p.arn]];
  return [account, [p.arn]];
}

const KNOWN_DIFFERENCES = [
  {
    name: 'NotPrincipal naming only part of the caller\'s chain',
    decided: 'docs/decisions.md "NotPrincipal naming only part of the caller\'s chain": the statement applies unless every level (account, user or role and session) is listed; the independent evaluator excludes the caller when one level is',
    applies: (s, ours) =>
      ours === 'ExplicitlyDenied' &&
      s.keyPolicy.Statement.some((st) => {
        if (st.Effect !== 'Deny' || !st.NotPrincipal) return false;
        const listed = [st.NotPrincipal.AWS].flat();
        const named = chainLevels(s.principal).map((level) => level.some((n) => listed.includes(n)));
        return named.some(Boolean) && !named.every(Boolean);
      }),
  },
  {
    name: 'bare IPv4 address under NotIpAddress, IPv6 source address',
    decided: 'docs/decisions.md "Differential testing": an IPv6 address is not within an IPv4 address written without a prefix length, so NotIpAddress is true; the independent evaluator makes it false (with "/32" it agrees)',
    applies: (s) =>
      String(s.context['aws:SourceIp'] ?? '').includes(':') &&
      conditionEntries(s).some(
        (e) =>
          /(^|:)NotIpAddress/.test(e.op) &&
          [e.value].flat().some((v) => !v.includes('/') && !v.includes(':')),
      ),
  },
  {
    name: 'cross-account gate',
    decided: 'docs/decisions.md "Differential testing": KMS never lets another account perform an action outside its cross-account list, whatever the policies say (seed 002, the developer guide); the independent evaluator applies the policies only',
    applies: (s, ours, theirs) =>
      s.principal.account !== s.keyAccount &&
      !CROSS_ACCOUNT.has(s.action.toLowerCase()) &&
      ours === 'ImplicitlyDenied' &&
      theirs === 'Allowed',
  },
  {
    name: 'unresolvable policy variable under a negated operator',
    decided: 'docs/decisions.md "Unresolvable policy variables": the entry is true (AWS\'s condition-operator page); the independent evaluator makes it false',
    applies: (s) =>
      !('aws:username' in s.context) &&
      conditionEntries(s).some(
        (e) => /Not/.test(e.op) && JSON.stringify(e.value).includes('${'),
      ),
  },
];

// ---------------------------------------------------------------- the run

const scenarios = Array.from({ length: SCENARIOS }, scenario);
const started = Date.now();
const trent = spawnSync(DECIDE, {
  input: scenarios.map((s) => JSON.stringify(s)).join('\n') + '\n',
  encoding: 'utf8',
  maxBuffer: 1 << 28,
});
if (trent.error || trent.status !== 0) {
  console.error(`differential: cannot run ${DECIDE}: ${trent.error ?? trent.stderr}`);
  console.error('build it with: cargo build -p trent-policy --example decide');
  process.exit(2);
}
const trentDecisions = trent.stdout.trimEnd().split('\n');
const trentMs = Date.now() - started;

const counts = { agree: 0, known: 0, disagree: 0 };
const byKnown = new Map();
const tally = { Allowed: 0, ExplicitlyDenied: 0, ImplicitlyDenied: 0 };
const disagreements = [];
for (const [i, s] of scenarios.entries()) {
  const ours = trentDecisions[i];
  const theirs = independent(s);
  tally[theirs] = (tally[theirs] ?? 0) + 1;
  if (ours === theirs) {
    counts.agree++;
    continue;
  }
  const known = KNOWN_DIFFERENCES.find((k) => k.applies(s, ours, theirs));
  if (known) {
    counts.known++;
    byKnown.set(known.name, (byKnown.get(known.name) ?? 0) + 1);
    continue;
  }
  counts.disagree++;
  disagreements.push({ index: i, trent: ours, independent: theirs, scenario: s });
}

console.log(
  `differential: seed ${SEED}, ${SCENARIOS} scenarios (independent evaluator: ${tally.Allowed} allowed, ` +
    `${tally.ExplicitlyDenied} explicit deny, ${tally.ImplicitlyDenied} implicit deny); ` +
    `${counts.agree} agree, ${counts.known} differ as decided, ${counts.disagree} disagree ` +
    `(Trent ${trentMs} ms, total ${Date.now() - started} ms)`,
);
for (const [name, n] of byKnown) console.log(`  decided difference "${name}": ${n}`);
for (const d of disagreements.slice(0, SHOW)) {
  console.log(`\nscenario ${d.index}: Trent ${d.trent}, independent evaluator ${d.independent}`);
  console.log(JSON.stringify(d.scenario, null, 1));
}
process.exit(counts.disagree === 0 ? 0 : 1);
