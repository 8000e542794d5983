// Trent console: unit test of sigv4.js against the "get-vanilla" case of AWS's Signature
// Version 4 test suite (the published signature for a known key, time and request), with
// Node's test runner and its WebCrypto; run by tests/python/test_console.py.

import { test } from "node:test";
import assert from "node:assert/strict";
import { sign, amzDate } from "../../crates/trent-server/console/sigv4.js";

test("AWS's get-vanilla test vector", async () => {
  const headers = await sign({
    method: "GET",
    host: "example.amazonaws.com",
    region: "us-east-1",
    service: "service",
    headers: {},
    body: "",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
    now: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
  });
  assert.equal(headers["x-amz-date"], "20150830T123600Z");
  assert.equal(
    headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
  // The browser sends Host itself: it is signed but not returned.
  assert.equal(headers.host, undefined);
});

test("every header is signed, the session token too", async () => {
  const headers = await sign({
    method: "POST",
    host: "127.0.0.1:4599",
    region: "eu-west-1",
    service: "kms",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.ListKeys" },
    body: "{}",
    credentials: { accessKeyId: "AKIA", secretAccessKey: "s", sessionToken: "token" },
  });
  assert.match(headers.authorization, /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,/);
  assert.equal(headers["x-amz-security-token"], "token");
  assert.deepEqual(amzDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), { stamp: "20260102T030405Z", day: "20260102" });
});
