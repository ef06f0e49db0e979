// The one-tap segmentation kernels (native/src/segment.cc) and mask metrics, on shapes whose answers
// are known: the network's input crop and tap heatmap, logits back to a single hole-free region
// at the tap, the distance transform's deepest point, growing and shrinking, Dice and HD95.
import t from 'tap';
import { native } from '../core/native.js';
import { dice, hd95 } from '../core/segment/metrics.js';
import { checkPrompt, deepestPoint } from '../core/segment/segmenter.js';

const disc = (w: number, h: number, cx: number, cy: number, r: number, v = 1) => {
  const m = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) m[y * w + x] = v;
  return m;
};
const count = (m: Uint8Array) => m.reduce((a, b) => a + (b ? 1 : 0), 0);

t.test('tapInput: the crop standardised, the tap a Gaussian at its place, mirrored on request, nchw or nhwc', async (t) => {
  const w = 64, h = 48, img = new Uint8Array(w * h);
  for (let i = 0; i < img.length; i++) img[i] = (i * 37) % 251;
  const S = 16, N = S * S;
  const crop = { cx: 31.5, cy: 23.5, side: 32 };
  const a = new Float32Array(2 * N);
  // Sample i sits at x0 + i*step with x0 = 16.5, y0 = 8.5, step 2: the tap (32.5, 20.5) is sample (8, 6).
  const tap = { x: 32.5, y: 20.5 };
  native.tapInput(img, w, h, crop, tap, a, { size: S, sigma: 1.5, layout: 'nchw' });
  const ch0 = Array.from(a.subarray(0, N)), ch1 = Array.from(a.subarray(N));
  const mean = ch0.reduce((x, y) => x + y, 0) / N, sd = Math.sqrt(ch0.reduce((x, y) => x + (y - mean) ** 2, 0) / N);
  t.ok(Math.abs(mean) < 1e-4, `image channel mean ${mean.toExponential(1)}`);
  // sd / (sd + 1e-3) in full-scale units: a flat crop stays finite, a textured one is about 1.
  t.ok(sd > 0.98 && sd < 1, `image channel sd ${sd.toFixed(4)}`);
  const peak = ch1.indexOf(Math.max(...ch1));
  t.same([peak % S, Math.floor(peak / S)], [8, 6], 'the heatmap peaks at the tap');
  t.ok(Math.abs(Math.max(...ch1) - 1) < 1e-6 && Math.min(...ch1) < 1e-6, 'a Gaussian: 1 at the tap, 0 far away');
  t.ok(Math.abs(ch1[6 * S + 9] - Math.exp(-1 / (2 * 1.5 * 1.5))) < 1e-6, 'one sample away: exp(-1 / 2 sigma^2)');
  const b = new Float32Array(2 * N);
  native.tapInput(img, w, h, crop, tap, b, { size: S, sigma: 1.5, layout: 'nhwc' });
  t.same(Array.from({ length: N }, (_, k) => b[2 * k]), ch0, 'nhwc interleaves the same image channel');
  const f = new Float32Array(2 * N);
  native.tapInput(img, w, h, crop, tap, f, { size: S, sigma: 1.5, layout: 'nchw', flip: true });
  let mirrored = true;
  for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) if (Math.abs(f[j * S + i] - a[j * S + (S - 1 - i)]) > 1e-5 || Math.abs(f[N + j * S + i] - b[2 * (j * S + (S - 1 - i)) + 1]) > 1e-5) mirrored = false;
  t.ok(mirrored, 'flip mirrors both channels left-right');
  // Outside the image counts as 0 (a crop hanging over the edge).
  const raw = new Float32Array(N);
  native.cropSample(new Uint8Array(w * h).fill(200), w, h, { cx: 0, cy: 0, side: 32 }, raw, { size: S });
  t.equal(raw[0], 0, 'samples off the image are 0');
  t.equal(raw[N - 1], 200, 'samples on it are the image');
  t.throws(() => native.tapInput(img, w, h, crop, { x: 1, y: 1 }, new Float32Array(10), { size: S, sigma: 1 }), /tapInput\.out must hold 2\*size\*size = 512 floats/);
  t.throws(() => native.tapInput(img, w, h, { cx: 1, cy: 1, side: 0 }, { x: 1, y: 1 }, a, { size: S, sigma: 1 }), /crop needs finite cx, cy and a side/);
  t.throws(() => native.tapInput(img, w, h, crop, { x: 1, y: 1 }, a, { size: S, sigma: 1, layout: 'chw' as 'nchw' }), /layout must be 'nchw' or 'nhwc'/);
  t.throws(() => native.tapInput(img.subarray(1), w, h, crop, { x: 1, y: 1 }, a, { size: S, sigma: 1 }), /tapInput\.src: buffer has 3071 bytes/);
});

t.test('tapMask: the region at the tap, holes filled, other regions and the rest of the crop left out', async (t) => {
  const S = 32, w = 64, h = 64, crop = { cx: 31.5, cy: 31.5, side: 64 };
  // Logits on the 32x32 grid (2 px per sample): a ring (disc with a hole) at (10,10), a blob at (24,24).
  const lg = new Float32Array(S * S).fill(-4);
  for (let j = 0; j < S; j++) {
    for (let i = 0; i < S; i++) {
      const r = Math.hypot(i - 10, j - 10);
      if (r <= 6 && r > 2) lg[j * S + i] = 4;
      if (Math.hypot(i - 24, j - 24) <= 3) lg[j * S + i] = 4;
    }
  }
  const out = new Uint8Array(w * h);
  const res = native.tapMask(lg, crop, w, h, { x: 20.5 + 8, y: 20.5 }, out, { size: S });
  t.ok(res.area > 0, `found: area ${res.area}`);
  t.equal(out[20 * w + 20], 255, 'the hole at the ring\'s centre is filled');
  t.equal(out[48 * w + 48], 0, 'the other blob is not part of it');
  t.equal(count(out), res.area, 'area counts the mask');
  t.ok(Math.abs(res.area - Math.PI * 12.5 ** 2) < 0.15 * Math.PI * 12.5 ** 2, `about a disc of radius 12.5 px (${res.area})`);
  t.ok(res.tapLogit > 0, 'the logit at the tap');
  // A tap on the background finds nothing; within snapRadius of the region it snaps to it.
  const none = native.tapMask(lg, crop, w, h, { x: 40, y: 4 }, out, { size: S });
  t.equal(none.area, 0, 'nothing at a background tap');
  t.equal(count(out), 0, 'and out is cleared');
  const snapped = native.tapMask(lg, crop, w, h, { x: 20.5 + 15, y: 20.5 }, out, { size: S, snapRadius: 4 });
  t.ok(snapped.area > 0 && snapped.atX! < 20.5 + 15, `a tap 2.5 px outside snaps to the region (started at ${snapped.atX},${snapped.atY})`);
  // A mirrored second pass is averaged in: the mirror of the same logits gives the same mask.
  const mirrored = new Float32Array(S * S);
  for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) mirrored[j * S + i] = lg[j * S + (S - 1 - i)];
  const both = new Uint8Array(w * h);
  native.tapMask(lg, crop, w, h, { x: 28.5, y: 20.5 }, both, { size: S, flipped: mirrored });
  native.tapMask(lg, crop, w, h, { x: 28.5, y: 20.5 }, out, { size: S });
  t.equal(dice(both, out), 1, 'averaging in the mirrored pass of the same logits changes nothing');
  // `within`: the mask stays inside a rectangle (a box prompt's, grown by a margin).
  const whole = native.tapMask(lg, crop, w, h, { x: 20.5, y: 12.5 }, both, { size: S });
  const cut = native.tapMask(lg, crop, w, h, { x: 20.5, y: 12.5 }, out, { size: S, within: { x0: 0, y0: 0, x1: 63, y1: 20 } });
  t.ok(cut.area > 0.3 * whole.area && cut.area < 0.7 * whole.area, `the ring cut at y = 20 keeps about its upper half (${cut.area} of ${whole.area})`);
  t.equal(cut.y1, 20, 'and reaches down to the rectangle\'s edge');
  let below = 0;
  for (let i = 21 * w; i < out.length; i++) below += out[i] ? 1 : 0;
  t.equal(below, 0, 'nothing below it');
  const roomy = native.tapMask(lg, crop, w, h, { x: 20.5, y: 12.5 }, out, { size: S, within: { x0: -5, y0: 0, x1: 40.5, y1: 63 } });
  t.equal(roomy.area, whole.area, 'a rectangle around the whole region changes nothing');
  t.equal(native.tapMask(lg, crop, w, h, { x: 28.5, y: 20.5 }, out, { size: S, within: { x0: 40, y0: 40, x1: 63, y1: 63 } }).area, 0,
    'a tap outside the rectangle finds nothing, not the blob inside it');
  t.throws(() => native.tapMask(lg, crop, w, h, { x: 1, y: 1 }, out, { size: S, within: { x0: 10, y0: 0, x1: 5, y1: 9 } }), /tapMask\.options\.within is empty/);
  t.throws(() => native.tapMask(lg, crop, w, h, { x: 1, y: 1 }, out, { size: S, within: { x0: 0, y0: 0, x1: 5 } as never }), /tapMask\.options\.within\.y1 must be a number/);
  t.throws(() => native.tapMask(new Float32Array(5), crop, w, h, { x: 1, y: 1 }, out, { size: S }), /tapMask\.logits must hold size\*size = 1024 floats/);
  t.throws(() => native.tapMask(lg, crop, w, h, { x: 1, y: 1 }, new Uint8Array(3), { size: S }), /tapMask\.out must hold width\*height bytes/);
});

t.test('maskDistance, morphMask, surfaceDistances: a disc\'s depth, grown and shrunk by a radius; Dice and HD95', async (t) => {
  const w = 80, h = 60, m = disc(w, h, 40, 30, 15);
  const d = new Float32Array(w * h);
  const deep = native.maskDistance(m, w, h, d);
  t.same([deep.x, deep.y], [40, 30], 'the deepest point is the centre');
  t.ok(Math.abs(deep.distance - 16) < 1.01, `depth ${deep.distance.toFixed(2)} (radius 15, distance to the first outside pixel)`);
  t.same(deepestPoint(m, w, h), { x: 40, y: 30, depth: deep.distance });
  t.throws(() => deepestPoint(new Uint8Array(w * h), w, h), /the mask is empty/);
  // A mask touching the image edge is 1 deep there (outside counts).
  const edge = new Uint8Array(w * h).fill(1);
  native.maskDistance(edge, w, h, d);
  t.equal(d[0], 1, 'the image border counts as outside');
  const grown = new Uint8Array(w * h), shrunk = new Uint8Array(w * h);
  const ag = native.morphMask(m, w, h, 2, grown), as = native.morphMask(m, w, h, -2, shrunk);
  // Exact Euclidean dilation and erosion; a digital disc of the new radius is within a few %.
  t.ok(Math.abs(ag - count(disc(w, h, 40, 30, 17))) <= 0.04 * ag, `grown by 2 px: ${ag} vs a disc of 17 (${count(disc(w, h, 40, 30, 17))})`);
  t.ok(Math.abs(as - count(disc(w, h, 40, 30, 13))) <= 0.04 * as, `shrunk by 2 px: ${as} vs a disc of 13 (${count(disc(w, h, 40, 30, 13))})`);
  t.equal(count(grown), ag);
  t.equal(native.morphMask(m, w, h, -40, shrunk), 0, 'shrunk past its depth: empty');
  // Dice and HD95 of two discs 4 px apart.
  const b = disc(w, h, 44, 30, 15);
  const inter = count(m.map((v, i) => v & b[i]));
  t.equal(dice(m, b), (2 * inter) / (count(m) + count(b)));
  t.equal(dice(m, m), 1);
  t.equal(dice(new Uint8Array(4), new Uint8Array(4)), 1, 'two empty masks agree');
  const hd = hd95(m, b, w, h);
  t.ok(hd >= 3 && hd <= 4.5, `HD95 of two discs 4 px apart: ${hd.toFixed(2)}`);
  t.equal(hd95(m, m, w, h), 0);
  t.equal(hd95(m, new Uint8Array(w * h), w, h), Infinity, 'against an empty mask: infinite');
});

t.test('prompts off the image or empty boxes are refused by name', async (t) => {
  t.throws(() => checkPrompt({ seed: { x: 100, y: 5 } }, 100, 80), /the seed \(100, 5\) lies outside the 100x80 image \(x 0\.\.99, y 0\.\.79\)/);
  t.throws(() => checkPrompt({ seed: { x: -1, y: 5 } }, 100, 80), /outside/);
  t.throws(() => checkPrompt({ seed: { x: NaN, y: 5 } }, 100, 80), /outside/);
  t.throws(() => checkPrompt({ box: { x0: 10, y0: 10, x1: 10, y1: 20 } }, 100, 80), /the box \(10,10\)-\(10,20\) is empty/);
  t.throws(() => checkPrompt({ box: { x0: 150, y0: 10, x1: 190, y1: 20 } }, 100, 80), /lies outside the 100x80 image/);
  t.doesNotThrow(() => checkPrompt({ box: { x0: -5, y0: 10, x1: 30, y1: 20 } }, 100, 80), 'a box partly off the image is fine');
  t.doesNotThrow(() => checkPrompt({ seed: { x: 99, y: 79 } }, 100, 80));
});
