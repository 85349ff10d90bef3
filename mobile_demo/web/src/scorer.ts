/**
 * One artifact on onnxruntime (onnxruntime-node in Node, onnxruntime-web in a page): both expose
 * the same InferenceSession and Tensor, so the device takes whichever module the caller imported.
 */
import type { InferenceSession, Tensor } from "onnxruntime-common";
import { PortError } from "./errors.js";
import type { Inputs } from "./assemble.js";

export const OUTPUTS = ["p_realtime", "p_longterm"] as const;

/** The part of an onnxruntime module the port uses. */
export interface OrtModule {
  Tensor: new (type: "int32", data: Int32Array, dims: readonly number[]) => Tensor;
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
}

export interface Scorer {
  readonly label: string;
  scores(inputs: Inputs): Promise<[number, number]>;
}

export class OrtScorer implements Scorer {
  private constructor(private readonly ort: OrtModule, private readonly session: InferenceSession, readonly label: string) {}

  /** A session of one artifact's bytes on one thread (the device's and the benchmarks' setting);
   * `provider`: "cpu" for onnxruntime-node, "wasm" for onnxruntime-web. */
  static async create(ort: OrtModule, model: Uint8Array, label: string, provider: "cpu" | "wasm", threads = 1): Promise<OrtScorer> {
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: [provider], graphOptimizationLevel: "all",
    });
    return new OrtScorer(ort, session, label);
  }

  async scores(inputs: Inputs): Promise<[number, number]> {
    const feeds: Record<string, Tensor> = {};
    for (const name of this.session.inputNames) {
      const input = inputs.get(name);
      if (input === undefined) throw new PortError(`the artifact reads ${name}, which was not assembled`);
      feeds[name] = new this.ort.Tensor("int32", input.data, input.dims);
    }
    const out = await this.session.run(feeds);
    const values = OUTPUTS.map((name) => {
      const tensor = out[name];
      if (tensor === undefined) throw new PortError(`the artifact has no output ${name}`);
      return Number((tensor.data as Float32Array)[0]);
    });
    return [values[0] as number, values[1] as number];
  }
}
