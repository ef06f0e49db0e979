// Least-squares fit of a bolus model (core/perfusion/models.ts) to a CEUS time-intensity curve, with
// the Levenberg-Marquardt engine of ml-levenberg-marquardt (analytic Jacobians).
//
//  1. Binning: the samples are averaged into at most maxPoints (default 400) equal time bins (mean
//     time and mean intensity per bin); empty bins are skipped, so gaps stay gaps.
//  2. Scaling: intensities are fitted as (y − baseline) / (peakY − baseline) from the detection
//     (core/perfusion/arrival.ts), so every parameter is of order 1 whatever the units.
//     The gamma variate is fitted in Madsen's form b + A·(x/tm)^α·exp(α(1 − x/tm)) (A = peak
//     enhancement, tm = time from t0 to peak), which decouples amplitude and shape; it is converted
//     back to k = A·e^α / tm^α, β = tm/α.
//  3. Starting points: t0 slightly before the detected arrival, (arrival − c·(peak − arrival),
//     c = 0.1 and 0.4: the bolus leaves the noise band after its true start), peak time and height
//     from the detection; the width from moment matching of the enhancement (lognormal:
//     mean/mode = exp(1.5σ²); gamma: mean/mode = (α+1)/α), and a second width (lognormal σ × 1.6,
//     gamma α / 2). The lognormal t0–μ–σ trade-off makes single starts unreliable, so all 2 × 2
//     starts are screened (10 LM iterations on a thinned copy of the points) and the one with the
//     best SSE on all the points is polished to convergence.
//  4. Bounds: t0 in [first sample, detected peak time], σ in [0.02, 3], α in [1, 100] (α < 1 would
//     mean an infinite wash-in slope at t0), tm >= 0.05 s, area, k >= 0, baseline within ± the
//     detected peak enhancement of the detected baseline.
// Quality: R² and RMSE are computed on the fitted (binned) points; nrmse = rmse / fitted peak
// enhancement. fitQuality() calls a fit 'good' when every parameter is finite, the fitted peak
// enhancement is > 0 and R² >= GOOD_FIT_R2 (0.9): below that the model explains less than 90 % of the
// curve's variance and its parameters must not be reported.
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { checkSamples, detectBolus, type TicSamples, type WashInDetection } from './arrival.js';
import { analyticBolus, BOLUS_MODELS, type BolusModelName, type BolusParamsOf } from './models.js';

export interface FitOptions {
  /** The detection to start from (default: detectBolus(samples), which must find a wash-in). */
  arrival?: WashInDetection;
  /** At most this many binned points are fitted (default 400). */
  maxPoints?: number;
  /** Levenberg-Marquardt iteration budget of the kept start, screening included (default 300). */
  maxIterations?: number;
}

export interface BolusFit<M extends BolusModelName = BolusModelName> {
  model: M;
  params: BolusParamsOf[M];
  /** Coefficient of determination on the fitted (binned) points. */
  rSquared: number;
  /** Root mean square residual (intensity units) on the fitted points. */
  rmse: number;
  /** rmse / fitted peak enhancement (Infinity when the fitted bolus is flat). */
  nrmse: number;
  /** Levenberg-Marquardt iterations of the kept start. */
  iterations: number;
  /** The kept start stopped because its SSE no longer decreased (relative change < 1e-9), not on the budget. */
  converged: boolean;
  /** Number of fitted (binned) points. */
  n: number;
}

/** R² threshold of a usable fit (see the file header). */
export const GOOD_FIT_R2 = 0.9;

/** Averages samples into at most maxPoints equal time bins; empty bins are skipped. */
export function binSamples(samples: TicSamples, maxPoints: number): TicSamples {
  checkSamples(samples, 'binSamples');
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new RangeError(`binSamples: maxPoints must be an integer >= 2 (got ${maxPoints})`);
  const { t, y } = samples, n = t.length;
  if (n <= maxPoints) return { t: t.slice(), y: y.slice() };
  const w = (t[n - 1] - t[0]) / maxPoints;
  const st = new Float64Array(maxPoints), sy = new Float64Array(maxPoints), c = new Float64Array(maxPoints);
  for (let i = 0; i < n; i++) {
    const b = Math.min(Math.floor((t[i] - t[0]) / w), maxPoints - 1);
    st[b] += t[i]; sy[b] += y[i]; c[b]++;
  }
  const bt: number[] = [], by: number[] = [];
  for (let b = 0; b < maxPoints; b++) if (c[b] > 0) { bt.push(st[b] / c[b]); by.push(sy[b] / c[b]); }
  return { t: Float64Array.from(bt), y: Float64Array.from(by) };
}

type Vec = number[];
const SQRT_2PI = Math.sqrt(2 * Math.PI);
/** LM iterations per start in the screening, and per polishing chunk. */
const SCREEN_ITERATIONS = 10, POLISH_CHUNK = 10;

/** Scaled model, its Jacobian and its bounds, in the internal parameter vector of each model. */
const INTERNAL = {
  // [b, a, t0, mu, sigma]: b + a · lognormal density
  lognormal: {
    value: ([b, a, t0, mu, sigma]: Vec) => (t: number) => {
      const x = t - t0;
      if (!(x > 0)) return b;
      const z = (Math.log(x) - mu) / sigma;
      return b + (a * Math.exp(-0.5 * z * z)) / (SQRT_2PI * sigma * x);
    },
    jacobian: ([, a, t0, mu, sigma]: Vec) => (t: number) => {
      const x = t - t0;
      if (!(x > 0)) return [1, 0, 0, 0, 0];
      const z = (Math.log(x) - mu) / sigma;
      const p = Math.exp(-0.5 * z * z) / (SQRT_2PI * sigma * x), g = a * p;
      return [1, p, (g * (1 + z / sigma)) / x, (g * z) / sigma, (g * (z * z - 1)) / sigma];
    },
  },
  // [b, A, t0, tm, alpha]: b + A (x/tm)^α exp(α(1 − x/tm))
  gammaVariate: {
    value: ([b, A, t0, tm, alpha]: Vec) => (t: number) => {
      const x = t - t0;
      if (!(x > 0)) return b;
      const u = x / tm;
      return b + A * Math.exp(alpha * (Math.log(u) + 1 - u));
    },
    jacobian: ([, A, t0, tm, alpha]: Vec) => (t: number) => {
      const x = t - t0;
      if (!(x > 0)) return [1, 0, 0, 0, 0];
      const u = x / tm, l = Math.log(u) + 1 - u, e = Math.exp(alpha * l), h = A * e;
      return [1, e, -h * alpha * (1 / x - 1 / tm), (h * alpha * (u - 1)) / tm, h * l];
    },
  },
} as const;

/** Sum of squared residuals of the internal model over the points. */
function sse(value: (p: Vec) => (t: number) => number, p: Vec, x: Float64Array, y: Float64Array): number {
  const f = value(p);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (y[i] - f(x[i])) ** 2;
  return s;
}

function checkDetection(d: WashInDetection): void {
  if (d === null || typeof d !== 'object' || d.state !== 'wash-in') throw new RangeError("fitBolus: opts.arrival must be a detectBolus result in state 'wash-in'");
  for (const key of ['arrivalS', 'baseline', 'noise', 'peakS', 'peakY'] as const) {
    if (!Number.isFinite(d[key])) throw new RangeError(`fitBolus: opts.arrival.${key} must be finite (got ${d[key]})`);
  }
  if (!(d.peakY > d.baseline)) throw new RangeError(`fitBolus: opts.arrival.peakY (${d.peakY}) must exceed its baseline (${d.baseline})`);
  if (!(d.peakS > d.arrivalS)) throw new RangeError(`fitBolus: opts.arrival.peakS (${d.peakS}) must come after arrivalS (${d.arrivalS})`);
}

/** Fits a bolus model to a TIC; see the file header for the method. */
export function fitBolus<M extends BolusModelName>(samples: TicSamples, model: M, opts: FitOptions = {}): BolusFit<M> {
  checkSamples(samples, 'fitBolus');
  if (!BOLUS_MODELS.includes(model)) throw new RangeError(`fitBolus: unknown bolus model '${String(model)}' (expected ${BOLUS_MODELS.join(' or ')})`);
  const maxPoints = opts.maxPoints ?? 400;
  const maxIterations = opts.maxIterations ?? 300;
  if (!Number.isInteger(maxPoints) || maxPoints < 10) throw new RangeError(`fitBolus: maxPoints must be an integer >= 10 (got ${maxPoints})`);
  if (!Number.isInteger(maxIterations) || maxIterations < 1) throw new RangeError(`fitBolus: maxIterations must be an integer >= 1 (got ${maxIterations})`);
  let det = opts.arrival;
  if (det === undefined) {
    const found = detectBolus(samples);
    if (found.state !== 'wash-in') throw new Error(`fitBolus: cannot fit a ${model} bolus: ${found.message}`);
    det = found;
  }
  checkDetection(det);

  const bins = binSamples(samples, maxPoints), n = bins.t.length;
  if (n < 10) throw new RangeError(`fitBolus: ${n} (binned) points, at least 10 needed to fit 5 parameters`);
  const first = samples.t[0], last = samples.t[samples.t.length - 1];
  if (!(det.peakS > first && det.peakS <= last)) throw new RangeError(`fitBolus: opts.arrival.peakS (${det.peakS} s) lies outside the curve (${first} to ${last} s)`);
  const scale = det.peakY - det.baseline;
  const x = bins.t, yn = bins.y.map((v) => (v - det.baseline) / scale);
  const arrival = Math.min(Math.max(det.arrivalS, first), det.peakS);
  const { value, jacobian } = INTERNAL[model];

  // Moment matching: mean time from t0 of the positive enhancement over its mode.
  const meanOverMode = (t0: number, tm: number) => {
    let s0 = 0, s1 = 0;
    for (let i = 0; i < n; i++) if (x[i] > t0 && yn[i] > 0) { s0 += yn[i]; s1 += (x[i] - t0) * yn[i]; }
    return s0 > 0 ? s1 / s0 / tm : 1.5;
  };
  const starts: Vec[] = [];
  for (const c of [0.1, 0.4]) {
    const t0 = Math.max(first, arrival - c * (det.peakS - arrival));
    const tm = Math.max(det.peakS - t0, 0.1), r = Math.max(meanOverMode(t0, tm), 1.05);
    if (model === 'lognormal') {
      const sigma = Math.min(Math.max(Math.sqrt(Math.log(r) / 1.5), 0.15), 1.5);
      for (const s of [sigma, 1.6 * sigma]) starts.push([0, SQRT_2PI * s * tm * Math.exp(s * s / 2), t0, Math.log(tm) + s * s, s]);
    } else {
      const alpha = Math.min(Math.max(1 / (r - 1), 1), 30);
      for (const a of [alpha, Math.max(1, alpha / 2)]) starts.push([0, 1, t0, tm, a]);
    }
  }
  const span = x[n - 1] - first;
  const minValues = model === 'lognormal' ? [-1, 0, first, -10, 0.02] : [-1, 0, first, 0.05, 1];
  const maxValues = model === 'lognormal' ? [1, 1e4 * Math.max(span, 1), det.peakS, 10, 3] : [1, 10, det.peakS, 10 * Math.max(span, 1), 100];

  // Levenberg-Marquardt. Every start is screened with a few iterations on a thinned copy of the
  // points (every stride-th, at most ~100); the best start is then polished on all the points, in
  // chunks because the engine stops only on its budget or a tiny SSE: we stop when a chunk lowers
  // the SSE by less than 1e-9 of itself.
  const tolerance = 1e-14 * n, stride = Math.max(1, Math.floor(n / 100));
  const lm = (px: Float64Array, py: Float64Array, p: Vec, iterations: number) => levenbergMarquardt({ x: px, y: py }, value, {
    initialValues: p, minValues, maxValues, jacobianFunction: jacobian, maxIterations: iterations, errorTolerance: tolerance,
  });
  const thin = (v: Float64Array) => v.filter((_, i) => i % stride === 0);
  const tx = thin(x), ty = thin(yn);
  let p = starts[0], err = Infinity, iterations = 0, converged = false;
  for (const start of starts) {
    const r = lm(tx, ty, start, SCREEN_ITERATIONS), e = sse(value, r.parameterValues, x, yn);
    if (e < err) { p = r.parameterValues; err = e; iterations = r.iterations; }
  }
  while (iterations < maxIterations) {
    const r = lm(x, yn, p, Math.min(POLISH_CHUNK, maxIterations - iterations));
    iterations += r.iterations;
    const gain = err - r.parameterError;
    if (Number.isFinite(r.parameterError) && gain > 0) { p = r.parameterValues; err = r.parameterError; }
    if (!(gain > 1e-9 * err) || err <= tolerance) { converged = true; break; }
  }
  // Back to the public parameters in intensity units.
  const [b, amp, t0, s1, s2] = p;
  const baseline = det.baseline + scale * b;
  const params = (model === 'lognormal'
    ? { baseline, area: scale * amp, t0, mu: s1, sigma: s2 }
    : { baseline, k: scale * amp * Math.exp(s2 * (1 - Math.log(s1))), t0, alpha: s2, beta: s1 / s2 }) as BolusParamsOf[M];
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yn[i] / n;
  let sst = 0;
  for (let i = 0; i < n; i++) sst += (yn[i] - mean) ** 2;
  const rmse = scale * Math.sqrt(err / n);
  const pe = analyticBolus(model, params).peakEnhancement;
  return {
    model, params, rSquared: sst > 0 ? 1 - err / sst : 0, rmse, nrmse: pe > 0 ? rmse / pe : Infinity,
    iterations, converged, n,
  };
}

/** 'good' when the fit may be reported as parameters (see the file header), else 'poor'. */
export function fitQuality(fit: BolusFit): 'good' | 'poor' {
  if (fit === null || typeof fit !== 'object' || !fit.params) throw new TypeError('fitQuality: expected a fitBolus result');
  const finite = Object.values(fit.params).every((v) => Number.isFinite(v));
  return finite && fit.rSquared >= GOOD_FIT_R2 && fit.nrmse >= 0 && Number.isFinite(fit.nrmse) ? 'good' : 'poor';
}
