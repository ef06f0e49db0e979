// Unpenalised logistic regression by maximum likelihood, and logistic calibration of predicted
// probabilities.
//
// fitLogistic: Newton-Raphson (= IRLS for the canonical logit link; McCullagh & Nelder 1989,
// "Generalized Linear Models", 2nd ed., ch. 4) on the design [1, X] with an optional fixed
// offset: eta = offset + b0 + X b. Each step solves (Z'WZ) d = Z'(y - mu) by Cholesky
// (ml-matrix), halving the step while the log-likelihood decreases. Converged when every
// coefficient changes by less than tol * (1 + |coefficient|); Newton's quadratic convergence makes
// the final estimate accurate far below tol. Standard errors are sqrt(diag((Z'WZ)^-1)) at the
// estimate (Wald). If Z'WZ is not positive definite (collinear or constant columns) a tiny ridge
// (1e-10 * the mean diagonal, raised tenfold until Cholesky succeeds) is added to the Hessian
// only: the fixed point still has a zero score, i.e. it is one of the (non-unique) MLEs, but the
// standard errors are then meaningless; the result says so (ridge > 0, warnings).
// Separation: when a linear combination predicts the outcome perfectly the MLE does not exist;
// Newton steps then never shrink, fitted probabilities reach 0 or 1 numerically and the Hessian
// collapses. The fit stops and reports separation: true, converged: false, standard errors NaN
// (instead of huge numbers passed off as estimates) when a fitted probability is within 1e-15 of
// 0 or 1 (|eta| > 34.5) and either the Hessian needs the ridge or maxIter is reached, or when
// every case is fitted within 1e-10 of its label. A case with an extreme probability in a fit
// that converges normally (an outlying covariate) is not separation and is not flagged.
//
// calibration: Van Calster et al. (2016) "A calibration hierarchy for risk models was defined:
// from utopia to empirical data", J Clin Epidemiol 74:167-176; Van Calster et al. (2019)
// "Calibration: the Achilles heel of predictive analytics", BMC Med 17:230. With L = logit(p):
// slope b from logit P(y=1) = a + b L (logistic recalibration; ideal 1), calibration-in-the-large
// a' from logit P(y=1) = a' + offset(L) (slope fixed at 1; ideal 0). p is clamped to
// [1e-12, 1 - 1e-12] before the logit. Bins for the calibration plot: cases sorted by p
// (ties by input order) and dealt into `bins` groups of equal size (sizes differ by at most one;
// case k of n goes to group floor(k * bins / n)); each bin reports the mean predicted
// probability and the observed fraction of label 1.
import { CholeskyDecomposition, Matrix } from 'ml-matrix';

export interface LogisticOptions {
  /** Fixed per-case offset added to the linear predictor (default none). */
  offset?: number[];
  /** Newton iterations (default 100). */
  maxIter?: number;
  /** Relative coefficient change for convergence (default 1e-8). */
  tol?: number;
  /** Fit an intercept (default true); false gives intercept 0. */
  fitIntercept?: boolean;
}

export interface LogisticFit {
  /** 0 when fitIntercept is false. */
  intercept: number;
  coefficients: number[];
  /** Wald standard errors of `coefficients`, same order. */
  standardErrors: number[];
  /** Wald standard error of the intercept (NaN when fitIntercept is false). */
  interceptSe: number;
  iterations: number;
  converged: boolean;
  /** Log-likelihood at the returned estimate. */
  logLik: number;
  /** Fitted probabilities numerically 0 or 1 without convergence: (quasi-)complete separation. */
  separation: boolean;
  /** Ridge added to the Hessian because it was singular (0 = never). */
  ridge: number;
  warnings: string[];
}

export interface CalibrationBin { predicted: number; observed: number; n: number }

export interface CalibrationResult {
  /** b in logit P(y=1) = a + b logit(p); ideal 1. */
  slope: number;
  slopeSe: number;
  /** a in the same model (the recalibration intercept, not calibration-in-the-large). */
  recalibrationIntercept: number;
  /** Calibration-in-the-large a' in logit P(y=1) = a' + offset(logit p); ideal 0. */
  intercept: number;
  interceptSe: number;
  /** Both logistic fits converged. */
  converged: boolean;
  bins: CalibrationBin[];
}

/** log(1 + exp(eta)) without overflow. */
export function softplus(eta: number): number {
  return eta > 0 ? eta + Math.log1p(Math.exp(-eta)) : Math.log1p(Math.exp(eta));
}

/** 1 / (1 + exp(-eta)) without overflow. */
export function sigmoid(eta: number): number {
  if (eta >= 0) return 1 / (1 + Math.exp(-eta));
  const e = Math.exp(eta);
  return e / (1 + e);
}

/** mu (1 - mu) for mu = sigmoid(eta), accurate in the tails. */
function binomialWeight(eta: number): number {
  const e = Math.exp(-Math.abs(eta));
  return e / ((1 + e) * (1 + e));
}

export function checkLabels(y: ArrayLike<number>, what: string): number {
  let nPos = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] !== 0 && y[i] !== 1) throw new Error(`${what}: label ${i} is ${y[i]}; labels must be 0 or 1`);
    nPos += y[i];
  }
  return nPos;
}

/** Checks X (n rows of equal length, finite values) against y; returns the column count. */
export function checkDesign(X: number[][], n: number, what: string): number {
  if (X.length === 0) return 0; // no rows given: n rows of zero columns
  if (X.length !== n) throw new Error(`${what}: X has ${X.length} rows but y has ${n} labels`);
  const p = X[0].length;
  for (let i = 0; i < n; i++) {
    const row = X[i];
    if (row.length !== p) throw new Error(`${what}: row ${i} of X has ${row.length} values, row 0 has ${p}`);
    for (let j = 0; j < p; j++) if (!Number.isFinite(row[j])) throw new Error(`${what}: X[${i}][${j}] is ${row[j]}; values must be finite`);
  }
  return p;
}

/**
 * Maximum-likelihood logistic regression of y (0/1) on the columns of X (n x p, p may be 0),
 * with an optional offset. See the file header for the method and the separation handling.
 */
export function fitLogistic(X: number[][], y: number[], opts: LogisticOptions = {}): LogisticFit {
  const n = y.length;
  if (n === 0) throw new Error('fitLogistic: no cases');
  const nPos = checkLabels(y, 'fitLogistic');
  const p = checkDesign(X, n, 'fitLogistic');
  const fitIntercept = opts.fitIntercept ?? true;
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-8;
  const offset = opts.offset;
  if (offset) {
    if (offset.length !== n) throw new Error(`fitLogistic: offset has ${offset.length} values for ${n} cases`);
    for (let i = 0; i < n; i++) if (!Number.isFinite(offset[i])) throw new Error(`fitLogistic: offset[${i}] is ${offset[i]}`);
  }
  const q = p + (fitIntercept ? 1 : 0);
  const col0 = fitIntercept ? 1 : 0;
  const warnings: string[] = [];
  // Design value of case i, parameter k (k = 0 is the intercept when fitted).
  const z = (i: number, k: number) => (k < col0 ? 1 : X[i][k - col0]);

  const beta = new Float64Array(q);
  if (fitIntercept && !offset && nPos > 0 && nPos < n) beta[0] = Math.log(nPos / (n - nPos));
  const eta = new Float64Array(n);
  const linearPredictor = (b: Float64Array, out: Float64Array) => {
    for (let i = 0; i < n; i++) {
      let s = offset ? offset[i] : 0;
      for (let k = 0; k < q; k++) s += z(i, k) * b[k];
      out[i] = s;
    }
  };
  const logLikOf = (e: Float64Array) => {
    let ll = 0;
    for (let i = 0; i < n; i++) ll += y[i] * e[i] - softplus(e[i]);
    return ll;
  };
  const hessian = (e: Float64Array) => {
    const h = new Matrix(q, q);
    for (let i = 0; i < n; i++) {
      const w = binomialWeight(e[i]);
      for (let a = 0; a < q; a++) {
        const wa = w * z(i, a);
        for (let b = 0; b <= a; b++) h.set(a, b, h.get(a, b) + wa * z(i, b));
      }
    }
    for (let a = 0; a < q; a++) for (let b = 0; b < a; b++) h.set(b, a, h.get(a, b));
    return h;
  };
  // Cholesky of h, adding a tiny ridge when it is not positive definite; delta = the ridge used.
  let ridge = 0;
  const factor = (h: Matrix): { chol: CholeskyDecomposition; delta: number } | undefined => {
    let chol = new CholeskyDecomposition(h);
    if (chol.isPositiveDefinite()) return { chol, delta: 0 };
    let scale = 0;
    for (let a = 0; a < q; a++) scale += Math.abs(h.get(a, a));
    scale = scale / q || 1;
    for (let delta = 1e-10 * scale; delta <= 1e-2 * scale; delta *= 10) {
      const hr = h.clone();
      for (let a = 0; a < q; a++) hr.set(a, a, hr.get(a, a) + delta);
      chol = new CholeskyDecomposition(hr);
      if (chol.isPositiveDefinite()) return { chol, delta };
    }
    return undefined;
  };
  const extreme = (e: Float64Array) => {
    for (let i = 0; i < n; i++) if (Math.abs(e[i]) > 34.5) return true; // 1 - mu < 1e-15
    return false;
  };

  linearPredictor(beta, eta);
  let ll = logLikOf(eta);
  let converged = false, iterations = 0, stalled = false, separated = false, singularAtStart = false;
  const trial = new Float64Array(q), etaTrial = new Float64Array(n);
  while (iterations < maxIter && q > 0) {
    iterations++;
    const grad = new Matrix(q, 1);
    for (let i = 0; i < n; i++) {
      const r = y[i] - sigmoid(eta[i]);
      for (let k = 0; k < q; k++) grad.set(k, 0, grad.get(k, 0) + z(i, k) * r);
    }
    const f = factor(hessian(eta));
    if (!f) { stalled = true; break; }
    if (iterations === 1) singularAtStart = f.delta > 0;
    else if (f.delta > 0 && !singularAtStart && extreme(eta)) { separated = true; break; } // weights collapsed on the way
    ridge = Math.max(ridge, f.delta);
    const d = f.chol.solve(grad).getColumn(0);
    let t = 1, llTrial = -Infinity;
    for (let halvings = 0; halvings < 40; halvings++, t /= 2) {
      for (let k = 0; k < q; k++) trial[k] = beta[k] + t * d[k];
      linearPredictor(trial, etaTrial);
      llTrial = logLikOf(etaTrial);
      if (llTrial >= ll - 1e-12 * Math.abs(ll)) break;
    }
    if (!(llTrial >= ll - 1e-12 * Math.abs(ll)) || !Number.isFinite(llTrial)) { stalled = true; break; }
    let small = true;
    for (let k = 0; k < q; k++) {
      if (!(Math.abs(trial[k] - beta[k]) <= tol * (1 + Math.abs(trial[k])))) small = false;
      beta[k] = trial[k];
    }
    eta.set(etaTrial);
    ll = llTrial;
    if (f.delta > 0 && extreme(eta)) { separated = true; break; } // a ridge step cannot prove convergence here
    if (small) { converged = true; break; }
  }
  if (q === 0) converged = true;

  // Every case fitted (numerically) perfectly: only possible at infinity.
  let perfect = true;
  for (let i = 0; i < n && perfect; i++) if (Math.abs(y[i] - sigmoid(eta[i])) > 1e-10) perfect = false;
  const separation = q > 0 && (separated || perfect || (!converged && extreme(eta)));
  if (separation) converged = false;
  if (nPos === 0 || nPos === n) warnings.push(`all ${n} labels are ${nPos === 0 ? 0 : 1}: the maximum-likelihood estimate does not exist`);
  else if (separation) warnings.push('fitted probabilities numerically 0 or 1: the outcome is (quasi-)completely separated, the maximum-likelihood estimate does not exist');
  if (!converged && !separation) warnings.push(stalled
    ? 'Newton iterations stalled (no increase of the log-likelihood); estimates are not reliable'
    : `no convergence in ${maxIter} iterations`);

  // Wald standard errors at the estimate (none when the estimate does not exist).
  const se = new Array<number>(q).fill(NaN);
  if (q > 0 && !separation) {
    const f = factor(hessian(eta));
    if (f) {
      ridge = Math.max(ridge, f.delta);
      const inv = f.chol.solve(Matrix.eye(q, q));
      for (let k = 0; k < q; k++) se[k] = Math.sqrt(inv.get(k, k));
    }
    if (ridge > 0) warnings.push(`the information matrix is singular (collinear or constant columns?): a ridge of ${ridge.toExponential(2)} was added; coefficients are not unique and standard errors are not meaningful`);
  }
  return {
    intercept: fitIntercept ? beta[0] : 0,
    coefficients: Array.from(beta.subarray(col0)),
    standardErrors: se.slice(col0),
    interceptSe: fitIntercept ? se[0] : NaN,
    iterations, converged, logLik: ll, separation, ridge, warnings,
  };
}

const P_MIN = 1e-12;

/** Logit of p clamped to [1e-12, 1 - 1e-12]. */
export function clampedLogit(p: number): number {
  const c = Math.min(1 - P_MIN, Math.max(P_MIN, p));
  return Math.log(c / (1 - c));
}

/** Calibration slope, calibration-in-the-large and quantile bins (see the file header). */
export function calibration(probabilities: number[], labels: number[], bins = 10): CalibrationResult {
  const n = probabilities.length;
  if (labels.length !== n) throw new Error(`calibration: ${n} probabilities but ${labels.length} labels`);
  if (n === 0) throw new Error('calibration: no cases');
  checkLabels(labels, 'calibration');
  for (let i = 0; i < n; i++)
    if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) throw new Error(`calibration: probability ${i} is ${probabilities[i]}; must be in [0, 1]`);
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`calibration: bins must be a positive integer, got ${bins}`);
  const lp = probabilities.map(clampedLogit);
  const slopeFit = fitLogistic(lp.map((v) => [v]), labels);
  const citl = fitLogistic([], labels, { offset: lp });

  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probabilities[a] - probabilities[b] || a - b);
  const nb = Math.min(bins, n);
  const out: CalibrationBin[] = [];
  for (let g = 0; g < nb; g++) {
    const start = Math.ceil((g * n) / nb), end = Math.ceil(((g + 1) * n) / nb);
    let sp = 0, sy = 0;
    for (let k = start; k < end; k++) { sp += probabilities[order[k]]; sy += labels[order[k]]; }
    out.push({ predicted: sp / (end - start), observed: sy / (end - start), n: end - start });
  }
  return {
    slope: slopeFit.coefficients[0], slopeSe: slopeFit.standardErrors[0],
    recalibrationIntercept: slopeFit.intercept,
    intercept: citl.intercept, interceptSe: citl.interceptSe,
    converged: slopeFit.converged && citl.converged,
    bins: out,
  };
}
