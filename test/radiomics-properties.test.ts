// Properties of the radiomics engine that hold whatever the reference data: symmetry, translation
// and spacing behaviour, small images computed by hand and by a plain JavaScript reference
// (test/radiomics-reference.ts, itself checked here against PyRadiomics' numbers), PyRadiomics'
// edge-case conventions, and bad input (an error that names the problem, never a crash).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { native } from '../core/native.js';
import { seededRandom } from '../core/random.js';
import {
  ALL_FEATURE_NAMES, RadiomicsError, extractFeatures, extractRegions, extractRegionsAsync, resolveRadiomicsSettings,
  type FeatureVector, type RadiomicsSettings,
} from '../core/radiomics.js';
import { readPgm, sharedDir } from './helpers.js';
import { discretise, referenceFeatures } from './radiomics-reference.js';

interface Img { data: Uint8Array; w: number; h: number }
interface Case { img: Img; mask: Img }

const transpose = (a: Img): Img => {
  const out = new Uint8Array(a.data.length);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) out[x * a.h + y] = a.data[y * a.w + x];
  return { data: out, w: a.h, h: a.w };
};
const flipH = (a: Img): Img => {
  const out = new Uint8Array(a.data.length);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) out[y * a.w + (a.w - 1 - x)] = a.data[y * a.w + x];
  return { data: out, w: a.w, h: a.h };
};
const flipV = (a: Img): Img => {
  const out = new Uint8Array(a.data.length);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) out[(a.h - 1 - y) * a.w + x] = a.data[y * a.w + x];
  return { data: out, w: a.w, h: a.h };
};
/** 90 degrees clockwise: (x, y) -> (h - 1 - y, x). */
const rot90 = (a: Img): Img => {
  const out = new Uint8Array(a.data.length);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) out[x * a.h + (a.h - 1 - y)] = a.data[y * a.w + x];
  return { data: out, w: a.h, h: a.w };
};
const TRANSFORMS: Array<[string, (a: Img) => Img]> = [['transpose', transpose], ['flip horizontally', flipH], ['flip vertically', flipV], ['rotate 90', rot90]];

const run = (c: Case, s: RadiomicsSettings = {}) => extractFeatures(c.img.data, c.img.w, c.img.h, c.mask.data, s);

/** Pixels from rows of numbers (one string per row, numbers separated by spaces). */
function fromRows(rows: string[]): Img {
  const cells = rows.map((r) => r.trim().split(/\s+/).map(Number));
  return { data: Uint8Array.from(cells.flat()), w: cells[0].length, h: cells.length };
}

/** A blocky random texture under an irregular mask: a union of ellipses, rough edges, maybe a hole. */
function randomCase(rnd: () => number, w: number, h: number): Case {
  const cell = 2 + Math.floor(rnd() * 3), gw = Math.ceil(w / cell) + 1;
  const coarse = Array.from({ length: gw * (Math.ceil(h / cell) + 1) }, () => 30 + rnd() * 190);
  const img = new Uint8Array(w * h), mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
    img[y * w + x] = Math.max(0, Math.min(255, Math.round(coarse[Math.floor(y / cell) * gw + Math.floor(x / cell)] + (rnd() - 0.5) * 40)));
  const blobs = 1 + Math.floor(rnd() * 3);
  for (let b = 0; b < blobs; b++) {
    const cx = w * (0.2 + 0.6 * rnd()), cy = h * (0.2 + 0.6 * rnd()), rx = 2 + rnd() * w * 0.3, ry = 2 + rnd() * h * 0.3;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) mask[y * w + x] = 1;
  }
  if (rnd() < 0.5) { // a hole
    const cx = w * (0.3 + 0.4 * rnd()), cy = h * (0.3 + 0.4 * rnd());
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= 4) mask[y * w + x] = 0;
  }
  for (let i = 0; i < mask.length; i++) if (mask[i] && rnd() < 0.06) mask[i] = 0; // rough edges, diagonal-only contacts
  for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) mask[(Math.floor(h / 2) + y) * w + Math.floor(w / 2) + x] = 1; // never empty
  return { img: { data: img, w, h }, mask: { data: mask, w, h } };
}

const near = (a: number, b: number, rel = 1e-9) => (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));

/** Features where a and b differ, as "name: a vs b" lines (empty when all agree). */
function differing(a: FeatureVector, b: FeatureVector, names: readonly string[] = Object.keys(a), rel = 1e-9): string[] {
  return names.filter((k) => !near(a[k], b[k], rel)).map((k) => `${k}: ${a[k]} vs ${b[k]}`);
}

/** The mask's bounding-box crop of a case. */
function cropToRoi(c: Case): Case {
  let x0 = c.mask.w, x1 = -1, y0 = c.mask.h, y1 = -1;
  for (let i = 0; i < c.mask.data.length; i++) if (c.mask.data[i]) {
    const x = i % c.mask.w, y = Math.floor(i / c.mask.w);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const w = x1 - x0 + 1, h = y1 - y0 + 1, img = new Uint8Array(w * h), mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { img[y * w + x] = c.img.data[(y0 + y) * c.img.w + x0 + x]; mask[y * w + x] = c.mask.data[(y0 + y) * c.img.w + x0 + x]; }
  return { img: { data: img, w, h }, mask: { data: mask, w, h } };
}

/** The case pasted at (ox, oy) into a W x H frame of random pixels outside the mask. */
function embed(c: Case, W: number, H: number, ox: number, oy: number, rnd: () => number): Case {
  const img = Uint8Array.from({ length: W * H }, () => Math.floor(rnd() * 256)), mask = new Uint8Array(W * H);
  for (let y = 0; y < c.img.h; y++) for (let x = 0; x < c.img.w; x++) {
    img[(oy + y) * W + ox + x] = c.img.data[y * c.img.w + x];
    mask[(oy + y) * W + ox + x] = c.mask.data[y * c.img.w + x];
  }
  return { img: { data: img, w: W, h: H }, mask: { data: mask, w: W, h: H } };
}

const refOf = (c: Case, s: { binWidth?: number; binCount?: number }) => referenceFeatures(discretise(c.img.data, c.mask.data, c.img.w, c.img.h, s));

// ---------------------------------------------------------------------------------------------
// The JavaScript reference itself, against PyRadiomics' numbers.

t.test('the JavaScript reference reproduces PyRadiomics (reference frames and IBSI phantom slices)', async (t) => {
  const dir = sharedDir(t, 'radiomics-ref');
  if (dir) {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { cases: Array<{ name: string; image: string; mask: string }> };
    for (const c of manifest.cases.slice(0, 4)) { // the four smaller frames keep this quick
      const img = readPgm(join(dir, c.image)), mask = readPgm(join(dir, c.mask));
      for (const [key, s] of [['bw25', { binWidth: 25 }], ['bc32', { binCount: 32 }]] as const) {
        const ref = JSON.parse(readFileSync(join(dir, `${c.name}_${key}.json`), 'utf8')) as Record<string, number>;
        const js = referenceFeatures(discretise(img.data, mask.data, img.width, img.height, s));
        t.same(differing(js, ref, Object.keys(js), 1e-12), [], `${c.name} ${key}: JS reference = PyRadiomics`);
      }
    }
  }
  const ibsi = sharedDir(t, 'ibsi');
  if (ibsi) {
    const ph = JSON.parse(readFileSync(join(ibsi, 'digital_phantom', 'phantom.json'), 'utf8')) as { image: number[][][]; mask: number[][][] };
    const raw = JSON.parse(readFileSync(join(ibsi, 'pyradiomics_vs_ibsi_phantom_pyradiomics_raw.json'), 'utf8')) as Record<string, Record<string, number>>;
    const avg: Record<string, number> = {};
    for (let z = 0; z < 4; z++) {
      const f = referenceFeatures(discretise(ph.image[z].flat(), ph.mask[z].flat(), 5, 4, { binWidth: 1 }));
      for (const [k, v] of Object.entries(f)) avg[k] = (avg[k] ?? 0) + v / 4;
    }
    t.same(differing(avg, raw['2D'], Object.keys(avg), 1e-12), [], 'IBSI phantom per-slice average: JS reference = PyRadiomics');
  }
});

// ---------------------------------------------------------------------------------------------
// Small images by hand.

// Levels 1 | 2 in two 2-pixel-wide halves (binWidth 1 maps 100 -> 1, 101 -> 2):
//   GLCM  0 deg: 12 pairs per direction, p(1,1) = p(2,2) = 1/3, p(1,2) = p(2,1) = 1/6 -> energy 5/18, contrast 1/3
//        90 deg: p(1,1) = p(2,2) = 1/2                                                -> energy 1/2,  contrast 0
//    45/135 deg: as 0 deg                                                              -> energy 5/18, contrast 1/3
//        mean: JointEnergy (3 * 5/18 + 1/2) / 4 = 1/3, Contrast (3 * 1/3) / 4 = 1/4
//   GLRLM  0 deg: 8 runs of 2; 90 deg: 4 runs of 4; 45 and 135 deg: 10 runs, 4 of length 1 and 6 of length 2
//        SRE (8/4/8 + 4/16/4 + 2 * (4 + 6/4)/10) / 4 = (0.25 + 0.0625 + 0.55 + 0.55) / 4 = 0.353125
//        RP  (8/16 + 4/16 + 2 * 10/16) / 4 = 0.5
//   GLSZM: two zones of 8 -> ZonePercentage 2/16, SmallAreaEmphasis (1/64 + 1/64) / 2 = 1/64
//   GLDM (a = 0): 8 pixels with 3 equal neighbours (dependence 4), 8 with 5 (dependence 6)
//        DependenceNonUniformity (8^2 + 8^2) / 16 = 8, SmallDependenceEmphasis (8/16 + 8/36) / 16 = 13/288
//   NGTDM: the outer columns see only their own level (s = 0); an inner-column pixel differs from its
//        neighbourhood mean by 2/5 (top and bottom rows: 5 neighbours, 2 of the other level) or 3/8
//        (middle rows): s_1 = s_2 = 2 * 0.4 + 2 * 0.375 = 1.55, p_1 = p_2 = 1/2
//        Coarseness 1 / (0.5 * 1.55 + 0.5 * 1.55) = 1/1.55, Strength (1 + 1) * 1^2 / 3.1 = 2/3.1
const HALVES = fromRows(['100 100 101 101', '100 100 101 101', '100 100 101 101', '100 100 101 101']);
const HALVES_EXPECTED: Record<string, number> = {
  glcm_JointEnergy: 1 / 3, glcm_Contrast: 1 / 4, glcm_JointAverage: 1.5,
  glrlm_ShortRunEmphasis: 0.353125, glrlm_RunPercentage: 0.5,
  glszm_ZonePercentage: 0.125, glszm_SmallAreaEmphasis: 1 / 64,
  gldm_DependenceNonUniformity: 8, gldm_SmallDependenceEmphasis: 13 / 288,
  ngtdm_Coarseness: 1 / 1.55, ngtdm_Strength: 2 / 3.1,
};

t.test('a 4x4 two-level image computed by hand', async (t) => {
  const c: Case = { img: HALVES, mask: { data: new Uint8Array(16).fill(1), w: 4, h: 4 } };
  t.same(differing(refOf(c, { binWidth: 1 }), HALVES_EXPECTED, Object.keys(HALVES_EXPECTED), 1e-12), [], 'the JS reference agrees with the hand computation');
  const f = run(c, { binWidth: 1 });
  t.same(differing(f, HALVES_EXPECTED, Object.keys(HALVES_EXPECTED), 1e-12), [], 'the engine agrees with the hand computation');
  // Inside a larger frame, away from the edge, the same numbers.
  const big = embed(c, 11, 9, 5, 3, seededRandom(3));
  t.same(differing(run(big, { binWidth: 1 }), HALVES_EXPECTED, Object.keys(HALVES_EXPECTED), 1e-12), [], 'same inside an 11x9 frame');
});

t.test('empty bins: binWidth 1 on values {10, 50} gives levels 1 and 41', async (t) => {
  const img = fromRows(['10 10 50 50', '10 10 50 50', '10 10 50 50', '10 10 50 50']);
  const c: Case = { img, mask: { data: new Uint8Array(16).fill(1), w: 4, h: 4 } };
  const f = run(c, { binWidth: 1 });
  // As the halves image with a level step of 40 instead of 1: squared differences x1600, s_i x40.
  const want: Record<string, number> = {
    glcm_Contrast: 1600 / 4, glcm_JointAverage: 21, glcm_JointEnergy: 1 / 3,
    firstorder_Entropy: 1, firstorder_Uniformity: 0.5, firstorder_Mean: 30, firstorder_Range: 40,
    glrlm_ShortRunEmphasis: 0.353125, glrlm_RunPercentage: 0.5, glszm_ZonePercentage: 0.125,
    ngtdm_Coarseness: 1 / 62, ngtdm_Strength: 3200 / 124,
  };
  t.same(differing(f, want, Object.keys(want), 1e-12), [], 'hand values with the empty levels 2..40 in between');
  const ref = refOf(c, { binWidth: 1 });
  t.same(differing(f, ref, Object.keys(ref), 1e-12), [], 'engine = JS reference');
  // Spread the two values over a random region: still the JS reference.
  const rnd = seededRandom(50);
  const r = randomCase(rnd, 15, 12);
  for (let i = 0; i < r.img.data.length; i++) r.img.data[i] = rnd() < 0.5 ? 10 : 50;
  const fr = run(r, { binWidth: 1 }), rr = refOf(r, { binWidth: 1 });
  t.same(differing(fr, rr, Object.keys(rr), 1e-12), [], 'random {10, 50} region: engine = JS reference');
});

t.test('random small regions: engine = JS reference (9 features and more, several binnings)', async (t) => {
  const rnd = seededRandom(21);
  const binnings: Array<{ binWidth?: number; binCount?: number }> = [{ binWidth: 1 }, { binWidth: 25 }, { binCount: 8 }, { binCount: 32 }];
  for (let trial = 0; trial < 24; trial++) {
    const w = 6 + Math.floor(rnd() * 20), h = 6 + Math.floor(rnd() * 20);
    const c = randomCase(rnd, w, h);
    if (trial % 3 === 0) for (let i = 0; i < c.img.data.length; i++) c.img.data[i] = 100 + Math.floor(rnd() * 5); // few levels, many ties
    const b = binnings[trial % binnings.length];
    const ref = refOf(c, b), ours = run(c, b);
    t.same(differing(ours, ref, Object.keys(ref), 1e-10), [], `trial ${trial} (${w}x${h}, ${JSON.stringify(b)}): engine = JS reference`);
  }
});

t.test('a mask with a hole and a mask with two components', async (t) => {
  // 8x8 square with a 2x2 hole. Marching squares: a k x k block has mesh area k^2 - 1/2 and
  // perimeter 4(k - 1) + 2 sqrt 2, and so has a k x k hole: area 63.5 - 3.5 = 60, perimeter 28 + 4 + 4 sqrt 2.
  const w = 12, h = 11, rnd = seededRandom(8);
  const img = Uint8Array.from({ length: w * h }, () => 40 + Math.floor(rnd() * 150));
  const ring = new Uint8Array(w * h);
  for (let y = 2; y < 10; y++) for (let x = 2; x < 10; x++) ring[y * w + x] = 1;
  for (let y = 5; y < 7; y++) for (let x = 5; x < 7; x++) ring[y * w + x] = 0;
  const c: Case = { img: { data: img, w, h }, mask: { data: ring, w, h } };
  const f = run(c, { binWidth: 10 });
  t.equal(f.shape2D_PixelSurface, 60, 'hole: PixelSurface 60');
  t.ok(near(f.shape2D_MeshSurface, 60, 1e-12), `hole: MeshSurface ${f.shape2D_MeshSurface} = 60`);
  t.ok(near(f.shape2D_Perimeter, 32 + 4 * Math.SQRT2, 1e-12), `hole: Perimeter ${f.shape2D_Perimeter} = 32 + 4 sqrt 2`);
  const ref = refOf(c, { binWidth: 10 });
  t.same(differing(f, ref, Object.keys(ref), 1e-10), [], 'hole: engine = JS reference');

  // Two components, one of them a single isolated pixel (no neighbours: n_i counts it, s_i gets 0).
  const two = new Uint8Array(w * h);
  for (let y = 1; y < 5; y++) for (let x = 1; x < 6; x++) two[y * w + x] = 1;
  for (let y = 6; y < 10; y++) for (let x = 7; x < 11; x++) two[y * w + x] = 1;
  two[9 * w + 2] = 1;
  const c2: Case = { img: { data: img, w, h }, mask: { data: two, w, h } };
  const f2 = run(c2, { binWidth: 10 });
  t.equal(f2.shape2D_PixelSurface, 37, 'two components (+1 isolated pixel): PixelSurface 37');
  // Mesh areas add: 4x5 block 19.5, 4x4 block 15.5, lone pixel 0.5.
  t.ok(near(f2.shape2D_MeshSurface, 35.5, 1e-12), `two components: MeshSurface ${f2.shape2D_MeshSurface} = 35.5`);
  const ref2 = refOf(c2, { binWidth: 10 });
  t.same(differing(f2, ref2, Object.keys(ref2), 1e-10), [], 'two components: engine = JS reference');
});

// ---------------------------------------------------------------------------------------------
// Symmetry and translation.

t.test('transposing, flipping and rotating by 90 degrees change no feature', async (t) => {
  const rnd = seededRandom(1234);
  const settings: RadiomicsSettings[] = [{ binWidth: 25 }, { binCount: 16 }, { binWidth: 10, distances: [1, 2] }, { binCount: 8, gldm_a: 1 }];
  for (let trial = 0; trial < 8; trial++) {
    const c = randomCase(rnd, 37, 29);
    const s = settings[trial % settings.length];
    const base = run(c, s);
    for (const [name, f] of TRANSFORMS) {
      const moved = run({ img: f(c.img), mask: f(c.mask) }, s);
      // Every class: firstorder, shape2D (equal spacing), glszm, gldm, ngtdm, and glcm/glrlm because the
      // four angles are averaged and the angle set maps onto itself (opposite directions count alike).
      t.same(differing(moved, base, ALL_FEATURE_NAMES), [], `trial ${trial} ${JSON.stringify(s)}: ${name}`);
    }
  }
  // Anisotropic spacing: transposing swaps the axes, so swapping spacingX and spacingY keeps the shape.
  const c = randomCase(rnd, 31, 23);
  const a = run(c, { spacingX: 0.2, spacingY: 0.35 }), b = run({ img: transpose(c.img), mask: transpose(c.mask) }, { spacingX: 0.35, spacingY: 0.2 });
  t.same(differing(b, a, ALL_FEATURE_NAMES), [], 'transpose with swapped anisotropic spacing');

  // symmetricalGLCM false: a symmetry turns some angles' GLCM into its transpose, which swaps the row
  // and column marginals. Only JointAverage (mu_x) and SumSquares (sigma_x^2) read one marginal alone.
  const asym: RadiomicsSettings = { binWidth: 25, symmetricalGLCM: false };
  const rowMarginal = ['glcm_JointAverage', 'glcm_SumSquares'];
  for (let trial = 0; trial < 3; trial++) {
    const r = randomCase(rnd, 33, 27);
    const base = run(r, asym);
    for (const [name, f] of TRANSFORMS) {
      const moved = run({ img: f(r.img), mask: f(r.mask) }, asym);
      t.same(differing(moved, base, ALL_FEATURE_NAMES.filter((k) => !rowMarginal.includes(k))), [],
        `asymmetric GLCM, trial ${trial}, ${name}: everything but JointAverage and SumSquares unchanged`);
    }
    t.ok(TRANSFORMS.some(([, f]) => differing(run({ img: f(r.img), mask: f(r.mask) }, asym), base, rowMarginal).length > 0),
      `asymmetric GLCM, trial ${trial}: JointAverage/SumSquares do move under some symmetry (the setting takes effect)`);
  }
});

t.test('moving the ROI inside a larger frame, up to the frame edges, changes nothing', async (t) => {
  const rnd = seededRandom(77);
  for (let trial = 0; trial < 4; trial++) {
    const c = cropToRoi(randomCase(rnd, 30, 24)); // the ROI touches all four sides of its crop
    const s: RadiomicsSettings = trial % 2 ? { binCount: 16 } : { binWidth: 25 };
    const base = run(c, s);
    const W = c.img.w + 17, H = c.img.h + 11;
    const offsets: Array<[number, number]> = [[0, 0], [W - c.img.w, H - c.img.h], [0, H - c.img.h], [W - c.img.w, 0], [9, 5]];
    for (const [ox, oy] of offsets) {
      const moved = run(embed(c, W, H, ox, oy, rnd), s);
      t.same(differing(moved, base, ALL_FEATURE_NAMES), [], `trial ${trial}: ROI at (${ox}, ${oy}) in ${W}x${H}`);
    }
    // As a pane of a larger frame (extractRegions with a pane rectangle and pane-sized codes).
    const frameW = c.img.w + 20, frameH = c.img.h + 7, framed = embed(c, frameW, frameH, 13, 4, rnd);
    const codes = Uint8Array.from(c.mask.data, (v) => (v ? 1 : 0));
    const [res] = extractRegions(framed.img.data, frameW, frameH, [{ x: 13, y: 4, width: c.img.w, height: c.img.h }], codes, 0, s);
    t.equal(res.error, null);
    t.same(differing(res.features!, base, ALL_FEATURE_NAMES), [], `trial ${trial}: as a pane at (13, 4)`);
  }
});

t.test('rings and panes: each region equals extractFeatures on its own mask; async equals sync', async (t) => {
  const rnd = seededRandom(99);
  const w = 24, h = 20, W = 2 * w + 6, H = h + 3;
  const frame = Uint8Array.from({ length: W * H }, () => Math.floor(rnd() * 256));
  const codes = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const d = Math.hypot(x - 11.5, y - 9.5);
    codes[y * w + x] = d <= 4 ? 1 : d <= 6 ? 2 : d <= 8 ? 3 : 0;
  }
  const panes = [{ x: 0, y: 1, width: w, height: h }, { x: w + 6, y: 3, width: w, height: h }];
  const settings: RadiomicsSettings = { binCount: 16 };
  const res = extractRegions(frame, W, H, panes, codes, 2, settings);
  t.equal(res.length, 6, 'per pane: lesion, ring 0, ring 1');
  for (let p = 0; p < panes.length; p++) {
    const pane = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) pane[y * w + x] = frame[(panes[p].y + y) * W + panes[p].x + x];
    const masks = [codes.map((c) => (c === 1 ? 1 : 0)), codes.map((c) => (c === 2 ? 1 : 0)), codes.map((c) => (c >= 2 && c <= 3 ? 1 : 0))];
    for (let r = 0; r < 3; r++) {
      const want = extractFeatures(pane, w, h, masks[r], settings);
      t.same(differing(res[p * 3 + r].features!, want, ALL_FEATURE_NAMES), [], `pane ${p} region ${r}`);
    }
  }
  const asyncRes = await extractRegionsAsync(frame, W, H, panes, codes, 2, settings);
  t.same(asyncRes.map((r) => r.error), res.map((r) => r.error), 'async: same errors');
  t.ok(asyncRes.every((r, i) => differing(r.features!, res[i].features!, ALL_FEATURE_NAMES, 0).length === 0), 'async: same values');
});

// ---------------------------------------------------------------------------------------------
// Spacing.

t.test('spacing: shape scales, texture and first order do not', async (t) => {
  // A 10x10 square at spacing 1, by hand: mesh area 100 - 1/2, perimeter 4 * 9 + 2 sqrt 2, diameter
  // between opposite edge midpoints sqrt(10^2 + 9^2), axis lengths 4 sqrt(var) with var = (10^2 - 1) / 12.
  const w = 16, h = 14, rnd = seededRandom(4);
  const img = Uint8Array.from({ length: w * h }, () => 50 + Math.floor(rnd() * 120));
  const sq = new Uint8Array(w * h);
  for (let y = 2; y < 12; y++) for (let x = 3; x < 13; x++) sq[y * w + x] = 1;
  const c: Case = { img: { data: img, w, h }, mask: { data: sq, w, h } };
  const one = run(c);
  const hand: Record<string, number> = {
    shape2D_MeshSurface: 99.5, shape2D_PixelSurface: 100, shape2D_Perimeter: 36 + 2 * Math.SQRT2,
    shape2D_PerimeterSurfaceRatio: (36 + 2 * Math.SQRT2) / 99.5, shape2D_Sphericity: (2 * Math.sqrt(Math.PI * 99.5)) / (36 + 2 * Math.SQRT2),
    shape2D_MaximumDiameter: Math.sqrt(181), shape2D_MajorAxisLength: 4 * Math.sqrt(99 / 12), shape2D_MinorAxisLength: 4 * Math.sqrt(99 / 12),
    shape2D_Elongation: 1,
  };
  t.same(differing(one, hand, Object.keys(hand), 1e-12), [], '10x10 square by hand');
  const s = 0.3, scaled = run(c, { spacingX: s, spacingY: s });
  const lin = ['shape2D_Perimeter', 'shape2D_MaximumDiameter', 'shape2D_MajorAxisLength', 'shape2D_MinorAxisLength'];
  for (const k of lin) t.ok(near(scaled[k], one[k] * s, 1e-12), `${k} scales linearly: ${scaled[k]} = ${one[k]} * ${s}`);
  for (const k of ['shape2D_MeshSurface', 'shape2D_PixelSurface']) t.ok(near(scaled[k], one[k] * s * s, 1e-12), `${k} scales with the pixel area`);
  t.ok(near(scaled.shape2D_PerimeterSurfaceRatio, one.shape2D_PerimeterSurfaceRatio / s, 1e-12), 'PerimeterSurfaceRatio scales with 1/spacing');
  for (const k of ['shape2D_Sphericity', 'shape2D_Elongation']) t.ok(near(scaled[k], one[k], 1e-12), `${k} does not depend on equal spacing`);

  // Anisotropic spacing, irregular region: areas scale with spacingX * spacingY; nothing but shape and TotalEnergy moves.
  for (let trial = 0; trial < 3; trial++) {
    const r = randomCase(rnd, 29, 21);
    const sx = 0.1 + rnd(), sy = 0.1 + rnd();
    const a = run(r, { binWidth: 20 }), b = run(r, { binWidth: 20, spacingX: sx, spacingY: sy });
    for (const k of ['shape2D_MeshSurface', 'shape2D_PixelSurface', 'firstorder_TotalEnergy'])
      t.ok(near(b[k], a[k] * sx * sy, 1e-12), `trial ${trial}: ${k} ${b[k]} = ${a[k]} * ${sx.toFixed(3)} * ${sy.toFixed(3)}`);
    const spacingFree = ALL_FEATURE_NAMES.filter((k) => !k.startsWith('shape2D_') && k !== 'firstorder_TotalEnergy');
    t.same(differing(b, a, spacingFree, 1e-12), [], `trial ${trial}: texture and first order do not depend on spacing`);
  }
});

// ---------------------------------------------------------------------------------------------
// Edge cases, with PyRadiomics' conventions.

t.test('flat region: PyRadiomics conventions', async (t) => {
  const w = 9, h = 8, img = new Uint8Array(w * h).fill(77), mask = new Uint8Array(w * h);
  for (let y = 1; y < 7; y++) for (let x = 1; x < 8; x++) if ((x + y) % 5) mask[y * w + x] = 1;
  for (const s of [{ binWidth: 25 }, { binCount: 32 }] as RadiomicsSettings[]) {
    const f = extractFeatures(img, w, h, mask, s);
    const np = mask.reduce((n, v) => n + v, 0);
    const want: Record<string, number> = {
      // glcm docs: Correlation 1 and Imc1 0 when sigma/HX, HY are 0; Imc2 0 when HXY2 = HXY; MCC 1 for a 1x1 GLCM.
      glcm_Correlation: 1, glcm_Imc1: 0, glcm_Imc2: 0, glcm_MCC: 1, glcm_JointEnergy: 1, glcm_Contrast: 0, glcm_JointEntropy: 0,
      glcm_Idmn: 1, glcm_MaximumProbability: 1,
      // ngtdm docs: Coarseness 10^6 when sum p_i s_i = 0; Contrast 0 when N_gp = 1; Busyness 0; Strength 0 when sum s_i = 0.
      ngtdm_Coarseness: 1e6, ngtdm_Contrast: 0, ngtdm_Busyness: 0, ngtdm_Strength: 0, ngtdm_Complexity: 0,
      // firstorder docs: Skewness and Kurtosis 0 when the standard deviation is 0.
      firstorder_Skewness: 0, firstorder_Kurtosis: 0, firstorder_Variance: 0, firstorder_Range: 0, firstorder_Uniformity: 1,
      firstorder_Mean: 77, firstorder_Median: 77,
      glrlm_GrayLevelNonUniformityNormalized: 1, glrlm_GrayLevelVariance: 0,
      glszm_GrayLevelNonUniformityNormalized: 1, gldm_GrayLevelVariance: 0,
    };
    t.same(differing(f, want, Object.keys(want), 1e-12), [], `flat ${JSON.stringify(s)}: conventions`);
    t.ok(Math.abs(f.firstorder_Entropy) < 1e-12, `flat: Entropy ${f.firstorder_Entropy} is 0 up to PyRadiomics' eps`);
    t.ok(ALL_FEATURE_NAMES.every((k) => Number.isFinite(f[k])), `flat ${JSON.stringify(s)}: every feature finite`);
    const ref = refOf({ img: { data: img, w, h }, mask: { data: mask, w, h } }, s as { binWidth?: number; binCount?: number });
    t.same(differing(f, ref, Object.keys(ref), 1e-12), [], 'flat: engine = JS reference (zones, runs, dependences)');
    t.equal(f.shape2D_PixelSurface, np, 'flat: PixelSurface is the pixel count');
  }
});

t.test('a one-pixel ROI is refused', async (t) => {
  const w = 8, h = 8, img = Uint8Array.from({ length: 64 }, (_, i) => i), mask = new Uint8Array(64);
  mask[27] = 1;
  t.throws(() => extractFeatures(img, w, h, mask), { name: 'RadiomicsError', message: /single|\b1 segmented pixel/i }, 'extractFeatures throws');
  const [r] = extractRegions(img, w, h, [{ x: 0, y: 0, width: w, height: h }], mask, 0);
  t.equal(r.features, null, 'extractRegions: no features');
  t.match(r.error, /single|\b1 segmented pixel/i, 'extractRegions: the reason');
});

t.test('a one-row ROI: refused by default, computed with minimumROIDimensions 1', async (t) => {
  const w = 10, h = 5, rnd = seededRandom(61);
  const img = Uint8Array.from({ length: w * h }, () => 60 + Math.floor(rnd() * 100));
  const mask = new Uint8Array(w * h);
  for (let x = 2; x < 9; x++) mask[2 * w + x] = 1;
  t.throws(() => extractFeatures(img, w, h, mask), { name: 'RadiomicsError', message: /dimension/i }, 'default minimumROIDimensions 2 refuses it');
  const f = extractFeatures(img, w, h, mask, { minimumROIDimensions: 1, binWidth: 10 });
  const fo = ALL_FEATURE_NAMES.filter((k) => k.startsWith('firstorder_') || k.startsWith('glrlm_'));
  t.same(fo.filter((k) => !Number.isFinite(f[k])), [], 'every first-order and GLRLM feature is finite');
  // Only the horizontal angle has a line with two or more pixels: GLRLM/GLCM use that angle alone.
  const ref = refOf({ img: { data: img, w, h }, mask: { data: mask, w, h } }, { binWidth: 10 });
  t.same(differing(f, ref, Object.keys(ref), 1e-12), [], 'engine = JS reference (horizontal angle only)');
  const col = transpose({ data: mask, w, h });
  const fc = extractFeatures(transpose({ data: img, w, h }).data, h, w, col.data, { minimumROIDimensions: 1, binWidth: 10 });
  t.same(differing(fc, f, fo), [], 'a one-column ROI gives the same first-order and GLRLM values');
});

// ---------------------------------------------------------------------------------------------
// Bad input.

t.test('bad input: an error that names the problem, and the next call still works', async (t) => {
  const w = 8, h = 6, rnd = seededRandom(5);
  const img = Uint8Array.from({ length: w * h }, () => Math.floor(rnd() * 256));
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 5; y++) for (let x = 1; x < 7; x++) mask[y * w + x] = 1;
  const good = extractFeatures(img, w, h, mask);
  const stillWorks = (what: string) => t.same(differing(extractFeatures(img, w, h, mask), good, ALL_FEATURE_NAMES, 0), [], `after ${what}: a valid call works`);
  const X = extractFeatures as unknown as (...a: unknown[]) => FeatureVector;

  t.throws(() => extractFeatures(new Uint8Array(w * h - 1), w, h, mask), /image.*\b47\b.*\b48\b|\b48\b.*\b47\b/, 'image one byte short: names both sizes');
  stillWorks('a short image');
  t.throws(() => extractFeatures(img, w, h, new Uint8Array(w * h + 3)), { name: 'RadiomicsError', message: /mask.*48/ }, 'mask of the wrong size');
  t.throws(() => extractFeatures(img, w + 1, h, mask), /48|54/, 'width that does not match the buffers');
  t.throws(() => X(new Float32Array(w * h), w, h, mask), { name: 'TypeError', message: /Uint8Array/ }, 'Float32Array image');
  stillWorks('a Float32Array image');
  t.throws(() => X(Array.from(img), w, h, mask), { name: 'TypeError', message: /Uint8Array/ }, 'plain array image');
  t.throws(() => X(img, w, h, Array.from(mask)), { name: 'RadiomicsError', message: /mask.*Uint8Array/ }, 'plain array mask');
  t.throws(() => extractFeatures(img, w, h, new Uint8Array(w * h)), { name: 'RadiomicsError', message: /no segmented|empty|0 segmented|no pixel/i }, 'empty mask');
  stillWorks('an empty mask');

  const badSettings: Array<[string, RadiomicsSettings | Record<string, unknown>]> = [
    ['binWidth', { binWidth: NaN }], ['binWidth', { binWidth: Infinity }], ['binWidth', { binWidth: 0 }], ['binWidth', { binWidth: -1 }],
    ['binCount', { binCount: 0 }], ['binCount', { binCount: 1.5 }], ['distances', { distances: [] }], ['distances', { distances: [0] }],
    ['spacingX', { spacingX: 0 }], ['gldm_a', { gldm_a: -1 }], ['minimumROIDimensions', { minimumROIDimensions: 3 }],
    ['symmetricalGLCM', { symmetricalGLCM: 'yes' }], ['binwidth', { binwidth: 5 }],
  ];
  for (const [key, s] of badSettings) {
    let err: unknown;
    try { extractFeatures(img, w, h, mask, s as RadiomicsSettings); } catch (e) { err = e; }
    t.ok(err instanceof RadiomicsError, `${JSON.stringify(s, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}: a RadiomicsError`);
    t.match((err as Error)?.message, new RegExp(key), `message names ${key}: ${(err as Error)?.message}`);
    t.match((err as RadiomicsError)?.key, new RegExp(`^${key}`), 'error.key names the setting');
    t.throws(() => resolveRadiomicsSettings(s as RadiomicsSettings), RadiomicsError, 'resolveRadiomicsSettings refuses it too');
  }
  stillWorks('bad settings');
  t.equal(extractFeatures(img, w, h, mask, { minimumROISize: 24 }).shape2D_PixelSurface, 24, 'minimumROISize equal to the ROI size passes');
  t.throws(() => extractFeatures(img, w, h, mask, { minimumROISize: 25 }), { name: 'RadiomicsError', message: /24|25|size/ }, 'minimumROISize above the ROI size refuses it');
});

t.test('native.radiomics with garbage arguments throws TypeError/RangeError, never crashes', async (t) => {
  const w = 8, h = 8, img = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256);
  const codes = new Uint8Array(64);
  for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) codes[y * w + x] = 1;
  const R = { x: 0, y: 0, width: w, height: h };
  const S = { binWidth: 25, binCount: 0, distances: [1], symmetricalGLCM: true, gldm_a: 0, voxelArrayShift: 0, minimumROIDimensions: 2,
    minimumROISize: 0, spacingX: 1, spacingY: 1, ibsi: false, classes: [0, 1, 2, 3, 4, 5, 6] };
  const N = native.radiomics as unknown as (...a: unknown[]) => { values: Float64Array; errors: Array<string | null> };
  const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
    ['no arguments', () => N(), TypeError, /radiomics\(/],
    ['too few arguments', () => N(img, w, h, [R], codes, 0), TypeError, /radiomics\(/],
    ['image not a buffer', () => N('pixels', w, h, [R], codes, 0, S), TypeError, /image/],
    ['Float32Array image', () => N(new Float32Array(64), w, h, [R], codes, 0, S), TypeError, /image/],
    ['image size', () => N(img, w, h + 1, [R], codes, 0, S), RangeError, /image/],
    ['negative width', () => N(img, -w, h, [R], codes, 0, S), RangeError, /width/],
    ['panes not an array', () => N(img, w, h, 'all', codes, 0, S), TypeError, /panes/],
    ['no panes', () => N(img, w, h, [], codes, 0, S), TypeError, /panes/],
    ['pane outside the image', () => N(img, w, h, [{ ...R, x: 1 }], codes, 0, S), RangeError, /outside/],
    ['pane with negative origin', () => N(img, w, h, [{ ...R, x: -1, width: 4 }], codes, 0, S), RangeError, /panes\[0\]/],
    ['codes of the wrong length', () => N(img, w, h, [R], new Uint8Array(63), 0, S), RangeError, /codes/],
    ['codes not bytes', () => N(img, w, h, [R], new Float32Array(64), 0, S), TypeError, /codes/],
    ['nRings -1', () => N(img, w, h, [R], codes, -1, S), RangeError, /nRings/],
    ['nRings 251', () => N(img, w, h, [R], codes, 251, S), RangeError, /nRings/],
    ['nRings 1.5', () => N(img, w, h, [R], codes, 1.5, S), RangeError, /nRings/],
    ['settings null', () => N(img, w, h, [R], codes, 0, null), TypeError, /settings/],
    ['binWidth NaN', () => N(img, w, h, [R], codes, 0, { ...S, binWidth: NaN }), RangeError, /binWidth/],
    ['binWidth 0', () => N(img, w, h, [R], codes, 0, { ...S, binWidth: 0 }), RangeError, /binWidth/],
    ['distances empty', () => N(img, w, h, [R], codes, 0, { ...S, distances: [] }), RangeError, /distances/],
    ['unknown class index', () => N(img, w, h, [R], codes, 0, { ...S, classes: [9] }), RangeError, /classes/],
  ];
  for (const [what, f, type, re] of cases) {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    t.ok(err instanceof type, `${what}: ${type.name} (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
    t.match((err as Error)?.message ?? '', re, `${what}: message names the problem`);
  }
  const ok = N(img, w, h, [R, R], codes, 2, S);
  t.equal(ok.errors.length, 6, 'afterwards a valid call works: 2 panes x (lesion + 2 rings)');
  t.equal(ok.values.length, 6 * ALL_FEATURE_NAMES.length, 'one value per feature and region');
  t.equal(ok.errors[0], null, 'the lesion has features');
  t.match(ok.errors[1], /.+/, 'an empty ring says why it has none');
});
