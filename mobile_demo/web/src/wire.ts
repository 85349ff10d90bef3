/**
 * What leaves the device, as dipn/wire.py declares it: a device registers its own Ed25519 public
 * key (the private key never leaves WebCrypto), and signs every score post over
 *     "DIPN-ED25519\n" METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
 * where PATH is the request's path with its query string. Score posts carry the five wire fields
 * and nothing else.
 */
import { PortError } from "./errors.js";
import { hex, sha256Hex } from "./trust.js";

export const SCORES_PATH = "/scores";
export const DEVICES_PATH = "/devices";
export const WIRE_FIELDS = ["device_id", "model_version", "p_realtime", "p_longterm", "ts"] as const;
const SCHEME = "DIPN-ED25519";

export interface DeviceIdentity {
  deviceId: string;
  privateKey: CryptoKey;
}

export interface WireScore {
  device_id: string;
  model_version: string;
  p_realtime: number;
  p_longterm: number;
  ts: number;
}

/** A nonce of 24 characters of [A-Za-z0-9_-] (18 random bytes, base64url). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/** The path a request is signed over: the URL's path and query string. */
export function signedPath(url: URL): string {
  return url.pathname + url.search;
}

export async function signedHeaders(identity: DeviceIdentity, method: string, path: string, body: Uint8Array,
  timestampMs: number = Date.now(), nonce: string = newNonce()): Promise<Record<string, string>> {
  const message = [SCHEME, method.toUpperCase(), path, String(timestampMs), nonce, await sha256Hex(body)].join("\n");
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, identity.privateKey, new TextEncoder().encode(message));
  return {
    "x-dipn-device": identity.deviceId,
    "x-dipn-timestamp": String(timestampMs),
    "x-dipn-nonce": nonce,
    "x-dipn-signature": hex(signature),
  };
}

/**
 * Register this device with the endpoint at `base`: a fresh key pair is made here and only its
 * public half is sent. The one place a device enrolls (an enrollment credential goes here).
 */
export async function registerDevice(base: string, userId: string, platform: string, enrollToken?: string): Promise<DeviceIdentity> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = hex(await crypto.subtle.exportKey("raw", pair.publicKey));
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (enrollToken !== undefined) headers["authorization"] = `Bearer ${enrollToken}`;
  const response = await fetch(new URL(DEVICES_PATH, base), {
    method: "POST", headers, body: JSON.stringify({ user_id: userId, platform, public_key: publicKey }),
  });
  if (response.status !== 201) throw new PortError(`registration refused: ${response.status} ${await response.text()}`);
  const answer = (await response.json()) as { device_id: string };
  return { deviceId: answer.device_id, privateKey: pair.privateKey };
}

/** Why the endpoint would refuse this score (dipn.wire.score_problem), or null. */
export function scoreProblem(score: WireScore): string | null {
  for (const name of ["p_realtime", "p_longterm"] as const) {
    const p = score[name];
    if (!(Number.isFinite(p) && p >= 0 && p <= 1)) return `${name} must be a finite number in [0, 1]`;
  }
  if (!Number.isInteger(score.ts) || score.ts < 946_684_800_000 || score.ts >= 1e15) return "ts must be integer ms since the epoch (after 2000)";
  if (!/^[A-Za-z0-9._+-]{1,64}$/.test(score.model_version)) return "model_version must be 1-64 characters of [A-Za-z0-9._+-]";
  return null;
}

/** The indices of the scores a 422 names ("scores.<index>.<field>: <reason>", dipn.wire.REFUSED_SCORE). */
export function refusedIndices(detail: string, count: number): number[] {
  const found = [...detail.matchAll(/(?:^|; |")scores\.(\d+)\./g)].map((m) => Number(m[1]));
  return [...new Set(found)].filter((i) => i < count).sort((a, b) => a - b);
}

/** Posts scores, signed, in order; what the endpoint has not acknowledged is kept for the next post. */
export class Uplink {
  private readonly queue: WireScore[] = [];
  private sending: Promise<void> = Promise.resolve();
  acknowledged = 0;
  lastError: string | null = null;

  constructor(private readonly base: string, private readonly identity: DeviceIdentity, private readonly batch = 32) {}

  /** Queue one score and send the queue (a score the endpoint would refuse is refused here). */
  submit(score: Omit<WireScore, "device_id">): Promise<void> {
    const record: WireScore = { device_id: this.identity.deviceId, model_version: score.model_version,
      p_realtime: score.p_realtime, p_longterm: score.p_longterm, ts: score.ts };
    const problem = scoreProblem(record);
    if (problem !== null) {
      this.lastError = problem;
      return this.sending;
    }
    this.queue.push(record);
    this.sending = this.sending.then(() => this.flush());
    return this.sending;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const records = this.queue.slice(0, this.batch);
      const body = new TextEncoder().encode(JSON.stringify({ scores: records }));
      const url = new URL(SCORES_PATH, this.base);
      try {
        const headers = await signedHeaders(this.identity, "POST", signedPath(url), body);
        const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
        if (response.status !== 200) {
          const detail = await response.text();
          this.lastError = `${response.status} ${detail}`;
          const refused = response.status === 422 ? refusedIndices(detail, records.length) : [];
          if (refused.length === 0) return; // kept for the next post
          for (const index of refused.reverse()) this.queue.splice(index, 1); // the endpoint refuses these records
          continue;
        }
      } catch (error) {
        this.lastError = String(error);
        return;
      }
      this.queue.splice(0, records.length);
      this.acknowledged += records.length;
    }
  }
}
