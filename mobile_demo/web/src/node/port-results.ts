/**
 * Writes PORT_RESULTS.json for a bundle: every golden case through this TypeScript port and every
 * ONNX artifact on onnxruntime-node (one thread); `dipn check-port BUNDLE PORT_RESULTS.json` judges it.
 *
 *     node dist/src/node/port-results.js BUNDLE OUT.json [--public-key KEY.pub | --allow-unsigned] [--also merged]
 *
 * `--also NAME,...` writes the ids of inputs the model does not read beside its own (the tests
 * check the early-fusion assembly on a model without it).
 */
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { openBundle } from "../bundle.js";
import type { LoadedBundle } from "../bundle.js";
import { PortError } from "../errors.js";
import { portResults } from "../golden.js";
import type { PortResults } from "../golden.js";
import { OrtScorer } from "../scorer.js";
import type { OrtModule, Scorer } from "../scorer.js";
import { directorySource } from "./files.js";

const ortVersion = (createRequire(import.meta.url)("onnxruntime-node/package.json") as { version: string }).version;

/** A scorer per ONNX artifact of the bundle, keyed by its path. */
export async function nodeScorers(bundle: LoadedBundle): Promise<Map<string, Scorer>> {
  const scorers = new Map<string, Scorer>();
  for (const entry of bundle.manifest.artifacts.filter((a) => a.format === "onnx")) {
    const bytes = await bundle.artifactBytes(entry);
    scorers.set(entry.path, await OrtScorer.create(ort as unknown as OrtModule, bytes, `onnxruntime-node ${ortVersion}`, "cpu"));
  }
  return scorers;
}

export async function nodePortResults(root: string, publicKeyPem: string | undefined, also: string[] = []): Promise<PortResults> {
  const bundle = await openBundle(directorySource(root), publicKeyPem === undefined ? { allowUnsigned: true } : { publicKeyPem });
  return portResults(bundle, await nodeScorers(bundle), `dipn-web TypeScript port on onnxruntime-node ${ortVersion}`, also);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { "public-key": { type: "string" }, "allow-unsigned": { type: "boolean" }, also: { type: "string" } },
  });
  const [root, out] = positionals;
  if (root === undefined || out === undefined) {
    throw new PortError("usage: port-results BUNDLE OUT.json [--public-key KEY.pub | --allow-unsigned] [--also merged]");
  }
  const keyPath = values["public-key"];
  if (keyPath === undefined && values["allow-unsigned"] !== true) {
    throw new PortError("pass --public-key KEY.pub (the bundle's signer) or --allow-unsigned (development)");
  }
  const pem = keyPath === undefined ? undefined : await readFile(keyPath, "utf8");
  const results = await nodePortResults(root, pem, (values.also ?? "").split(",").filter((name) => name !== ""));
  await writeFile(out, JSON.stringify(results) + "\n");
  console.log(`wrote ${out}: ${results.cases.length} golden cases, scores of ${Object.keys(results.cases[0]?.scores ?? {}).join(", ")}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(`port-results: error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  });
}
