// Trent console: the AWS API clients (KMS and CloudTrail awsJson1.1, IAM and STS Query), signed
// with sigv4.js.
//
// The console has no private back end: every call here is a public AWS API call to this same
// origin (`POST /`), signed with the credentials the user signed in with. Errors come back as
// `ApiError` with AWS's code and message so pages can show them as they are (AccessDenied
// included, in plain words).

import { sign } from "./sigv4.js";

const STORAGE_KEY = "trent-console-session";

// Credentials live in sessionStorage: this tab only, gone when it closes or on sign-out.
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(STORAGE_KEY);
}

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }

  get isAccessDenied() {
    return /AccessDenied/.test(this.code);
  }
}

async function send(session, service, region, headers, body) {
  const signed = await sign({
    method: "POST",
    host: location.host,
    region,
    service,
    headers,
    body,
    credentials: session,
  });
  let response;
  try {
    response = await fetch("/", { method: "POST", headers: signed, body, credentials: "omit", cache: "no-store" });
  } catch (e) {
    throw new ApiError("NetworkError", `The server could not be reached: ${e.message}`, 0);
  }
  return response;
}

/** Calls KMS operation `operation` (e.g. "DescribeKey") with `input`; returns the parsed output. */
export function kms(session, operation, input = {}) {
  return awsJson(session, "kms", `TrentService.${operation}`, input);
}

/** CloudTrail (the audit trail's LookupEvents), awsJson1.1 like KMS. */
export function cloudtrail(session, operation, input = {}) {
  return awsJson(session, "cloudtrail", `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.${operation}`, input);
}

async function awsJson(session, service, target, input) {
  const body = JSON.stringify(input);
  const response = await send(
    session,
    service,
    session.region,
    { "content-type": "application/x-amz-json-1.1", "x-amz-target": target },
    body,
  );
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("InvalidResponse", `Unexpected answer (${response.status}): ${text.slice(0, 200)}`, response.status);
  }
  if (!response.ok) {
    const code = String(data.__type || "UnknownError").split("#").pop();
    throw new ApiError(code, data.message || data.Message || code, response.status);
  }
  return data;
}

/** Every page of a paginated KMS list operation, its items under `field`. */
export async function kmsAll(session, operation, input, field) {
  const items = [];
  let marker;
  for (let page = 0; page < 100; page++) {
    const out = await kms(session, operation, marker ? { ...input, Marker: marker } : input);
    items.push(...(out[field] || []));
    if (!out.Truncated || !out.NextMarker) break;
    marker = out.NextMarker;
  }
  return items;
}

function formBody(params) {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

async function query(session, service, region, params) {
  const body = formBody(params);
  const response = await send(
    session,
    service,
    region,
    { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body,
  );
  const text = await response.text();
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (!response.ok) {
    const code = doc.querySelector("Error > Code")?.textContent || `HTTP ${response.status}`;
    const message = doc.querySelector("Error > Message")?.textContent || code;
    throw new ApiError(code, message, response.status);
  }
  return doc;
}

/** IAM (global; signed for us-east-1 as AWS's IAM is). */
export function iam(session, action, params = {}) {
  return query(session, "iam", "us-east-1", { Action: action, Version: "2010-05-08", ...params });
}

/** STS GetCallerIdentity: who the credentials are. */
export async function callerIdentity(session) {
  const doc = await query(session, "sts", session.region, { Action: "GetCallerIdentity", Version: "2011-06-15" });
  const text = (name) => doc.querySelector(name)?.textContent || "";
  return { account: text("Account"), arn: text("Arn"), userId: text("UserId") };
}

/** The account's IAM users and roles, as [{kind, name, arn}]. Every page of each list. */
export async function iamPrincipals(session) {
  const out = [];
  for (const [action, member, kind] of [
    ["ListUsers", "Users > member", "user"],
    ["ListRoles", "Roles > member", "role"],
  ]) {
    let marker;
    for (let page = 0; page < 100; page++) {
      const doc = await iam(session, action, marker ? { Marker: marker } : {});
      for (const m of doc.querySelectorAll(member)) {
        const name = m.querySelector(kind === "user" ? "UserName" : "RoleName")?.textContent;
        const arn = m.querySelector("Arn")?.textContent;
        if (name && arn) out.push({ kind, name, arn });
      }
      const truncated = doc.querySelector("IsTruncated")?.textContent === "true";
      marker = doc.querySelector("Marker")?.textContent;
      if (!truncated || !marker) break;
    }
  }
  return out;
}
