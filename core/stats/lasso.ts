// L1-penalised (LASSO) logistic regression along a lambda path, and its cross-validation, after
// R glmnet: Friedman, Hastie & Tibshirani (2010) "Regularization paths for generalized linear
// models via coordinate descent", J Stat Softw 33(1):1-22.
//
// Objective: -(1/n) loglik(b0, b) + lambda * ||b||_1, the intercept b0 not penalised. Features
// are standardised internally (mean 0, population sd 1, as glmnet standardize = TRUE with equal
// weights); coefficients are returned on the original scale (b_j / sd_j, intercept
// b0 - sum_j mean_j b_j / sd_j). Constant columns (all values equal) get coefficient 0.
// Solver: outer IRLS (quadratic approximation of the log-likelihood at the current fit, weights
// w = p(1-p) floored at 1e-5 for stability, which changes the speed but not the fixed point)
// around cyclic coordinate descent with soft-thresholding on the penalised weighted least
// squares problem: a full sweep over all features, then sweeps over the active (non-zero) set
// until it settles, then a full sweep again until nothing changes. When the active-set sweeps
// converge slowly (correlated features: after 10, 20, 40, ... sweeps) the weighted least-squares
// problem restricted to the active set with its signs fixed is solved directly (its stationarity
// conditions are linear; Cholesky via ml-matrix) and the solution kept only if no sign changes;
// the following full sweep verifies it like any other iterate. Each outer step that would
// raise the penalised objective is halved (a safeguard glmnet does not have). Warm starts along
// a decreasing lambda path. Converged when the largest coefficient change (standardised scale,
// intercept included) is below tol, both for the coordinate sweeps and between outer steps.
// lambda_max = max_j |x_j . (y - ybar)| / n on the standardised columns: the smallest lambda whose
// solution has every coefficient 0; for lambda >= lambda_max the fit is set to that solution
// (b = 0, b0 = logit(ybar)) exactly. Default path: nLambda values log-spaced from lambda_max down
// to lambdaMinRatio * lambda_max (0.01 when n < p, else 1e-4), as glmnet (glmnet reports an
// extrapolated first lambda a little above lambda_max; here it is lambda_max itself).
//
// Cross-validation (cv.glmnet): stratified folds dealt from seededRandom(seed): the indices of
// class 0 then of class 1 are each Fisher-Yates shuffled and dealt round-robin over the folds,
// the fold counter continuing from class 0 into class 1 so fold sizes differ by at most one. The
// lambda sequence comes from the full data and is reused in every fold; each fold standardises
// its own training rows. Loss: binomial deviance -2[y log p + (1-y) log(1-p)] of each held-out
// case with p clamped to [1e-5, 1-1e-5] (as cv.glmnet); cvMean = mean over all held-out cases;
// cvSe = sample sd (n-1) of the per-fold mean deviances / sqrt(folds). lambdaMin = the lambda
// with the smallest cvMean (the larger lambda on exact ties); lambda1se = the largest lambda with
// cvMean <= cvMean[min] + cvSe[min].
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { seededRandom } from '../random.js';
import { checkDesign, checkLabels, sigmoid, softplus } from './logistic.js';

export interface LassoPathOptions {
  /** Explicit lambdas (used in decreasing order); default: a log-spaced path from lambda_max. */
  lambdas?: number[];
  /** Path length (default 100). */
  nLambda?: number;
  /** Smallest lambda / lambda_max (default 0.01 when n < p, else 1e-4). */
  lambdaMinRatio?: number;
  /** Outer (IRLS) iterations per lambda (default 100); coordinate sweeps are capped at 1000x this. */
  maxIter?: number;
  /** Largest coefficient change for convergence, standardised scale (default 1e-7). */
  tol?: number;
}

export interface LassoFit {
  lambda: number;
  /** Original scale. */
  intercept: number;
  /** Original scale, one per column of X. */
  coefficients: number[];
  nonZero: number;
  /** Training deviance -2 loglik. */
  deviance: number;
  converged: boolean;
}

export interface LassoPath {
  lambdas: number[];
  fits: LassoFit[];
  lambdaMax: number;
  /** Column means and population sds used for the standardisation. */
  means: number[];
  sds: number[];
}

export interface CvLassoOptions extends LassoPathOptions {
  /** Number of folds (default 5). */
  folds?: number;
  seed: number;
}

export interface CvLassoResult {
  lambdas: number[];
  cvMean: number[];
  cvSe: number[];
  lambdaMin: number;
  lambda1se: number;
  indexMin: number;
  index1se: number;
  /** Fold (0-based) of each case. */
  foldOf: number[];
  /** The path fitted on all cases. */
  path: LassoPath;
}

const W_MIN = 1e-5;
const P_CLAMP = 1e-5;

interface Standardised {
  n: number;
  p: number;
  /** Column-major standardised features; constant columns are left all zero. */
  cols: Float64Array[];
  means: number[];
  sds: number[];
  /** sd > 0 (not a constant column). */
  usable: boolean[];
}

function standardise(X: number[][], rows: number[] | undefined, p: number): Standardised {
  const idx = rows ?? X.map((_, i) => i);
  const n = idx.length;
  const cols: Float64Array[] = [], means: number[] = [], sds: number[] = [], usable: boolean[] = [];
  for (let j = 0; j < p; j++) {
    const c = new Float64Array(n);
    let mn = Infinity, mx = -Infinity, s = 0;
    for (let k = 0; k < n; k++) { const v = X[idx[k]][j]; c[k] = v; s += v; if (v < mn) mn = v; if (v > mx) mx = v; }
    const m = s / n;
    let ss = 0;
    for (let k = 0; k < n; k++) ss += (c[k] - m) * (c[k] - m);
    const sd = Math.sqrt(ss / n);
    const ok = mx > mn && sd > 0;
    for (let k = 0; k < n; k++) c[k] = ok ? (c[k] - m) / sd : 0;
    cols.push(c); means.push(m); sds.push(ok ? sd : 0); usable.push(ok);
  }
  return { n, p, cols, means, sds, usable };
}

function lambdaMaxOf(s: Standardised, y: Float64Array): number {
  let ybar = 0;
  for (let i = 0; i < s.n; i++) ybar += y[i];
  ybar /= s.n;
  let lmax = 0;
  for (let j = 0; j < s.p; j++) {
    if (!s.usable[j]) continue;
    const c = s.cols[j];
    let g = 0;
    for (let i = 0; i < s.n; i++) g += c[i] * (y[i] - ybar);
    lmax = Math.max(lmax, Math.abs(g) / s.n);
  }
  return lmax;
}

/** Penalised objective -(1/n) loglik + lambda ||b||_1 for a given linear predictor. */
function objective(eta: Float64Array, y: Float64Array, b: Float64Array, lambda: number): number {
  let nll = 0;
  for (let i = 0; i < eta.length; i++) nll += softplus(eta[i]) - y[i] * eta[i];
  let l1 = 0;
  for (let j = 0; j < b.length; j++) l1 += Math.abs(b[j]);
  return nll / eta.length + lambda * l1;
}

/**
 * Solves one lambda on the standardised problem, starting from (and updating) state.b0/state.b.
 * Returns whether it converged.
 */
function solveOne(s: Standardised, y: Float64Array, lambda: number, state: { b0: number; b: Float64Array }, maxIter: number, tol: number): boolean {
  const { n, p, cols, usable } = s;
  const eta = new Float64Array(n), w = new Float64Array(n), r = new Float64Array(n), xv = new Float64Array(p);
  const computeEta = (b0: number, b: Float64Array) => {
    eta.fill(b0);
    for (let j = 0; j < p; j++) {
      if (b[j] === 0) continue;
      const c = cols[j], bj = b[j];
      for (let i = 0; i < n; i++) eta[i] += c[i] * bj;
    }
  };
  const oldB = new Float64Array(p);
  const maxSweeps = 1000 * maxIter;
  let sweeps = 0;
  computeEta(state.b0, state.b);
  let fOld = objective(eta, y, state.b, lambda);
  for (let outer = 0; outer < maxIter; outer++) {
    // Quadratic approximation at the current fit: working residual r = (y - p) / w.
    let sumW = 0;
    for (let i = 0; i < n; i++) {
      const pi = sigmoid(eta[i]);
      w[i] = Math.max(W_MIN, pi * (1 - pi));
      r[i] = (y[i] - pi) / w[i];
      sumW += w[i];
    }
    for (let j = 0; j < p; j++) {
      if (!usable[j]) continue;
      const c = cols[j];
      let v = 0;
      for (let i = 0; i < n; i++) v += w[i] * c[i] * c[i];
      xv[j] = v / n;
    }
    const oldB0 = state.b0;
    oldB.set(state.b);
    const b = state.b;
    let b0 = state.b0;
    // One coordinate sweep over `which` (all usable features, or the active set); returns the largest change.
    const sweep = (all: boolean) => {
      let maxChange = 0;
      for (let j = 0; j < p; j++) {
        if (!usable[j] || (!all && b[j] === 0)) continue;
        const c = cols[j];
        let g = 0;
        for (let i = 0; i < n; i++) g += w[i] * c[i] * r[i];
        const u = g / n + xv[j] * b[j];
        const bNew = u > lambda ? (u - lambda) / xv[j] : u < -lambda ? (u + lambda) / xv[j] : 0;
        const d = bNew - b[j];
        if (d !== 0) {
          for (let i = 0; i < n; i++) r[i] -= d * c[i];
          b[j] = bNew;
          maxChange = Math.max(maxChange, Math.abs(d));
        }
      }
      let g0 = 0;
      for (let i = 0; i < n; i++) g0 += w[i] * r[i];
      const d0 = g0 / sumW;
      if (d0 !== 0) {
        for (let i = 0; i < n; i++) r[i] -= d0;
        b0 += d0;
        maxChange = Math.max(maxChange, Math.abs(d0));
      }
      sweeps++;
      return maxChange;
    };
    // Direct solve of the weighted least-squares problem on the active set with its signs fixed
    // (its stationarity equations are linear): accepted only when no sign changes, so it is an
    // exact coordinate-descent fixed point; the next full sweep still checks every feature.
    const direct = (): boolean => {
      const A: number[] = [];
      for (let j = 0; j < p; j++) if (b[j] !== 0) A.push(j);
      const m = A.length + 1;
      if (A.length === 0 || m >= n) return false;
      const G = new Matrix(m, m), rhs = new Matrix(m, 1);
      const wc = A.map((j) => { const c = cols[j], v = new Float64Array(n); for (let i = 0; i < n; i++) v[i] = w[i] * c[i]; return v; });
      G.set(0, 0, sumW / n);
      let wr = 0;
      for (let i = 0; i < n; i++) wr += w[i] * r[i];
      rhs.set(0, 0, wr / n);
      for (let a = 0; a < A.length; a++) {
        const va = wc[a];
        let s0 = 0, sr = 0;
        for (let i = 0; i < n; i++) { s0 += va[i]; sr += va[i] * r[i]; }
        G.set(0, a + 1, s0 / n); G.set(a + 1, 0, s0 / n);
        rhs.set(a + 1, 0, sr / n - lambda * Math.sign(b[A[a]]));
        for (let c2 = 0; c2 <= a; c2++) {
          const cc = cols[A[c2]];
          let s2 = 0;
          for (let i = 0; i < n; i++) s2 += va[i] * cc[i];
          G.set(a + 1, c2 + 1, s2 / n); G.set(c2 + 1, a + 1, s2 / n);
        }
      }
      const chol = new CholeskyDecomposition(G);
      if (!chol.isPositiveDefinite()) return false;
      const d = chol.solve(rhs).getColumn(0);
      for (let a = 0; a < A.length; a++) {
        const nb = b[A[a]] + d[a + 1];
        if (!(Math.sign(nb) === Math.sign(b[A[a]]))) return false;
      }
      b0 += d[0];
      for (let i = 0; i < n; i++) r[i] -= d[0];
      for (let a = 0; a < A.length; a++) {
        const j = A[a], c = cols[j], dj = d[a + 1];
        b[j] += dj;
        for (let i = 0; i < n; i++) r[i] -= dj * c[i];
      }
      return true;
    };
    let innerConverged = false;
    while (sweeps < maxSweeps) {
      if (sweep(true) < tol) { innerConverged = true; break; }
      // The active set until it settles; a direct solve after 10, 20, 40, ... slow sweeps.
      for (let k = 1, next = 10; sweeps < maxSweeps && sweep(false) >= tol; k++) {
        if (k === next) { if (direct()) break; next *= 2; }
      }
    }
    if (!innerConverged) { state.b0 = b0; return false; }
    // Safeguard: halve the step while the penalised objective goes up.
    computeEta(b0, b);
    let fNew = objective(eta, y, b, lambda);
    for (let h = 0; h < 30 && fNew > fOld + 1e-13 * Math.abs(fOld); h++) {
      b0 = (b0 + oldB0) / 2;
      for (let j = 0; j < p; j++) b[j] = (b[j] + oldB[j]) / 2;
      computeEta(b0, b);
      fNew = objective(eta, y, b, lambda);
    }
    state.b0 = b0;
    let change = Math.abs(b0 - oldB0);
    for (let j = 0; j < p; j++) change = Math.max(change, Math.abs(b[j] - oldB[j]));
    fOld = fNew;
    if (change < tol) return true;
  }
  return false;
}

function toOriginal(s: Standardised, lambda: number, b0: number, b: Float64Array, y: Float64Array, converged: boolean): LassoFit {
  const coefficients = new Array<number>(s.p).fill(0);
  let intercept = b0, nonZero = 0;
  for (let j = 0; j < s.p; j++) {
    if (b[j] === 0) continue;
    nonZero++;
    coefficients[j] = b[j] / s.sds[j];
    intercept -= coefficients[j] * s.means[j];
  }
  let dev = 0;
  for (let i = 0; i < s.n; i++) {
    let e = b0;
    for (let j = 0; j < s.p; j++) if (b[j] !== 0) e += s.cols[j][i] * b[j];
    dev += softplus(e) - y[i] * e;
  }
  return { lambda, intercept, coefficients, nonZero, deviance: 2 * dev, converged };
}

function checkInputs(X: number[][], y: number[], what: string): { p: number; nPos: number } {
  const n = y.length;
  if (n < 2) throw new Error(`${what}: needs at least 2 cases`);
  const nPos = checkLabels(y, what);
  if (nPos === 0 || nPos === n) throw new Error(`${what}: all labels are ${nPos === 0 ? 0 : 1}; both classes are needed`);
  const p = checkDesign(X, n, what);
  if (X.length === 0) throw new Error(`${what}: X has no rows`);
  return { p, nPos };
}

function lambdaSequence(lmax: number, n: number, p: number, opts: LassoPathOptions): number[] {
  if (opts.lambdas) {
    if (opts.lambdas.length === 0) throw new Error('lasso: lambdas is empty');
    for (const l of opts.lambdas) if (!(l >= 0 && Number.isFinite(l))) throw new Error(`lasso: lambda ${l} is not a finite value >= 0`);
    return [...opts.lambdas].sort((a, b) => b - a);
  }
  const nLambda = opts.nLambda ?? 100;
  if (!Number.isInteger(nLambda) || nLambda < 1) throw new Error(`lasso: nLambda must be a positive integer, got ${nLambda}`);
  const ratio = opts.lambdaMinRatio ?? (n < p ? 0.01 : 1e-4);
  if (!(ratio > 0 && ratio < 1)) throw new Error(`lasso: lambdaMinRatio must be in (0, 1), got ${ratio}`);
  if (nLambda === 1) return [lmax];
  return Array.from({ length: nLambda }, (_, k) => lmax * Math.exp((Math.log(ratio) * k) / (nLambda - 1)));
}

function pathOn(s: Standardised, y: Float64Array, lambdas: number[], lmax: number, opts: LassoPathOptions): LassoFit[] {
  const maxIter = opts.maxIter ?? 100, tol = opts.tol ?? 1e-7;
  let ybar = 0;
  for (let i = 0; i < s.n; i++) ybar += y[i];
  ybar /= s.n;
  const nullB0 = Math.log(ybar / (1 - ybar));
  const state = { b0: nullB0, b: new Float64Array(s.p) };
  const fits: LassoFit[] = [];
  for (const lambda of lambdas) {
    let converged = true;
    if (lambda >= lmax) {
      state.b0 = nullB0;
      state.b.fill(0);
    } else {
      converged = solveOne(s, y, lambda, state, maxIter, tol);
    }
    fits.push(toOriginal(s, lambda, state.b0, state.b, y, converged));
  }
  return fits;
}

/** LASSO logistic regression along a decreasing lambda path (see the file header). */
export function lassoLogisticPath(X: number[][], y: number[], opts: LassoPathOptions = {}): LassoPath {
  const { p } = checkInputs(X, y, 'lassoLogisticPath');
  const s = standardise(X, undefined, p);
  const yy = Float64Array.from(y);
  const lambdaMax = lambdaMaxOf(s, yy);
  const lambdas = lambdaSequence(lambdaMax, y.length, p, opts);
  return { lambdas, fits: pathOn(s, yy, lambdas, lambdaMax, opts), lambdaMax, means: s.means, sds: s.sds };
}

/** Stratified fold of each case: each class shuffled with seededRandom(seed), dealt round-robin. */
export function stratifiedFolds(y: number[], folds: number, seed: number): number[] {
  const rng = seededRandom(seed);
  const foldOf = new Array<number>(y.length).fill(-1);
  let next = 0;
  for (const cls of [0, 1]) {
    const idx: number[] = [];
    for (let i = 0; i < y.length; i++) if (y[i] === cls) idx.push(i);
    for (let k = idx.length - 1; k > 0; k--) {
      const m = Math.floor(rng() * (k + 1));
      [idx[k], idx[m]] = [idx[m], idx[k]];
    }
    for (const i of idx) { foldOf[i] = next; next = (next + 1) % folds; }
  }
  return foldOf;
}

/** K-fold cross-validated LASSO logistic regression with lambda.min and the 1-SE rule (see the file header). */
export function cvLassoLogistic(X: number[][], y: number[], opts: CvLassoOptions): CvLassoResult {
  const { p, nPos } = checkInputs(X, y, 'cvLassoLogistic');
  const n = y.length;
  const folds = opts.folds ?? 5;
  if (!Number.isInteger(folds) || folds < 2 || folds > n) throw new Error(`cvLassoLogistic: folds must be an integer in [2, ${n}], got ${folds}`);
  if (!Number.isFinite(opts.seed)) throw new Error(`cvLassoLogistic: seed must be a finite number, got ${opts.seed}`);
  if (Math.min(nPos, n - nPos) < 2) throw new Error('cvLassoLogistic: each class needs at least 2 cases');
  const path = lassoLogisticPath(X, y, opts);
  const lambdas = path.lambdas;
  const foldOf = stratifiedFolds(y, folds, opts.seed);
  const L = lambdas.length;
  const devSum = new Float64Array(L);
  const foldLoss: Float64Array[] = [];
  for (let f = 0; f < folds; f++) {
    const train: number[] = [], test: number[] = [];
    for (let i = 0; i < n; i++) (foldOf[i] === f ? test : train).push(i);
    const s = standardise(X, train, p);
    const yTrain = Float64Array.from(train, (i) => y[i]);
    const lmax = lambdaMaxOf(s, yTrain);
    const fits = pathOn(s, yTrain, lambdas, lmax, opts);
    const loss = new Float64Array(L);
    for (let l = 0; l < L; l++) {
      const fit = fits[l];
      let sum = 0;
      for (const i of test) {
        let e = fit.intercept;
        for (let j = 0; j < p; j++) if (fit.coefficients[j] !== 0) e += fit.coefficients[j] * X[i][j];
        const pr = Math.min(1 - P_CLAMP, Math.max(P_CLAMP, sigmoid(e)));
        sum += -2 * (y[i] === 1 ? Math.log(pr) : Math.log(1 - pr));
      }
      devSum[l] += sum;
      loss[l] = sum / test.length;
    }
    foldLoss.push(loss);
  }
  const cvMean: number[] = [], cvSe: number[] = [];
  for (let l = 0; l < L; l++) {
    cvMean.push(devSum[l] / n);
    let m = 0;
    for (let f = 0; f < folds; f++) m += foldLoss[f][l];
    m /= folds;
    let ss = 0;
    for (let f = 0; f < folds; f++) ss += (foldLoss[f][l] - m) ** 2;
    cvSe.push(Math.sqrt(ss / (folds - 1)) / Math.sqrt(folds));
  }
  let indexMin = 0;
  for (let l = 1; l < L; l++) if (cvMean[l] < cvMean[indexMin]) indexMin = l;
  const bound = cvMean[indexMin] + cvSe[indexMin];
  let index1se = indexMin;
  for (let l = 0; l <= indexMin; l++) if (cvMean[l] <= bound) { index1se = l; break; }
  return {
    lambdas, cvMean, cvSe,
    lambdaMin: lambdas[indexMin], lambda1se: lambdas[index1se], indexMin, index1se,
    foldOf, path,
  };
}
