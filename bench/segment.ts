// One-tap segmentation benchmarks (issue 10), on ../shared/data/busi, out of sample: every image is
// segmented by the cross-validation fold model that never saw it (models/segmenter, folds grouped
// so near-duplicates stay together).
//   A. accuracy from the tap `--masks tap` uses (the deepest point of the expert mask): Dice and
//      95 % Hausdorff distance (pixels) against the expert mask; with and without the mirrored pass,
//      and (a segmenter with refining networks) with pass 2 on pass 1's network instead;
//   B. taps at random points of the lesion's inner half (5 per image, seeded): Dice, and its spread
//      per image;
//   C. taps well outside the lesion (3 per image): how often the answer is "no lesion found"; what
//      the masks proposed there are like (darkness against their surround, the network's
//      confidence) beside A's, and what refusing proposals by either would cost in A and gain here;
//   D. time per tap, tap to mask, one core (onnxruntime one thread);
//   E. the shipped card's recipe (sonomics fit: LASSO, nested 5-fold CV, seed 20261122) with
//      expert masks against tap masks on the same folds: trained on either, tested on either; each
//      card's drop from expert to tap masks, paired over the same cases (DeLong);
//   F. a contact sheet (docs/img/segment-worst.png) of the ten worst cases of A: expert outline
//      green, proposed outline orange, the tap a red cross;
//   G. what of the outline the card depends on: the same recipe on the expert masks shrunk or
//      grown by 4 px, and smoothed (closing then opening by a disc of 8 and 16 px), each against
//      the expert masks (Dice) and by AUC, trained and tested on them and trained on the expert masks.
// Run: npm run bench:segment   (BENCH_QUICK=1: every 4th image, no E or G).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { mean as ssMean, quantile, standardDeviation } from 'simple-statistics';
import { cohortFeatures, completeCases } from '../core/cohort.js';
import { fitCohort } from '../core/fit.js';
import type { GrayImage } from '../core/imageio.js';
import { native } from '../core/native.js';
import { packageRoot } from '../core/paths.js';
import { seededRandom } from '../core/random.js';
import { aucDeLong, pairedAucDeLong } from '../core/stats/roc.js';
import { dice, hd95 } from '../core/segment/metrics.js';
import { Segmenter, type SegmentResult } from '../core/segment/segmenter.js';
import { DEFAULT_RINGS_PX } from '../cli/fit.js';
import { innerHalf, loadBusiCases, outsideTaps, tapAt, type BusiCase } from './busi.js';
import { f1, f3, table } from './table.js';

const QUICK = process.env.BENCH_QUICK === '1';
const mean = (xs: number[]) => (xs.length ? ssMean(xs) : NaN);
const q = (xs: number[], p: number) => (xs.length ? quantile(xs, p) : NaN);

interface Outcome { dice: number; hd95: number; ms: number; mask: Uint8Array | null }

const seg = await Segmenter.load({ folds: true });
const { cohort, cases } = await loadBusiCases(seg, QUICK);
console.log(`${cases.length} images, segmenter ${seg.manifest.id} ${seg.manifest.version} (${seg.manifest.folds.length} fold models, ${seg.manifest.training.groups} duplicate groups)`);

async function run(k: BusiCase, tap: { x: number; y: number }, mirror: boolean, refine = true): Promise<Outcome & { result: SegmentResult }> {
  const r = await seg.segment(k.image, { seed: tap }, { fold: k.fold, mirror, refine });
  const { width: w, height: h } = k.image;
  if (!r.found) return { dice: 0, hd95: Infinity, ms: r.ms, mask: null, result: r };
  return { dice: dice(r.mask, k.mask), hd95: hd95(r.mask, k.mask, w, h), ms: r.ms, mask: r.mask, result: r };
}

// Warm the sessions (first runs allocate).
for (const k of cases.slice(0, 3)) await run(k, k.tap, true);

// ---- A + D ---------------------------------------------------------------------------------------
const deep: Array<Outcome & { k: BusiCase; result: SegmentResult }> = [];
const plain: Outcome[] = [], unrefined: Outcome[] = [];
const refining = !!seg.manifest.model.refine;
for (const k of cases) {
  // Side by side, alternating, so load on the machine hits all alike.
  deep.push({ ...(await run(k, k.tap, true)), k });
  plain.push(await run(k, k.tap, false));
  if (refining) unrefined.push(await run(k, k.tap, true, false));
}
const summary = (name: string, o: Outcome[]) => {
  const d = o.map((x) => x.dice), hd = o.map((x) => x.hd95).filter(Number.isFinite), ms = o.map((x) => x.ms);
  return [name, String(o.length), f3(mean(d)), f3(q(d, 0.5)), f3(q(d, 0.1)), f3(Math.min(...d)), `${(100 * d.filter((x) => x >= 0.9).length / d.length).toFixed(1)}`,
    f1(mean(hd)), f1(q(hd, 0.5)), String(o.filter((x) => !x.mask).length), f1(q(ms, 0.5)), f1(q(ms, 0.95)), f1(Math.max(...ms))];
};
const header = ['<taps', 'n', 'Dice mean', 'median', 'p10', 'min', '>=0.90 %', 'HD95 mean px', 'median', 'not found', 'ms p50', 'p95', 'max'];
table('A/D. Out-of-sample masks from the tap at the deepest point of the expert mask (BUSI, fold models)', header, [
  summary('deepest point, mirrored pass (shipped)', deep),
  summary('deepest point, one pass', plain),
  ...(refining ? [summary('deepest point, pass 2 on pass 1\'s network', unrefined)] : []),
  summary('  benign (mirrored)', deep.filter((x) => x.k.c.label === 0)),
  summary('  malignant (mirrored)', deep.filter((x) => x.k.c.label === 1)),
], ['Target: Dice mean >= 0.86, median >= 0.90 (BUS-Set: Mask R-CNN, fully automatic, mean 0.851).',
  ...(refining ? [`The refining network (pass 2) against pass 1's network in pass 2, paired: Dice better on ${deep.filter((o, i) => o.dice > unrefined[i].dice + 0.01).length} images, ` +
    `worse on ${deep.filter((o, i) => o.dice < unrefined[i].dice - 0.01).length} (by more than 0.01), of ${deep.length}.`] : []),
  'Time: tap to mask (two passes, each one network run), onnxruntime with one thread, median and 95th percentile over the images.']);

// ---- B -------------------------------------------------------------------------------------------
const random = seededRandom(20261122);
const inner: Outcome[] = [];
const perImageSd: number[] = [], perImageRange: number[] = [];
for (const k of cases) {
  const pts = innerHalf(k);
  const ds: number[] = [];
  for (let t = 0; t < 5; t++) {
    const o = await run(k, tapAt(k, pts, random), true);
    inner.push(o);
    ds.push(o.dice);
  }
  perImageSd.push(standardDeviation(ds));
  perImageRange.push(Math.max(...ds) - Math.min(...ds));
}
table('B. Taps at random points of the inner half of the lesion (distance to the border >= half the maximum), 5 per image', header, [summary('random inner-half taps', inner)], [
  `Spread per image over its 5 taps: SD of Dice median ${f3(q(perImageSd, 0.5))}, p90 ${f3(q(perImageSd, 0.9))}; range median ${f3(q(perImageRange, 0.5))}, p90 ${f3(q(perImageRange, 0.9))}; ` +
  `images whose Dice varies by more than 0.10: ${(100 * perImageRange.filter((r) => r > 0.1).length / perImageRange.length).toFixed(1)} %.`]);

// ---- C -------------------------------------------------------------------------------------------
let outside = 0, none = 0;
const outsideDice: number[] = [];
/** The proposals made on outside taps that are not the expert lesion: how dark, how confident. */
const elsewhere: Array<{ darkness: number; confidence: number }> = [];
/** Each grey level as itself: regionIntensity then sums raw grey. */
const GREY = Float32Array.from({ length: 256 }, (_, v) => v);
/**
 * Mean grey inside a mask over the mean of a ring around it (0.3 x its equivalent radius wide,
 * at least 4 px): below 1 for a region darker than its surround, as most breast lesions are. The
 * pipeline's own region code map (ringCodes, in pixels) and region sums (regionIntensity).
 */
function darkness(image: GrayImage, m: Uint8Array, area: number): number {
  const { width: w, height: h, data } = image;
  const codes = new Uint8Array(w * h);
  native.ringCodes(m, w, h, { spacingX: 1, spacingY: 1, radiiMm: [Math.max(4, Math.round(0.3 * Math.sqrt(area / Math.PI)))] }, codes);
  const [inside, n1, , ring, n2] = native.regionIntensity(data, w, h, { x: 0, y: 0, width: w, height: h }, codes, 2, GREY);
  return inside / n1 / Math.max(1, ring / n2);
}
for (const k of cases) {
  for (const tap of outsideTaps(k, random, 3)) {
    outside++;
    const r = await seg.segment(k.image, { seed: tap }, { fold: k.fold });
    if (!r.found) none++;
    else {
      const d = dice(r.mask, k.mask);
      outsideDice.push(d);
      if (d <= 0.5) elsewhere.push({ darkness: darkness(k.image, r.mask, r.area), confidence: r.confidence });
    }
  }
}
table('C. Taps well outside the lesion (farther than its depth and 8 px from it), 3 per image', ['<answer', 'taps', '%'], [
  ['no lesion found', String(none), f1((100 * none) / outside)],
  ['a mask (elsewhere)', String(outside - none), f1((100 * (outside - none)) / outside)],
], [`Of the masks proposed there, ${outsideDice.filter((x) => x > 0.5).length} overlap the expert lesion by Dice > 0.5 (the tap snapped to it); BUSI images can hold other lesion-like structures that are not outlined.`]);

// What the other proposals are, and whether refusing them by a plausibility check would pay: each
// check refuses some of them, and some of A's proposals at the deepest point (each a lost Dice).
const lesion = deep.flatMap((o) => (o.result.found ? [{ darkness: darkness(o.k.image, o.result.mask, o.result.area), confidence: o.result.confidence, dice: o.dice }] : []));
const spread = (xs: number[]) => `${f3(q(xs, 0.25))} / ${f3(q(xs, 0.5))} / ${f3(q(xs, 0.75))}`;
table('C2. The masks proposed on outside taps (not the expert lesion) against those from the deepest point (A)', ['<proposals', 'n', 'darkness p25 / p50 / p75', 'confidence p25 / p50 / p75'], [
  ['outside taps, elsewhere', String(elsewhere.length), spread(elsewhere.map((x) => x.darkness)), spread(elsewhere.map((x) => x.confidence))],
  ['deepest point (A)', String(lesion.length), spread(lesion.map((x) => x.darkness)), spread(lesion.map((x) => x.confidence))],
], ['darkness: mean grey inside over the mean of a ring around the mask (0.3 x its equivalent radius); confidence: the network\'s probability at the tap.']);
const checks: Array<[string, (x: { darkness: number; confidence: number }) => boolean]> = [
  ['darkness > 1.0', (x) => x.darkness > 1], ['darkness > 0.9', (x) => x.darkness > 0.9], ['darkness > 0.8', (x) => x.darkness > 0.8],
  ['confidence < 0.8', (x) => x.confidence < 0.8], ['confidence < 0.9', (x) => x.confidence < 0.9],
];
table('C3. Refusing a proposal ("no lesion found") when a check holds: what each would cost and gain', ['<refuse when', 'A refused', 'A Dice mean after', 'outside refused', 'outside taps "no lesion" %'],
  checks.map(([name, hit]) => {
    const lost = lesion.filter(hit);
    const kept = deep.reduce((a, o) => a + o.dice, 0) - lost.reduce((a, x) => a + x.dice, 0);
    const gained = elsewhere.filter(hit).length;
    return [name, String(lost.length), f3(kept / deep.length), String(gained), f1((100 * (none + gained)) / outside)];
  }), [`Shipped: no such check (A Dice mean ${f3(mean(deep.map((o) => o.dice)))}, outside taps "no lesion" ${f1((100 * none) / outside)} %).`]);

// ---- F -------------------------------------------------------------------------------------------
async function contactSheet(worst: Array<Outcome & { k: BusiCase }>, path: string): Promise<void> {
  const T = 256, cols = 5, rows = Math.ceil(worst.length / cols), pad = 4, label = 18;
  const W = cols * (T + pad) + pad, H = rows * (T + label + pad) + pad;
  const sheet = Buffer.alloc(W * H * 3, 24);
  const svg: string[] = [];
  worst.forEach((o, n) => {
    const { image, mask } = o.k;
    const { width: w, height: h } = image;
    // Square around both outlines and the tap, 20 % margin.
    let x0 = w, y0 = h, x1 = 0, y1 = 0;
    for (const m of [mask, o.mask]) {
      if (!m) continue;
      for (let i = 0; i < m.length; i++) if (m[i]) { const x = i % w, y = (i - x) / w; x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
    const side = Math.max(x1 - x0, y1 - y0) * 1.4 + 20, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const ox = pad + (n % cols) * (T + pad), oy = pad + Math.floor(n / cols) * (T + label + pad);
    const at = (u: number, v: number) => [Math.round(cx - side / 2 + (u * side) / T), Math.round(cy - side / 2 + (v * side) / T)];
    const edge = (m: Uint8Array | null, x: number, y: number) => !!m && x >= 0 && y >= 0 && x < w && y < h && !!m[y * w + x] &&
      (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !m[y * w + x - 1] || !m[y * w + x + 1] || !m[(y - 1) * w + x] || !m[(y + 1) * w + x]);
    const near = (m: Uint8Array | null, x: number, y: number) => edge(m, x, y) || edge(m, x + 1, y) || edge(m, x, y + 1);
    for (let v = 0; v < T; v++) {
      for (let u = 0; u < T; u++) {
        const [x, y] = at(u, v);
        const g = x >= 0 && y >= 0 && x < w && y < h ? image.data[y * w + x] : 0;
        let px = [g, g, g];
        if (near(mask, x, y)) px = [60, 220, 90];
        if (near(o.mask, x, y)) px = [255, 150, 30];
        const p = ((oy + v) * W + ox + u) * 3;
        sheet[p] = px[0]; sheet[p + 1] = px[1]; sheet[p + 2] = px[2];
      }
    }
    const tu = ((o.k.tap.x - (cx - side / 2)) * T) / side, tv = ((o.k.tap.y - (cy - side / 2)) * T) / side;
    for (let d = -5; d <= 5; d++) {
      for (const [u, v] of [[tu + d, tv], [tu, tv + d]]) {
        const U = Math.round(u), V = Math.round(v);
        if (U < 0 || V < 0 || U >= T || V >= T) continue;
        const p = ((oy + V) * W + ox + U) * 3;
        sheet[p] = 255; sheet[p + 1] = 40; sheet[p + 2] = 40;
      }
    }
    svg.push(`<text x="${ox + 2}" y="${oy + T + 14}" font-family="sans-serif" font-size="13" fill="#ddd">${o.k.c.id} Dice ${o.dice.toFixed(2)}${o.mask ? '' : ' (none)'}</text>`);
  });
  mkdirSync(dirname(path), { recursive: true });
  await sharp(sheet, { raw: { width: W, height: H, channels: 3 } })
    .composite([{ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${svg.join('')}</svg>`), top: 0, left: 0 }])
    .png().toFile(path);
}
const worst = [...deep].sort((a, b) => a.dice - b.dice).slice(0, 10);
const sheetPath = join(packageRoot(), 'docs', 'img', 'segment-worst.png');
await contactSheet(worst, sheetPath);
table('F. The ten worst cases of A (contact sheet)', ['<image', 'label', 'Dice', 'HD95 px', 'expert px', 'proposed px'],
  worst.map((o) => [o.k.c.id, o.k.c.label ? 'malignant' : 'benign', f3(o.dice), f1(o.hd95), String(o.k.mask.reduce((a, b) => a + b, 0)), o.mask ? String(o.mask.reduce((a, b) => a + (b ? 1 : 0), 0)) : 'none']),
  [`written: ${sheetPath} (expert outline green, proposed orange, tap red)`]);

// ---- E -------------------------------------------------------------------------------------------
/** The rows `ids` and columns `cols` of a complete-case design: two mask sources on the same cases and folds. */
function design(d: ReturnType<typeof completeCases>, ids: string[], cols: string[]) {
  const at = new Map(d.ids.map((id, i) => [id, i]));
  const ci = cols.map((n) => d.names.indexOf(n));
  return { names: cols, X: ids.map((id) => ci.map((j) => d.X[at.get(id)!][j])), y: ids.map((id) => d.y[at.get(id)!]) };
}
if (!QUICK) {
  const tapMasks = new Map(deep.map((o) => [o.k.c.id, o.mask]));
  const rings = DEFAULT_RINGS_PX;
  const expert = await cohortFeatures(cohort, { binWidth: 25, rings });
  const tap = await cohortFeatures(cohort, {
    binWidth: 25, rings, maskOf: async (c) => {
      const m = tapMasks.get(c.id);
      if (!m) throw new Error('no lesion found at the tap');
      return m;
    },
  });
  // The cases complete under both, the expert design's columns for both: the same folds.
  const de = completeCases(cohort, expert, []);
  const dt = completeCases(cohort, tap, []);
  const keep = de.ids.filter((id) => dt.ids.includes(id));
  const cols = de.names.filter((n) => dt.names.includes(n));
  const E = design(de, keep, cols), Tp = design(dt, keep, cols);
  const opts = { seed: 20261122, folds: 5, outerFolds: 5 };
  const t0 = performance.now();
  const ee = fitCohort(E, opts), et = fitCohort(E, opts, undefined, Tp), tt = fitCohort(Tp, opts), te = fitCohort(Tp, opts, undefined, E);
  const a = (p: number[]) => aucDeLong(p, E.y);
  const [aee, aet, att, ate] = [a(ee.heldOut), a(et.heldOut), a(tt.heldOut), a(te.heldOut)];
  const row = (name: string, r: ReturnType<typeof a>, selected: string) => [name, f3(r.auc), `${f3(r.ci[0])}-${f3(r.ci[1])}`, f3(r.auc - aee.auc), selected];
  // The drop each card suffers on live masks, paired over the same cases (DeLong).
  const drop = (live: number[], expertMasks: number[]) => {
    const d = pairedAucDeLong(live, expertMasks, E.y);
    return `${f3(d.difference)} (95 % CI ${f3(d.ci[0])} to ${f3(d.ci[1])})`;
  };
  table(`E. The shipped card's recipe (LASSO, nested 5-fold CV, seed ${opts.seed}) on ${keep.length} cases (${E.y.filter((v) => v).length} malignant), the same folds`,
    ['<trained on -> tested on', 'AUC', '95 % CI', 'vs expert', '<final model terms'], [
      row('expert masks -> expert masks', aee, String(ee.model.terms.length)),
      row('expert masks -> tap masks (an expert-mask card used live)', aet, String(ee.model.terms.length)),
      row('tap masks -> tap masks (the shipped card, used live)', att, String(tt.model.terms.length)),
      row('tap masks -> expert masks (the shipped card on expert masks)', ate, String(tt.model.terms.length)),
    ], [`Cases: ${cohort.cases.length - keep.length} left out (expert-mask exclusions ${de.excluded.length}, tap-mask exclusions ${dt.excluded.length}); ${((performance.now() - t0) / 1000).toFixed(0)} s for the four nested fits.`,
      `Each card on tap masks against the same card on expert masks (paired DeLong; target: a drop of at most 0.03):`,
      `  the card fitted on expert masks: ${drop(et.heldOut, ee.heldOut)}`,
      `  the card fitted on tap masks (ships, scripts/fit-busi.sh): ${drop(tt.heldOut, te.heldOut)}`]);

  // ---- G -----------------------------------------------------------------------------------------
  const morph = (m: Uint8Array, w: number, h: number, steps: number[]) => {
    let a = m;
    for (const r of steps) { const b = new Uint8Array(w * h); native.morphMask(a, w, h, r, b); a = b; }
    return a;
  };
  const variants: Array<[string, (m: Uint8Array, w: number, h: number) => Uint8Array]> = [
    ['expert masks shrunk by 4 px', (m, w, h) => morph(m, w, h, [-4])],
    ['expert masks grown by 4 px', (m, w, h) => morph(m, w, h, [4])],
    ['expert masks smoothed, disc 8 px', (m, w, h) => morph(m, w, h, [8, -16, 8])],
    ['expert masks smoothed, disc 16 px', (m, w, h) => morph(m, w, h, [16, -32, 16])],
  ];
  const rows: string[][] = [];
  const refAuc = new Map<string, ReturnType<typeof a>>();
  const t1 = performance.now();
  for (const [name, change] of variants) {
    const dices: number[] = [];
    const f = await cohortFeatures(cohort, {
      binWidth: 25, rings, maskOf: async (_c, _image, m) => {
        const mk = Uint8Array.from(m.data, (v) => (v ? 255 : 0)), out = change(mk, m.width, m.height);
        dices.push(dice(out, mk));
        return out;
      },
    });
    const dv = completeCases(cohort, f, []);
    const both = de.ids.filter((id) => dv.ids.includes(id));
    const cv = de.names.filter((n) => dv.names.includes(n));
    const Ex = design(de, both, cv), V = design(dv, both, cv);
    const ev = aucDeLong(fitCohort(Ex, opts, undefined, V).heldOut, Ex.y), vv = aucDeLong(fitCohort(V, opts).heldOut, V.y);
    const key = both.join(',');
    const ref = refAuc.get(key) ?? aucDeLong(fitCohort(Ex, opts).heldOut, Ex.y);
    refAuc.set(key, ref);
    rows.push([name, String(both.length), f3(quantile(dices, 0.5)), f3(quantile(dices, 0.1)), f3(ref.auc), f3(ev.auc), f3(vv.auc), `${f3(vv.ci[0])}-${f3(vv.ci[1])}`]);
  }
  table('G. What of the outline the card depends on: the recipe of E on expert masks changed in known ways (same folds)',
    ['<masks', 'n', 'Dice to expert p50', 'p10', 'AUC expert -> expert', 'expert -> these', 'these -> these', '95 % CI'], rows,
    [`Smoothed: closing then opening by a disc (rounds off angles, lobulations and spicules, keeps the size); ${((performance.now() - t1) / 1000).toFixed(0)} s.`,
      'Tap masks for comparison: section A (Dice) and E (AUC).']);
}
await seg.close();
