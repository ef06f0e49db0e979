// Deep features (core/deep.ts): the native crop + resize + normalise kernel against a plain-JS
// reference of the same rule, each runtime's embedding against a hand computation, PCA scores,
// the hash check and the model checks, and no tensor leak in TF.js.
import t from 'tap';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { deepCropRect, loadDeepModel, loadTf, pcaScores, type DeepSpec } from '../core/deep.js';
import { native, type PixelRect } from '../core/native.js';
import { seededRandom } from '../core/random.js';
import { convReluMean, nhwcToNchw, sha256Of, tinyNet, writeOnnxModel, writeTfjsGraphModel, writeTfjsLayersModel, type TinyNet } from './deep-models.js';

// ---- reference resampler (plain JS, double precision) ------------------------------------------

type Taps = Array<Array<[number, number]>>;

/** Bilinear, pixel-centre aligned (OpenCV INTER_LINEAR): sample at u = x + (j + 0.5) * len / out - 0.5, clamped to [lo, hi]. */
function bilinearTaps(x: number, len: number, out: number, lo: number, hi: number): Taps {
  const taps: Taps = [];
  for (let j = 0; j < out; j++) {
    const u = x + ((j + 0.5) * len) / out - 0.5;
    const i0 = Math.floor(u), f = u - i0;
    const clamp = (i: number) => Math.min(hi, Math.max(lo, i));
    taps.push([[clamp(i0), 1 - f], [clamp(i0 + 1), f]]);
  }
  return taps;
}

/** Exact area average of the footprint [x + j*s, x + (j+1)*s). */
function areaTaps(x: number, len: number, out: number): Taps {
  const s = len / out, taps: Taps = [];
  for (let j = 0; j < out; j++) {
    const a = x + j * s, b = x + (j + 1) * s, row: Array<[number, number]> = [];
    for (let i = Math.floor(a); i < b; i++) {
      const ov = Math.min(b, i + 1) - Math.max(a, i);
      if (ov > 0) row.push([i, ov / s]);
    }
    taps.push(row);
  }
  return taps;
}

interface CropOpts { width: number; height: number; channels: 1 | 3; layout: 'nchw' | 'nhwc'; scale: number; mean: number[]; std: number[]; filter?: 'auto' | 'bilinear' }

function refCropResize(img: Uint8Array, W: number, H: number, r: PixelRect, o: CropOpts): Float64Array {
  const lox = Math.floor(r.x), hix = Math.min(W, Math.ceil(r.x + r.width)) - 1;
  const loy = Math.floor(r.y), hiy = Math.min(H, Math.ceil(r.y + r.height)) - 1;
  const auto = (o.filter ?? 'auto') === 'auto';
  const tx = auto && r.width > 2 * o.width ? areaTaps(r.x, r.width, o.width) : bilinearTaps(r.x, r.width, o.width, lox, hix);
  const ty = auto && r.height > 2 * o.height ? areaTaps(r.y, r.height, o.height) : bilinearTaps(r.y, r.height, o.height, loy, hiy);
  const C = o.channels, out = new Float64Array(C * o.width * o.height);
  for (let i = 0; i < o.height; i++) for (let j = 0; j < o.width; j++) {
    let v = 0;
    for (const [yy, wy] of ty[i]) for (const [xx, wx] of tx[j]) v += wy * wx * img[yy * W + xx];
    for (let c = 0; c < C; c++) {
      const idx = o.layout === 'nchw' ? (c * o.height + i) * o.width + j : (i * o.width + j) * C + c;
      out[idx] = (v * o.scale - o.mean[c]) / o.std[c];
    }
  }
  return out;
}

function randomImage(W: number, H: number, seed: number): Uint8Array {
  const rnd = seededRandom(seed);
  return new Uint8Array(W * H).map(() => Math.floor(rnd() * 256));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

t.test('cropResize: known values (identity, 2x upscale like INTER_LINEAR, 4x area average)', async (t) => {
  const img = randomImage(7, 5, 1);
  const id = new Float32Array(35);
  native.cropResize(img, 7, 5, { x: 0, y: 0, width: 7, height: 5 }, id, { width: 7, height: 5, channels: 1, layout: 'nchw' });
  t.same(Array.from(id), Array.from(img), 'whole image at its own size is the image');
  const row = new Uint8Array([0, 100]);
  const up = new Float32Array(4);
  const used = native.cropResize(row, 2, 1, { x: 0, y: 0, width: 2, height: 1 }, up, { width: 4, height: 1, channels: 1, layout: 'nchw' });
  t.same(Array.from(up), [0, 25, 75, 100], 'OpenCV INTER_LINEAR / align_corners=False values');
  t.same(used, { x: 'bilinear', y: 'bilinear' });
  const big = randomImage(16, 8, 2), down = new Float32Array(8);
  const usedDown = native.cropResize(big, 16, 8, { x: 0, y: 0, width: 16, height: 8 }, down, { width: 4, height: 2, channels: 1, layout: 'nchw' });
  t.same(usedDown, { x: 'area', y: 'area' });
  for (let by = 0; by < 2; by++) for (let bx = 0; bx < 4; bx++) {
    let s = 0;
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) s += big[(by * 4 + y) * 16 + bx * 4 + x];
    t.ok(Math.abs(down[by * 4 + bx] - s / 16) < 1e-4, `block ${bx},${by} is the mean of its 4x4 pixels`);
  }
  const bil = new Float32Array(8);
  native.cropResize(big, 16, 8, { x: 0, y: 0, width: 16, height: 8 }, bil, { width: 4, height: 2, channels: 1, layout: 'nchw', filter: 'bilinear' });
  // 4x bilinear samples at u = 4j + 1.5: the mean of pixels 4j+1 and 4j+2 (both axes).
  const p = (x: number, y: number) => big[y * 16 + x];
  t.ok(Math.abs(bil[0] - (p(1, 1) + p(2, 1) + p(1, 2) + p(2, 2)) / 4) < 1e-4, "filter 'bilinear' stays bilinear when downscaling");
});

t.test('cropResize matches the JS reference on random images and odd rects (1e-4)', async (t) => {
  const rnd = seededRandom(11);
  let worst = 0, cases = 0;
  const filters = new Set<string>();
  for (let n = 0; n < 60; n++) {
    const W = 5 + Math.floor(rnd() * 80), H = 5 + Math.floor(rnd() * 60);
    const img = randomImage(W, H, 100 + n);
    const x = rnd() * (W - 1), y = rnd() * (H - 1);
    const rect = { x, y, width: Math.max(0.3, rnd() * (W - x)), height: Math.max(0.3, rnd() * (H - y)) };
    if (n % 7 === 0) Object.assign(rect, { x: Math.floor(x), y: Math.floor(y), width: Math.max(1, Math.floor(rect.width)), height: Math.max(1, Math.floor(rect.height)) });
    const channels = (n % 2 === 0 ? 1 : 3) as 1 | 3;
    // Pixel-domain (scale 1, mean ~128, std ~64) or unit-domain (scale 1/255, ImageNet-like) normalisation.
    const pixelDomain = n % 5 === 0;
    const o: CropOpts = {
      width: 1 + Math.floor(rnd() * 40), height: 1 + Math.floor(rnd() * 40), channels, layout: n % 3 === 0 ? 'nhwc' : 'nchw',
      scale: pixelDomain ? 1 : 1 / 255, mean: Array.from({ length: channels }, () => rnd() * (pixelDomain ? 255 : 1)),
      std: Array.from({ length: channels }, () => (pixelDomain ? 20 + rnd() * 60 : 0.1 + rnd())),
      filter: n % 4 === 0 ? 'bilinear' : 'auto',
    };
    const out = new Float32Array(channels * o.width * o.height);
    const used = native.cropResize(img, W, H, rect, out, o);
    filters.add(used.x).add(used.y);
    const d = maxAbsDiff(out, refCropResize(img, W, H, rect, o));
    worst = Math.max(worst, d);
    cases++;
    if (d > 1e-4) t.fail(`case ${n}: ${W}x${H} rect ${JSON.stringify(rect)} -> ${o.width}x${o.height} differs by ${d}`);
  }
  t.ok(worst <= 1e-4, `${cases} random cases, worst difference ${worst.toExponential(2)}`);
  t.same([...filters].sort(), ['area', 'bilinear'], 'both filters were exercised');
});

t.test('cropResize: layouts, channels and normalisation agree with each other', async (t) => {
  const W = 40, H = 30, img = randomImage(W, H, 3);
  const rect = { x: 3.25, y: 2.5, width: 21.7, height: 17.1 };
  const ow = 9, oh = 7, plane = ow * oh;
  const gray = new Float32Array(plane);
  native.cropResize(img, W, H, rect, gray, { width: ow, height: oh, channels: 1, layout: 'nchw' });
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225], scale = 1 / 255;
  const nchw = new Float32Array(3 * plane), nhwc = new Float32Array(3 * plane);
  native.cropResize(img, W, H, rect, nchw, { width: ow, height: oh, channels: 3, layout: 'nchw', scale, mean, std });
  native.cropResize(img, W, H, rect, nhwc, { width: ow, height: oh, channels: 3, layout: 'nhwc', scale, mean, std });
  let worst = 0;
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) {
    const want = (gray[i] * scale - mean[c]) / std[c];
    worst = Math.max(worst, Math.abs(nchw[c * plane + i] - want), Math.abs(nhwc[i * 3 + c] - want));
  }
  t.ok(worst < 1e-5, `3 channels = normalised gray replicated, in both layouts (worst ${worst.toExponential(2)})`);
  const one = new Float32Array(plane);
  native.cropResize(img, W, H, rect, one, { width: ow, height: oh, channels: 1, layout: 'nhwc' });
  t.same(Array.from(one), Array.from(gray), 'one channel: nhwc = nchw');
});

t.test('cropResize refuses bad arguments with errors naming the problem', async (t) => {
  const img = randomImage(10, 10, 4), out = new Float32Array(16);
  const o = { width: 4, height: 4, channels: 1 as const, layout: 'nchw' as const };
  t.throws(() => native.cropResize(img, 10, 10, { x: 5, y: 0, width: 6, height: 4 }, out, o), /cropResize: rect .* lies outside the 10x10 image/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 0, height: 4 }, out, o), /width and height must be > 0/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 4, height: 4 }, new Float32Array(15), o), /out has 15 floats, expected channels\*width\*height = 16/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 4, height: 4 }, out, { ...o, channels: 2 as 1 }), /channels must be 1 or 3/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 4, height: 4 }, out, { ...o, mean: [0, 0] }), /mean has 2 values, expected 1/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 4, height: 4 }, out, { ...o, std: [0] }), /std\[0\] must not be 0/);
  t.throws(() => native.cropResize(img, 10, 10, { x: 0, y: 0, width: 4, height: 4 }, out, { ...o, layout: 'chw' as 'nchw' }), /layout must be 'nchw' or 'nhwc'/);
  t.throws(() => native.cropResize(img, 10, 9, { x: 0, y: 0, width: 4, height: 4 }, out, o), /src: buffer has 100 bytes/);
});

t.test('deepCropRect: margin on each side, clipped to the pane', async (t) => {
  t.same(deepCropRect({ x: 10, y: 20, width: 10, height: 20 }, 0.1, { x: 0, y: 0, width: 100, height: 100 }), { x: 9, y: 18, width: 12, height: 24 });
  t.same(deepCropRect({ x: 2, y: 20, width: 10, height: 20 }, 0.5, { x: 0, y: 10, width: 15, height: 100 }), { x: 0, y: 10, width: 15, height: 40 });
  t.throws(() => deepCropRect({ x: 200, y: 0, width: 5, height: 5 }, 0.1, { x: 0, y: 0, width: 100, height: 100 }), /lies outside the pane/);
  t.throws(() => deepCropRect({ x: 0, y: 0, width: 0, height: 5 }, 0.1, { x: 0, y: 0, width: 100, height: 100 }), /empty/);
});

// ---- runtimes ----------------------------------------------------------------------------------

const tmp = mkdtempSync(join(os.tmpdir(), 'sonomics-deep-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const K = 5, PCA_K = 3;

function pcaFor(n: number, seed: number): DeepSpec['pca'] {
  const rnd = seededRandom(seed);
  return { mean: Array.from({ length: n }, () => rnd() * 0.2), components: Array.from({ length: PCA_K }, () => Array.from({ length: n }, () => rnd() - 0.5)) };
}

function specFor(runtime: DeepSpec['runtime'], file: string, files: string[], cardDir: string, net: TinyNet, layout: 'nchw' | 'nhwc', extra: Partial<DeepSpec> = {}): DeepSpec {
  const channels = net.channels as 1 | 3;
  return {
    runtime, file,
    sha256: Object.fromEntries(files.map((f) => [f, sha256Of(join(cardDir, f))])),
    input: {
      width: net.width, height: net.height, channels, layout, pane: 'bmode', marginFraction: 0.15, scale: 1 / 255,
      mean: channels === 3 ? [0.485, 0.456, 0.406] : [0.5], std: channels === 3 ? [0.229, 0.224, 0.225] : [0.25],
    },
    embeddingSize: net.filters, pca: pcaFor(net.filters, 5), ...extra,
  };
}

/** The expectation: the JS reference crop of the margin-grown box, then conv/ReLU/mean in JS. */
function expected(spec: DeepSpec, net: TinyNet, img: Uint8Array, W: number, H: number, box: PixelRect, pane?: PixelRect): Float64Array {
  const i = spec.input;
  const rect = deepCropRect(box, i.marginFraction, pane ?? { x: 0, y: 0, width: W, height: H });
  const x = refCropResize(img, W, H, rect, { width: i.width, height: i.height, channels: i.channels, layout: i.layout, scale: i.scale, mean: i.mean, std: i.std });
  return convReluMean(net, i.layout === 'nchw' ? x : nhwcToNchw(x, i.channels, i.height, i.width));
}

const W = 96, H = 72;
const images = [0, 1, 2].map((s) => randomImage(W, H, 50 + s));
const boxes: PixelRect[] = [{ x: 20, y: 15, width: 31, height: 22 }, { x: 1, y: 40, width: 18, height: 30 }, { x: 60, y: 2, width: 35, height: 12 }];

interface Case { label: string; runtime: DeepSpec['runtime']; layout: 'nchw' | 'nhwc'; channels: 1 | 3; make(dir: string, net: TinyNet): Promise<{ file: string; files: string[] }>; extra?: Partial<DeepSpec>; backend: RegExp }

const cases: Case[] = [
  { label: 'onnx nchw, 3 channels', runtime: 'onnx', layout: 'nchw', channels: 3, backend: /^onnxruntime-node cpu$/, make: async (dir, net) => { writeOnnxModel(join(dir, 'model.onnx'), net); return { file: 'model.onnx', files: ['model.onnx'] }; } },
  { label: 'onnx nhwc, 1 channel', runtime: 'onnx', layout: 'nhwc', channels: 1, backend: /^onnxruntime-node cpu$/, make: async (dir, net) => { writeOnnxModel(join(dir, 'model.onnx'), net, 'nhwc'); return { file: 'model.onnx', files: ['model.onnx'] }; } },
  {
    label: 'tfjs-layers (embedding = layer gap)', runtime: 'tfjs-layers', layout: 'nhwc', channels: 3, backend: /^tfjs (wasm|-node)|^tfjs-node$/, extra: { output: 'gap' },
    make: async (dir, net) => { await writeTfjsLayersModel(join(dir, 'layers'), net); return { file: 'layers/model.json', files: ['layers/model.json', 'layers/weights.bin'] }; },
  },
  {
    label: 'tfjs-graph', runtime: 'tfjs-graph', layout: 'nhwc', channels: 1, backend: /^tfjs (wasm|-node)|^tfjs-node$/,
    make: async (dir, net) => { writeTfjsGraphModel(join(dir, 'graph'), net); return { file: 'graph/model.json', files: ['graph/model.json', 'graph/group1-shard1of1.bin'] }; },
  },
];

for (const [n, c] of cases.entries()) {
  t.test(`${c.label}: embedding and PCA scores equal the hand computation`, async (t) => {
    const dir = join(tmp, `case${n}`);
    const net = tinyNet(c.channels, 8, 8, K, 20 + n);
    const { file, files } = await c.make(dir, net);
    const spec = specFor(c.runtime, file, files, dir, net, c.layout, c.extra);
    const model = await loadDeepModel(spec, dir);
    t.teardown(() => model.close());
    t.match(model.backend, c.backend);
    t.same(model.names, ['deep.pc1', 'deep.pc2', 'deep.pc3']);
    for (const [i, img] of images.entries()) {
      const want = expected(spec, net, img, W, H, boxes[i]);
      const got = await model.embed({ data: img, width: W, height: H }, boxes[i]);
      t.equal(got.length, K);
      const d = maxAbsDiff(got, want);
      t.ok(d <= 1e-5, `image ${i}: embedding within 1e-5 (max diff ${d.toExponential(2)})`);
      const f = await model.features({ data: img, width: W, height: H }, boxes[i]);
      for (let p = 0; p < PCA_K; p++) {
        let s = 0;
        for (let j = 0; j < K; j++) s += spec.pca.components[p][j] * (want[j] - spec.pca.mean[j]);
        t.ok(Math.abs(f[`deep.pc${p + 1}`] - s) <= 1e-5, `image ${i}: deep.pc${p + 1} = ${f[`deep.pc${p + 1}`].toFixed(6)} (by hand ${s.toFixed(6)})`);
      }
    }
    // Concurrent calls on one model queue up and each sees its own input.
    const all = await Promise.all(images.map((img, i) => model.embed({ data: img, width: W, height: H }, boxes[i])));
    all.forEach((got, i) => t.ok(maxAbsDiff(got, expected(spec, net, images[i], W, H, boxes[i])) <= 1e-5, `concurrent call ${i}`));
    // A whole frame with the pane inside it gives what the pane alone gives.
    const pane = { x: 10, y: 6, width: 70, height: 60 };
    const paneImg = new Uint8Array(pane.width * pane.height);
    for (let y = 0; y < pane.height; y++) paneImg.set(images[0].subarray((pane.y + y) * W + pane.x, (pane.y + y) * W + pane.x + pane.width), y * pane.width);
    const box = { x: 12, y: 50, width: 25, height: 14 }; // near the pane's bottom edge: the margin is clipped
    const inFrame = await model.embed({ data: images[0], width: W, height: H }, { ...box, x: box.x + pane.x, y: box.y + pane.y }, pane);
    const alone = await model.embed({ data: paneImg, width: pane.width, height: pane.height }, box);
    t.ok(maxAbsDiff(inFrame, alone) <= 1e-6, 'pane inside a frame = the pane image');
    t.ok(maxAbsDiff(alone, expected(spec, net, paneImg, pane.width, pane.height, box)) <= 1e-5, 'clipped margin as expected');
  });
}

t.test('tfjs: no tensor leaks over 20 calls', async (t) => {
  const { tf } = await loadTf();
  for (const [label, n] of [['layers', 2], ['graph', 3]] as const) {
    const dir = join(tmp, `leak-${label}`);
    const net = tinyNet(cases[n].channels, 8, 8, K, 30);
    const { file, files } = await cases[n].make(dir, net);
    const model = await loadDeepModel(specFor(cases[n].runtime, file, files, dir, net, 'nhwc', cases[n].extra), dir);
    await model.features({ data: images[0], width: W, height: H }, boxes[0]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await model.features({ data: images[i % 3], width: W, height: H }, boxes[i % 3]);
    t.equal(tf.memory().numTensors, before, `${label}: tf.memory().numTensors stays at ${before}`);
    const withModel = tf.memory().numTensors;
    await model.close();
    t.ok(tf.memory().numTensors < withModel, `${label}: close() disposes the weights`);
  }
});

t.test('the hash check refuses a changed, unlisted or missing file before loading', async (t) => {
  const dir = join(tmp, 'hash');
  const net = tinyNet(1, 8, 8, K, 40);
  writeOnnxModel(join(dir, 'model.onnx'), net);
  const good = specFor('onnx', 'model.onnx', ['model.onnx'], dir, net, 'nchw');
  const wrong = 'ab'.repeat(32);
  await t.rejects(loadDeepModel({ ...good, sha256: { 'model.onnx': wrong } }, dir),
    { message: new RegExp(`sha256 mismatch for model\\.onnx .*the card says ${wrong}, the file has ${good.sha256['model.onnx']}`) });
  await t.rejects(loadDeepModel({ ...good, sha256: {} }, dir), /model file is 'model\.onnx', which has no sha256 in the card/);
  await t.rejects(loadDeepModel({ ...good, sha256: { ...good.sha256, 'extra.bin': wrong } }, dir), /extra\.bin is missing at .*: the card expects sha256 abab/);
  await t.rejects(loadDeepModel({ ...good, sha256: { '../model.onnx': wrong } }, dir), /not a path inside the card's folder/);
  writeFileSync(join(dir, 'model.onnx'), Buffer.concat([Buffer.from(encodeURIComponent('x')), Buffer.alloc(10)]));
  await t.rejects(loadDeepModel(good, dir), /sha256 mismatch for model\.onnx/, 'a file changed after the card was written');

  const ldir = join(tmp, 'hash-layers');
  const { file, files } = await cases[2].make(ldir, tinyNet(3, 8, 8, K, 41));
  const lspec = specFor('tfjs-layers', file, files, ldir, tinyNet(3, 8, 8, K, 41), 'nhwc', { output: 'gap' });
  await t.rejects(loadDeepModel({ ...lspec, sha256: { [file]: lspec.sha256[file] } }, ldir), /model\.json reads the weights file 'layers\/weights\.bin', which has no sha256/);
  unlinkSync(join(ldir, 'layers', 'weights.bin'));
  await t.rejects(loadDeepModel(lspec, ldir), /layers\/weights\.bin is missing at .*the card expects sha256 [0-9a-f]{64}, the file has none/);
});

t.test('model checks: input and output names, output size, input shape', async (t) => {
  const dir = join(tmp, 'checks');
  const net = tinyNet(3, 8, 8, K, 42);
  writeOnnxModel(join(dir, 'model.onnx'), net);
  const spec = specFor('onnx', 'model.onnx', ['model.onnx'], dir, net, 'nchw');
  await t.rejects(loadDeepModel({ ...spec, input: { ...spec.input, name: 'pixels' } }, dir), /the card's input 'pixels' is not an input of the model \(inputs: image\)/);
  await t.rejects(loadDeepModel({ ...spec, output: 'logits' }, dir), /the card's output 'logits' is not an output of the model \(outputs: embedding, pooled\)/);
  await t.rejects(loadDeepModel({ ...spec, embeddingSize: K + 1, pca: pcaFor(K + 1, 1) }, dir), new RegExp(`output 'embedding' has ${K} values \\(shape \\[1,${K}\\]\\), but the card's embeddingSize is ${K + 1}`));
  await t.rejects(loadDeepModel({ ...spec, input: { ...spec.input, width: 16 } }, dir), /input 'image' has shape \[1,3,8,8\], but the card's input section gives \[1,3,8,16\]/);
  await t.rejects(loadDeepModel({ ...spec, pca: { mean: spec.pca.mean, components: [[1, 2]] } }, dir), /pca\/components\/0 has 2 values for embeddingSize 5/);
  const pooled = await loadDeepModel({ ...spec, input: { ...spec.input, name: 'image' }, output: 'pooled' }, dir);
  t.equal((await pooled.embed({ data: images[0], width: W, height: H }, boxes[0])).length, K, "a named output ('pooled', [1,K,1,1]) is flattened");
  await pooled.close();
  await t.rejects(pooled.embed({ data: images[0], width: W, height: H }, boxes[0]), /is closed/);

  const ldir = join(tmp, 'checks-layers');
  const lnet = tinyNet(3, 8, 8, K, 43);
  const { file, files } = await cases[2].make(ldir, lnet);
  const lspec = specFor('tfjs-layers', file, files, ldir, lnet, 'nhwc');
  await t.rejects(loadDeepModel(lspec, ldir), new RegExp(`output '.*head.*' has 2 values \\(shape \\[1,2\\]\\), but the card's embeddingSize is ${K}`), "the model's own output (head, 2 values) is not the embedding");
  await t.rejects(loadDeepModel({ ...lspec, output: 'nope' }, ldir), /the card's output 'nope' is not a layer or tensor of the model/);
  await t.rejects(loadDeepModel({ ...lspec, output: 'gap', input: { ...lspec.input, name: 'pixels' } }, ldir), /the card's input 'pixels' is not an input of the model/);
  await t.rejects(loadDeepModel({ ...lspec, runtime: 'tfjs-graph' }, ldir), /is a 'layers-model' but the card's runtime 'tfjs-graph' needs a 'graph-model'/);

  const gdir = join(tmp, 'checks-graph');
  const gnet = tinyNet(1, 8, 8, K, 44);
  const g = await cases[3].make(gdir, gnet);
  const gspec = specFor('tfjs-graph', g.file, g.files, gdir, gnet, 'nhwc');
  await t.rejects(loadDeepModel({ ...gspec, input: { ...gspec.input, name: 'image' } }, gdir), /the card's input 'image' is not an input of the model \(inputs: x\)/);
  await t.rejects(loadDeepModel({ ...gspec, output: 'logits' }, gdir), /the card's output 'logits' is not a node of the graph/);
  await t.rejects(loadDeepModel({ ...gspec, embeddingSize: 4, pca: pcaFor(4, 2) }, gdir), /output 'embedding' has 5 values .* embeddingSize is 4/);
  await t.rejects(loadDeepModel({ ...gspec, input: { ...gspec.input, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] } }, gdir), /input 'x' has shape \[1,8,8,1\], but the card's input section gives \[1,8,8,3\]/);
  const relu = await loadDeepModel({ ...gspec, output: 'conv/Relu', embeddingSize: 8 * 8 * K, pca: pcaFor(8 * 8 * K, 3) }, gdir);
  t.equal((await relu.embed({ data: images[1], width: W, height: H }, boxes[1])).length, 8 * 8 * K, 'an inner node serves as the embedding, flattened');
  await relu.close();
});

t.test('pcaScores', async (t) => {
  t.same(Array.from(pcaScores({ mean: [1, 2], components: [[1, 0], [0.5, -1]] }, [3, 5])), [2, -2]);
});
