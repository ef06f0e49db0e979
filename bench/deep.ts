// npm run bench:deep: deep features (core/deep.ts) per frame on ONE core. Generates, with seeded
// random weights, a MobileNetV2-sized network (224x224x3, inverted residual blocks with
// depthwise convolutions, ~300 M multiply-adds, global average pool -> 1280-d embedding) as ONNX
// through onnx-proto, and the same network as a TF.js layers model, into a temp folder; loads
// each through loadDeepModel (hash check included) and times, over a synthetic 8-bit frame with
// a lesion box: (i) crop + resize + normalise (native), (ii) inference, (iii) PCA to 8
// components, (iv) the whole DeepFeatureModel.features() call. Random weights: timing only.
// BENCH_RUNS=n sets the timed runs per measurement (default 100 for onnxruntime, 50 for TF.js).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { quantileSorted } from 'simple-statistics';
import type * as Tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { deepCropRect, loadDeepModel, loadTf, pcaScores, type DeepSpec } from '../core/deep.js';
import { native, type PixelRect } from '../core/native.js';
import { seededRandom } from '../core/random.js';
import type onnxProto from 'onnx-proto';
import { attr, encodeOnnx, initializer, saveTfjsLayersModel, sha256Of, valueInfo } from '../test/deep-models.js';
import { table } from './table.js';

const RUNS = Number(process.env.BENCH_RUNS) || 0;
const ORT_RUNS = Math.max(50, RUNS || 100), TF_RUNS = Math.max(50, RUNS || 50);
const WARMUP = 10;
const TARGET_MS = 10;
const PCA_K = 8;
const SIZE = 224, EMBED = 1280;

// MobileNetV2 1.0 (Sandler et al. 2018, table 2): expansion t, output channels c, repeats n, stride s.
const BLOCKS: Array<[number, number, number, number]> = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];

function gaussian(rnd: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** The ONNX network: batch norm folded into the convolutions (as exported models are), ReLU6 = Clip(0, 6). */
function mobileNetV2Onnx(seed: number): { bytes: Uint8Array; macs: number; params: number } {
  const normal = gaussian(seededRandom(seed));
  const nodes: onnxProto.onnx.INodeProto[] = [], inits: onnxProto.onnx.ITensorProto[] = [];
  inits.push(initializer('zero', [], new Float32Array([0])), initializer('six', [], new Float32Array([6])));
  let macs = 0, params = 0, id = 0, size = SIZE;
  const conv = (x: string, cin: number, cout: number, k: number, stride: number, group: number, relu6: boolean): string => {
    const n = `conv${id++}`, pad = (k - 1) / 2, fanIn = (cin / group) * k * k;
    const out = Math.floor((size + 2 * pad - k) / stride) + 1;
    const w = new Float32Array(cout * fanIn), std = Math.sqrt(2 / fanIn);
    for (let i = 0; i < w.length; i++) w[i] = normal() * std;
    const b = new Float32Array(cout).map(() => normal() * 0.01);
    inits.push(initializer(`${n}.weight`, [cout, cin / group, k, k], w), initializer(`${n}.bias`, [cout], b));
    nodes.push({ opType: 'Conv', name: n, input: [x, `${n}.weight`, `${n}.bias`], output: [n],
      attribute: [attr.ints('kernel_shape', [k, k]), attr.ints('pads', [pad, pad, pad, pad]), attr.ints('strides', [stride, stride]), attr.int('group', group)] });
    macs += out * out * cout * fanIn;
    params += w.length + b.length;
    size = out;
    if (!relu6) return n;
    nodes.push({ opType: 'Clip', input: [n, 'zero', 'six'], output: [`${n}.relu6`] });
    return `${n}.relu6`;
  };
  let x = conv('image', 3, 32, 3, 2, 1, true), cin = 32;
  for (const [t, c, n, s] of BLOCKS)
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1, hidden = cin * t;
      let h = t === 1 ? x : conv(x, cin, hidden, 1, 1, 1, true);
      h = conv(h, hidden, hidden, 3, stride, hidden, true);
      h = conv(h, hidden, c, 1, 1, 1, false);
      if (stride === 1 && cin === c) {
        nodes.push({ opType: 'Add', input: [x, h], output: [`${h}.add`] });
        h = `${h}.add`;
      }
      x = h; cin = c;
    }
  x = conv(x, cin, EMBED, 1, 1, 1, true);
  nodes.push({ opType: 'GlobalAveragePool', input: [x], output: ['pool'] }, { opType: 'Flatten', input: ['pool'], output: ['embedding'] });
  const bytes = encodeOnnx({ name: 'mobilenetv2-random', input: [valueInfo('image', [1, 3, SIZE, SIZE])], output: [valueInfo('embedding', [1, EMBED])], initializer: inits, node: nodes });
  return { bytes, macs, params };
}

/** The same network with tf.layers (NHWC, 'same' padding, bias instead of batch norm). */
function mobileNetV2Layers(tf: typeof Tf, seed: number): Tf.LayersModel {
  let s = seed;
  const init = () => tf.initializers.heNormal({ seed: s++ });
  const relu6 = (x: Tf.SymbolicTensor) => tf.layers.reLU({ maxValue: 6 }).apply(x) as Tf.SymbolicTensor;
  const conv = (x: Tf.SymbolicTensor, filters: number, k: number, strides: number) =>
    tf.layers.conv2d({ filters, kernelSize: k, strides, padding: 'same', kernelInitializer: init() }).apply(x) as Tf.SymbolicTensor;
  const dw = (x: Tf.SymbolicTensor, strides: number) =>
    tf.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: 'same', depthwiseInitializer: init() }).apply(x) as Tf.SymbolicTensor;
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'image' });
  let x = relu6(conv(input, 32, 3, 2)), cin = 32;
  for (const [t, c, n, st] of BLOCKS)
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? st : 1;
      let h = t === 1 ? x : relu6(conv(x, cin * t, 1, 1));
      h = relu6(dw(h, stride));
      h = conv(h, c, 1, 1);
      if (stride === 1 && cin === c) h = tf.layers.add().apply([x, h]) as Tf.SymbolicTensor;
      x = h; cin = c;
    }
  x = relu6(conv(x, EMBED, 1, 1));
  const out = tf.layers.globalAveragePooling2d({ name: 'embedding' }).apply(x) as Tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

// ---- synthetic frame ---------------------------------------------------------------------------

/** A 1280x720 screen with a speckle-like B-mode pane and a darker lesion; the lesion's box. */
function syntheticFrame(): { data: Uint8Array; width: number; height: number; pane: PixelRect; box: PixelRect } {
  const width = 1280, height = 720, data = new Uint8Array(width * height);
  const pane = { x: 40, y: 80, width: 560, height: 560 }, box = { x: 240, y: 290, width: 152, height: 108 };
  const rnd = seededRandom(3);
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  for (let y = pane.y; y < pane.y + pane.height; y++)
    for (let x = pane.x; x < pane.x + pane.width; x++) {
      const inside = ((x - cx) / (box.width / 2)) ** 2 + ((y - cy) / (box.height / 2)) ** 2 <= 1;
      const rayleigh = Math.sqrt(-2 * Math.log(1 - rnd()));
      data[y * width + x] = Math.min(255, Math.round((inside ? 35 : 90) * rayleigh));
    }
  return { data, width, height, pane, box };
}

// ---- timing ------------------------------------------------------------------------------------

interface Timing { median: number; p95: number; n: number }

async function time(runs: number, fn: () => unknown): Promise<Timing> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { median: quantileSorted(t, 0.5), p95: quantileSorted(t, 0.95), n: t.length };
}

const loadavg = () => os.loadavg().map((v) => v.toFixed(2)).join(' ');
const ms = (v: number) => (v < 1 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(0));

function specFor(runtime: DeepSpec['runtime'], file: string, files: string[], dir: string, layout: 'nchw' | 'nhwc'): DeepSpec {
  const rnd = seededRandom(8);
  return {
    runtime, file, sha256: Object.fromEntries(files.map((f) => [f, sha256Of(join(dir, f))])),
    input: { width: SIZE, height: SIZE, channels: 3, layout, pane: 'bmode', marginFraction: 0.15, scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    embeddingSize: EMBED,
    pca: { mean: Array.from({ length: EMBED }, () => rnd()), components: Array.from({ length: PCA_K }, () => Array.from({ length: EMBED }, () => rnd() - 0.5)) },
  };
}

interface Column { label: string; crop: Timing; infer: Timing; pca: Timing; total: Timing; loadMs: number }

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  console.log(`sonomics bench: deep features, ${new Date().toISOString()}, ${cpu} x ${os.cpus().length}, ${process.platform} ${os.release()}, node ${process.version}, onnxruntime-node ${ort.env.versions?.common ?? ''}, load average ${loadavg()}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'sonomics-bench-deep-'));
  try {
    const frame = syntheticFrame();
    const image = { data: frame.data, width: frame.width, height: frame.height };
    const rect = deepCropRect(frame.box, 0.15, frame.pane);
    const columns: Column[] = [];

    // onnxruntime-node, one intra-op thread.
    const t0 = performance.now();
    const net = mobileNetV2Onnx(1);
    writeFileSync(join(dir, 'model.onnx'), net.bytes);
    const genMs = performance.now() - t0;
    const ospec = specFor('onnx', 'model.onnx', ['model.onnx'], dir, 'nchw');
    const l0 = performance.now();
    const omodel = await loadDeepModel(ospec, dir, { threads: 1 });
    const oload = performance.now() - l0;
    const input = new Float32Array(3 * SIZE * SIZE);
    const cropOpts = { width: SIZE, height: SIZE, channels: 3 as const, layout: 'nchw' as const, scale: 1 / 255, mean: ospec.input.mean, std: ospec.input.std };
    const session = await ort.InferenceSession.create(net.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
    const tensor = new ort.Tensor('float32', input, [1, 3, SIZE, SIZE]);
    native.cropResize(image.data, image.width, image.height, rect, input, cropOpts);
    const embedding = (await session.run({ image: tensor }, ['embedding'])).embedding.data as Float32Array;
    const e2 = await omodel.embed(image, frame.box, frame.pane);
    let same = 0;
    for (let i = 0; i < EMBED; i++) same = Math.max(same, Math.abs(e2[i] - embedding[i]));
    columns.push({
      label: 'onnxruntime-node cpu, 1 thread',
      crop: await time(ORT_RUNS, () => native.cropResize(image.data, image.width, image.height, deepCropRect(frame.box, 0.15, frame.pane), input, cropOpts)),
      infer: await time(ORT_RUNS, () => session.run({ image: tensor }, ['embedding'])),
      pca: await time(ORT_RUNS, () => pcaScores(ospec.pca, embedding)),
      total: await time(ORT_RUNS, () => omodel.features(image, frame.box, frame.pane)),
      loadMs: oload,
    });
    await session.release();
    await omodel.close();
    const two = await loadDeepModel(ospec, dir, { threads: 2 });
    const total2 = await time(ORT_RUNS, () => two.features(image, frame.box, frame.pane));
    await two.close();

    // TF.js layers on the wasm backend (tfjs-node when installed).
    let tfNote = '';
    try {
      const { tf, backend } = await loadTf();
      const lm = mobileNetV2Layers(tf, 1);
      const tfParams = lm.countParams();
      await saveTfjsLayersModel(lm, join(dir, 'tfjs'));
      const tspec = specFor('tfjs-layers', 'tfjs/model.json', ['tfjs/model.json', 'tfjs/weights.bin'], dir, 'nhwc');
      const l1 = performance.now();
      const tmodel = await loadDeepModel(tspec, dir);
      const tload = performance.now() - l1;
      const tin = new Float32Array(3 * SIZE * SIZE);
      const tcrop = { ...cropOpts, layout: 'nhwc' as const };
      native.cropResize(image.data, image.width, image.height, rect, tin, tcrop);
      const before = tf.memory().numTensors;
      columns.push({
        label: `${backend}, TF.js layers`,
        crop: await time(TF_RUNS, () => native.cropResize(image.data, image.width, image.height, deepCropRect(frame.box, 0.15, frame.pane), tin, tcrop)),
        infer: await time(TF_RUNS, async () => {
          const y = tf.tidy(() => lm.predict(tf.tensor(tin, [1, SIZE, SIZE, 3])) as Tf.Tensor);
          await y.data();
          y.dispose();
        }),
        pca: await time(TF_RUNS, () => pcaScores(tspec.pca, embedding)),
        total: await time(TF_RUNS, () => tmodel.features(image, frame.box, frame.pane)),
        loadMs: tload,
      });
      const leaked = tf.memory().numTensors - before;
      tfNote = `TF.js: ${backend} backend (${backend === 'tfjs wasm' ? 'single-threaded SIMD build; the threaded build is not used in Node' : 'native TensorFlow'}), ${(tfParams / 1e6).toFixed(2)} M parameters, tensors leaked over the runs: ${leaked}`;
      await tmodel.close();
      lm.dispose();
    } catch (e) {
      tfNote = `TF.js column skipped: ${(e as Error).message}`;
    }

    const row = (label: string, pick: (c: Column) => Timing) => [label, ...columns.flatMap((c) => [ms(pick(c).median), ms(pick(c).p95)])];
    const header = ['<stage (ms per frame)', ...columns.flatMap((c) => [`${c.label} median`, 'p95'])];
    const o = columns[0];
    table(
      `Deep features, MobileNetV2-sized network with RANDOM weights (timing only): 224x224x3 -> 1280-d, ${(net.macs / 1e6).toFixed(0)} M multiply-adds, ${(net.params / 1e6).toFixed(2)} M parameters`,
      header,
      [
        row('(i) crop + resize + normalise', (c) => c.crop),
        row('(ii) inference', (c) => c.infer),
        row(`(iii) PCA to ${PCA_K} components`, (c) => c.pca),
        row('(iv) total: features()', (c) => c.total),
        ['runs (after 10 warm-up)', ...columns.flatMap((c) => [String(c.total.n), ''])],
        ['load (hash + parse + probe)', ...columns.flatMap((c) => [ms(c.loadMs), ''])],
      ],
      [
        `target: total <= ${TARGET_MS} ms with onnxruntime on one core: ${o.total.median <= TARGET_MS ? 'met' : 'NOT met'} (median ${ms(o.total.median)}, p95 ${ms(o.total.p95)})`,
        `synthetic ${frame.width}x${frame.height} frame, B-mode pane ${frame.pane.width}x${frame.pane.height}, lesion box ${frame.box.width}x${frame.box.height}, margin 0.15 -> crop ${rect.width.toFixed(1)}x${rect.height.toFixed(1)} resampled bilinear to 224x224`,
        '(iv) is timed on its own (one DeepFeatureModel.features() call: crop, inference, PCA, result object), not summed from (i)-(iii)',
        `onnxruntime with 2 intra-op threads (${os.cpus().length} logical cores here): total median ${ms(total2.median)}, p95 ${ms(total2.p95)}`,
        `onnx model generated in ${ms(genMs)} ms (${(net.bytes.length / 1e6).toFixed(1)} MB); embed() vs a bare session on the same crop: max |diff| ${same.toExponential(1)}`,
        tfNote,
        `load average at the end: ${loadavg()} (other processes on the machine inflate p95 first)`,
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
