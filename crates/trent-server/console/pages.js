// Trent console: the pages — sign in, the keys list, the create-key wizard and a key's detail
// page (configuration, key policy, who can use it, grants, rotation, public key, aliases,
// tags).
//
// Each page function returns its element at once and fills it as API answers arrive. Every
// action is a signed call of the public API made as the signed-in user (aws.js); what the
// user may not do fails with the server's own AccessDenied, shown plainly.

import { kms, kmsAll, iamPrincipals, callerIdentity, cloudtrail, saveSession } from "./aws.js";
import {
  h, fill, field, errorBox, notice, messageSlot, busy, confirmDialog, formatDate, propertyList, table, section, uid,
} from "./ui.js";
import {
  defaultKeyPolicy, defaultView, applyDefaultView, whoCanUse, describePrincipal, list,
} from "./policy.js";

export const REGIONS = [
  "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
  "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1",
  "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
  "me-south-1", "af-south-1",
];

// Seed 004: a service's grant is what lets it decrypt the data it keeps.
const REVOKE_WARNING =
  "Revoking or retiring a grant takes that permission away at once. If an AWS service (for example EC2 Auto Scaling " +
  "launching encrypted EBS volumes) uses this grant, it can no longer decrypt the data it protects with this key: " +
  "volumes, snapshots and other resources encrypted under the grant can become unusable. Revoke a grant only when " +
  "you know what uses it.";

function input(attrs) {
  return h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
}

function button(text, attrs = {}) {
  return h("button", { type: "button", ...attrs }, text);
}

// A spinner line while something loads, replaced by the result (or the error) when it comes.
function loadInto(container, load) {
  fill(container, h("p", { class: "loading", role: "status" }, "Loading…"));
  return load().then(
    (content) => {
      fill(container, ...list(content));
    },
    (e) => {
      fill(container, errorBox(e));
    },
  );
}

// ───────────────────────────── Sign in ─────────────────────────────

export function signInPage(onSignedIn) {
  const akid = input({ name: "access-key-id", id: "access-key-id", required: true, autocomplete: "username" });
  const secret = h("input", { type: "password", name: "secret-access-key", id: "secret-access-key", required: true, autocomplete: "current-password" });
  const token = h("textarea", { name: "session-token", id: "session-token", rows: 2, spellcheck: "false" });
  const region = h("select", { id: "region", name: "region" }, REGIONS.map((r) => h("option", { value: r }, r)));
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const slot = messageSlot();
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "signin-title" },
    field("Access key ID", akid),
    field("Secret access key", secret),
    field("Session token (optional)", token, "Only for temporary credentials (AssumeRole, GetSessionToken)."),
    field("Region", region),
    slot.el,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(submit, slot, async () => {
      const session = {
        accessKeyId: akid.value.trim(),
        secretAccessKey: secret.value.trim(),
        sessionToken: token.value.trim() || undefined,
        region: region.value,
      };
      // STS GetCallerIdentity needs no permission: it proves the key works and says who it is.
      const who = await callerIdentity(session);
      onSignedIn({ ...session, account: who.account, arn: who.arn });
    });
  });
  return h(
    "div",
    { class: "page" },
    h("h1", { id: "signin-title" }, "Sign in to Trent"),
    h(
      "p",
      { class: "lead" },
      "Use an access key: the account's root key from <data_dir>/credentials, or an IAM user's key. ",
      "The console signs every request in this tab with it and keeps it only for this tab (sessionStorage); ",
      "signing out forgets it.",
    ),
    form,
  );
}

// ───────────────────────────── Keys list ─────────────────────────────

export function keysPage(session) {
  const body = h("div", {});
  const aliasSlot = messageSlot();
  const filter = input({ id: "key-filter", type: "search", placeholder: "Alias, key ID, status, spec…" });
  const page = h(
    "div",
    { class: "page" },
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Customer managed keys"),
      h("a", { class: "button primary", href: "#/keys/create", id: "create-key" }, "Create key"),
    ),
    h("p", { class: "lead" }, `Account ${session.account}, Region ${session.region}.`),
    field("Filter keys", filter),
    aliasSlot.el,
    body,
  );
  let rows = [];
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !q || r.text.includes(q));
    fill(body,
      table(
        "Keys",
        ["Aliases", "Key ID", "Status", "Key spec", "Key usage", "Automatic rotation", "Region"],
        shown.map((r) => r.cells),
        rows.length ? "No key matches the filter." : "No keys in this Region yet.",
      ),
      h("p", { class: "hint", role: "status" }, `${shown.length} of ${rows.length} keys`),
    );
  };
  filter.addEventListener("input", render);
  loadInto(body, async () => {
    // ListKeys first: without it there is no list, and its refusal is the one to show.
    const keys = await kmsAll(session, "ListKeys", { Limit: 100 }, "Keys");
    let aliases = [];
    let aliasError = null;
    try {
      aliases = await kmsAll(session, "ListAliases", { Limit: 100 }, "Aliases");
    } catch (e) {
      aliasError = e;
    }
    const aliasesOf = new Map();
    for (const a of aliases) {
      if (!a.TargetKeyId) continue;
      aliasesOf.set(a.TargetKeyId, [...(aliasesOf.get(a.TargetKeyId) || []), a.AliasName]);
    }
    const details = await Promise.all(
      keys.map(async (k) => {
        try {
          const { KeyMetadata: m } = await kms(session, "DescribeKey", { KeyId: k.KeyId });
          let rotation = "Not supported";
          if (m.KeySpec === "SYMMETRIC_DEFAULT" && m.KeyManager !== "AWS") {
            try {
              const r = await kms(session, "GetKeyRotationStatus", { KeyId: k.KeyId });
              rotation = r.KeyRotationEnabled ? `Enabled (${r.RotationPeriodInDays} days)` : "Disabled";
            } catch (e) {
              rotation = e.isAccessDenied ? "Not allowed to read" : "—";
            }
          }
          return { k, m, rotation };
        } catch (e) {
          return { k, m: null, rotation: "—", error: e };
        }
      }),
    );
    rows = details.map(({ k, m, rotation, error }) => {
      const names = aliasesOf.get(k.KeyId) || [];
      const link = (text) => h("a", { href: `#/keys/${encodeURIComponent(k.KeyId)}` }, text);
      const cells = [
        names.length ? link(names.join(", ")) : "—",
        link(k.KeyId),
        m ? m.KeyState : error.isAccessDenied ? "Not allowed to describe" : error.code,
        m ? m.KeySpec : "—",
        m ? m.KeyUsage : "—",
        rotation,
        session.region,
      ];
      const text = [names.join(" "), k.KeyId, m?.KeyState, m?.KeySpec, m?.KeyUsage, m?.Description, rotation]
        .join(" ")
        .toLowerCase();
      return { cells, text, created: m?.CreationDate || 0 };
    });
    rows.sort((a, b) => b.created - a.created);
    render();
    if (aliasError) aliasSlot.error(aliasError);
    return Array.from(body.childNodes);
  });
  return page;
}

// ───────────────────────────── Create key wizard ─────────────────────────────

const SPECS = {
  "SYMMETRIC/ENCRYPT_DECRYPT": ["SYMMETRIC_DEFAULT"],
  "SYMMETRIC/GENERATE_VERIFY_MAC": ["HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"],
  "ASYMMETRIC/ENCRYPT_DECRYPT": ["RSA_2048", "RSA_3072", "RSA_4096", "SM2"],
  "ASYMMETRIC/SIGN_VERIFY": [
    "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "SM2",
  ],
  "ASYMMETRIC/KEY_AGREEMENT": ["ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "SM2"],
  "ASYMMETRIC/ENCAPSULATE_DECAPSULATE": ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"],
};
const USAGES = {
  SYMMETRIC: [["ENCRYPT_DECRYPT", "Encrypt and decrypt"], ["GENERATE_VERIFY_MAC", "Generate and verify MAC"]],
  ASYMMETRIC: [
    ["ENCRYPT_DECRYPT", "Encrypt and decrypt"],
    ["SIGN_VERIFY", "Sign and verify"],
    ["KEY_AGREEMENT", "Key agreement"],
    ["ENCAPSULATE_DECAPSULATE", "Key encapsulation"],
  ],
};
const STEPS = ["Configure key", "Add labels", "Define key administrative permissions", "Define key usage permissions", "Review"];

function radioGroup(legend, name, options, value, onChange) {
  return h(
    "fieldset",
    { class: "radios" },
    h("legend", {}, legend),
    options.map(([v, label, hint]) => {
      const id = uid(name);
      const radio = h("input", { type: "radio", name, id, value: v, checked: v === value });
      radio.addEventListener("change", () => onChange(v));
      return h("div", { class: "radio" }, radio, h("label", { for: id }, label, hint ? h("span", { class: "hint" }, ` ${hint}`) : null));
    }),
  );
}

// A checkbox table of the account's IAM users and roles.
function principalPicker(caption, principals, selected, name) {
  if (!principals.length) return h("p", { class: "empty" }, "The account has no IAM users or roles yet.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "picker" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Select"), h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "ARN"))),
      h(
        "tbody",
        {},
        principals.map((p) => {
          const id = uid(name);
          const box = h("input", { type: "checkbox", id, checked: selected.has(p.arn), value: p.arn, name });
          box.addEventListener("change", () => (box.checked ? selected.add(p.arn) : selected.delete(p.arn)));
          return h(
            "tr",
            {},
            h("td", { "data-label": "Select" }, box),
            h("td", { "data-label": "Name" }, h("label", { for: id }, p.name)),
            h("td", { "data-label": "Type" }, p.kind === "user" ? "User" : "Role"),
            h("td", { class: "mono", "data-label": "ARN" }, p.arn),
          );
        }),
      ),
    ),
  );
}

export function createKeyPage(session) {
  const state = {
    step: 0,
    keyType: "SYMMETRIC",
    keyUsage: "ENCRYPT_DECRYPT",
    keySpec: "SYMMETRIC_DEFAULT",
    origin: "AWS_KMS",
    multiRegion: false,
    alias: "",
    description: "",
    tags: [],
    admins: new Set(),
    users: new Set(),
    accounts: [],
    adminsMayDelete: true,
  };
  let principals = null;
  let principalsError = null;
  const content = h("div", {});
  const steps = h("ol", { class: "steps" });
  const slot = messageSlot();
  const page = h("div", { class: "page" }, h("h1", {}, "Create key"), steps, slot.el, content);

  const policy = () =>
    defaultKeyPolicy({
      key: { account: session.account, keyUsage: state.keyUsage, keySpec: state.keySpec, origin: state.origin, multiRegion: state.multiRegion },
      admins: [...state.admins],
      users: [...state.users],
      accounts: state.accounts,
      adminsMayDelete: state.adminsMayDelete,
    });

  const go = (n) => {
    state.step = n;
    slot.clear();
    render();
    content.querySelector("h2")?.focus();
  };

  const validate = () => {
    if (state.step === 1 && state.alias && !/^[a-zA-Z0-9/_-]+$/.test(state.alias)) {
      return "An alias may contain only letters, digits, slashes (/), underscores (_) and dashes (-).";
    }
    if (state.step === 1 && state.alias.startsWith("aws/")) return "Aliases beginning with aws/ are reserved for AWS managed keys.";
    if (state.step === 3) {
      const bad = state.accounts.find((a) => !/^\d{12}$/.test(a));
      if (bad !== undefined) return `"${bad}" is not an AWS account ID (12 digits).`;
    }
    return null;
  };

  const nav = () => {
    const back = button("Previous", { disabled: state.step === 0 });
    back.addEventListener("click", () => go(state.step - 1));
    const cancel = h("a", { class: "button", href: "#/keys" }, "Cancel");
    const last = state.step === STEPS.length - 1;
    const next = button(last ? "Finish" : "Next", { class: "primary", id: last ? "create-finish" : "wizard-next" });
    next.addEventListener("click", () => {
      const problem = validate();
      if (problem) {
        slot.error({ code: "Invalid", message: problem });
        return;
      }
      if (!last) go(state.step + 1);
      else busy(next, slot, create);
    });
    return h("div", { class: "actions wizard-actions" }, cancel, back, next);
  };

  async function create() {
    const input = {
      KeyUsage: state.keyUsage,
      KeySpec: state.keySpec,
      Origin: state.origin,
      Policy: JSON.stringify(policy(), null, 2),
    };
    if (state.description) input.Description = state.description;
    if (state.multiRegion) input.MultiRegion = true;
    const tags = state.tags.filter((t) => t.key);
    if (tags.length) input.Tags = tags.map((t) => ({ TagKey: t.key, TagValue: t.value }));
    const { KeyMetadata } = await kms(session, "CreateKey", input);
    if (state.alias) {
      try {
        await kms(session, "CreateAlias", { AliasName: `alias/${state.alias}`, TargetKeyId: KeyMetadata.KeyId });
      } catch (e) {
        // The key exists; say what did not work on its page rather than lose it.
        sessionStorage.setItem("trent-console-flash", `The key was created, but its alias was not: ${e.message}`);
      }
    }
    location.hash = `#/keys/${KeyMetadata.KeyId}`;
  }

  const stepViews = [
    () => {
      const usages = USAGES[state.keyType];
      const specs = SPECS[`${state.keyType}/${state.keyUsage}`] || [];
      const spec = h("select", { id: "key-spec" }, specs.map((s) => h("option", { value: s, selected: s === state.keySpec }, s)));
      spec.addEventListener("change", () => (state.keySpec = spec.value));
      const multi = h("input", { type: "checkbox", id: "multi-region", checked: state.multiRegion });
      multi.addEventListener("change", () => (state.multiRegion = multi.checked));
      return [
        radioGroup("Key type", "key-type", [["SYMMETRIC", "Symmetric", "— one key that encrypts and decrypts, or makes and checks MACs"], ["ASYMMETRIC", "Asymmetric", "— a public and private key pair"]], state.keyType, (v) => {
          state.keyType = v;
          state.keyUsage = "ENCRYPT_DECRYPT";
          state.keySpec = SPECS[`${v}/ENCRYPT_DECRYPT`][0];
          render();
        }),
        radioGroup("Key usage", "key-usage", usages, state.keyUsage, (v) => {
          state.keyUsage = v;
          state.keySpec = SPECS[`${state.keyType}/${v}`][0];
          render();
        }),
        field("Key spec", spec),
        h(
          "details",
          { class: "advanced" },
          h("summary", {}, "Advanced options"),
          radioGroup("Key material origin", "origin", [["AWS_KMS", "KMS", "— Trent generates the key material"], ["EXTERNAL", "External (import key material)", "— you import it later"]], state.origin, (v) => (state.origin = v)),
          h("div", { class: "check" }, multi, h("label", { for: "multi-region" }, "Multi-Region key (replicas in other Regions)")),
        ),
      ];
    },
    () => {
      const alias = input({ id: "alias", value: state.alias, placeholder: "my-key" });
      alias.addEventListener("input", () => (state.alias = alias.value.trim().replace(/^alias\//, "")));
      const description = h("textarea", { id: "description", rows: 3 }, state.description);
      description.addEventListener("input", () => (state.description = description.value));
      const tagRows = h("div", { class: "tags" });
      const renderTags = () => {
        fill(tagRows,
          ...state.tags.map((t, i) => {
            const k = input({ value: t.key, "aria-label": `Tag ${i + 1} key` });
            const v = input({ value: t.value, "aria-label": `Tag ${i + 1} value` });
            k.addEventListener("input", () => (t.key = k.value));
            v.addEventListener("input", () => (t.value = v.value));
            const remove = button("Remove", { "aria-label": `Remove tag ${i + 1}` });
            remove.addEventListener("click", () => {
              state.tags.splice(i, 1);
              renderTags();
            });
            return h("div", { class: "tag-row" }, k, v, remove);
          }),
        );
      };
      renderTags();
      const add = button("Add tag");
      add.addEventListener("click", () => {
        state.tags.push({ key: "", value: "" });
        renderTags();
        tagRows.querySelector("div:last-child input")?.focus();
      });
      return [
        field("Alias", alias, "The display name, without the alias/ prefix."),
        field("Description", description),
        h("fieldset", {}, h("legend", {}, "Tags"), tagRows, add),
      ];
    },
    () => [
      h("p", {}, "Key administrators can manage the key (change its policy, grants, state and deletion) but not use it in cryptographic operations."),
      principalsView("Key administrators", state.admins, "admin"),
      byArn("Key administrators", state.admins, "admin"),
      (() => {
        const box = h("input", { type: "checkbox", id: "admins-may-delete", checked: state.adminsMayDelete });
        box.addEventListener("change", () => (state.adminsMayDelete = box.checked));
        return h("div", { class: "check" }, box, h("label", { for: "admins-may-delete" }, "Allow key administrators to delete this key"));
      })(),
    ],
    () => {
      const accounts = h("div", {});
      const renderAccounts = () => {
        fill(accounts,
          ...state.accounts.map((a, i) => {
            const id = input({ value: a, inputmode: "numeric", "aria-label": `Other AWS account ${i + 1}`, class: "account-id" });
            id.addEventListener("input", () => (state.accounts[i] = id.value.trim()));
            const remove = button("Remove", { "aria-label": `Remove account ${i + 1}` });
            remove.addEventListener("click", () => {
              state.accounts.splice(i, 1);
              renderAccounts();
            });
            return h("div", { class: "tag-row" }, h("span", { class: "mono" }, "arn:aws:iam::"), id, h("span", { class: "mono" }, ":root"), remove);
          }),
        );
      };
      renderAccounts();
      const add = button("Add another AWS account", { id: "add-account" });
      add.addEventListener("click", () => {
        state.accounts.push("");
        renderAccounts();
        accounts.querySelector("div:last-child input")?.focus();
      });
      return [
        h("p", {}, "Key users can use the key in cryptographic operations, and let AWS services that use grants attach it to resources."),
        principalsView("Key users", state.users, "user"),
        byArn("Key users", state.users, "user"),
        h(
          "fieldset",
          {},
          h("legend", {}, "Other AWS accounts"),
          h("p", { class: "hint" }, "The account's administrators must also give their users and roles an IAM policy that allows the key by its ARN."),
          accounts,
          add,
        ),
      ];
    },
    () => {
      const text = JSON.stringify(policy(), null, 2);
      return [
        propertyList([
          ["Key type", state.keyType === "SYMMETRIC" ? "Symmetric" : "Asymmetric"],
          ["Key usage", state.keyUsage],
          ["Key spec", state.keySpec],
          ["Origin", state.origin],
          ["Regionality", state.multiRegion ? "Multi-Region key" : "Single-Region key"],
          ["Alias", state.alias ? `alias/${state.alias}` : ""],
          ["Description", state.description],
          ["Tags", state.tags.filter((t) => t.key).map((t) => `${t.key}=${t.value}`).join(", ")],
          ["Key administrators", [...state.admins].join(", ")],
          ["Key users", [...state.users].join(", ")],
          ["Other AWS accounts", state.accounts.join(", ")],
        ]),
        h("h3", {}, "Key policy"),
        h("p", { class: "hint" }, "This is the exact policy the key is created with."),
        h("pre", { class: "policy", id: "policy-preview", tabindex: "0", "aria-label": "Key policy preview" }, text),
      ];
    },
  ];

  // Principals not in the IAM lists (another account's role, or when ListUsers/ListRoles is
  // not allowed) are added by ARN.
  function byArn(caption, selected, name) {
    const extra = h("div", {});
    const draw = () => {
      const known = new Set((principals || []).map((p) => p.arn));
      const others = [...selected].filter((arn) => !known.has(arn));
      const arn = input({ id: `${name}-arn`, placeholder: "arn:aws:iam::ACCOUNT:user/NAME or role/NAME" });
      const add = button("Add", { id: `${name}-arn-add` });
      add.addEventListener("click", () => {
        const v = arn.value.trim();
        if (!/^arn:aws:(iam|sts)::\d{12}:/.test(v)) {
          slot.error({ code: "Invalid", message: `"${v}" is not an IAM user, role or account ARN.` });
          return;
        }
        slot.clear();
        selected.add(v);
        draw();
      });
      fill(
        extra,
        others.length
          ? h("ul", { class: "plain" }, others.map((o) => {
              const remove = button("Remove", { "aria-label": `Remove ${o}` });
              remove.addEventListener("click", () => {
                selected.delete(o);
                draw();
              });
              return h("li", {}, h("span", { class: "mono" }, o), " ", remove);
            }))
          : null,
        h("div", { class: "inline-form" }, h("label", { for: arn.id }, `Add to ${caption.toLowerCase()} by ARN`), arn, add),
      );
    };
    draw();
    return extra;
  }

  function principalsView(caption, selected, name) {
    const holder = h("div", {});
    if (principals) {
      holder.append(principalPicker(caption, principals, selected, name));
    } else if (principalsError) {
      holder.append(errorBox(principalsError));
    } else {
      loadInto(holder, async () => {
        try {
          principals = await iamPrincipals(session);
        } catch (e) {
          principalsError = e;
          throw e;
        }
        return principalPicker(caption, principals, selected, name);
      });
    }
    return holder;
  }

  function render() {
    fill(steps,
      ...STEPS.map((s, i) =>
        h("li", { class: i === state.step ? "current" : i < state.step ? "done" : "", "aria-current": i === state.step ? "step" : undefined }, `Step ${i + 1}: ${s}`),
      ),
    );
    fill(content,
      h("section", { class: "card", "aria-labelledby": "step-title" }, h("h2", { id: "step-title", tabindex: "-1" }, STEPS[state.step]), ...list(stepViews[state.step]()), nav()),
    );
  }
  render();
  return page;
}

// ───────────────────────────── Key detail ─────────────────────────────

const GRANT_OPERATIONS = {
  SYMMETRIC_ENCRYPT: [
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "DescribeKey", "CreateGrant", "RetireGrant",
  ],
  ENCRYPT_DECRYPT: ["Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "DescribeKey", "GetPublicKey", "CreateGrant", "RetireGrant"],
  SIGN_VERIFY: ["Sign", "Verify", "DescribeKey", "GetPublicKey", "CreateGrant", "RetireGrant"],
  GENERATE_VERIFY_MAC: ["GenerateMac", "VerifyMac", "DescribeKey", "CreateGrant", "RetireGrant"],
  KEY_AGREEMENT: ["DeriveSharedSecret", "DescribeKey", "GetPublicKey", "CreateGrant", "RetireGrant"],
  ENCAPSULATE_DECAPSULATE: ["Decapsulate", "DescribeKey", "GetPublicKey", "CreateGrant", "RetireGrant"],
};

function grantOperationsFor(m) {
  if (m.KeySpec === "SYMMETRIC_DEFAULT") return GRANT_OPERATIONS.SYMMETRIC_ENCRYPT;
  return GRANT_OPERATIONS[m.KeyUsage] || ["DescribeKey", "CreateGrant", "RetireGrant"];
}

// DescribeKey's properties in the order a reader wants them (the wire's JSON is alphabetical).
const PROPERTY_NAMES = {
  KeyId: "Key ID", Arn: "ARN", AWSAccountId: "AWS account", Description: "Description", KeyState: "Status",
  Enabled: "Enabled", CreationDate: "Created", KeyUsage: "Key usage", KeySpec: "Key spec",
  CustomerMasterKeySpec: "Customer master key spec", EncryptionAlgorithms: "Encryption algorithms",
  SigningAlgorithms: "Signing algorithms", MacAlgorithms: "MAC algorithms", KeyAgreementAlgorithms: "Key agreement algorithms",
  Origin: "Origin", KeyManager: "Key manager", MultiRegion: "Multi-Region", MultiRegionConfiguration: "Multi-Region configuration",
  CurrentKeyMaterialId: "Current key material ID", ExpirationModel: "Expiration model", ValidTo: "Key material expires",
  DeletionDate: "Deletion date", PendingDeletionWindowInDays: "Pending deletion window (days)",
  CustomKeyStoreId: "Custom key store", CloudHsmClusterId: "CloudHSM cluster", XksKeyConfiguration: "External key store key",
};
const PROPERTY_ORDER = Object.keys(PROPERTY_NAMES);

function propertyValue(name, value) {
  if (/Date$|^ValidTo$/.test(name)) return formatDate(value);
  if (typeof value === "boolean") return value ? "Yes" : "No";
  if (Array.isArray(value)) return value.join(", ");
  if (value && typeof value === "object") return h("code", { class: "mono" }, JSON.stringify(value));
  return String(value);
}

export function keyPage(session, keyId) {
  const page = h("div", { class: "page" });
  const flash = sessionStorage.getItem("trent-console-flash");
  sessionStorage.removeItem("trent-console-flash");
  let current = "general";
  let meta = null;

  const load = async (focusTab) => {
    try {
      meta = (await kms(session, "DescribeKey", { KeyId: keyId })).KeyMetadata;
    } catch (e) {
      fill(page, h("h1", {}, "Key ", keyId), errorBox(e), h("p", {}, h("a", { href: "#/keys" }, "Back to keys")));
      return;
    }
    let aliases = [];
    try {
      aliases = (await kmsAll(session, "ListAliases", { KeyId: meta.KeyId }, "Aliases")).map((a) => a.AliasName);
    } catch {
      // Listing aliases is an IAM-only permission; the page works without it.
    }
    const tabs = [
      ["general", "General configuration"],
      ["policy", "Key policy"],
      ["access", "Who can use this key"],
      ["grants", "Grants"],
      ["rotation", "Key rotation"],
      ...(meta.KeySpec !== "SYMMETRIC_DEFAULT" && !meta.KeySpec.startsWith("HMAC_") ? [["public-key", "Public key"]] : []),
      ...(meta.MultiRegion ? [["regionality", "Regionality"]] : []),
      ["aliases", "Aliases"],
      ["tags", "Tags"],
      ["events", "Recent events"],
    ];
    const panel = h("div", { class: "tab-panel", role: "tabpanel", id: "key-tab-panel", tabindex: "-1" });
    const tabList = h(
      "div",
      { class: "tabs", role: "tablist", "aria-label": "Key details" },
      tabs.map(([id, label]) => {
        const b = h("button", { type: "button", role: "tab", id: `tab-${id}`, "aria-selected": id === current ? "true" : "false", "aria-controls": "key-tab-panel", tabindex: id === current ? "0" : "-1" }, label);
        b.addEventListener("click", () => {
          current = id;
          load(true);
        });
        b.addEventListener("keydown", (e) => {
          // Arrow keys move between tabs, as in every tab list.
          const i = tabs.findIndex(([t]) => t === id);
          const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
          if (!step) return;
          e.preventDefault();
          tabList.querySelectorAll("[role=tab]")[(i + step + tabs.length) % tabs.length].focus();
        });
        return b;
      }),
    );
    panel.setAttribute("aria-labelledby", `tab-${current}`);
    const title = aliases[0] || meta.KeyId;
    fill(page,
      h("p", { class: "crumbs" }, h("a", { href: "#/keys" }, "Customer managed keys"), " › ", title),
      h("div", { class: "page-head" }, h("h1", {}, title), h("span", { class: `state state-${meta.KeyState}` }, meta.KeyState)),
      flash ? notice(flash, "warning") : null,
      tabList,
      panel,
    );
    const views = { general, policy: policyPanel, access, grants, rotation, "public-key": publicKey, aliases: aliasesPanel, tags, events, regionality };
    views[current](panel, aliases);
    if (focusTab) {
      tabList.querySelector(`#tab-${current}`)?.focus();
    } else if (!page.contains(document.activeElement)) {
      // The loading heading that had focus is gone: give it to the real one.
      const heading = page.querySelector("h1");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  };

  const refresh = () => load(true);

  // General configuration: every DescribeKey property, description, state, deletion.
  function general(panel) {
    const rank = (k) => (PROPERTY_ORDER.includes(k) ? PROPERTY_ORDER.indexOf(k) : PROPERTY_ORDER.length);
    const pairs = Object.entries(meta)
      .sort(([a], [b]) => rank(a) - rank(b))
      .map(([k, v]) => [PROPERTY_NAMES[k] || k, propertyValue(k, v)]);
    const slot = messageSlot();
    const description = h("textarea", { id: "key-description", rows: 2 }, meta.Description || "");
    const saveDescription = button("Save description", { id: "save-description" });
    saveDescription.addEventListener("click", () =>
      busy(saveDescription, slot, async () => {
        await kms(session, "UpdateKeyDescription", { KeyId: meta.KeyId, Description: description.value });
        await refresh();
      }),
    );
    const actions = h("div", { class: "actions" });
    if (meta.KeyState === "Enabled") {
      const b = button("Disable key", { id: "disable-key" });
      b.addEventListener("click", async () => {
        if (await confirmDialog({ title: "Disable key?", body: "While the key is disabled, nobody can use it in cryptographic operations. You can enable it again.", confirm: "Disable key" })) {
          busy(b, slot, async () => {
            await kms(session, "DisableKey", { KeyId: meta.KeyId });
            await refresh();
          });
        }
      });
      actions.append(b);
    } else if (meta.KeyState === "Disabled") {
      const b = button("Enable key", { id: "enable-key" });
      b.addEventListener("click", () =>
        busy(b, slot, async () => {
          await kms(session, "EnableKey", { KeyId: meta.KeyId });
          await refresh();
        }),
      );
      actions.append(b);
    }
    let deletion;
    if (meta.KeyState === "PendingDeletion" || meta.KeyState === "PendingReplicaDeletion") {
      const cancel = button("Cancel key deletion", { id: "cancel-deletion", class: "primary" });
      cancel.addEventListener("click", () =>
        busy(cancel, slot, async () => {
          await kms(session, "CancelKeyDeletion", { KeyId: meta.KeyId });
          await refresh();
        }),
      );
      deletion = section(
        "Key deletion",
        "deletion",
        notice(`This key is scheduled for deletion on ${formatDate(meta.DeletionDate)}. Until then it cannot be used; cancel to keep it (it stays disabled until you enable it).`, "warning"),
        h("div", { class: "actions" }, cancel),
      );
    } else {
      const days = h("input", { type: "number", id: "pending-window", min: 7, max: 30, value: 30, required: true });
      const schedule = button("Schedule key deletion", { id: "schedule-deletion", class: "danger" });
      schedule.addEventListener("click", async () => {
        const n = Number(days.value);
        if (!Number.isInteger(n) || n < 7 || n > 30) {
          slot.error({ code: "Invalid", message: "The waiting period is a whole number of days from 7 to 30." });
          return;
        }
        const ok = await confirmDialog({
          title: "Schedule key deletion?",
          body: [
            h("p", {}, `After ${n} days this key and all its key material are deleted for good. Data encrypted under it can never be decrypted again, and nothing can bring the key back.`),
            h("p", {}, "During the waiting period the key cannot be used, and you can cancel the deletion. If you might still need the key, disable it instead."),
          ],
          confirm: "Schedule deletion",
          danger: true,
          requireCheck: `I understand that after ${n} days this key and everything encrypted under it is lost for good.`,
        });
        if (ok) {
          busy(schedule, slot, async () => {
            await kms(session, "ScheduleKeyDeletion", { KeyId: meta.KeyId, PendingWindowInDays: n });
            await refresh();
          });
        }
      });
      deletion = section(
        "Key deletion",
        "deletion",
        h("p", { class: "warning-text" }, "Deleting a key is destructive and cannot be undone: everything encrypted under it becomes unrecoverable."),
        field("Waiting period (days)", days, "7 to 30 days, during which you can cancel."),
        h("div", { class: "actions" }, schedule),
      );
    }
    fill(panel,
      slot.el,
      section("General configuration", "configuration", propertyList(pairs)),
      section("Description", "description-card", field("Description", description), h("div", { class: "actions" }, saveDescription)),
      section("Key state", "state", h("p", {}, `Status: ${meta.KeyState}.`), actions),
      deletion,
    );
  }

  // Key policy: the console's default view and the JSON editor.
  function policyPanel(panel) {
    let mode = "default";
    const body = h("div", {});
    const draw = (text) => {
      let parsed = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
      const view = parsed ? defaultView(parsed, session.account) : null;
      const toggle = button(mode === "default" ? "Switch to policy view" : "Switch to default view", { id: "policy-toggle", disabled: !view && mode === "json" });
      toggle.addEventListener("click", () => {
        mode = mode === "default" ? "json" : "default";
        draw(text);
      });
      if (mode === "default" && view) {
        fill(body, h("div", { class: "actions" }, toggle), defaultPolicyEditor(parsed, view, text));
      } else {
        if (mode === "default") mode = "json";
        fill(body,
          h("div", { class: "actions" }, view ? toggle : null),
          !view ? notice("This policy is not in the console's default form, so it can be edited only as JSON.", "info") : null,
          jsonEditor(text),
        );
      }
    };
    fill(panel, section("Key policy", "key-policy", body));
    loadInto(body, async () => {
      const { Policy } = await kms(session, "GetKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default" });
      draw(Policy);
      return Array.from(body.childNodes);
    });

    function save(text, slot) {
      return kms(session, "PutKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default", Policy: text }).then(
        () => {
          draw(text);
          body.prepend(notice("Key policy saved.", "success"));
        },
        (e) => {
          throw e;
        },
      );
    }

    function jsonEditor(text) {
      const slot = messageSlot();
      slot.el.id = "policy-error";
      const area = h("textarea", { id: "policy-json", class: "mono", rows: 24, spellcheck: "false", "aria-describedby": "policy-error" }, pretty(text));
      const saveButton = button("Save changes", { id: "policy-save", class: "primary" });
      saveButton.addEventListener("click", () =>
        busy(saveButton, null, async () => {
          slot.clear();
          area.removeAttribute("aria-invalid");
          try {
            await save(area.value, slot);
          } catch (e) {
            area.setAttribute("aria-invalid", "true");
            fill(slot.el, policyError(e));
          }
        }),
      );
      return h("div", {}, field("Policy document (JSON)", area), slot.el, h("div", { class: "actions" }, saveButton));
    }

    function defaultPolicyEditor(parsed, view, text) {
      const slot = messageSlot();
      const admins = new Set(view.admins);
      const users = new Set(view.users);
      const accounts = [...view.accounts];
      const listEditor = (title, set, id) => {
        const holder = h("div", {});
        const draw2 = () => {
          const input2 = input({ id: `${id}-add`, list: "iam-principals", placeholder: "arn:aws:iam::ACCOUNT:user/NAME or role/NAME" });
          const add = button("Add", { id: `${id}-add-button` });
          add.addEventListener("click", () => {
            const v = input2.value.trim();
            if (v) {
              set.add(v);
              draw2();
            }
          });
          fill(holder,
            table(title, ["Principal", "Who", ""], [...set].map((arn) => {
              const remove = button("Remove", { "aria-label": `Remove ${arn} from ${title}` });
              remove.addEventListener("click", () => {
                set.delete(arn);
                draw2();
              });
              return [h("span", { class: "mono" }, arn), describePrincipal(arn, session.account), remove];
            }), "Nobody."),
            h("div", { class: "inline-form" }, h("label", { for: input2.id }, `Add to ${title.toLowerCase()}`), input2, add),
          );
        };
        draw2();
        return h("fieldset", {}, h("legend", {}, title), holder);
      };
      const accountsHolder = h("div", {});
      const drawAccounts = () => {
        const add = input({ id: "accounts-add", inputmode: "numeric", placeholder: "123456789012" });
        const addButton = button("Add account", { id: "accounts-add-button" });
        addButton.addEventListener("click", () => {
          const v = add.value.trim();
          if (!/^\d{12}$/.test(v)) {
            slot.error({ code: "Invalid", message: `"${v}" is not an AWS account ID (12 digits).` });
            return;
          }
          if (!accounts.includes(v)) accounts.push(v);
          drawAccounts();
        });
        fill(accountsHolder,
          table("Other AWS accounts", ["Account", ""], accounts.map((a) => {
            const remove = button("Remove", { "aria-label": `Remove account ${a}` });
            remove.addEventListener("click", () => {
              accounts.splice(accounts.indexOf(a), 1);
              drawAccounts();
            });
            return [h("span", { class: "mono" }, `arn:aws:iam::${a}:root`), remove];
          }), "None."),
          h("div", { class: "inline-form" }, h("label", { for: add.id }, "Add another AWS account"), add, addButton),
        );
      };
      drawAccounts();
      const mayDelete = h("input", { type: "checkbox", id: "policy-admins-may-delete", checked: view.adminsMayDelete });
      const saveButton = button("Save changes", { id: "default-view-save", class: "primary" });
      saveButton.addEventListener("click", () =>
        busy(saveButton, null, async () => {
          slot.clear();
          const key = { account: session.account, keyUsage: meta.KeyUsage, keySpec: meta.KeySpec, origin: meta.Origin, multiRegion: meta.MultiRegion };
          let next = applyDefaultView(parsed, { admins: [...admins], users: [...users], accounts, adminsMayDelete: mayDelete.checked }, key);
          // The deletion permissions follow the checkbox in the administrators statement.
          next = {
            ...next,
            Statement: list(next.Statement).map((s) => {
              if (s.Sid !== "Allow access for Key Administrators") return s;
              const actions = list(s.Action).filter((a) => a !== "kms:ScheduleKeyDeletion" && a !== "kms:CancelKeyDeletion");
              if (mayDelete.checked) actions.push("kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion");
              return { ...s, Action: actions };
            }),
          };
          try {
            await save(JSON.stringify(next, null, 2), slot);
          } catch (e) {
            fill(slot.el, policyError(e));
          }
        }),
      );
      const datalist = h("datalist", { id: "iam-principals" });
      iamPrincipals(session).then(
        (ps) => fill(datalist, ...ps.map((p) => h("option", { value: p.arn }, `${p.kind} ${p.name}`))),
        () => {},
      );
      return h(
        "div",
        { class: "default-view" },
        datalist,
        h("p", { class: "hint" }, `The statement "Enable IAM User Permissions" lets IAM policies in account ${session.account} allow this key; the lists below edit the other statements.`),
        listEditor("Key administrators", admins, "admins"),
        h("div", { class: "check" }, mayDelete, h("label", { for: mayDelete.id }, "Allow key administrators to delete this key")),
        listEditor("Key users", users, "users"),
        h("fieldset", {}, h("legend", {}, "Other AWS accounts"), accountsHolder),
        slot.el,
        h("div", { class: "actions" }, saveButton),
      );
    }
  }

  // The lockout safety check's refusal, in words; every other refusal as the server said it.
  function policyError(e) {
    if (/will not allow you to update the key policy in the future/.test(e.message || "")) {
      return h(
        "div",
        { class: "message error", role: "alert" },
        h("strong", {}, "This policy would lock you out of the key"),
        h("p", {}, `With this policy, you (${session.arn}) could no longer change the key policy: it does not allow you kms:PutKeyPolicy. `,
          "Trent's lockout safety check refused it so the key cannot become unmanageable. Keep a statement that allows you, or the account (Enable IAM User Permissions), kms:PutKeyPolicy."),
        h("p", { class: "hint" }, `Server message: ${e.code}: ${e.message}`),
      );
    }
    return h("div", { class: "message error", role: "alert" }, h("strong", {}, e.isAccessDenied ? "Access denied" : "The policy was not saved"), h("p", {}, `${e.code}: ${e.message}`));
  }

  // Who can use this key: the key policy and grants, in words.
  function access(panel) {
    const body = h("div", {});
    fill(panel, section("Who can use this key", "who", body));
    loadInto(body, async () => {
      const [{ Policy }, grants] = await Promise.all([
        kms(session, "GetKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default" }),
        kmsAll(session, "ListGrants", { KeyId: meta.KeyId }, "Grants").catch((e) => ({ error: e })),
      ]);
      const policy = JSON.parse(Policy);
      const grantList = Array.isArray(grants) ? grants : [];
      const applicable = [...grantOperationsFor(meta)];
      if (meta.KeySpec !== "SYMMETRIC_DEFAULT" && !meta.KeySpec.startsWith("HMAC_") && !applicable.includes("GetPublicKey")) applicable.push("GetPublicKey");
      if (meta.KeyUsage === "ENCAPSULATE_DECAPSULATE") applicable.push("Encapsulate");
      const rows = whoCanUse(policy, grantList, session.account, applicable);
      const words = (xs) => (xs.length ? xs.join(", ") : "—");
      return [
        h("p", { class: "lead" }, "Computed in your browser from the key policy and the key's grants. IAM policies of the named accounts can narrow or extend what the account principal rows allow; an explicit deny anywhere wins."),
        rows.some((r) => r.warn) ? notice("Warning: a statement allows everyone (Principal \"*\" or NotPrincipal). Any identity whose IAM policies allow it can use this key.", "warning") : null,
        grants.error ? errorBox(grants.error) : null,
        table(
          "Who can use this key",
          ["Who", "Effect", "Can use", "Can manage", "Also", "Through", "Conditions", "What decides"],
          rows.map((r) => [h("span", { title: r.principal }, r.who), r.effect, words(r.use), words(r.manage), words(r.other), r.via, r.condition || "—", r.note || "This key policy alone."]),
        ),
        await serverAnalysis(words),
      ];
    });
  }

  // Trent's own analysis (AnalyzeKeyAccess): the key policy, the account's IAM policies and the
  // grants, evaluated by the server's engine. It needs more than reading the key policy, so a
  // refusal is explained rather than shown as an error.
  async function serverAnalysis(words) {
    let answer;
    try {
      answer = await kms(session, "AnalyzeKeyAccess", { KeyId: meta.Arn });
    } catch (e) {
      return notice(
        e.isAccessDenied
          ? "Trent's evaluated analysis (key policy, IAM policies and grants) needs kms:GetKeyPolicy, kms:ListGrants and iam:GetAccountAuthorizationDetails."
          : `Trent's evaluated analysis is unavailable: ${e.code}: ${e.message}`,
      );
    }
    const principals = answer.Principals || [];
    const findings = answer.Findings || [];
    return h(
      "div",
      { id: "who-evaluated" },
      h("h3", {}, "Evaluated by Trent"),
      h("p", { class: "hint" }, "Each operation asked of Trent's policy engine for each principal, with the account's IAM policies and no condition key present. Principals of other accounts: what the key policy lets them have at most."),
      table(
        "Evaluated by Trent",
        ["Principal", "Kind", "Allowed", "Only under conditions"],
        principals.map((p) => [
          p.Principal,
          p.Kind,
          words(p.Allowed || []),
          words((p.Conditional || []).map((c) => `${c.Action} (${(c.ConditionKeys || []).join(", ")})`)),
        ]),
        "No principal can use this key.",
      ),
      findings.length
        ? h("ul", { class: "findings" }, ...findings.map((f) => h("li", {}, `${f.Severity}: ${f.Message}`)))
        : null,
    );
  }

  // Grants: list, create, retire, revoke.
  function grants(panel) {
    const listBody = h("div", {});
    const slot = messageSlot();
    const drawList = () =>
      loadInto(listBody, async () => {
        const gs = await kmsAll(session, "ListGrants", { KeyId: meta.KeyId }, "Grants");
        return table(
          "Grants",
          ["Name", "Grant ID", "Grantee principal", "Retiring principal", "Operations", "Constraints", "Created", "Actions"],
          gs.map((g) => {
            const retire = button("Retire", { "aria-label": `Retire grant ${g.GrantId}` });
            const revoke = button("Revoke", { class: "danger", "aria-label": `Revoke grant ${g.GrantId}` });
            const act = (op, b) => async () => {
              const ok = await confirmDialog({
                title: `${op} grant ${g.Name || g.GrantId}?`,
                body: [h("p", {}, `Grantee: ${g.GranteePrincipal}. Operations: ${list(g.Operations).join(", ")}.`), h("p", { class: "warning-text" }, REVOKE_WARNING)],
                confirm: `${op} grant`,
                danger: true,
                requireCheck: "I know what uses this grant, and that its data may become unusable.",
              });
              if (!ok) return;
              busy(b, slot, async () => {
                await kms(session, `${op}Grant`, { KeyId: op === "Retire" ? meta.Arn : meta.KeyId, GrantId: g.GrantId });
                slot.success(`Grant ${g.GrantId} ${op === "Retire" ? "retired" : "revoked"}.`);
                drawList();
              });
            };
            retire.addEventListener("click", act("Retire", retire));
            revoke.addEventListener("click", act("Revoke", revoke));
            return [
              g.Name || "—",
              h("span", { class: "mono" }, g.GrantId),
              h("span", { class: "mono" }, g.GranteePrincipal),
              g.RetiringPrincipal ? h("span", { class: "mono" }, g.RetiringPrincipal) : "—",
              list(g.Operations).join(", "),
              g.Constraints ? JSON.stringify(g.Constraints) : "—",
              formatDate(g.CreationDate),
              h("div", { class: "row-actions" }, retire, revoke),
            ];
          }),
          "No grants on this key.",
        );
      });
    // The create form.
    const grantee = input({ id: "grant-grantee", list: "grant-principals", required: true, placeholder: "arn:aws:iam::ACCOUNT:role/NAME" });
    const retiring = input({ id: "grant-retiring", list: "grant-principals", placeholder: "optional" });
    const name = input({ id: "grant-name", placeholder: "optional; makes retries idempotent" });
    const ops = grantOperationsFor(meta);
    const boxes = ops.map((op) => {
      const id = `grant-op-${op}`;
      return { op, box: h("input", { type: "checkbox", id, value: op }), id };
    });
    const constraintType = h("select", { id: "grant-constraint-type" }, [["", "None"], ["EncryptionContextEquals", "Encryption context equals"], ["EncryptionContextSubset", "Encryption context subset"]].map(([v, t]) => h("option", { value: v }, t)));
    const constraintPairs = h("textarea", { id: "grant-constraint-pairs", rows: 3, class: "mono", placeholder: "key=value, one a line" });
    const create = h("button", { type: "submit", class: "primary", id: "grant-create" }, "Create grant");
    const datalist = h("datalist", { id: "grant-principals" });
    iamPrincipals(session).then((ps) => fill(datalist, ...ps.map((p) => h("option", { value: p.arn }, `${p.kind} ${p.name}`))), () => {});
    const form = h(
      "form",
      { class: "grant-form" },
      datalist,
      field("Grantee principal", grantee, "The IAM user, role or account (arn:aws:iam::ACCOUNT:root) that gets the permissions."),
      h("fieldset", { class: "ops" }, h("legend", {}, "Operations"), boxes.map(({ op, box, id }) => h("div", { class: "check" }, box, h("label", { for: id }, op)))),
      h("fieldset", {}, h("legend", {}, "Constraints (optional)"), field("Constraint", constraintType), field("Encryption context", constraintPairs)),
      field("Retiring principal", retiring, "Who else may retire the grant."),
      field("Name", name),
      h("div", { class: "actions" }, create),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(create, slot, async () => {
        const chosen = boxes.filter((b) => b.box.checked).map((b) => b.op);
        if (!chosen.length) throw { code: "Invalid", message: "Choose at least one operation." };
        const req = { KeyId: meta.KeyId, GranteePrincipal: grantee.value.trim(), Operations: chosen };
        if (retiring.value.trim()) req.RetiringPrincipal = retiring.value.trim();
        if (name.value.trim()) req.Name = name.value.trim();
        if (constraintType.value) {
          const pairs = {};
          for (const line of constraintPairs.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
            const at = line.indexOf("=");
            if (at < 1) throw { code: "Invalid", message: `"${line}" is not key=value.` };
            pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
          }
          req.Constraints = { [constraintType.value]: pairs };
        }
        const out = await kms(session, "CreateGrant", req);
        fill(slot.el,
          h("div", { class: "message success", role: "status" }, h("strong", {}, "Grant created"), propertyList([["Grant ID", h("span", { class: "mono", id: "new-grant-id" }, out.GrantId)], ["Grant token", h("span", { class: "mono token" }, out.GrantToken)]])),
        );
        form.reset();
        drawList();
      });
    });
    fill(panel,
      notice(REVOKE_WARNING, "warning"),
      slot.el,
      section("Grants", "grants-list", listBody),
      section("Create grant", "grant-create-card", form),
    );
    drawList();
  }

  // Rotation: status, period, rotate now, history.
  function rotation(panel) {
    const body = h("div", {});
    const slot = messageSlot();
    fill(panel, slot.el, section("Key rotation", "rotation-card", body));
    loadInto(body, async () => {
      const status = await kms(session, "GetKeyRotationStatus", { KeyId: meta.KeyId });
      let rotations = [];
      let historyError = null;
      try {
        rotations = await kmsAll(session, "ListKeyRotations", { KeyId: meta.KeyId }, "Rotations");
      } catch (e) {
        historyError = e;
      }
      const enabled = h("input", { type: "checkbox", id: "rotation-enabled", checked: Boolean(status.KeyRotationEnabled) });
      const period = h("input", { type: "number", id: "rotation-period", min: 90, max: 2560, value: status.RotationPeriodInDays || 365 });
      const save = button("Save rotation settings", { id: "rotation-save", class: "primary" });
      save.addEventListener("click", () =>
        busy(save, slot, async () => {
          if (enabled.checked) {
            const n = Number(period.value);
            if (!Number.isInteger(n) || n < 90 || n > 2560) throw { code: "Invalid", message: "The rotation period is a whole number of days from 90 to 2560." };
            await kms(session, "EnableKeyRotation", { KeyId: meta.KeyId, RotationPeriodInDays: n });
          } else {
            await kms(session, "DisableKeyRotation", { KeyId: meta.KeyId });
          }
          rotation(panel);
          panel.prepend(notice(enabled.checked ? `Automatic rotation enabled every ${period.value} days.` : "Automatic rotation disabled.", "success"));
        }),
      );
      const now = button("Rotate now", { id: "rotate-now" });
      now.addEventListener("click", async () => {
        if (await confirmDialog({ title: "Rotate the key material now?", body: "New key material becomes current for encryption; older material stays for decrypting what it encrypted. On-demand rotations are limited in number per key.", confirm: "Rotate now" })) {
          busy(now, slot, async () => {
            await kms(session, "RotateKeyOnDemand", { KeyId: meta.KeyId });
            rotation(panel);
            panel.prepend(notice("On-demand rotation started.", "success"));
          });
        }
      });
      return [
        propertyList([
          ["Automatic rotation", status.KeyRotationEnabled ? "Enabled" : "Disabled"],
          ["Rotation period", status.RotationPeriodInDays ? `${status.RotationPeriodInDays} days` : "—"],
          ["Next rotation", formatDate(status.NextRotationDate)],
          ["On-demand rotation in progress since", formatDate(status.OnDemandRotationStartDate)],
        ]),
        h("div", { class: "check" }, enabled, h("label", { for: "rotation-enabled" }, "Automatically rotate this key's material")),
        field("Rotation period (days)", period, "90 to 2560 days."),
        h("div", { class: "actions" }, save, now),
        h("h3", {}, "Rotation history"),
        historyError
          ? errorBox(historyError)
          : table("Rotation history", ["Rotated", "Type", "Key material"], rotations.map((r) => [formatDate(r.RotationDate), r.RotationType || "—", r.KeyMaterialId || "—"]), "This key has not been rotated."),
      ];
    });
  }

  // Asymmetric keys: the public key, as PEM.
  function publicKey(panel) {
    const body = h("div", {});
    fill(panel, section("Public key", "public-key-card", body));
    loadInto(body, async () => {
      const out = await kms(session, "GetPublicKey", { KeyId: meta.KeyId });
      const pem = `-----BEGIN PUBLIC KEY-----\n${out.PublicKey.match(/.{1,64}/g).join("\n")}\n-----END PUBLIC KEY-----\n`;
      const download = button("Download public key (PEM)", { id: "download-public-key", class: "primary" });
      download.addEventListener("click", () => {
        const url = URL.createObjectURL(new Blob([pem], { type: "application/x-pem-file" }));
        const a = h("a", { href: url, download: `${meta.KeyId}.pem` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      });
      const pairs = [["Key spec", out.KeySpec], ["Key usage", out.KeyUsage]];
      for (const k of ["EncryptionAlgorithms", "SigningAlgorithms", "KeyAgreementAlgorithms"]) {
        if (out[k]) pairs.push([PROPERTY_NAMES[k], out[k].join(", ")]);
      }
      return [propertyList(pairs), h("pre", { class: "policy", id: "public-key-pem", tabindex: "0", "aria-label": "Public key in PEM form" }, pem), h("div", { class: "actions" }, download)];
    });
  }

  function aliasesPanel(panel, aliases) {
    const slot = messageSlot();
    const name = input({ id: "alias-new", placeholder: "my-key" });
    const add = h("button", { type: "submit", id: "alias-add" }, "Create alias");
    const form = h("form", { class: "inline-form" }, h("label", { for: name.id }, "New alias: alias/"), name, add);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(add, slot, async () => {
        await kms(session, "CreateAlias", { AliasName: `alias/${name.value.trim().replace(/^alias\//, "")}`, TargetKeyId: meta.KeyId });
        await refresh();
      });
    });
    fill(panel,
      slot.el,
      section(
        "Aliases",
        "aliases-card",
        table("Aliases", ["Alias", ""], aliases.map((a) => {
          const del = button("Delete", { "aria-label": `Delete alias ${a}` });
          del.addEventListener("click", async () => {
            if (await confirmDialog({ title: `Delete ${a}?`, body: "Applications that name the key by this alias stop finding it. The key itself is not changed.", confirm: "Delete alias", danger: true })) {
              busy(del, slot, async () => {
                await kms(session, "DeleteAlias", { AliasName: a });
                await refresh();
              });
            }
          });
          return [a, del];
        }), "No aliases."),
        form,
      ),
    );
  }

  function tags(panel) {
    const body = h("div", {});
    const slot = messageSlot();
    fill(panel, slot.el, section("Tags", "tags-card", body));
    loadInto(body, async () => {
      const all = await kmsAll(session, "ListResourceTags", { KeyId: meta.KeyId }, "Tags");
      const k = input({ id: "tag-key" });
      const v = input({ id: "tag-value" });
      const add = h("button", { type: "submit", id: "tag-add" }, "Add tag");
      const form = h("form", { class: "inline-form" }, field("Tag key", k), field("Tag value", v), add);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(add, slot, async () => {
          await kms(session, "TagResource", { KeyId: meta.KeyId, Tags: [{ TagKey: k.value.trim(), TagValue: v.value }] });
          tags(panel);
        });
      });
      return [
        h("p", { class: "hint" }, "Tags can allow or deny access to the key (attribute-based access control)."),
        table("Tags", ["Key", "Value", ""], all.map((t) => {
          const del = button("Remove", { "aria-label": `Remove tag ${t.TagKey}` });
          del.addEventListener("click", () =>
            busy(del, slot, async () => {
              await kms(session, "UntagResource", { KeyId: meta.KeyId, TagKeys: [t.TagKey] });
              tags(panel);
            }),
          );
          return [t.TagKey, t.TagValue, del];
        }), "No tags."),
        form,
      ];
    });
  }

  // Multi-Region keys: the primary and its replicas (from DescribeKey), each opened in its own
  // Region; new replicas (ReplicateKey) and a new primary Region (UpdatePrimaryRegion).
  function regionality(panel) {
    const slot = messageSlot();
    const config = meta.MultiRegionConfiguration || {};
    const isPrimary = config.MultiRegionKeyType === "PRIMARY";
    const open = (region) => {
      const b = button(`Open in ${region}`, { disabled: region === session.region });
      b.addEventListener("click", () => {
        saveSession({ ...session, region });
        // The header's Region picker and every call follow the new session Region.
        location.hash = `#/keys/${encodeURIComponent(meta.KeyId)}`;
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      });
      return b;
    };
    const related = [config.PrimaryKey, ...list(config.ReplicaKeys)].filter(Boolean);
    const rows = related.map((k) => [k.Region, k === config.PrimaryKey ? "Primary" : "Replica", h("span", { class: "mono" }, k.Arn), open(k.Region)]);
    const parts = [
      propertyList([
        ["This key", isPrimary ? `Primary key in ${session.region}` : `Replica key in ${session.region}`],
        ["Primary Region", config.PrimaryKey?.Region],
      ]),
      table("Related multi-Region keys", ["Region", "Type", "ARN", ""], rows, "No related keys."),
    ];
    if (isPrimary) {
      const taken = new Set(related.map((k) => k.Region));
      const region = h("select", { id: "replica-region" }, REGIONS.filter((r) => !taken.has(r)).map((r) => h("option", { value: r }, r)));
      const description = input({ id: "replica-description", value: meta.Description || "" });
      const copyPolicy = h("input", { type: "checkbox", id: "replica-copy-policy", checked: true });
      const create = h("button", { type: "submit", class: "primary", id: "replica-create" }, "Create replica key");
      const form = h(
        "form",
        {},
        field("Replica Region", region),
        field("Description", description),
        h("div", { class: "check" }, copyPolicy, h("label", { for: copyPolicy.id }, "Give the replica this key's key policy")),
        h("div", { class: "actions" }, create),
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(create, slot, async () => {
          const req = { KeyId: meta.KeyId, ReplicaRegion: region.value, Description: description.value };
          if (copyPolicy.checked) {
            req.Policy = (await kms(session, "GetKeyPolicy", { KeyId: meta.KeyId, PolicyName: "default" })).Policy;
          }
          await kms(session, "ReplicateKey", req);
          await refresh();
        });
      });
      parts.push(h("h3", {}, "Create replica key"), form);
      const replicas = list(config.ReplicaKeys);
      if (replicas.length) {
        const target = h("select", { id: "new-primary-region" }, replicas.map((k) => h("option", { value: k.Region }, k.Region)));
        const change = button("Change primary Region", { id: "update-primary" });
        change.addEventListener("click", async () => {
          const ok = await confirmDialog({
            title: `Make the key in ${target.value} the primary?`,
            body: "This key becomes a replica. Only the primary can be replicated, and shared properties (rotation) are set on it.",
            confirm: "Change primary Region",
          });
          if (ok) {
            busy(change, slot, async () => {
              await kms(session, "UpdatePrimaryRegion", { KeyId: meta.KeyId, PrimaryRegion: target.value });
              await refresh();
            });
          }
        });
        parts.push(h("h3", {}, "Primary Region"), h("div", { class: "inline-form" }, h("label", { for: target.id }, "New primary Region"), target, change));
      }
    }
    fill(panel, slot.el, section("Regionality", "regionality-card", ...parts));
  }

  // Recent events: the audit trail's records of calls on this key (CloudTrail LookupEvents by
  // the key's ARN, the newest first), as the signed-in user may read them.
  function events(panel) {
    const body = h("div", {});
    fill(panel, section("Recent events", "events-card", body));
    loadInto(body, async () => {
      const out = await cloudtrail(session, "LookupEvents", {
        LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: meta.Arn }],
        MaxResults: 50,
      });
      const all = list(out.Events);
      const rowsOf = (events) => events.map((e) => {
        let record = {};
        try {
          record = JSON.parse(e.CloudTrailEvent || "{}");
        } catch {
          record = {};
        }
        const outcome = record.errorCode ? `${record.errorCode}${record.errorMessage ? `: ${record.errorMessage}` : ""}` : "Succeeded";
        return [formatDate(e.EventTime), e.EventName, e.Username || record.userIdentity?.arn || "—", record.sourceIPAddress || "—", outcome];
      });
      const holder = h("div", {});
      const hide = h("input", { type: "checkbox", id: "events-hide-read-only" });
      const draw = () => {
        const shown = hide.checked ? all.filter((e) => String(e.ReadOnly) !== "true") : all;
        fill(holder, table("Recent events", ["Time", "Event", "User", "Source IP", "Outcome"], rowsOf(shown), "No events recorded for this key."));
      };
      hide.addEventListener("change", draw);
      draw();
      return [
        h("p", { class: "hint" }, "The last 50 calls on this key recorded in the audit trail (CloudTrail LookupEvents; needs cloudtrail:LookupEvents)."),
        h("div", { class: "check" }, hide, h("label", { for: hide.id }, "Hide read-only calls")),
        holder,
      ];
    });
  }

  page.append(h("h1", {}, "Key ", keyId), h("p", { class: "loading", role: "status" }, "Loading…"));
  load(false);
  return page;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
