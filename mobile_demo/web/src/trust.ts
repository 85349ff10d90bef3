/**
 * Which bundles the device trusts, as dipn.bundle.trust checks them: an Ed25519 signature by the
 * model builder's key over "dipn bundle manifest v1\n" + manifest.json's exact bytes, and every
 * file's sha256 and size as manifest.json lists them. WebCrypto only: the same code runs in
 * Node 20 and in a page (Ed25519 in recent Chromium).
 */
import { BundleTrustError } from "./errors.js";

export const SIGNED_PREFIX = "dipn bundle manifest v1\n";
const SPKI_ED25519_BYTES = 44; // 12 bytes of algorithm header + the 32-byte key

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function base64Bytes(text: string): Uint8Array {
  const binary = atob(text.replace(/\s+/g, ""));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** A PEM public key (SubjectPublicKeyInfo, Ed25519) -> its CryptoKey and key id (dipn's key_id). */
export async function importPublicKey(pem: string): Promise<{ key: CryptoKey; keyId: string }> {
  const body = pem.match(/-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/);
  if (body === null) throw new BundleTrustError("the trusted key is not a PEM public key");
  const der = base64Bytes(body[1] ?? "");
  if (der.length !== SPKI_ED25519_BYTES) throw new BundleTrustError("the trusted key is not an Ed25519 public key");
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", der as Uint8Array<ArrayBuffer>, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    throw new BundleTrustError(`the trusted key is not an Ed25519 public key (${String(error)})`);
  }
  const keyId = (await sha256Hex(der.slice(SPKI_ED25519_BYTES - 32))).slice(0, 16);
  return { key, keyId };
}

/** The signer's key id, or BundleTrustError saying what is wrong with manifest.sig. */
export async function checkSignature(manifestBytes: Uint8Array, signatureRecord: Uint8Array | null, pem: string): Promise<string> {
  if (signatureRecord === null) throw new BundleTrustError("the bundle is not signed (no manifest.sig)");
  const { key, keyId } = await importPublicKey(pem);
  let record: { algorithm?: unknown; key_id?: unknown; signature?: unknown };
  try {
    record = JSON.parse(new TextDecoder().decode(signatureRecord)) as typeof record;
  } catch {
    throw new BundleTrustError("manifest.sig is not a signature record");
  }
  if (record.algorithm !== "ed25519") throw new BundleTrustError("manifest.sig is not an ed25519 signature record");
  if (record.key_id !== keyId) {
    throw new BundleTrustError(`signed by key ${JSON.stringify(record.key_id)}, but this device trusts key ${keyId} only`);
  }
  const prefix = new TextEncoder().encode(SIGNED_PREFIX);
  const message = new Uint8Array(prefix.length + manifestBytes.length);
  message.set(prefix);
  message.set(manifestBytes, prefix.length);
  let valid = false;
  try {
    valid = await crypto.subtle.verify({ name: "Ed25519" }, key, base64Bytes(String(record.signature ?? "")) as Uint8Array<ArrayBuffer>, message);
  } catch {
    valid = false;
  }
  if (!valid) throw new BundleTrustError("the signature does not match manifest.json (modified after signing)");
  return keyId;
}

/** A bundle file's bytes checked against the size and sha256 manifest.json lists for it. */
export async function checkFile(path: string, bytes: Uint8Array, files: Record<string, { sha256: string; bytes: number }>): Promise<Uint8Array> {
  const expected = files[path];
  if (expected === undefined) throw new BundleTrustError(`${path} is not listed in manifest.json`);
  if (bytes.length !== expected.bytes) {
    throw new BundleTrustError(`${path}: ${bytes.length} bytes, manifest.json says ${expected.bytes} (truncated or replaced)`);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== expected.sha256) throw new BundleTrustError(`${path}: sha256 mismatch (the file is corrupted or was modified)`);
  return bytes;
}
