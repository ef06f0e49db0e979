// CEUS time-intensity-curve analysis (core/perfusion): bolus models, detection, fitting, bolus
// parameters and phases, on seeded synthetic curves whose truth is known.
import t from 'tap';
import { seededRandom } from '../core/random.js';
import {
  analyticBolus, binSamples, bolusParameters, detectBolus, evaluateBolus, evaluateBolusCurve, fitBolus, fitQuality, lnGamma,
  phaseWindows, relativeParameters, PARAMETER_NAMES, PARAMETER_UNITS, PHASES,
  type BolusFit, type BolusModelName, type BolusParamsOf, type GammaVariateParams, type LognormalParams, type PerfusionParameters,
  type TicSamples, type WashInDetection,
} from '../core/perfusion/index.js';

const rel = (a: number, b: number) => Math.abs(a / b - 1);

function normals(seed: number): () => number {
  const rnd = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** The same bolus with its area scaled so that the peak enhancement is `peak`. */
function withPeak<M extends BolusModelName>(model: M, p: BolusParamsOf[M], peak: number): BolusParamsOf[M] {
  const pe = analyticBolus(model, p).peakEnhancement;
  return (model === 'lognormal'
    ? { ...p, area: ((p as LognormalParams).area * peak) / pe }
    : { ...p, k: ((p as GammaVariateParams).k * peak) / pe }) as BolusParamsOf[M];
}

interface CurveOptions { seed: number; fps?: number; durationS?: number; gap?: [number, number]; relNoise?: number; absNoise?: number; endS?: number }

/**
 * A captured TIC: frames at `fps` with timing jitter, multiplicative and additive noise, every 53rd
 * frame captured twice (same timestamp, as a capture card repeats frames) and then deduplicated as
 * the capture layer does, and a missing stretch `gap`.
 */
function capture(model: BolusModelName, p: BolusParamsOf[BolusModelName], o: CurveOptions): TicSamples & { duplicates: number } {
  const rnd = seededRandom(o.seed), normal = normals(o.seed + 1000);
  const fps = o.fps ?? 30, end = o.endS ?? o.durationS ?? 90;
  const raw: Array<[number, number]> = [];
  for (let i = 0; i * (1 / fps) <= end; i++) {
    const ti = i / fps + 0.002 * (rnd() - 0.5);
    if (o.gap && ti > o.gap[0] && ti < o.gap[1]) continue;
    const yi = evaluateBolus(model, p as never, ti) * (1 + (o.relNoise ?? 0) * normal()) + (o.absNoise ?? 0) * normal();
    raw.push([ti, yi]);
    if (i % 53 === 0) raw.push([ti, yi]);
  }
  const kept = raw.filter(([ti], i) => i === 0 || ti !== raw[i - 1][0]);
  return { t: Float64Array.from(kept, (s) => s[0]), y: Float64Array.from(kept, (s) => s[1]), duplicates: raw.length - kept.length };
}

// The reference lognormal: t0 8 s, mu 2.3, sigma 0.45, peak enhancement 0.8, baseline 6e-4, 30 fps
// for 90 s, 3 % multiplicative noise, a 6 s gap on the wash-out.
const LN: LognormalParams = withPeak('lognormal', { baseline: 6e-4, area: 1, t0: 8, mu: 2.3, sigma: 0.45 }, 0.8);
const GV: GammaVariateParams = withPeak('gammaVariate', { baseline: 6e-4, k: 1, t0: 8, alpha: 3, beta: 2.5 }, 0.8);
const GAP: [number, number] = [30, 36];
const lnCurve = capture('lognormal', LN, { seed: 11, relNoise: 0.03, gap: GAP });
const gvCurve = capture('gammaVariate', GV, { seed: 12, relNoise: 0.03, gap: GAP });

t.test('models: definitions, zero before t0, vectorised evaluation', async (t) => {
  t.equal(evaluateBolus('lognormal', LN, 8), LN.baseline, 'lognormal is the baseline at t0');
  t.equal(evaluateBolus('gammaVariate', GV, 3), GV.baseline, 'gamma variate is the baseline before t0');
  const x = 5, { area, mu, sigma } = LN;
  const byHand = LN.baseline + (area / (Math.sqrt(2 * Math.PI) * sigma * x)) * Math.exp(-((Math.log(x) - mu) ** 2) / (2 * sigma ** 2));
  t.ok(rel(evaluateBolus('lognormal', LN, 13), byHand) < 1e-14, 'lognormal formula');
  t.ok(rel(evaluateBolus('gammaVariate', GV, 13), GV.baseline + GV.k * 5 ** 3 * Math.exp(-5 / 2.5)) < 1e-14, 'gamma-variate formula');
  const times = Float64Array.from({ length: 50 }, (_, i) => i);
  const curve = evaluateBolusCurve('lognormal', LN, times);
  t.ok(times.every((ti, i) => curve[i] === evaluateBolus('lognormal', LN, ti)), 'evaluateBolusCurve = evaluateBolus at every time');
  t.ok(Math.abs(lnGamma(5) - Math.log(24)) < 1e-13 && Math.abs(lnGamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-13, 'lnGamma(5) = ln 24, lnGamma(1/2) = ln sqrt(pi)');
  t.ok(Math.abs(analyticBolus('lognormal', LN).peakEnhancement - 0.8) < 1e-12, 'reference lognormal peaks at 0.8');
});

t.test('bolusParameters: numeric values against the closed forms', async (t) => {
  for (const [model, p] of [['lognormal', LN], ['gammaVariate', GV], ['gammaVariate', { ...GV, alpha: 1 }], ['lognormal', { ...LN, sigma: 1.1, mu: 1.5 }]] as const) {
    const q = bolusParameters(model, p as never), a = analyticBolus(model, p as never);
    const name = `${model} ${JSON.stringify(p)}`;
    t.ok(rel(q.AUC, a.area) < 1e-3, `${name}: AUC ${q.AUC} vs area ${a.area}`);
    t.ok(rel(q.MTT, a.meanTransit) < 1e-3, `${name}: MTT ${q.MTT} vs first moment ${a.meanTransit}`);
    t.ok(rel(q.TTP, a.peakTime - p.t0) < 1e-3, `${name}: TTP ${q.TTP} vs mode ${a.peakTime - p.t0}`);
    t.ok(rel(q.PE, a.peakEnhancement) < 1e-6, `${name}: PE`);
    t.equal(q.AT, p.t0, `${name}: AT = t0`);
    // Steepest slopes: the analytic slope at the inflection points, by central differences.
    const h = 1e-5, fd = (ti: number) => (evaluateBolus(model, p as never, ti + h) - evaluateBolus(model, p as never, ti - h)) / (2 * h);
    const tIn = Math.max(a.washInInflection, p.t0 + h);
    t.ok(rel(q.WiR, fd(tIn)) < 1e-3, `${name}: WiR ${q.WiR} vs slope at the wash-in inflection ${fd(tIn)}`);
    t.ok(rel(q.WoR, fd(a.washOutInflection)) < 1e-3 && q.WoR < 0, `${name}: WoR ${q.WoR} vs slope at the wash-out inflection`);
    // Tangent constructions and the derived times
    const eIn = evaluateBolus(model, p as never, tIn) - p.baseline;
    t.ok(Math.abs(q.TI - (tIn - eIn / fd(tIn))) < 1e-3, `${name}: TI is where the wash-in tangent meets the baseline`);
    t.ok(Math.abs(q.RT - (q.peakTime - q.TI)) < 1e-12 && Math.abs(q.FT - (q.TO - q.peakTime)) < 1e-12, `${name}: RT and FT`);
    t.ok(q.TI >= p.t0 && q.TI < q.peakTime && q.TO > q.peakTime, `${name}: TI in [AT, peak), TO after the peak`);
    t.ok(q.WiAUC > 0 && q.WiAUC < q.AUC, `${name}: 0 < WiAUC < AUC`);
  }
  // WiAUC against an independent trapezoid on a 1 ms grid
  const q = bolusParameters('lognormal', LN);
  let wi = 0;
  for (let ti = q.TI; ti < q.peakTime; ti += 0.001) wi += 0.001 * (evaluateBolus('lognormal', LN, Math.min(ti + 0.0005, q.peakTime)) - LN.baseline);
  t.ok(rel(q.WiAUC, wi) < 1e-3, `WiAUC ${q.WiAUC} vs midpoint rule ${wi}`);
  t.same(PARAMETER_NAMES, ['AT', 'PE', 'TTP', 'RT', 'WiR', 'WiAUC', 'MTT', 'FT', 'WoR', 'AUC']);
  t.same(PARAMETER_UNITS, { AT: 's', PE: 'a.u.', TTP: 's', RT: 's', WiR: 'a.u./s', WiAUC: 'a.u.·s', MTT: 's', FT: 's', WoR: 'a.u./s', AUC: 'a.u.·s' });
});

t.test('detectBolus on the synthetic curves', async (t) => {
  t.ok(lnCurve.duplicates > 10, `${lnCurve.duplicates} duplicated timestamps were removed`);
  // The gamma variate rises as (t - t0)^3, so its t0 is observable: the arrival must be within 0.5 s.
  const g = detectBolus(gvCurve);
  if (g.state !== 'wash-in') throw new Error(`gamma curve: expected wash-in, got ${g.state}`);
  t.ok(Math.abs(g.arrivalS - GV.t0) <= 0.5, `gamma-variate arrival ${g.arrivalS.toFixed(2)} s within 0.5 s of t0 ${GV.t0}`);
  // The lognormal's enhancement is below 1e-8 of its peak for 0.5 s after t0: no data can show
  // t0. Its truth is the detectable onset: when the true enhancement leaves the noise band of the
  // smoothed baseline (3 SDs of a median of 30 samples of the 3 % baseline noise).
  const d = detectBolus(lnCurve);
  if (d.state !== 'wash-in') throw new Error(`lognormal curve: expected wash-in, got ${d.state}`);
  const band = (3 * 1.2533 * 0.03 * LN.baseline) / Math.sqrt(30);
  let onset = LN.t0;
  while (evaluateBolus('lognormal', LN, onset) - LN.baseline < band) onset += 0.001;
  t.ok(Math.abs(d.arrivalS - onset) <= 0.5, `lognormal arrival ${d.arrivalS.toFixed(2)} s within 0.5 s of the detectable onset ${onset.toFixed(2)} s`);
  t.ok(d.arrivalS > LN.t0 - 0.5, 'and not before t0');
  t.ok(rel(d.baseline, LN.baseline) < 0.01, `baseline ${d.baseline} vs ${LN.baseline}`);
  t.ok(rel(d.noise, 0.03 * LN.baseline) < 0.3, `noise ${d.noise} vs ${0.03 * LN.baseline}`);
  const peak = analyticBolus('lognormal', LN).peakTime;
  t.ok(Math.abs(d.peakS - peak) < 1 && rel(d.peakY - d.baseline, 0.8) < 0.03, `peak ${d.peakY.toFixed(3)} at ${d.peakS.toFixed(2)} s (truth 0.8 at ${peak.toFixed(2)} s)`);
});

t.test('detectBolus states', async (t) => {
  const flat = { ...LN, area: 0 };
  const few = capture('lognormal', LN, { seed: 1, fps: 0.2, durationS: 90 });
  const fewState = detectBolus(few);
  t.equal(fewState.state, 'too-few-frames', `${few.t.length} samples`);
  t.match((fewState as { message: string }).message, /too few frames: 19 samples, at least 20 needed/);
  const short = capture('lognormal', LN, { seed: 2, durationS: 3 });
  t.match(detectBolus(short), { state: 'too-few-frames', message: /spans 3.* at least 5 s/ }, 'a 3 s curve');

  const noise = capture('lognormal', flat, { seed: 3, absNoise: 1e-4 });
  t.match(detectBolus(noise), { state: 'no-wash-in', message: 'no wash-in detected: the curve never rises 5 noise SDs above its baseline' }, 'flat noise');
  const normal = normals(4);
  const times = Float64Array.from({ length: 1800 }, (_, i) => i / 30);
  const decreasing = { t: times, y: times.map((ti) => 0.5 * Math.exp(-ti / 15) + 0.002 * normal()) };
  t.match(detectBolus(decreasing), { state: 'no-wash-in' }, 'a curve that only decreases');

  const cut = capture('lognormal', LN, { seed: 5, relNoise: 0.03, endS: 14 });
  const rising = detectBolus(cut);
  t.match(rising, { state: 'rising', message: 'wash-in under way: no peak yet' }, 'a curve cut before its peak (16.1 s)');
  if (rising.state === 'rising') t.ok(rising.arrivalS > LN.t0 - 0.5 && rising.arrivalS < 10, `rising arrival ${rising.arrivalS.toFixed(2)} s`);
  const lastSamples = { t: times, y: times.map((_, i) => 0.01 + 1e-4 * normal() + (i >= times.length - 10 ? 0.5 : 0)) };
  t.match(detectBolus(lastSamples), { state: 'rising' }, 'a rise in the last 10 samples only');
  t.throws(() => fitBolus(cut, 'lognormal'), /fitBolus: cannot fit a lognormal bolus: wash-in under way: no peak yet/, 'fitBolus refuses a rising curve');
  t.throws(() => fitBolus(noise, 'gammaVariate'), /cannot fit a gammaVariate bolus: no wash-in detected/, 'fitBolus refuses flat noise');
});

t.test('fitBolus: binning keeps gaps', async (t) => {
  const bins = binSamples(lnCurve, 400);
  t.ok(bins.t.length <= 400 && bins.t.length > 350, `${bins.t.length} bins`);
  t.notOk(bins.t.some((ti) => ti > GAP[0] + 0.25 && ti < GAP[1] - 0.25), 'no bin inside the 6 s gap');
  let ok = true;
  for (let i = 1; i < bins.t.length; i++) ok &&= bins.t[i] > bins.t[i - 1];
  t.ok(ok, 'bin times increase');
  const small = { t: lnCurve.t.subarray(0, 50), y: lnCurve.y.subarray(0, 50) };
  t.same(binSamples(small, 400), { t: small.t.slice(), y: small.y.slice() }, 'no binning under maxPoints');
});

t.test('fitBolus: lognormal recovers the ten parameters within 3 %', async (t) => {
  const fit = fitBolus(lnCurve, 'lognormal');
  t.ok(fit.rSquared > 0.99 && fit.converged && fit.n <= 400 && fit.nrmse < 0.01, `R² ${fit.rSquared.toFixed(5)}, nrmse ${fit.nrmse.toFixed(4)}, n ${fit.n}, ${fit.iterations} iterations`);
  t.equal(fitQuality(fit), 'good');
  const truth = bolusParameters('lognormal', LN), got = bolusParameters('lognormal', fit.params);
  for (const name of PARAMETER_NAMES) t.ok(rel(got[name], truth[name]) <= 0.03, `${name}: ${got[name].toPrecision(5)} vs truth ${truth[name].toPrecision(5)} ${PARAMETER_UNITS[name]}`);

  const gamma = fitBolus(lnCurve, 'gammaVariate');
  t.ok(gamma.rSquared >= 0.98, `gamma variate on lognormal data: R² ${gamma.rSquared.toFixed(5)}`);
});

t.test('fitBolus: the gamma variate recovers its own parameters', async (t) => {
  const fit = fitBolus(gvCurve, 'gammaVariate');
  t.ok(fit.rSquared > 0.99 && fitQuality(fit) === 'good', `R² ${fit.rSquared.toFixed(5)}`);
  for (const key of ['t0', 'alpha', 'beta'] as const) t.ok(rel(fit.params[key], GV[key]) < 0.05, `${key}: ${fit.params[key].toPrecision(5)} vs ${GV[key]}`);
  // k = PE·e^α/(αβ)^α amplifies the error of α, so it gets a wider margin.
  t.ok(rel(fit.params.k, GV.k) < 0.15, `k: ${fit.params.k.toPrecision(5)} vs ${GV.k.toPrecision(5)}`);
  t.ok(Math.abs(fit.params.baseline - GV.baseline) < 1e-3 * 0.8, `baseline ${fit.params.baseline} vs ${GV.baseline}`);
  const truth = bolusParameters('gammaVariate', GV), got = bolusParameters('gammaVariate', fit.params);
  for (const name of ['PE', 'TTP', 'AUC', 'MTT'] as const) t.ok(rel(got[name], truth[name]) < 0.02, `${name}: ${got[name].toPrecision(5)} vs ${truth[name].toPrecision(5)}`);
  // Noise-free data: exact recovery without binning; binning (means over 0.225 s bins) costs < 2e-3.
  const clean = capture('lognormal', LN, { seed: 6 });
  const exact = fitBolus(clean, 'lognormal', { maxPoints: 5000 }), binned = fitBolus(clean, 'lognormal');
  for (const key of ['t0', 'mu', 'sigma', 'area', 'baseline'] as const) {
    t.ok(rel(exact.params[key], LN[key]) < 1e-6, `noise-free lognormal, all ${exact.n} points: ${key} ${exact.params[key]} vs ${LN[key]}`);
    t.ok(rel(binned.params[key], LN[key]) < (key === 'baseline' ? 2e-2 : 2e-3), `noise-free lognormal, ${binned.n} bins: ${key} ${binned.params[key]} vs ${LN[key]}`);
  }
});

t.test('fitQuality is poor on noise', async (t) => {
  const normal = normals(8);
  const times = Float64Array.from({ length: 1800 }, (_, i) => i / 30);
  const noise = { t: times, y: times.map(() => 1 + 0.1 * normal()) };
  const arrival: WashInDetection = { state: 'wash-in', arrivalS: 10, baseline: 1, noise: 0.1, peakS: 20, peakY: 1.05 };
  for (const model of ['lognormal', 'gammaVariate'] as const) {
    const fit = fitBolus(noise, model, { arrival });
    t.equal(fitQuality(fit), 'poor', `${model} on noise: R² ${fit.rSquared.toFixed(3)}`);
  }
  const good = fitBolus(gvCurve, 'gammaVariate');
  t.equal(fitQuality({ ...good, params: { ...good.params, alpha: NaN } } as BolusFit), 'poor', 'a non-finite parameter is poor');
  t.equal(fitQuality({ ...good, rSquared: 0.89 }), 'poor', 'R² 0.89 is poor');
});

t.test('relativeParameters', async (t) => {
  const region = bolusParameters('lognormal', LN), reference = bolusParameters('gammaVariate', GV);
  const r = relativeParameters(region, reference);
  t.same(Object.keys(r).sort(), PARAMETER_NAMES.map((n) => `r${n}`).sort(), 'one ratio per parameter');
  for (const name of PARAMETER_NAMES) t.ok(rel(r[`r${name}`] as number, region[name] / reference[name]) < 1e-15, `r${name}`);
  const broken: PerfusionParameters = { ...reference, AT: 0, PE: Infinity, MTT: NaN };
  const rb = relativeParameters(region, broken);
  t.equal(rb.rAT, null, 'zero denominator gives null');
  t.equal(rb.rPE, null, 'infinite denominator gives null');
  t.equal(rb.rMTT, null, 'NaN denominator gives null');
  t.ok(Object.values(rb).every((v) => v === null || Number.isFinite(v)), 'no NaN anywhere');
  t.equal(relativeParameters({ ...region, TTP: NaN }, reference).rTTP, null, 'NaN numerator gives null');
});

t.test('phaseWindows', async (t) => {
  t.same(PHASES, ['pre', 'early', 'peak', 'late']);
  for (const [model, p] of [['lognormal', LN], ['gammaVariate', GV]] as const) {
    const q = bolusParameters(model, p as never), w = phaseWindows(model, p as never, q);
    const e = (ti: number) => evaluateBolus(model, p as never, ti) - p.baseline;
    t.same(w.pre, [-Infinity, q.AT], `${model}: pre ends at AT`);
    const order = [w.pre[1], w.early[0], w.early[1], w.peak[0], q.peakTime, w.peak[1], w.late[0], w.late[1]];
    t.ok(order.every((v, i) => i === 0 || v > order[i - 1]), `${model}: AT < early < peak start < peak < peak end < late: ${order.map((v) => v.toFixed(2)).join(' ')}`);
    const levels: Array<[number, number]> = [[w.early[0], 0.25], [w.early[1], 0.75], [w.peak[0], 0.9], [w.peak[1], 0.9], [w.late[0], 0.5], [w.late[1], 0.1]];
    for (const [ti, level] of levels) t.ok(Math.abs(e(ti) / q.PE - level) < 1e-6, `${model}: enhancement ${(e(ti) / q.PE).toFixed(6)} of PE at ${ti.toFixed(3)} s (expected ${level})`);
  }
  const q = bolusParameters('lognormal', LN), open = phaseWindows('lognormal', LN, q, { maxDurationS: 4 });
  t.ok(Number.isFinite(open.late[0]) && open.late[1] === Infinity, 'late is open-ended when the curve does not fall to 10 % in time');
});

t.test('bad input is refused with the problem named', async (t) => {
  const s = (t: number[], y: number[]) => ({ t: Float64Array.from(t), y: Float64Array.from(y) });
  const base = Array.from({ length: 30 }, (_, i) => i);
  t.throws(() => detectBolus(s([0, 2, 1, ...base.slice(3)], base)), /times must be strictly increasing, t\[2\] = 1 follows t\[1\] = 2/, 'unsorted t');
  t.throws(() => fitBolus(s([0, 1, 1, ...base.slice(3)], base), 'lognormal'), /strictly increasing/, 'duplicated timestamp');
  t.throws(() => detectBolus(s(base, base.slice(1))), /differ in length \(30 times, 29 intensities\)/, 'length mismatch');
  t.throws(() => detectBolus(s(base, base.map((v) => (v === 7 ? NaN : v)))), /intensity y\[7\] is not finite/, 'NaN intensity');
  t.throws(() => fitBolus(s(base.map((v) => (v === 3 ? NaN : v)), base), 'gammaVariate'), /time t\[3\] is not finite/, 'NaN time');
  t.throws(() => detectBolus({ t: base, y: base } as never), /must be Float64Arrays/, 'plain arrays');
  t.throws(() => detectBolus(lnCurve, { k: -1 }), /option k must be/, 'bad option');
  t.throws(() => fitBolus(lnCurve, 'logistic' as never), /unknown bolus model 'logistic'/, 'unknown model');
  t.throws(() => fitBolus(lnCurve, 'lognormal', { maxPoints: 3 }), /maxPoints must be an integer >= 10/, 'bad maxPoints');
  t.throws(() => fitBolus(lnCurve, 'lognormal', { arrival: { state: 'rising' } as never }), /opts.arrival must be a detectBolus result in state 'wash-in'/, 'bad arrival');
  t.throws(() => evaluateBolus('lognormal', { ...LN, sigma: 0 }, 10), /parameter sigma must be > 0/, 'sigma 0');
  t.throws(() => evaluateBolus('gammaVariate', { ...GV, k: NaN }, 10), /parameter k must be a finite number/, 'NaN k');
  t.throws(() => evaluateBolus('lognormal', LN, NaN), /time t must be finite/, 'NaN time');
  t.throws(() => bolusParameters('gammaVariate', { ...GV, alpha: 0.5 }), /alpha must be >= 1/, 'gamma alpha < 1');
  t.throws(() => bolusParameters('lognormal', { ...LN, area: 0 }), /no enhancement/, 'flat bolus');
  t.throws(() => relativeParameters({ ...bolusParameters('lognormal', LN), PE: undefined } as never, bolusParameters('lognormal', LN)), /region.PE must be a number/, 'missing parameter');
  t.throws(() => phaseWindows('lognormal', LN, { ...bolusParameters('lognormal', LN), PE: 0 }), /PE must be a finite number > 0/, 'PE 0');
  t.throws(() => phaseWindows('lognormal', LN, bolusParameters('lognormal', { ...LN, t0: 5 })), /is not this bolus's t0/, 'parameters of another bolus');
});
