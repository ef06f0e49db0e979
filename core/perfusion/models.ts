// Bolus models of a CEUS time-intensity curve (TIC): intensity I(t) at time t (seconds, on the
// curve's own time axis) = baseline + enhancement, the enhancement being 0 for t <= t0 (before the
// contrast arrives).
//
//   lognormal     I(t) = baseline + area / (sqrt(2π)·σ·x) · exp(−(ln x − μ)² / (2σ²)),   x = t − t0
//                 (area = ∫ enhancement dt; mode at x = exp(μ − σ²); mean transit x = exp(μ + σ²/2))
//   gammaVariate  I(t) = baseline + k · x^α · exp(−x/β)
//                 (area = k·β^(α+1)·Γ(α+1); mode at x = αβ; mean transit x = (α+1)β)
//
// Besides evaluation, this file holds the analytic slope dI/dt and the closed-form descriptors
// (analyticBolus) that the tests use to cross-check the numerical bolus parameters.

export type BolusModelName = 'lognormal' | 'gammaVariate';
export const BOLUS_MODELS: readonly BolusModelName[] = ['lognormal', 'gammaVariate'];

export interface LognormalParams { baseline: number; area: number; t0: number; mu: number; sigma: number }
export interface GammaVariateParams { baseline: number; k: number; t0: number; alpha: number; beta: number }
export interface BolusParamsOf { lognormal: LognormalParams; gammaVariate: GammaVariateParams }
export type BolusParams = LognormalParams | GammaVariateParams;

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** Throws unless `model` names a bolus model and `params` holds its finite parameters (σ, α, β > 0). */
export function checkBolus(model: BolusModelName, params: BolusParams, who = 'bolus'): void {
  if (!BOLUS_MODELS.includes(model)) throw new RangeError(`${who}: unknown bolus model '${String(model)}' (expected ${BOLUS_MODELS.join(' or ')})`);
  if (params === null || typeof params !== 'object') throw new TypeError(`${who}: ${model} parameters must be an object`);
  const keys = model === 'lognormal' ? ['baseline', 'area', 't0', 'mu', 'sigma'] : ['baseline', 'k', 't0', 'alpha', 'beta'];
  const p = params as unknown as Record<string, unknown>;
  for (const key of keys) {
    if (typeof p[key] !== 'number' || !Number.isFinite(p[key])) throw new RangeError(`${who}: ${model} parameter ${key} must be a finite number (got ${String(p[key])})`);
  }
  for (const key of model === 'lognormal' ? ['sigma'] : ['alpha', 'beta']) {
    if ((p[key] as number) <= 0) throw new RangeError(`${who}: ${model} parameter ${key} must be > 0 (got ${String(p[key])})`);
  }
}

/** Enhancement (I − baseline) of a checked bolus at time t; no validation (hot path). */
export function enhancementAt(model: BolusModelName, p: BolusParams, t: number): number {
  const x = t - p.t0;
  if (!(x > 0)) return 0;
  if (model === 'lognormal') {
    const { area, mu, sigma } = p as LognormalParams;
    const z = (Math.log(x) - mu) / sigma;
    return (area / (SQRT_2PI * sigma * x)) * Math.exp(-0.5 * z * z);
  }
  const { k, alpha, beta } = p as GammaVariateParams;
  return k * Math.pow(x, alpha) * Math.exp(-x / beta);
}

/** Slope dI/dt of a checked bolus at time t (a.u./s); 0 for t < t0; no validation (hot path). */
export function slopeAt(model: BolusModelName, p: BolusParams, t: number): number {
  const x = t - p.t0;
  if (model === 'lognormal') {
    if (!(x > 0)) return 0;
    const { mu, sigma } = p as LognormalParams;
    // d/dx [f] = −f · (1 + (ln x − μ)/σ²) / x
    return (-enhancementAt(model, p, t) * (1 + (Math.log(x) - mu) / (sigma * sigma))) / x;
  }
  if (x < 0) return 0;
  const { k, alpha, beta } = p as GammaVariateParams;
  // d/dx [k x^α e^(−x/β)] = k e^(−x/β) x^(α−1) (α − x/β); at x = 0 this is k for α = 1, ∞ for α < 1
  return k * Math.exp(-x / beta) * Math.pow(x, alpha - 1) * (alpha - x / beta);
}

/** I(t) of a bolus model: baseline + enhancement (validated). */
export function evaluateBolus<M extends BolusModelName>(model: M, params: BolusParamsOf[M], t: number): number {
  checkBolus(model, params, 'evaluateBolus');
  if (!Number.isFinite(t)) throw new RangeError(`evaluateBolus: time t must be finite (got ${t})`);
  return params.baseline + enhancementAt(model, params, t);
}

/** I(t) at every time of `t` (validated once). */
export function evaluateBolusCurve<M extends BolusModelName>(model: M, params: BolusParamsOf[M], t: Float64Array): Float64Array {
  checkBolus(model, params, 'evaluateBolusCurve');
  if (!(t instanceof Float64Array)) throw new TypeError('evaluateBolusCurve: times must be a Float64Array');
  const out = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) {
    if (!Number.isFinite(t[i])) throw new RangeError(`evaluateBolusCurve: time t[${i}] must be finite (got ${t[i]})`);
    out[i] = params.baseline + enhancementAt(model, params, t[i]);
  }
  return out;
}

/** ln Γ(z) for z > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15). */
export function lnGamma(z: number): number {
  if (!(z > 0) || !Number.isFinite(z)) throw new RangeError(`lnGamma: argument must be a finite number > 0 (got ${z})`);
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  const x = z - 1;
  let a = c[0];
  const tt = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(tt) - tt + Math.log(a);
}

/** Closed-form descriptors of a bolus (times absolute, on the curve's axis). */
export interface AnalyticBolus {
  /** ∫ from t0 to ∞ of the enhancement (a.u.·s). */
  area: number;
  /** Time of the maximum (s). */
  peakTime: number;
  /** Maximum enhancement (a.u.). */
  peakEnhancement: number;
  /** First moment of the enhancement measured from t0 (s). */
  meanTransit: number;
  /** Inflection point of the wash-in (steepest rise), s; t0 for a gamma variate with α = 1. */
  washInInflection: number;
  /** Inflection point of the wash-out (steepest fall), s. */
  washOutInflection: number;
}

/** The analytic area, mode, peak, mean transit and inflection points of a bolus. */
export function analyticBolus<M extends BolusModelName>(model: M, params: BolusParamsOf[M]): AnalyticBolus {
  checkBolus(model, params, 'analyticBolus');
  if (model === 'lognormal') {
    const { area, t0, mu, sigma } = params as LognormalParams;
    const s2 = sigma * sigma;
    // Inflections of the lognormal density: ln x = μ − 3σ²/2 ∓ (σ/2)·sqrt(σ² + 4)
    const half = (sigma / 2) * Math.sqrt(s2 + 4);
    return {
      area,
      peakTime: t0 + Math.exp(mu - s2),
      peakEnhancement: (area * Math.exp(s2 / 2 - mu)) / (SQRT_2PI * sigma),
      meanTransit: Math.exp(mu + s2 / 2),
      washInInflection: t0 + Math.exp(mu - 1.5 * s2 - half),
      washOutInflection: t0 + Math.exp(mu - 1.5 * s2 + half),
    };
  }
  const { k, t0, alpha, beta } = params as GammaVariateParams;
  if (alpha < 1) throw new RangeError(`analyticBolus: gammaVariate alpha must be >= 1 for a finite wash-in slope (got ${alpha})`);
  const mode = alpha * beta;
  return {
    area: k * Math.exp((alpha + 1) * Math.log(beta) + lnGamma(alpha + 1)),
    peakTime: t0 + mode,
    peakEnhancement: k * Math.pow(mode, alpha) * Math.exp(-alpha),
    meanTransit: (alpha + 1) * beta,
    // Inflections of x^α e^(−x/β): x = β(α ∓ sqrt(α))
    washInInflection: t0 + beta * (alpha - Math.sqrt(alpha)),
    washOutInflection: t0 + beta * (alpha + Math.sqrt(alpha)),
  };
}
