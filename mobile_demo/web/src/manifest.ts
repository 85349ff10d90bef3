/**
 * The two files a port reads, typed: features.json (the encoder's complete spec) and the bundle's
 * manifest.json (input signature, artifacts, scoring policy). Everything the encoder does is read
 * from features.json; a key it needs and does not find is a PortError naming it.
 */
import { PortError } from "./errors.js";

export type Kind =
  | "step" | "screen_x" | "screen_y" | "swipe_length_x" | "swipe_length_y" | "direction" | "category"
  | "vocabulary" | "stay_time" | "hour" | "count" | "level" | "recency" | "age" | "since";

export interface AppliesWhen {
  column: string;
  in: string[];
}

export interface FeatureEntry {
  group: string;
  name: string;
  column: number;
  kind: Kind;
  source: string;
  vocab_size: number;
  categories?: string[];
  rule: string;
  reads: string[];
  applies_when?: AppliesWhen;
  /** Left 0 by the per-event encoder; filled at the scoring time (rules.at_cut_feature). */
  at_cut?: boolean;
  view?: string;
  /** Which events of `view` an action age measures from (rules.last_event_when). */
  last_event_when?: AppliesWhen;
}

export interface InputEntry {
  name: string;
  dtype: string;
  shape: number[];
  columns: string[];
  mask_column?: string;
}

export interface StepRule {
  f_s: number;
  f_b: number;
}

export interface StayPiece {
  from_s: number;
  below_s: number;
  step_s: number;
  first: number;
}

/** A piecewise rule of elapsed ms (rules.step_age, rules.action_age). */
export interface PiecewisePiece {
  from_ms: number;
  to_ms: number;
  step_ms: number;
  first_value: number;
}

export interface PiecewiseRule {
  rule: "piecewise";
  pieces: PiecewisePiece[];
  open_value: number;
  buckets: number;
  none_value?: number;
}

export interface Rules {
  time_gap: StepRule;
  swipe_duration: StepRule;
  recency: StepRule;
  screen: { segments_x: number; segments_y: number };
  hour: { utc_offset_minutes: number };
  step_x: Record<string, "gap" | "value" | "since_last_event">;
  recency_none_value: number;
  stay_time_pieces: StayPiece[];
  stay_time_last: number;
  open_page: { group: string; feature: string; applies_when: AppliesWhen };
  [rule: string]: unknown;
}

export interface FeaturesJson {
  format: number;
  ids: { padding: number; oov: number };
  sequence: { length: number };
  rules: Rules;
  features: FeatureEntry[];
  inputs: InputEntry[];
  vocabularies: Record<string, string[]>;
}

export interface ScoringPolicy {
  on_event: boolean;
  timer_ms: number | null;
  idle_limit_ms: number;
}

export interface Artifact {
  format: string;
  precision: string;
  path: string;
  bytes: number;
}

export interface BundleManifest {
  format: number;
  status: string;
  model_version: string;
  inputs: { name: string; dtype: string; shape: number[] }[];
  outputs: { name: string; dtype: string; shape: number[] }[];
  default_precision: string;
  features: string;
  golden: string;
  artifacts: Artifact[];
  files: Record<string, { sha256: string; bytes: number }>;
  scoring_policy?: ScoringPolicy;
}

/** The IdleRule defaults the device uses for a bundle that records no scoring policy. */
export const DEFAULT_SCORING_POLICY: ScoringPolicy = { on_event: true, timer_ms: 60_000, idle_limit_ms: 1_800_000 };
export const FEATURES_FORMAT = 3;
export const BUNDLE_FORMAT = 1;
export const KNOWN_KINDS: ReadonlySet<string> = new Set<Kind>([
  "step", "screen_x", "screen_y", "swipe_length_x", "swipe_length_y", "direction", "category", "vocabulary",
  "stay_time", "hour", "count", "level", "recency", "age", "since",
]);
/** The rule each kind of a rule of the cut must name (the port knows these rules and no others). */
const CUT_RULES: Readonly<Record<string, string>> = { age: "step_age", since: "action_age" };

function need(ok: boolean, what: string): void {
  if (!ok) throw new PortError(`features.json: ${what}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** features.json as parsed JSON -> its typed form, every key the port reads checked. */
export function parseFeatures(data: unknown): FeaturesJson {
  const found = isRecord(data) ? data["format"] : undefined;
  const older = typeof found === "number" && found > 0 && found < FEATURES_FORMAT;
  need(isRecord(data) && found === FEATURES_FORMAT, `not a feature manifest of format ${FEATURES_FORMAT}` +
    (older ? ` (format ${found}: converted by an older dipn, without step ages; convert the bundle again)` : ""));
  const f = data as unknown as FeaturesJson;
  need(isRecord(f.rules) && isRecord(f.ids) && isRecord(f.sequence), "rules, ids and sequence are required");
  need(Number.isInteger(f.sequence.length) && f.sequence.length > 0, "sequence.length must be a positive integer");
  need(isRecord(f.rules.step_x) && Array.isArray(f.rules.stay_time_pieces) && isRecord(f.rules.open_page),
    "rules.step_x, rules.stay_time_pieces and rules.open_page are missing: the bundle was converted by a dipn " +
    "older than this port (convert it again)");
  need(Array.isArray(f.features) && Array.isArray(f.inputs) && isRecord(f.vocabularies),
    "features, inputs and vocabularies are required");
  for (const feature of f.features) {
    const name = `${feature.group}.${feature.name}`;
    need(KNOWN_KINDS.has(feature.kind), `feature ${name} has kind ${JSON.stringify(feature.kind)}, which this port does not know`);
    need(typeof feature.rule === "string" && Array.isArray(feature.reads) && feature.reads.length > 0,
      `feature ${name} lacks its rule or the columns it reads (convert the bundle again with this dipn)`);
    if (feature.kind === "step" || feature.kind === "recency") {
      const rule = f.rules[feature.rule] as StepRule | undefined;
      need(isRecord(rule) && typeof rule.f_s === "number" && typeof rule.f_b === "number" && feature.rule in f.rules.step_x,
        `feature ${name}: rules.${feature.rule} is not a step rule`);
    }
    const cutRule = CUT_RULES[feature.kind];
    if (cutRule !== undefined) {
      need(feature.rule === cutRule, `feature ${name} of kind ${feature.kind} names rule ${JSON.stringify(feature.rule)}, which this port does not know (it knows ${cutRule})`);
      need(isPiecewise(f.rules[feature.rule]), `feature ${name}: rules.${feature.rule} is not a piecewise rule`);
      need(feature.reads.join() === "cut_ts,ts", `feature ${name} reads ${feature.reads.join(", ")}; this port knows cut_ts - ts only`);
    }
    if (feature.kind === "age") {
      need(feature.at_cut === true && feature.group !== "context", `feature ${name}: a step age is a column of a view filled at the cut`);
    }
    if (feature.kind === "since") {
      const when = feature.last_event_when;
      need(typeof feature.view === "string" && isRecord(when) && typeof when.column === "string" && Array.isArray(when.in),
        `feature ${name}: an action age names its view and last_event_when`);
      need(typeof (f.rules[feature.rule] as PiecewiseRule).none_value === "number", `feature ${name}: rules.${feature.rule} has no none_value`);
    } else {
      need(feature.last_event_when === undefined, `feature ${name}: last_event_when on a kind ${feature.kind} is not a rule this port knows`);
    }
    if (feature.at_cut === true) need(feature.kind === "age", `feature ${name}: kind ${feature.kind} filled at the cut is not a rule this port knows`);
    if (feature.kind === "vocabulary") {
      need(Array.isArray(f.vocabularies[name]), `no vocabulary ${name}`);
    }
    if (feature.kind === "category") {
      need(Array.isArray(feature.categories), `feature ${name} lists no categories`);
    }
  }
  return f;
}

function isPiecewise(rule: unknown): rule is PiecewiseRule {
  if (!isRecord(rule) || rule["rule"] !== "piecewise" || !Array.isArray(rule["pieces"]) || typeof rule["open_value"] !== "number") return false;
  return (rule["pieces"] as unknown[]).every((p) => isRecord(p) && ["from_ms", "to_ms", "step_ms", "first_value"].every((k) => typeof p[k] === "number"));
}

/** The bundle's manifest.json as parsed JSON -> its typed form. */
export function parseBundleManifest(data: unknown): BundleManifest {
  if (!isRecord(data) || data["format"] !== BUNDLE_FORMAT || !isRecord(data["files"])) {
    throw new PortError(`manifest.json: not a bundle manifest of format ${BUNDLE_FORMAT}`);
  }
  const m = data as unknown as BundleManifest;
  if (m.status !== "ok") throw new PortError("manifest.json: this bundle was rejected when it was converted");
  if (!Array.isArray(m.inputs) || !Array.isArray(m.artifacts)) {
    throw new PortError("manifest.json: inputs and artifacts are required");
  }
  return m;
}

/** The manifest's scoring policy, or the defaults for a bundle that records none (said by `recorded`). */
export function scoringPolicy(manifest: BundleManifest): { policy: ScoringPolicy; recorded: boolean } {
  const p = manifest.scoring_policy;
  if (p === undefined) return { policy: DEFAULT_SCORING_POLICY, recorded: false };
  return { policy: p, recorded: true };
}

/** The artifact of a format and precision (default: the manifest's default precision). */
export function artifact(manifest: BundleManifest, format: string, precision?: string): Artifact {
  const wanted = precision ?? manifest.default_precision;
  const found = manifest.artifacts.find((a) => a.format === format && a.precision === wanted);
  if (found === undefined) {
    const have = manifest.artifacts.map((a) => `${a.format}/${a.precision}`).join(", ");
    throw new PortError(`manifest.json: no ${format} ${wanted} artifact (it has ${have})`);
  }
  return found;
}
