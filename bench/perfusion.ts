// Perfusion benchmarks (issue 9):
//   A. accuracy: `sonomics perfusion` on the phantom (1280x720 at 30 fps, 75 s, its default motion
//      and speckle noise, every 3rd frame delivered twice, the probe off the lesion for 4 s at
//      30 s so tracking is lost there) for several seeds; every parameter of the lesion, the
//      reference and the lesion relative to the reference against the phantom's truth;
//   B. cost: the native TIC measurement per frame (all regions, one call) and one analysis of a
//      whole session's curves (detection, two fits per region, parameters), median of repeats.
// Run: npm run bench:perfusion   (BENCH_QUICK=1: one seed, 45 s).
import { quantile } from 'simple-statistics';
import { applyLayout } from '../core/layout.js';
import { createLesionMask } from '../core/mask.js';
import { analyseCurves } from '../core/perfusion/analysis.js';
import { evaluateBolusCurve } from '../core/perfusion/models.js';
import { PARAMETER_NAMES } from '../core/perfusion/parameters.js';
import { linearisationLut, measureRegions } from '../core/perfusion/tic.js';
import { computeRings } from '../core/regions.js';
import { PhantomScanner } from '../device/phantom.js';
import { perfusionCommand, type PerfusionReport } from '../cli/perfusion.js';
import { table } from './table.js';

const QUICK = process.env.BENCH_QUICK === '1';
const SEEDS = QUICK ? [42] : [42, 7, 11];
const SECONDS = QUICK ? 45 : 75;
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}`);
const num = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4));

async function accuracy(): Promise<PerfusionReport[]> {
  const reports: PerfusionReport[] = [];
  for (const seed of SEEDS) {
    const t0 = performance.now();
    reports.push(await perfusionCommand({ input: `phantom:${seed}`, ffmpeg: {}, seconds: SECONDS, repeatEvery: 3, lose: { startS: 30, durationS: 4 } }, () => {}));
    const r = reports.at(-1)!;
    console.log(`seed ${seed}: ${r.frames.read} frames read (${r.frames.duplicates} repeats), ${r.frames.samples} samples, excluded ${r.frames.lost} lost + ${r.frames.uncertain} uncertain; ${r.analysis.state}; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  for (const region of ['lesion', 'reference']) {
    const rows = PARAMETER_NAMES.map((p) => {
      const errs = reports.map((r) => r.truth?.errors[region]?.[p]).filter((e): e is number => e !== undefined);
      const abs = errs.map(Math.abs);
      return [p, num(reports[0].truth?.regions[region]?.parameters?.[p]), num(reports[0].analysis.regions.find((g) => g.name === region)?.parameters?.[p]),
        ...reports.map((r) => pct(r.truth?.errors[region]?.[p])), abs.length ? pct(quantile(abs, 0.5)) : '-', abs.length ? pct(Math.max(...abs)) : '-'];
    });
    table(`A. ${region}: measured vs the phantom's truth (error %, per seed)`, ['<parameter', `truth s${SEEDS[0]}`, `measured s${SEEDS[0]}`, ...SEEDS.map((s) => `err % s${s}`), 'median |err| %', 'max |err| %'], rows);
  }
  const rel = PARAMETER_NAMES.map((p) => `r${p}`);
  const rows = rel.map((p) => {
    const abs = reports.map((r) => r.truth?.errors.lesion?.[p]).filter((e): e is number => e !== undefined).map(Math.abs);
    return [p, num(reports[0].truth?.relative.lesion?.[p] ?? undefined), ...reports.map((r) => pct(r.truth?.errors.lesion?.[p])), abs.length ? pct(quantile(abs, 0.5)) : '-', abs.length ? pct(Math.max(...abs)) : '-'];
  });
  table('A. lesion relative to the reference (error %, per seed)', ['<parameter', `truth s${SEEDS[0]}`, ...SEEDS.map((s) => `err % s${s}`), 'median |err| %', 'max |err| %'], rows);
  return reports;
}

function cost(report: PerfusionReport): void {
  const phantom = new PhantomScanner({ seed: 42 });
  const pane = phantom.layout.panes.bmode;
  const c = phantom.contrastCompression;
  const lut = linearisationLut({ dynamicRangeDb: c.dynamicRangeDb, offsetDb: c.dbMin });
  const ms: number[] = [];
  for (let i = 0; i < (QUICK ? 60 : 300); i++) {
    const { frame, truth } = phantom.frameAt(240 + i);
    const lf = applyLayout(frame, phantom.layout);
    const rings = computeRings(createLesionMask(truth.lesionMask, pane.rect.width, pane.rect.height), pane, [3, 5, 8]);
    const t = performance.now();
    measureRegions(lf, rings, lut, phantom.suggestedReference(truth.center), true);
    ms.push(performance.now() - t);
  }
  // One whole-session analysis, rebuilt from the report's curve (the worker's job once a second).
  const a = report.analysis;
  const n = Math.round(a.n);
  const t = Float64Array.from({ length: n }, (_, i) => (i * a.durationS) / Math.max(1, n - 1));
  const regions = a.regions.map((r) => {
    const fit = r.fits.lognormal;
    if (!fit) return { name: r.name, y: new Float64Array(n) };
    // The fitted curve with 5 % multiplicative ripple on its enhancement.
    const y = evaluateBolusCurve('lognormal', fit.params as never, t);
    for (let i = 0; i < n; i++) y[i] = fit.params.baseline + (y[i] - fit.params.baseline) * (1 + 0.05 * Math.sin(i * 12.9898));
    return { name: r.name, y };
  });
  const an: number[] = [];
  for (let k = 0; k < (QUICK ? 3 : 9); k++) {
    const s = performance.now();
    analyseCurves({ t, regions, lesionSaturation: new Float64Array(n), reference: 'reference', model: 'lognormal', saturationLimit: 0.05 });
    an.push(performance.now() - s);
  }
  table('B. cost (one core)', ['<step', 'median ms', 'p95 ms', 'n'], [
    ['TIC sample: lesion + 3 rings + reference, one native call (1280x720)', quantile(ms, 0.5).toFixed(3), quantile(ms, 0.95).toFixed(3), String(ms.length)],
    [`analysis of a session (${n} samples x ${regions.length} regions, 2 models each), worker`, quantile(an, 0.5).toFixed(1), quantile(an, 0.95).toFixed(1), String(an.length)],
  ]);
}

const reports = await accuracy();
cost(reports[0]);
