// Deep features for risk model cards: a CNN embeds the lesion crop of one pane, the card's PCA
// reduces the embedding to a few scores (deep.pc1 ... deep.pc<k>) and the card's linear model
// uses them like any radiomics feature. docs/deep-features.md describes the card section.
//
// Per frame: one native call crops, resizes and normalises the pane into a Float32Array that is
// allocated once per model; one inference call; the PCA in plain JS (k x embeddingSize).
// Every file the model reads is hashed and compared to the card before anything is parsed, and
// the bytes that were hashed are the bytes that are loaded.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, posix, resolve, sep } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type * as Tf from '@tensorflow/tfjs';
import { checkDeepSpec, type DeepSpec } from './modelcard.js';
import { native, type NativeCropResizeOptions, type PixelRect } from './native.js';

/** The card's deep section (schema and meaning in core/modelcard.ts and docs/deep-features.md). */
export type { DeepSpec };

/** An 8-bit gray image, row-major, stride = width. */
export interface DeepImage { data: Uint8Array; width: number; height: number }

export interface DeepFeatureModel {
  /** deep.pc1 ... deep.pc<k>, in the order of the card's PCA components. */
  readonly names: string[];
  /** 'onnxruntime-node cpu', 'tfjs wasm' or 'tfjs-node'. */
  readonly backend: string;
  readonly spec: DeepSpec;
  /**
   * The model's (flattened) output for the lesion crop. `image` is the card's pane (or a whole
   * frame, then pass `pane` = where the card's pane sits in it); `box` is the lesion's bounding
   * box in the image's pixels (pixel-edge coordinates: x .. x + width). The margin is applied
   * here and the crop is clipped to the pane. Calls on one model run one at a time.
   */
  embed(image: DeepImage, box: PixelRect, pane?: PixelRect): Promise<Float32Array>;
  /** PCA scores of the embedding, by name. */
  features(image: DeepImage, box: PixelRect, pane?: PixelRect): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * The source rect the model sees: the lesion box grown by marginFraction of its width (left and
 * right) and height (top and bottom), clipped to the pane. Fractional coordinates are kept; the
 * rect is stretched to the model input (the aspect ratio is not preserved).
 */
export function deepCropRect(box: PixelRect, marginFraction: number, pane: PixelRect): PixelRect {
  for (const k of ['x', 'y', 'width', 'height'] as const)
    if (!Number.isFinite(box[k])) throw new Error(`deep features: the lesion box's ${k} is not a finite number`);
  if (!(box.width > 0 && box.height > 0)) throw new Error(`deep features: the lesion box is empty (${box.width}x${box.height})`);
  const mx = box.width * marginFraction, my = box.height * marginFraction;
  const x0 = Math.max(pane.x, box.x - mx), y0 = Math.max(pane.y, box.y - my);
  const x1 = Math.min(pane.x + pane.width, box.x + box.width + mx), y1 = Math.min(pane.y + pane.height, box.y + box.height + my);
  if (!(x1 > x0 && y1 > y0))
    throw new Error(`deep features: the lesion box (${box.x},${box.y} ${box.width}x${box.height}) lies outside the pane (${pane.x},${pane.y} ${pane.width}x${pane.height})`);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** pc_i = components[i] · (e - mean), as the card defines it. */
export function pcaScores(pca: DeepSpec['pca'], e: ArrayLike<number>): Float64Array {
  const k = pca.components.length, n = pca.mean.length;
  const out = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    const c = pca.components[i];
    let s = 0;
    for (let j = 0; j < n; j++) s += c[j] * (e[j] - pca.mean[j]);
    out[i] = s;
  }
  return out;
}

// ---- checks ------------------------------------------------------------------------------------

/** A path of the card (posix, relative to its folder), refused when it leaves the folder. */
function cardPath(rel: string): string {
  const p = posix.normalize(rel.replace(/\\/g, '/'));
  if (isAbsolute(rel) || posix.isAbsolute(p) || p === '..' || p.startsWith('../'))
    throw new Error(`deep model: '${rel}' is not a path inside the card's folder`);
  return p;
}

/** Reads and hashes every file the card lists; any mismatch or missing file refuses the model. */
async function readVerified(spec: DeepSpec, cardDir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const problems: string[] = [];
  for (const [rel, wantRaw] of Object.entries(spec.sha256 ?? {})) {
    const key = cardPath(rel);
    const want = String(wantRaw).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(want)) { problems.push(`${rel}: the card's sha256 '${wantRaw}' is not 64 hex digits`); continue; }
    const abs = resolve(cardDir, ...key.split('/'));
    let bytes: Buffer;
    try {
      bytes = await readFile(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problems.push(`${rel} is ${code === 'ENOENT' ? 'missing' : `unreadable (${code ?? (e as Error).message})`} at ${abs}: the card expects sha256 ${want}, the file has none`);
      continue;
    }
    const got = createHash('sha256').update(bytes).digest('hex');
    if (got !== want) problems.push(`sha256 mismatch for ${rel} (${abs}): the card says ${want}, the file has ${got}`);
    else files.set(key, bytes);
  }
  if (problems.length) throw new Error(`deep model ${spec.file} refused: ${problems.join('; ')}`);
  return files;
}

function verifiedFile(files: Map<string, Buffer>, rel: string, spec: DeepSpec, why: string): Buffer {
  const b = files.get(cardPath(rel));
  if (!b) throw new Error(`deep model ${spec.file}: ${why} '${rel}', which has no sha256 in the card (every file the model reads needs one; listed: ${Object.keys(spec.sha256 ?? {}).join(', ') || 'none'})`);
  return b;
}

function inputDims(spec: DeepSpec): number[] {
  const { width: w, height: h, channels: c, layout } = spec.input;
  return layout === 'nchw' ? [1, c, h, w] : [1, h, w, c];
}

/** Refuses a model whose static input shape differs from what the card's input section produces. */
function checkInputShape(spec: DeepSpec, name: string, shape: ReadonlyArray<number | string | null | undefined> | undefined): void {
  if (!shape) return;
  const want = inputDims(spec);
  const fixed = (d: unknown) => typeof d === 'number' && d > 0;
  const ok = shape.length === want.length && shape.every((d, i) => !fixed(d) || d === want[i]);
  if (!ok) {
    const show = shape.map((d) => (fixed(d) ? String(d) : '?')).join(',');
    const { width, height, channels, layout } = spec.input;
    throw new Error(`deep model ${spec.file}: input '${name}' has shape [${show}], but the card's input section gives [${want.join(',')}] (${width}x${height}, ${channels} channel(s), ${layout})`);
  }
}

function checkEmbeddingSize(spec: DeepSpec, output: string, n: number, shape: readonly number[]): void {
  if (n !== spec.embeddingSize)
    throw new Error(`deep model ${spec.file}: output '${output}' has ${n} values (shape [${shape.join(',')}]), but the card's embeddingSize is ${spec.embeddingSize}`);
}

// ---- runtimes ----------------------------------------------------------------------------------

/** One inference on the prepared input buffer; returns the flattened output. */
interface Runner {
  backend: string;
  run(): Promise<Float32Array>;
  close(): Promise<void>;
}

async function onnxRunner(spec: DeepSpec, files: Map<string, Buffer>, input: Float32Array, threads: number): Promise<Runner> {
  const bytes = verifiedFile(files, spec.file, spec, 'the model file is');
  const ort: typeof Ort = await import('onnxruntime-node');
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
  } catch (e) {
    throw new Error(`deep model ${spec.file}: onnxruntime cannot load it: ${(e as Error).message}`);
  }
  try {
    const inName = spec.input.name ?? session.inputNames[0];
    if (!session.inputNames.includes(inName))
      throw new Error(`deep model ${spec.file}: the card's input '${inName}' is not an input of the model (inputs: ${session.inputNames.join(', ')})`);
    if (session.inputNames.length !== 1)
      throw new Error(`deep model ${spec.file}: the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); deep features feed exactly one`);
    const outName = spec.output ?? session.outputNames[0];
    if (!session.outputNames.includes(outName))
      throw new Error(`deep model ${spec.file}: the card's output '${outName}' is not an output of the model (outputs: ${session.outputNames.join(', ')})`);
    const meta = session.inputMetadata?.find((m) => m.name === inName);
    if (meta?.isTensor) {
      if (meta.type !== 'float32') throw new Error(`deep model ${spec.file}: input '${inName}' is ${meta.type}, not float32`);
      checkInputShape(spec, inName, meta.shape as ReadonlyArray<number | string>);
    }
    const tensor = new ort.Tensor('float32', input, inputDims(spec));
    const feeds = { [inName]: tensor };
    const fetches = [outName];
    const run = async (): Promise<{ data: Float32Array; dims: readonly number[] }> => {
      const r = await session.run(feeds, fetches);
      const t = r[outName];
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
      return { data, dims: t.dims };
    };
    // Probe with a neutral input: checks the whole path and the output size, and warms up.
    input.fill(0);
    const probe = await run();
    checkEmbeddingSize(spec, outName, probe.data.length, probe.dims);
    return { backend: 'onnxruntime-node cpu', run: async () => (await run()).data, close: () => session.release() };
  } catch (e) {
    await session.release();
    throw e;
  }
}

type TfModule = typeof Tf;
let tfReady: Promise<{ tf: TfModule; backend: string }> | undefined;

/** @tensorflow/tfjs on tfjs-node when it can be imported, else on the wasm backend (once per process). */
export function loadTf(): Promise<{ tf: TfModule; backend: string }> {
  tfReady ??= (async () => {
    const tf: TfModule = await import('@tensorflow/tfjs');
    const nodeBackend = '@tensorflow/tfjs-node';
    try {
      await import(nodeBackend);
      if (await tf.setBackend('tensorflow')) { await tf.ready(); return { tf, backend: 'tfjs-node' }; }
    } catch { /* not installed: wasm */ }
    if (tf.getBackend() !== 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(dist + sep);
      if (!(await tf.setBackend('wasm'))) throw new Error(`deep features: the TF.js wasm backend did not start (wasm files from ${dist})`);
    }
    await tf.ready();
    return { tf, backend: 'tfjs wasm' };
  })();
  tfReady.catch(() => { tfReady = undefined; });
  return tfReady;
}

const stripPort = (n: string) => n.replace(/:\d+$/, '');

async function tfjsRunner(spec: DeepSpec, files: Map<string, Buffer>, input: Float32Array): Promise<Runner> {
  const jsonBytes = verifiedFile(files, spec.file, spec, 'the model file is');
  let modelJSON: Tf.io.ModelJSON;
  try {
    modelJSON = JSON.parse(jsonBytes.toString('utf8'));
  } catch (e) {
    throw new Error(`deep model ${spec.file}: not valid JSON: ${(e as Error).message}`);
  }
  if (!modelJSON || typeof modelJSON !== 'object' || !modelJSON.modelTopology)
    throw new Error(`deep model ${spec.file}: not a TF.js model.json (no modelTopology)`);
  const wantFormat = spec.runtime === 'tfjs-layers' ? 'layers-model' : 'graph-model';
  if (modelJSON.format && modelJSON.format !== wantFormat)
    throw new Error(`deep model ${spec.file}: model.json is a '${modelJSON.format}' but the card's runtime '${spec.runtime}' needs a '${wantFormat}'`);
  // Weights: every path of the manifest, relative to model.json's folder, must be verified.
  const base = posix.dirname(cardPath(spec.file));
  const weightBuffers: ArrayBuffer[] = [];
  for (const group of modelJSON.weightsManifest ?? [])
    for (const p of group.paths) {
      const b = verifiedFile(files, posix.join(base, p), spec, 'model.json reads the weights file');
      weightBuffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    }
  const { tf, backend } = await loadTf();
  const handler: Tf.io.IOHandler = {
    load: () => tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => [tf.io.getWeightSpecs(manifest), weightBuffers]),
  };
  const dims = inputDims(spec);
  let infer: (x: Tf.Tensor) => Tf.Tensor;
  let inferAsync: ((x: Tf.Tensor) => Promise<Tf.Tensor>) | undefined;
  let dispose: () => void;
  let outName: string;
  try {
    if (spec.runtime === 'tfjs-layers') {
      const model = await tf.loadLayersModel(handler);
      dispose = () => model.dispose();
      try {
        if (model.inputs.length !== 1)
          throw new Error(`deep model ${spec.file}: the model has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); deep features feed exactly one`);
        const inp = model.inputs[0];
        const inputLayer = model.inputLayers?.[0]?.name;
        const inName = spec.input.name ?? inp.name;
        if (inName !== inp.name && inName !== inputLayer)
          throw new Error(`deep model ${spec.file}: the card's input '${inName}' is not an input of the model (inputs: ${[inp.name, inputLayer].filter(Boolean).join(' = ')})`);
        checkInputShape(spec, inName, inp.shape);
        // Any layer's output may serve as the embedding: by layer name or symbolic tensor name.
        const tensorNames = new Map<string, string>();
        for (const layer of model.layers) {
          let outs: Tf.SymbolicTensor[];
          try {
            outs = ([] as Tf.SymbolicTensor[]).concat(layer.output as Tf.SymbolicTensor | Tf.SymbolicTensor[]);
          } catch {
            continue; // a shared layer (several inbound nodes) has no single output
          }
          for (const o of outs) tensorNames.set(o.name, o.name);
          if (outs.length === 1) tensorNames.set(layer.name, outs[0].name);
        }
        const want = spec.output ?? model.outputs[0].name;
        const resolved = tensorNames.get(want);
        if (!resolved)
          throw new Error(`deep model ${spec.file}: the card's output '${want}' is not a layer or tensor of the model (outputs: ${model.outputs.map((o) => o.name).join(', ')}; layers: ${model.layers.map((l) => l.name).join(', ')})`);
        outName = resolved;
        infer = (x) => model.execute(x, outName) as Tf.Tensor;
      } catch (e) { dispose(); throw e; }
    } else {
      const model = await tf.loadGraphModel(handler);
      dispose = () => model.dispose();
      try {
        const inputs = model.inputs.map((i) => i.name);
        if (inputs.length !== 1) throw new Error(`deep model ${spec.file}: the model has ${inputs.length} inputs (${inputs.join(', ')}); deep features feed exactly one`);
        const inName = spec.input.name ?? inputs[0];
        if (stripPort(inName) !== stripPort(inputs[0]))
          throw new Error(`deep model ${spec.file}: the card's input '${inName}' is not an input of the model (inputs: ${inputs.join(', ')})`);
        checkInputShape(spec, inName, model.inputs[0].shape);
        const nodes = new Set(((modelJSON.modelTopology as { node?: Array<{ name: string }> }).node ?? []).map((n) => n.name));
        outName = spec.output ?? model.outputs[0].name;
        if (!nodes.has(stripPort(outName)))
          throw new Error(`deep model ${spec.file}: the card's output '${outName}' is not a node of the graph (outputs: ${model.outputs.map((o) => o.name).join(', ')})`);
        const feed = (x: Tf.Tensor) => ({ [inputs[0]]: x });
        infer = (x) => model.execute(feed(x), outName) as Tf.Tensor;
        inferAsync = (x) => model.executeAsync(feed(x), outName) as Promise<Tf.Tensor>;
      } catch (e) { dispose(); throw e; }
    }
  } catch (e) {
    const msg = (e as Error).message;
    throw msg.startsWith('deep model') ? e : new Error(`deep model ${spec.file}: TF.js cannot load it: ${msg}`);
  }
  let useAsync = false;
  const run = async (): Promise<{ data: Float32Array; shape: number[] }> => {
    let y: Tf.Tensor;
    if (!useAsync) {
      try {
        y = tf.tidy(() => infer(tf.tensor(input, dims, 'float32')));
      } catch (e) {
        // Graphs with control flow or dynamic shapes only run asynchronously.
        if (!inferAsync || !/executeAsync/.test((e as Error).message)) throw e;
        useAsync = true;
        return run();
      }
    } else {
      const x = tf.tensor(input, dims, 'float32');
      try { y = await inferAsync!(x); } finally { x.dispose(); }
    }
    try {
      const d = await y.data();
      return { data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>), shape: y.shape };
    } finally {
      y.dispose();
    }
  };
  try {
    input.fill(0);
    const probe = await run();
    checkEmbeddingSize(spec, outName, probe.data.length, probe.shape);
  } catch (e) {
    dispose();
    throw e;
  }
  return { backend, run: async () => (await run()).data, close: async () => dispose() };
}

// ---- the model ---------------------------------------------------------------------------------

/**
 * Loads a card's deep model: verifies every sha256 of spec.sha256 (refusing a mismatch or a
 * missing file), loads the verified bytes, checks the input and output names, the input shape and
 * that the output has embeddingSize values (one probe inference on a zero input).
 * opts.threads: onnxruntime intra-op threads (default 1; inter-op is always 1). TF.js on wasm
 * in Node runs on one thread.
 */
export async function loadDeepModel(spec: DeepSpec, cardDir: string, opts: { threads?: number } = {}): Promise<DeepFeatureModel> {
  checkDeepSpec(spec);
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`deep model ${spec.file}: threads must be a positive integer (got ${threads})`);
  const files = await readVerified(spec, cardDir);
  const { width, height, channels, layout, scale, mean, std } = spec.input;
  const input = new Float32Array(width * height * channels);
  const runner = spec.runtime === 'onnx' ? await onnxRunner(spec, files, input, threads) : await tfjsRunner(spec, files, input);
  const cropOptions: NativeCropResizeOptions = { width, height, channels, layout, scale, mean: [...mean], std: [...std], filter: 'auto' };
  const names = spec.pca.components.map((_, i) => `deep.pc${i + 1}`);
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  const embed = (image: DeepImage, box: PixelRect, pane?: PixelRect): Promise<Float32Array> => {
    const job = queue.then(async () => {
      if (closed) throw new Error(`deep model ${spec.file} is closed`);
      const bounds = pane ?? { x: 0, y: 0, width: image.width, height: image.height };
      if (bounds.x < 0 || bounds.y < 0 || bounds.x + bounds.width > image.width || bounds.y + bounds.height > image.height || !(bounds.width > 0 && bounds.height > 0))
        throw new Error(`deep features: the pane (${bounds.x},${bounds.y} ${bounds.width}x${bounds.height}) lies outside the ${image.width}x${image.height} image`);
      const rect = deepCropRect(box, spec.input.marginFraction, bounds);
      native.cropResize(image.data, image.width, image.height, rect, input, cropOptions);
      return runner.run();
    });
    queue = job.catch(() => undefined);
    return job;
  };

  return {
    names,
    backend: runner.backend,
    spec,
    embed,
    async features(image, box, pane) {
      const pcs = pcaScores(spec.pca, await embed(image, box, pane));
      const r: Record<string, number> = {};
      names.forEach((n, i) => { r[n] = pcs[i]; });
      return r;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await runner.close();
    },
  };
}
