/** Request signing as dipn/wire.py specifies it, and the endpoint's refusals read by index. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { hex } from "../src/trust.js";
import { newNonce, refusedIndices, signedHeaders, signedPath } from "../src/wire.js";

test("the signature covers scheme, method, path with its query, timestamp, nonce and the body's sha256", async () => {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const body = new TextEncoder().encode('{"scores":[]}');
  const path = signedPath(new URL("http://127.0.0.1:8000/scores?campaign=7"));
  assert.equal(path, "/scores?campaign=7");
  const headers = await signedHeaders({ deviceId: "a".repeat(32), privateKey: pair.privateKey }, "post", path, body, 1_767_261_600_000, "n".repeat(24));
  const message = ["DIPN-ED25519", "POST", "/scores?campaign=7", "1767261600000", "n".repeat(24),
    createHash("sha256").update(body).digest("hex")].join("\n");
  const signature = Uint8Array.from((headers["x-dipn-signature"] ?? "").match(/../g) ?? [], (h) => parseInt(h, 16));
  assert.equal(signature.length, 64);
  assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, pair.publicKey, signature, new TextEncoder().encode(message)));
  assert.deepEqual(Object.keys(headers), ["x-dipn-device", "x-dipn-timestamp", "x-dipn-nonce", "x-dipn-signature"]);
  assert.match(newNonce(), /^[A-Za-z0-9_-]{24}$/);
  assert.equal(hex(new Uint8Array([0, 255])), "00ff");
});

test("a 422 names the refused scores by index", () => {
  const detail = '{"error":"invalid_scores","detail":"scores.3.p_realtime: too big; scores.0.ts: in the future; scores.9.ts: x"}';
  assert.deepEqual(refusedIndices(detail, 5), [0, 3]);
  assert.deepEqual(refusedIndices('{"error":"too_many_scores"}', 5), []);
});
