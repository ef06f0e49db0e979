// npm run bench:radiomics: the native radiomics engine (core/radiomics.ts). Single-threaded
// synchronous extractRegions calls unless stated; every measurement warms up first, then repeats
// until a count or a time budget runs out. Prints plain aligned tables of medians and p90 (ms),
// measured in one run, with the machine and Node version. BENCH_QUICK=1 for a short run.
// Tables (docs/radiomics-bench.md explains each):
//   A  case c5 of ../shared/radiomics-ref (25,132-pixel ellipse), all classes and per class,
//      against PyRadiomics' timing anchor;
//   B  a whole dual-view phantom frame: lesion + 3 rings in both panes (8 regions), one call;
//   C  scaling with ROI size (synthetic speckle, circular ROIs 1k..100k pixels);
//   D  scaling with the number of gray levels (binCount 8..256, ~25k-pixel ROI).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { quantileSorted } from 'simple-statistics';
import { decodePgm, type GrayImage } from '../core/imageio.js';
import { applyLayout } from '../core/layout.js';
import { createLesionMask } from '../core/mask.js';
import { native, type PixelRect } from '../core/native.js';
import { packageRoot } from '../core/paths.js';
import { seededRandom } from '../core/random.js';
import { computeRings, DEFAULT_RING_RADII_MM, ringName } from '../core/regions.js';
import { PhantomScanner } from '../device/phantom.js';
import { table } from './table.js';

type RadiomicsModule = typeof import('../core/radiomics.js');
type Settings = import('../core/radiomics.js').RadiomicsSettings;

const QUICK = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '');
/** Per measurement: stop after this many timed repetitions or this much time, whichever comes first (at least MIN_REPS). */
const MAX_REPS = QUICK ? 40 : 400;
const BUDGET_MS = QUICK ? 250 : 1500;
const MIN_REPS = 3;
const WARMUP_REPS = QUICK ? 3 : 10;
const WARMUP_MS = QUICK ? 100 : 300;
/** PyRadiomics' timing anchor for case c5 (../shared/radiomics-ref/README.md): warm, in-process, 2 vCPU. */
const PYRADIOMICS_C5_MS = { bc32: 124, bw25: 163 } as const;
const TARGET_C5_MS = 1;
const TARGET_FRAME_MS = 8;

interface Timing { median: number; p90: number; n: number }

function summarise(times: number[]): Timing {
  times.sort((a, b) => a - b);
  return { median: quantileSorted(times, 0.5), p90: quantileSorted(times, 0.9), n: times.length };
}

/** Warms up, then times `fn` until MAX_REPS repetitions or BUDGET_MS of total time (at least MIN_REPS). */
function measure(fn: () => void): Timing {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_REPS && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) fn();
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < MAX_REPS && (times.length < MIN_REPS || performance.now() - t0 < BUDGET_MS)) {
    const s = performance.now();
    fn();
    times.push(performance.now() - s);
  }
  return summarise(times);
}

/** As measure, for an async function awaited one call at a time (latency, not throughput). */
async function measureAsync(fn: () => Promise<unknown>): Promise<Timing> {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_REPS && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) await fn();
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < MAX_REPS && (times.length < MIN_REPS || performance.now() - t0 < BUDGET_MS)) {
    const s = performance.now();
    await fn();
    times.push(performance.now() - s);
  }
  return summarise(times);
}

// ---- output ----------------------------------------------------------------------------------

const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(3) : v.toFixed(1)) : '-');
const int = (v: number) => String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');


// ---- inputs ----------------------------------------------------------------------------------

type Gray = GrayImage;

/** The reference frames are binary PGM; the project's own decoder reads them. */
function readPgm(path: string): Gray {
  try {
    return decodePgm(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/**
 * Speckle-like texture: Rayleigh amplitudes (fully developed speckle), smoothed by a 3x3 box so
 * neighbours correlate as in a B-mode image, log-compressed to 8 bits over the full 0..255 range.
 */
function speckle(width: number, height: number, seed: number): Uint8Array {
  const rnd = seededRandom(seed);
  const amp = new Float64Array(width * height);
  for (let i = 0; i < amp.length; i++) amp[i] = Math.sqrt(-2 * Math.log(1 - rnd()));
  const sm = new Float64Array(amp.length);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let s = 0, n = 0;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < width && yy < height) { s += amp[yy * width + xx]; n++; }
        }
      sm[y * width + x] = Math.log(1e-3 + s / n);
    }
  let lo = Infinity, hi = -Infinity;
  for (const v of sm) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const out = new Uint8Array(sm.length);
  for (let i = 0; i < sm.length; i++) out[i] = Math.round((255 * (sm[i] - lo)) / (hi - lo));
  return out;
}

/** A square speckle image holding a centred disc of about `pixels` pixels; codes 1 inside. */
function discCase(pixels: number, seed: number): { image: Uint8Array; size: number; codes: Uint8Array; count: number } {
  const r = Math.sqrt(pixels / Math.PI);
  const size = Math.ceil(2 * r) + 16, c = (size - 1) / 2;
  const codes = new Uint8Array(size * size);
  let count = 0;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      if ((x - c) ** 2 + (y - c) ** 2 <= r * r) { codes[y * size + x] = 1; count++; }
  return { image: speckle(size, size, seed), size, codes, count };
}

/** binCount bin (numpy.histogram edges over [lo, hi], top edge included), 0-based. */
function binCountBin(v: number, lo: number, hi: number, n: number): number {
  if (hi === lo) return 0;
  return Math.min(n - 1, Math.floor(((v - lo) * n) / (hi - lo)));
}

/** Distinct discretised levels present in the ROI of a disc case. */
function levelsOf(d: { image: Uint8Array; codes: Uint8Array }, bin: (v: number, lo: number, hi: number) => number): number {
  let lo = 255, hi = 0;
  for (let i = 0; i < d.codes.length; i++) if (d.codes[i]) { lo = Math.min(lo, d.image[i]); hi = Math.max(hi, d.image[i]); }
  const seen = new Set<number>();
  for (let i = 0; i < d.codes.length; i++) if (d.codes[i]) seen.add(bin(d.image[i], lo, hi));
  return seen.size;
}

// ---- measurements ----------------------------------------------------------------------------

function checkOk(res: Array<{ error: string | null }>, what: string): string | null {
  const bad = res.map((r, i) => (r.error ? `region ${i}: ${r.error}` : null)).filter(Boolean);
  return bad.length ? `${what}: ${bad.join('; ')}` : null;
}

function benchC5(R: RadiomicsModule, refDir: string): void {
  const img = readPgm(join(refDir, 'c5_512x512_image.pgm'));
  const mask = readPgm(join(refDir, 'c5_512x512_mask.pgm'));
  if (img.width !== mask.width || img.height !== mask.height) throw new Error('c5: image and mask sizes differ');
  const { width, height } = img;
  const codes = new Uint8Array(mask.data.length);
  let roi = 0;
  for (let i = 0; i < codes.length; i++) if (mask.data[i]) { codes[i] = 1; roi++; }
  const pane: PixelRect[] = [{ x: 0, y: 0, width, height }];
  const variants = [
    { key: 'bc32' as const, label: 'binCount 32', settings: { binCount: 32 } as Settings },
    { key: 'bw25' as const, label: 'binWidth 25', settings: { binWidth: 25 } as Settings },
  ];
  const notes: string[] = [];

  // Sanity: the engine being timed agrees with the reference (informational only).
  for (const v of variants) {
    const refPath = join(refDir, `c5_512x512_${v.key}.json`);
    if (!existsSync(refPath)) continue;
    const ref = JSON.parse(readFileSync(refPath, 'utf8')) as Record<string, number | null>;
    const [res] = R.extractRegions(img.data, width, height, pane, codes, 0, v.settings);
    if (res.error || !res.features) { notes.push(`${v.key}: engine refused the region: ${res.error}`); continue; }
    let worst = 0, worstName = '', missing = 0, off = 0;
    for (const [name, want] of Object.entries(ref)) {
      const got = res.features[name];
      if (got === undefined) { missing++; continue; }
      if (want === null || !Number.isFinite(want)) continue;
      const rel = Math.abs(got - want) / Math.max(Math.abs(want), 1e-12);
      if (!(rel <= 1e-6)) off++;
      if (!(rel <= worst)) { worst = rel; worstName = name; }
    }
    notes.push(`${v.key} check vs PyRadiomics reference: ${Object.keys(ref).length} features, ${missing} missing, ${off} beyond 1e-6 relative`
      + (worstName ? ` (worst ${worstName}: ${worst.toExponential(2)})` : ''));
  }

  const rows: string[][] = [];
  const perClass: string[][] = [];
  for (const v of variants) {
    let err: string | null = null;
    const t = measure(() => { err ??= checkOk(R.extractRegions(img.data, width, height, pane, codes, 0, v.settings), v.key); });
    if (err) notes.push(err);
    const anchor = PYRADIOMICS_C5_MS[v.key];
    rows.push([v.label, ms(t.median), ms(t.p90), String(t.n), String(anchor), `${(anchor / t.median).toFixed(0)}x`,
      t.median <= TARGET_C5_MS ? 'yes' : 'NO']);
  }
  // The convenience wrapper: builds the codes from the mask in JS on every call.
  const tw = measure(() => { R.extractFeatures(img.data, width, height, mask.data, { binCount: 32 }); });
  notes.push(`extractFeatures (binCount 32, incl. building region codes from the mask, natively, over ${int(width * height)} px): median ${ms(tw.median)} ms, p90 ${ms(tw.p90)} ms`);
  table(`A. Case c5 (512x512, ${int(roi)}-pixel ellipse), all 7 classes, one region per call (ms)`,
    ['<settings', 'median', 'p90', 'reps', 'PyRadiomics', 'speed-up', `<<= ${TARGET_C5_MS} ms`], rows,
    [`PyRadiomics anchor: ../shared/radiomics-ref/README.md (warm, in-process, same machine class); target <= ${TARGET_C5_MS} ms (>= 100x).`, ...notes]);

  for (const c of R.FEATURE_CLASSES) {
    const row: string[] = [c];
    for (const v of variants) {
      const s: Settings = { ...v.settings, classes: [c] };
      const t = measure(() => { R.extractRegions(img.data, width, height, pane, codes, 0, s); });
      row.push(ms(t.median), ms(t.p90));
    }
    perClass.push(row);
  }
  table('A2. Case c5 per class (settings.classes = [one class]; each row includes the shared ROI scan and discretisation) (ms)',
    ['<class', 'bc32 median', 'bc32 p90', 'bw25 median', 'bw25 p90'], perClass);
}

async function benchFrame(R: RadiomicsModule): Promise<void> {
  const scanner = new PhantomScanner();
  const layout = scanner.layout;
  // 15 s into the sequence: the contrast bolus is in, so the contrast pane has texture too.
  const { frame, truth } = scanner.frameAt(Math.round(15 * scanner.fps));
  const lf = applyLayout(frame, layout);
  const { bmode, contrast } = lf.layout.panes;
  const mask = createLesionMask(truth.lesionMask, bmode.rect.width, bmode.rect.height);
  const rings = computeRings(mask, bmode, DEFAULT_RING_RADII_MM, layout.sector);
  const panes = [bmode.rect, contrast.rect];
  const nRings = rings.radiiMm.length;
  const settings: Settings = { spacingX: bmode.spacingX, spacingY: bmode.spacingY }; // binWidth 25 (default)
  const f = lf.frame;
  const res = R.extractRegions(f.data, f.width, f.height, panes, rings.codes, nRings, settings);
  const err = checkOk(res, 'frame');
  const sync = measure(() => { R.extractRegions(f.data, f.width, f.height, panes, rings.codes, nRings, settings); });
  const asyncT = await measureAsync(() => R.extractRegionsAsync(f.data, f.width, f.height, panes, rings.codes, nRings, settings));
  const regions = res.length;
  const totalPx = 2 * rings.counts.reduce((a, b) => a + b, 0);
  table(`B. Dual-view phantom frame ${f.width}x${f.height}, panes ${bmode.rect.width}x${bmode.rect.height}, lesion + rings ${rings.radiiMm.join('/')} mm in both panes: ${regions} regions in ONE call, all 7 classes, binWidth 25 (ms)`,
    ['<call', 'median', 'p90', 'reps', 'per region', `<<= ${TARGET_FRAME_MS} ms`],
    [
      ['extractRegions (sync)', ms(sync.median), ms(sync.p90), String(sync.n), ms(sync.median / regions), sync.median <= TARGET_FRAME_MS ? 'yes' : 'NO'],
      ['extractRegionsAsync (await, one at a time)', ms(asyncT.median), ms(asyncT.p90), String(asyncT.n), ms(asyncT.median / regions), asyncT.median <= TARGET_FRAME_MS ? 'yes' : 'NO'],
    ],
    [`pixel spacing ${bmode.spacingX.toFixed(4)} mm (x and y); ${int(totalPx)} region pixels in all (rings are cumulative bands, so ring pixels are counted once per ring).`,
      ...(err ? [err] : [])]);
  const rows = [['lesion', ...[bmode, contrast].map(() => int(rings.counts[0]))]];
  rings.radiiMm.forEach((mm, k) => rows.push([`${ringName(mm)} (band 0..${mm} mm, lesion excluded)`, int(rings.counts[k + 1]), int(rings.counts[k + 1])]));
  table('B2. Region pixel counts of that frame (the same codes in both panes)', ['<region', 'bmode px', 'contrast px'], rows);
}

function benchSizes(R: RadiomicsModule): void {
  const sizes = [1_000, 3_000, 10_000, 30_000, 100_000];
  const rows: string[][] = [];
  for (const [i, n] of sizes.entries()) {
    const d = discCase(n, 1000 + i);
    const pane = [{ x: 0, y: 0, width: d.size, height: d.size }];
    const row = [int(d.count), `${d.size}x${d.size}`, String(levelsOf(d, (v) => Math.floor(v / 25)))];
    for (const s of [{ binWidth: 25 }, { binCount: 32 }] as Settings[]) {
      let err: string | null = null;
      const t = measure(() => { err ??= checkOk(R.extractRegions(d.image, d.size, d.size, pane, d.codes, 0, s), `${n} px`); });
      if (err) console.log(`  ${err}`);
      row.push(ms(t.median), ms(t.p90), ((t.median * 1e6) / d.count).toFixed(1));
    }
    rows.push(row);
  }
  table('C. Scaling with ROI size: synthetic speckle (seeded), centred circular ROI, all 7 classes, one region per call (ms; ns per ROI pixel from the median)',
    ['ROI px', 'image', 'bw25 levels', 'bw25 median', 'bw25 p90', 'bw25 ns/px', 'bc32 median', 'bc32 p90', 'bc32 ns/px'], rows,
    ['bw25 levels: distinct binWidth-25 bins in the ROI; binCount 32 gives up to 32.']);
}

function benchLevels(R: RadiomicsModule): void {
  const d = discCase(25_000, 77);
  const pane = [{ x: 0, y: 0, width: d.size, height: d.size }];
  const rows: string[][] = [];
  for (const bc of [8, 16, 32, 64, 128, 256]) {
    const all = measure(() => { R.extractRegions(d.image, d.size, d.size, pane, d.codes, 0, { binCount: bc }); });
    const glcm = measure(() => { R.extractRegions(d.image, d.size, d.size, pane, d.codes, 0, { binCount: bc, classes: ['glcm'] }); });
    rows.push([String(bc), String(levelsOf(d, (v, lo, hi) => binCountBin(v, lo, hi, bc))), ms(all.median), ms(all.p90), ms(glcm.median), ms(glcm.p90)]);
  }
  table(`D. Scaling with gray levels: ${int(d.count)}-pixel circular ROI on synthetic speckle, binCount N (ms)`,
    ['binCount', 'levels used', 'all 7 median', 'all 7 p90', 'glcm median', 'glcm p90'], rows,
    ['GLCM holds N x N cells per angle and its features (MCC: an eigenvalue problem) grow with N; the run/zone/dependence matrices grow with N x (longest run/zone).']);
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`sonomics radiomics bench${QUICK ? ' (BENCH_QUICK)' : ''}: ${new Date().toISOString()}`);
  console.log(`machine: ${cpus[0]?.model?.trim() ?? 'unknown CPU'}, ${cpus.length} logical cores (available parallelism ${os.availableParallelism()}), ${os.platform()} ${os.release()} ${os.arch()}`);
  console.log(`node ${process.version} (V8 ${process.versions.v8}), addon ${native.version}; load average at start ${loadavg()} (other work on the machine inflates the numbers)`);
  console.log(`each measurement: warm-up, then up to ${MAX_REPS} repetitions or ${BUDGET_MS} ms (at least ${MIN_REPS}); medians and p90 in ms, single thread, synchronous calls unless stated`);
  if (typeof native.radiomics !== 'function') {
    console.error('\nThe native addon in build/ has no radiomics engine (native.radiomics is missing): rebuild it (npm install) and run again.');
    process.exit(1);
  }
  const R: RadiomicsModule = await import('../core/radiomics.js');
  const t0 = performance.now();

  const refDir = resolve(process.env.SONOMICS_RADIOMICS_REF ?? join(packageRoot(), '..', 'shared', 'radiomics-ref'));
  if (existsSync(join(refDir, 'c5_512x512_image.pgm')) && existsSync(join(refDir, 'c5_512x512_mask.pgm'))) benchC5(R, refDir);
  else console.log(`\nA. skipped: the conformance cases are not at ${refDir} (set SONOMICS_RADIOMICS_REF to their folder).`);
  await benchFrame(R);
  benchSizes(R);
  benchLevels(R);
  console.log(`\ntotal bench time ${((performance.now() - t0) / 1000).toFixed(1)} s; load average at end ${loadavg()}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
