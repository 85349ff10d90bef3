/**
 * Opening a bundle as a device does: manifest.json's signature checked against the trusted key
 * (unless the caller opts out for development), every file read checked against its listed size
 * and sha256, features.json and golden.json parsed. Files come from a BundleSource: the file system
 * in Node, fetch() in a page.
 */
import { BundleTrustError, PortError } from "./errors.js";
import { EncoderSpec } from "./encoder.js";
import type { RawEvent } from "./encoder.js";
import { artifact, parseBundleManifest, parseFeatures } from "./manifest.js";
import type { Artifact, BundleManifest, FeaturesJson } from "./manifest.js";
import { checkFile, checkSignature } from "./trust.js";

export interface BundleSource {
  /** A file of the bundle by its relative path; null when there is none. */
  read(path: string): Promise<Uint8Array | null>;
}

export interface GoldenRaw {
  name: string;
  events: Record<string, RawEvent[]>;
  history: Record<string, number>;
  profile: Record<string, number>;
  screen: [number, number];
  score_ts: number;
}

export interface GoldenCase {
  name: string;
  raw: GoldenRaw;
  ids: Record<string, number[][]>;
  scores: Record<string, [number, number]>;
}

export interface Golden {
  format: number;
  tolerance: Record<string, number>;
  cases: GoldenCase[];
}

export interface TrustOptions {
  /** The model builder's Ed25519 public key, PEM. */
  publicKeyPem?: string;
  /** Development only: open a bundle without checking its signature. */
  allowUnsigned?: boolean;
}

export class LoadedBundle {
  readonly spec: EncoderSpec;
  readonly inputNames: string[];

  constructor(
    private readonly source: BundleSource,
    readonly manifest: BundleManifest,
    readonly features: FeaturesJson,
    readonly golden: Golden,
    readonly signer: string | null,
  ) {
    this.spec = new EncoderSpec(features);
    this.inputNames = manifest.inputs.map((input) => input.name);
  }

  get modelVersion(): string {
    return this.manifest.model_version;
  }

  artifact(precision?: string): Artifact {
    return artifact(this.manifest, "onnx", precision);
  }

  /** An artifact's bytes, checked against manifest.json. */
  async artifactBytes(entry: Artifact): Promise<Uint8Array> {
    return checkFile(entry.path, await readRequired(this.source, entry.path), this.manifest.files);
  }
}

async function readRequired(source: BundleSource, path: string): Promise<Uint8Array> {
  const bytes = await source.read(path);
  if (bytes === null) throw new BundleTrustError(`${path}: missing (listed in manifest.json)`);
  return bytes;
}

/** A bundle's JSON file: strict JSON (dipn convert writes a figure that is not a number as null). */
function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new PortError(`${what}: not JSON (${String(error)}); a bundle whose manifest holds NaN was converted by an older dipn: convert it again`);
  }
}

export async function openBundle(source: BundleSource, trust: TrustOptions): Promise<LoadedBundle> {
  const manifestBytes = await source.read("manifest.json");
  if (manifestBytes === null) throw new BundleTrustError("not a bundle (no manifest.json)");
  let signer: string | null = null;
  if (trust.publicKeyPem !== undefined) {
    signer = await checkSignature(manifestBytes, await source.read("manifest.sig"), trust.publicKeyPem);
  } else if (trust.allowUnsigned !== true) {
    throw new BundleTrustError("no public key is configured to check the bundle's signature (allowUnsigned: development only)");
  }
  const manifest = parseBundleManifest(parseJson(manifestBytes, "manifest.json"));
  const features = parseFeatures(parseJson(await checkFile(manifest.features, await readRequired(source, manifest.features), manifest.files), manifest.features));
  const golden = parseJson(await checkFile(manifest.golden, await readRequired(source, manifest.golden), manifest.files), manifest.golden) as Golden;
  return new LoadedBundle(source, manifest, features, golden, signer);
}
