/**
 * The page's device identity kept across visits: the device id and its Ed25519 private key (a
 * non-extractable CryptoKey: script can sign with it but never read it) in IndexedDB, per endpoint
 * and user, so a reload signs as the same device instead of registering a new one.
 */
import { registerDevice } from "../wire.js";
import type { DeviceIdentity } from "../wire.js";

const DB = "dipn-device";
const STORE = "identity";

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function open(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  return request(r);
}

async function stored(key: string): Promise<DeviceIdentity | undefined> {
  const db = await open();
  try {
    return (await request(db.transaction(STORE).objectStore(STORE).get(key))) as DeviceIdentity | undefined;
  } finally {
    db.close();
  }
}

async function store(key: string, identity: DeviceIdentity | undefined): Promise<void> {
  const db = await open();
  try {
    const objects = db.transaction(STORE, "readwrite").objectStore(STORE);
    if (identity === undefined) await request(objects.delete(key));
    else await request(objects.put(identity, key));
  } finally {
    db.close();
  }
}

/** This browser's device for `userId` at the endpoint `base`: the stored one, else a new registration. The
 * registration carries no enrollment token: the app backend (dipn shop's server) adds it, as an
 * enrollment token never ships inside an app (docs/security.md). */
export async function deviceIdentity(base: string, userId: string): Promise<{ identity: DeviceIdentity; registered: boolean }> {
  const key = `${base}\n${userId}`;
  const known = await stored(key).catch(() => undefined);
  if (known !== undefined) return { identity: known, registered: false };
  const identity = await registerDevice(base, userId, "web");
  await store(key, identity).catch(() => undefined); // private browsing: this visit only
  return { identity, registered: true };
}

/** Forget the stored device (the endpoint no longer knows it). */
export async function forgetIdentity(base: string, userId: string): Promise<void> {
  await store(`${base}\n${userId}`, undefined).catch(() => undefined);
}
