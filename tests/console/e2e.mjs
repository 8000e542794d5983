// Trent console end-to-end test: drives the real console in headless Chromium (Debian's
// /usr/bin/chromium, through playwright-core) against a running `trent serve`.
//
// Started by tests/python/test_console.py, which starts Trent, creates the IAM users and roles
// and then checks with boto3 what this script did through the browser. Input comes from the
// environment (TRENT_ENDPOINT, TRENT_AKID, …). Once the wizard has created the key, a JSON line
// {"event": "created"} is printed and the script waits for `continue` on stdin; the last line
// printed is a JSON summary. Any failed expectation throws, so the process exits non-zero.
// Screenshots go to SCREENSHOT_DIR.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const endpoint = env("TRENT_ENDPOINT");
const account = env("TRENT_ACCOUNT");
const otherAccount = env("TRENT_OTHER_ACCOUNT");
const adminArn = env("TRENT_ADMIN_ARN");
const userArn = env("TRENT_USER_ARN");
const roleArn = env("TRENT_ROLE_ARN");
const asymmetricKeyId = env("TRENT_ASYMMETRIC_KEY_ID");
const shots = env("SCREENSHOT_DIR");
mkdirSync(shots, { recursive: true });

// The flags the machine needs: no sandbox as root, and no background connections (the
// network is closed; Chromium would otherwise keep trying to reach Google). Playwright gives
// every launch a fresh, empty profile directory of its own (it refuses --user-data-dir).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

const summary = { checks: [] };

// One line from the driving test on stdin (it answers when its own checks are done).
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await lines.next();
  if (done || value.trim() !== "continue") throw new Error(`the driving test said ${done ? "nothing" : value}`);
}
const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
  summary.checks.push(what);
};

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  // Generous waits: CI shares two cores with the Rust build and the server.
  context.setDefaultTimeout(60_000);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

  // ── Sign in with the keyboard: type, Tab between fields, Enter submits.
  await page.goto(`${endpoint}/console/`);
  await page.getByRole("heading", { name: "Sign in to Trent" }).waitFor();
  await shot("sign-in");
  // A wrong secret is refused by the server, and said so.
  await page.getByLabel("Access key ID").fill(env("TRENT_AKID"));
  await page.getByLabel("Secret access key").fill("not-the-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  const refused = await page.getByRole("alert").textContent();
  check(/SignatureDoesNotMatch/.test(refused), `a wrong secret is refused: ${refused}`);
  await page.getByLabel("Access key ID").fill("");
  await page.getByLabel("Secret access key").fill("");
  await page.getByLabel("Access key ID").focus();
  await page.keyboard.type(env("TRENT_AKID"));
  await page.keyboard.press("Tab");
  await page.keyboard.type(env("TRENT_SECRET"));
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Customer managed keys" }).waitFor();
  check(await page.getByText(`arn:aws:iam::${account}:root`).isVisible(), "signed in as the account root");
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]);
  check(stored[0] === 1 && stored[1] === 0 && stored[2] === "", "credentials only in sessionStorage");

  // ── Create key wizard, in AWS's order.
  await page.getByRole("link", { name: "Create key" }).click();
  await page.getByRole("heading", { name: "Configure key" }).waitFor();
  check(await page.getByRole("radio", { name: /^Symmetric/ }).isChecked(), "symmetric is the default key type");
  await shot("create-key-configure");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Add labels" }).waitFor();
  await page.getByLabel("Alias").fill("console-e2e");
  await page.getByLabel("Description").fill("Created through the console test");
  await page.getByRole("button", { name: "Add tag" }).click();
  await page.getByLabel("Tag 1 key").fill("team");
  await page.getByLabel("Tag 1 value").fill("security");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Define key administrative permissions" }).waitFor();
  await page.getByLabel("kms-admin", { exact: true }).check();
  await shot("create-key-administrators");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Define key usage permissions" }).waitFor();
  await page.getByLabel("app-user", { exact: true }).check();
  await page.getByLabel("app-role", { exact: true }).check();
  await page.getByRole("button", { name: "Add another AWS account" }).click();
  await page.getByLabel("Other AWS account 1").fill(otherAccount);
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Review" }).waitFor();
  const preview = await page.locator("#policy-preview").textContent();
  await shot("create-key-review");
  await page.getByRole("button", { name: "Finish" }).click();
  await page.getByRole("heading", { name: "alias/console-e2e" }).waitFor();
  const keyId = decodeURIComponent(new URL(page.url()).hash.replace("#/keys/", ""));
  summary.keyId = keyId;
  summary.previewPolicy = preview;
  check(/^[0-9a-f-]{36}$/.test(keyId), "the wizard created a key and opened its page");
  // The Python side checks the new key's policy with boto3 now, before anything edits it.
  console.log(JSON.stringify({ event: "created", keyId, previewPolicy: preview }));
  await nextLine();
  await shot("key-general");

  // ── Key policy: the default view lists what the wizard chose.
  // With the keyboard: arrow keys move along the tab list, Enter opens the tab.
  await page.getByRole("tab", { name: "General configuration" }).focus();
  await page.keyboard.press("ArrowRight");
  check(await page.getByRole("tab", { name: "Key policy" }).evaluate((el) => el === document.activeElement), "arrow keys move between tabs");
  await page.keyboard.press("Enter");
  await page.getByRole("group", { name: "Key administrators" }).waitFor();
  check(await page.getByRole("group", { name: "Key administrators" }).getByText(adminArn).isVisible(), "default view lists the administrator");
  check(await page.getByRole("group", { name: "Key users" }).getByText(roleArn).isVisible(), "default view lists the key users");
  check(await page.getByRole("group", { name: "Other AWS accounts" }).getByText(`arn:aws:iam::${otherAccount}:root`).isVisible(), "default view lists the other account");
  await shot("key-policy-default-view");
  // Editing the lists rewrites the statements: app-user stops being a key user.
  await page.getByRole("button", { name: `Remove ${userArn} from Key users` }).click();
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Key policy saved.").waitFor();
  check(!(await page.getByRole("group", { name: "Key users" }).getByText(userArn).isVisible()), "the removed key user is gone");
  // The JSON editor shows Trent's own validation message inline.
  await page.getByRole("button", { name: "Switch to policy view" }).click();
  const editor = page.getByLabel("Policy document (JSON)");
  const policy = JSON.parse(await editor.inputValue());
  const broken = { ...policy, Statement: [{ ...policy.Statement[0], Effect: "Maybe" }, ...policy.Statement.slice(1)] };
  await editor.fill(JSON.stringify(broken, null, 2));
  await page.getByRole("button", { name: "Save changes" }).click();
  const error = page.locator("#policy-error [role=alert]");
  await error.waitFor();
  const errorText = await error.textContent();
  check(/MalformedPolicyDocumentException/.test(errorText), `validation error shown inline: ${errorText}`);
  check((await editor.getAttribute("aria-invalid")) === "true", "the editor is marked invalid");
  await shot("key-policy-validation-error");
  // A policy that would lock the caller out: the lockout check's message in words.
  const lockout = { Version: "2012-10-17", Statement: [{ Sid: "only-app", Effect: "Allow", Principal: { AWS: userArn }, Action: "kms:Encrypt", Resource: "*" }] };
  await editor.fill(JSON.stringify(lockout, null, 2));
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("This policy would lock you out of the key").waitFor();
  summary.lockoutText = await page.locator("#policy-error").textContent();
  await shot("key-policy-lockout");

  // ── Who can use this key.
  await page.getByRole("tab", { name: "Who can use this key" }).click();
  await page.getByText(`IAM policies in account ${account} decide`).first().waitFor();
  const who = await page.locator("#who").textContent();
  check(who.includes(`Account ${otherAccount} (another account)`), "the other account is listed");
  check(who.includes("IAM role app-role"), "the key user is listed");
  check(who.includes("only for grants an integrated AWS service creates"), "the grant condition is explained");
  // Trent's own evaluation (AnalyzeKeyAccess) beside the browser's reading of the policy.
  await page.locator("#who-evaluated").waitFor();
  const evaluated = await page.locator("#who-evaluated").textContent();
  check(evaluated.includes(`arn:aws:iam::${otherAccount}:root`), "the server's analysis lists the other account");
  check(evaluated.includes("kms:Encrypt"), "the server's analysis lists operations");
  await shot("key-who-can-use");

  // ── Grants: create one, then revoke it after seed 004's warning.
  await page.getByRole("tab", { name: "Grants" }).click();
  await page.getByText("No grants on this key.").waitFor();
  await page.getByLabel("Grantee principal").fill(roleArn);
  await page.getByLabel("Encrypt", { exact: true }).check();
  await page.getByLabel("Decrypt", { exact: true }).check();
  await page.getByLabel("Constraint", { exact: true }).selectOption("EncryptionContextSubset");
  await page.getByLabel("Encryption context").fill("purpose=console-test");
  await page.getByLabel("Retiring principal").fill(adminArn);
  await page.getByLabel("Name").fill("console-grant");
  await page.getByRole("button", { name: "Create grant" }).click();
  const grantId = (await page.locator("#new-grant-id").textContent()).trim();
  await page.getByRole("cell", { name: grantId, exact: true }).waitFor();
  summary.grantId = grantId;
  await shot("key-grants");
  // The grant shows in "Who can use this key", with its constraint.
  await page.getByRole("tab", { name: "Who can use this key" }).click();
  await page.getByText(`Grant "console-grant" ${grantId}`).waitFor();
  check((await page.locator("#who").textContent()).includes("console-test"), "the grant's constraint is shown");
  await page.getByRole("tab", { name: "Grants" }).click();
  await page.getByRole("cell", { name: grantId, exact: true }).waitFor();
  await page.getByRole("button", { name: `Revoke grant ${grantId}` }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  check((await dialog.textContent()).includes("can no longer decrypt the data"), "revoking warns that a service's data can become unusable");
  const confirm = dialog.getByRole("button", { name: "Revoke grant" });
  check(await confirm.isDisabled(), "revoke needs the acknowledgement first");
  await dialog.getByRole("checkbox").check();
  await shot("key-grant-revoke-warning");
  await confirm.click();
  await page.getByText(`Grant ${grantId} revoked.`).waitFor();
  await page.getByText("No grants on this key.").waitFor();
  // A second grant is retired (the account that created it may retire it).
  await page.getByLabel("Grantee principal").fill(userArn);
  await page.getByLabel("DescribeKey", { exact: true }).check();
  await page.getByRole("button", { name: "Create grant" }).click();
  const second = (await page.locator("#new-grant-id").textContent()).trim();
  await page.getByRole("button", { name: `Retire grant ${second}` }).click();
  await page.getByRole("dialog").getByRole("checkbox").check();
  await page.getByRole("dialog").getByRole("button", { name: "Retire grant" }).click();
  await page.getByText(`Grant ${second} retired.`).waitFor();
  await page.getByText("No grants on this key.").waitFor();

  // ── Rotation: enable with a period, see the status and history.
  await page.getByRole("tab", { name: "Key rotation" }).click();
  await page.getByLabel("Automatically rotate this key's material").check();
  await page.getByLabel("Rotation period (days)").fill("180");
  await page.getByRole("button", { name: "Save rotation settings" }).click();
  await page.getByText("Automatic rotation enabled every 180 days.").waitFor();
  await page.getByText("This key has not been rotated.").waitFor();
  await page.getByRole("button", { name: "Rotate now" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Rotate now" }).click();
  await page.getByText("On-demand rotation started.").waitFor();
  await page.getByRole("cell", { name: "ON_DEMAND", exact: true }).waitFor();
  await shot("key-rotation");

  // ── Recent events from the audit trail (when the server keeps one).
  if (process.env.TRENT_AUDIT === "1") {
    await page.getByRole("tab", { name: "Recent events" }).click();
    await page.getByRole("cell", { name: "EnableKeyRotation", exact: true }).waitFor();
    await page.getByLabel("Hide read-only calls").check();
    check((await page.getByRole("cell", { name: "DescribeKey", exact: true }).count()) === 0, "read-only calls can be hidden");
    check((await page.locator("#events-card").textContent()).includes("RevokeGrant"), "the key's recent events include the revoked grant");
    await shot("key-recent-events");
  }

  // ── Schedule deletion (7 days), after the warning and acknowledgement.
  await page.getByRole("tab", { name: "General configuration" }).click();
  await page.getByLabel("Waiting period (days)").fill("7");
  await page.getByRole("button", { name: "Schedule key deletion" }).click();
  const deletion = page.getByRole("dialog");
  check((await deletion.textContent()).includes("can never be decrypted again"), "deletion warns that data is lost");
  await deletion.getByRole("checkbox").check();
  await shot("key-deletion-warning");
  await deletion.getByRole("button", { name: "Schedule deletion" }).click();
  await page.getByRole("button", { name: "Cancel key deletion" }).waitFor();
  check((await page.locator(".state").textContent()) === "PendingDeletion", "the key is pending deletion");

  // ── Public key of an asymmetric key, as PEM, and its download.
  await page.goto(`${endpoint}/console/#/keys/${asymmetricKeyId}`);
  await page.getByRole("tab", { name: "Public key" }).click();
  const pem = await page.locator("#public-key-pem").textContent();
  check(pem.startsWith("-----BEGIN PUBLIC KEY-----\n") && pem.trim().endsWith("-----END PUBLIC KEY-----"), "public key shown as PEM");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download public key (PEM)" }).click()]);
  check(download.suggestedFilename() === `${asymmetricKeyId}.pem`, "public key downloads as a .pem file");
  summary.publicKeyPem = pem;
  await shot("key-public-key");
  // Aliases, tags, description, disable and enable on the same key.
  await page.getByRole("tab", { name: "Aliases" }).click();
  await page.getByLabel("New alias: alias/").fill("console-signer");
  await page.getByRole("button", { name: "Create alias" }).click();
  await page.getByRole("heading", { name: "alias/console-signer" }).waitFor();
  await page.getByRole("tab", { name: "Tags" }).click();
  await page.getByLabel("Tag key").fill("env");
  await page.getByLabel("Tag value").fill("test");
  await page.getByRole("button", { name: "Add tag" }).click();
  await page.getByRole("button", { name: "Remove tag env" }).waitFor();
  await page.getByRole("tab", { name: "General configuration" }).click();
  await page.getByRole("textbox", { name: "Description" }).fill("signs releases");
  await page.getByRole("button", { name: "Save description" }).click();
  await page.getByText("signs releases").first().waitFor();
  await page.getByRole("button", { name: "Disable key" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Disable key" }).click();
  await page.getByRole("button", { name: "Enable key" }).waitFor();
  check((await page.locator(".state").textContent()) === "Disabled", "the key was disabled");
  await page.getByRole("button", { name: "Enable key" }).click();
  await page.getByRole("button", { name: "Disable key" }).waitFor();
  check((await page.locator(".state").textContent()) === "Enabled", "the key was enabled again");
  // Scheduled deletion can be cancelled; the key is then disabled until enabled again.
  await page.getByRole("button", { name: "Schedule key deletion" }).click();
  await page.getByRole("dialog").getByRole("checkbox").check();
  await page.getByRole("dialog").getByRole("button", { name: "Schedule deletion" }).click();
  await page.getByRole("button", { name: "Cancel key deletion" }).click();
  await page.getByRole("button", { name: "Enable key" }).click();
  await page.getByRole("button", { name: "Disable key" }).waitFor();
  check((await page.locator(".state").textContent()) === "Enabled", "deletion was cancelled and the key enabled");

  // ── A multi-Region key (when the server has them): replicate it, open the replica.
  if (process.env.TRENT_MRK_KEY_ID) {
    const mrk = process.env.TRENT_MRK_KEY_ID;
    await page.goto(`${endpoint}/console/#/keys/${mrk}`);
    await page.getByRole("tab", { name: "Regionality" }).click();
    await page.getByText("Primary key in us-east-1").waitFor();
    await page.getByLabel("Replica Region").selectOption("eu-west-1");
    await page.getByRole("button", { name: "Create replica key" }).click();
    await page.getByRole("button", { name: "Open in eu-west-1" }).waitFor();
    await shot("key-regionality");
    await page.getByRole("button", { name: "Open in eu-west-1" }).click();
    await page.getByRole("tab", { name: "Regionality" }).click();
    await page.getByText("Replica key in eu-west-1").waitFor();
    check((await page.locator("#region-switch").inputValue()) === "eu-west-1", "opening the replica switches the Region");
    await page.locator("#region-switch").selectOption("us-east-1");
    await page.getByRole("tab", { name: "Regionality" }).click();
    await page.getByText("Primary key in us-east-1").waitFor();
  }

  // ── The keys list, filtered, at 1280×800 and on a narrow window.
  await page.goto(`${endpoint}/console/#/keys`);
  await page.getByRole("link", { name: "alias/console-e2e" }).waitFor();
  await shot("keys");
  await page.getByLabel("Filter keys").fill("console-e2e");
  check((await page.locator("tbody tr").count()) === 1, "the filter narrows the list");
  await page.getByLabel("Filter keys").fill("");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no page-wide horizontal scroll on a narrow window (${overflow}px)`);
  await shot("keys-narrow");
  await page.goto(`${endpoint}/console/#/keys/${keyId}`);
  await page.getByRole("heading", { name: "General configuration" }).waitFor();
  const keyOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(keyOverflow <= 0, `a key's page fits a narrow window (${keyOverflow}px)`);
  await shot("key-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${endpoint}/console/#/keys`);
  await page.getByRole("link", { name: "alias/console-e2e" }).waitFor();

  // ── Sign out clears the credentials; an IAM user without permissions sees AccessDenied.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Trent" }).waitFor();
  check((await page.evaluate(() => sessionStorage.length)) === 0, "sign out forgets the credentials");
  await page.getByLabel("Access key ID").fill(env("TRENT_DENIED_AKID"));
  await page.getByLabel("Secret access key").fill(env("TRENT_DENIED_SECRET"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Customer managed keys" }).waitFor();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  const alertText = await alert.textContent();
  check(alertText.startsWith("Access denied") && alertText.includes("kms:ListKeys"), `AccessDenied shown plainly: ${alertText}`);
  summary.accessDenied = alertText;
  await shot("access-denied");

  // Temporary credentials: a role session signs in with its session token.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Access key ID").fill(env("TRENT_SESSION_AKID"));
  await page.getByLabel("Secret access key").fill(env("TRENT_SESSION_SECRET"));
  await page.getByLabel("Session token (optional)").fill(env("TRENT_SESSION_TOKEN"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Customer managed keys" }).waitFor();
  check((await page.locator(".session .who").textContent()) === `arn:aws:sts::${account}:assumed-role/app-role/console`, "a role session signs in with its token");

  check(problems.length === 0, `no CSP violations or page errors: ${problems.join("; ")}`);
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
