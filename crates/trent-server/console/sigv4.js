// Trent console: AWS Signature Version 4 in the browser, with WebCrypto (SHA-256, HMAC-SHA256).
//
// Every request the console sends is signed here with the user's own access key, exactly as an
// AWS SDK signs it, so the server authorizes the console like any other client. Trent refuses a
// request whose operation-selecting headers are not signed (content-type and every x-amz-*
// header, crates/trent-sigv4/src/verify.rs), so all headers this module sets are signed, `host`
// included: browsers do not let scripts set Host, but they send `location.host`, which is what
// is signed.

const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(key, data) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(data));
}

// `20260102T030405Z` and `20260102` for a date.
export function amzDate(date) {
  const iso = date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  return { stamp: iso, day: iso.slice(0, 8) };
}

// The signing key of RFC-style AWS4: HMAC chain over day, Region, service, "aws4_request".
async function signingKey(secret, day, region, service) {
  const kDate = await hmac("AWS4" + secret, day);
  const kRegion = await hmac(kDate, region);
  const kService = await hmac(kRegion, service);
  return hmac(kService, "aws4_request");
}

/**
 * Signs a request to path `/` (no query string) and returns the headers to send.
 * `headers` are the request's own (lower-case names); `host` is added and signed.
 * `credentials` is {accessKeyId, secretAccessKey, sessionToken?}.
 */
export async function sign({ method, host, region, service, headers, body, credentials, now = new Date() }) {
  const { stamp, day } = amzDate(now);
  const all = { ...headers, host, "x-amz-date": stamp };
  if (credentials.sessionToken) {
    all["x-amz-security-token"] = credentials.sessionToken;
  }
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), v]));
  // Canonical header values: trimmed, inner runs of spaces collapsed.
  const canonicalHeaders = names.map((n) => `${n}:${String(lower[n]).trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const payloadHash = await sha256Hex(body);
  const canonicalRequest = [method, "/", "", canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonicalRequest)].join("\n");
  const key = await signingKey(credentials.secretAccessKey, day, region, service);
  const signature = hex(await hmac(key, stringToSign));
  const out = { ...all };
  // The browser sends Host itself; fetch refuses a script-set Host header.
  delete out.host;
  out.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}
