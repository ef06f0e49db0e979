// Fitting a radiomics model from a cohort's features, the way the ultrasound radiomics studies do
// (docs/fit-eval.md): drop features that are non-finite, near-constant or highly correlated
// (|r| > 0.9), select with LASSO logistic regression and k-fold cross-validation (1-SE rule), and
// optionally add clinical variables to the Rad-score in an unpenalised logistic model (the
// nomogram). Performance is estimated by nested cross-validation: the whole procedure runs on each
// outer training fold and predicts the held-out fold; the pooled held-out probabilities give the
// AUC with its DeLong CI, calibration, decision curve and the Youden cutoff. Seeded: the same
// cohort and seed give the same card.
import { correlated, nearConstant } from './stats/preselect.js';
import { cvLassoLogistic, stratifiedFolds } from './stats/lasso.js';
import { fitLogistic } from './stats/logistic.js';

export const LAMBDA_MIN_RATIO = 0.01;

export interface FitOptions {
  seed: number;
  /** Inner folds for the LASSO's lambda (default 5). */
  folds?: number;
  /** Outer folds of the nested cross-validation (default 5). */
  outerFolds?: number;
  /** |r| above which one of two features is dropped (default 0.9). */
  correlationCutoff?: number;
  /** `1se` (default): the largest lambda within one standard error of the best; `min`: the best. */
  rule?: '1se' | 'min';
}

/** Cases with complete data: features (names), optional coded clinical values, labels. */
export interface Design {
  names: string[];
  X: number[][];
  y: number[];
  clinicalNames?: string[];
  clinical?: number[][];
}

/** A fitted model in the card's terms: lp = intercept + sum coef_i * (x_i - mean_i) / std_i. */
export interface FittedModel {
  terms: string[];
  mean: number[];
  std: number[];
  coefficients: number[];
  intercept: number;
  selection: {
    candidates: number;
    dropped: { nonFinite: number; nearConstant: number; correlated: number };
    cv: { lambdas: number[]; cvMean: number[]; cvSe: number[]; lambdaMin: number; lambda1se: number; folds: number };
    lambda: number;
    /** Selected features, coefficient on the standardised scale (the Rad-score's). */
    selected: { name: string; coefficient: number }[];
    /** Nomogram terms: the Rad-score's and each clinical variable's coefficient (per unit) and Wald SE. */
    nomogram?: { name: string; coefficient: number; se: number }[];
  };
}

const meanSd = (v: number[]): [number, number] => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
  return [m, sd];
};
const column = (X: number[][], j: number) => X.map((r) => r[j]);

/** The whole selection and fitting procedure on one training set. */
export function fitOnce(d: Design, opts: FitOptions): FittedModel {
  const p = d.names.length;
  const nonFinite = d.names.map((_, j) => d.X.some((r) => !Number.isFinite(r[j])));
  let keep = d.names.map((_, j) => j).filter((j) => !nonFinite[j]);
  const nc = nearConstant(d.X.map((r) => keep.map((j) => r[j])));
  const ncDrop = new Set(nc.drop.map((x) => x.index));
  keep = keep.filter((_, k) => !ncDrop.has(k));
  const cor = correlated(d.X.map((r) => keep.map((j) => r[j])), opts.correlationCutoff ?? 0.9);
  const corDrop = new Set(cor.drop.map((x) => x.index));
  keep = keep.filter((_, k) => !corDrop.has(k));
  if (keep.length === 0) throw new Error('no feature is left after dropping non-finite, near-constant and correlated ones');
  const Xk = d.X.map((r) => keep.map((j) => r[j]));
  const folds = opts.folds ?? 5;
  // The path ends at 1 % of lambda_max (glmnet's default when n < p): the near-unpenalised end
  // is slow to converge with correlated radiomics features and never holds the 1-SE choice.
  const cv = cvLassoLogistic(Xk, d.y, { folds, seed: opts.seed, lambdaMinRatio: LAMBDA_MIN_RATIO });
  const index = (opts.rule ?? '1se') === '1se' ? cv.index1se : cv.indexMin;
  const fit = cv.path.fits[index];
  const sel = keep.map((j, k) => ({ j, beta: fit.coefficients[k], k })).filter((s) => s.beta !== 0);
  if (sel.length === 0)
    throw new Error(`LASSO selected no feature at lambda ${fit.lambda.toPrecision(3)} (${opts.rule ?? '1se'} rule): the features carry no signal the cross-validation could confirm`);
  const stats = sel.map((s) => meanSd(column(d.X, s.j)));
  const terms = sel.map((s) => d.names[s.j]);
  const mean = stats.map(([m]) => m);
  const std = stats.map(([, sd]) => sd);
  // Rad-score on the standardised scale: a0 + sum (beta_i sd_i) z_i, a0 = b0 + sum beta_i mean_i.
  let coefficients = sel.map((s, i) => s.beta * std[i]);
  let intercept = fit.intercept + sel.reduce((a, s, i) => a + s.beta * mean[i], 0);
  const selection: FittedModel['selection'] = {
    candidates: p,
    dropped: { nonFinite: nonFinite.filter(Boolean).length, nearConstant: ncDrop.size, correlated: corDrop.size },
    cv: { lambdas: cv.lambdas, cvMean: cv.cvMean, cvSe: cv.cvSe, lambdaMin: cv.lambdaMin, lambda1se: cv.lambda1se, folds },
    lambda: fit.lambda,
    selected: terms.map((name, i) => ({ name, coefficient: coefficients[i] })),
  };
  if (d.clinical && d.clinicalNames?.length) {
    const rad = d.X.map((r) => sel.reduce((a, s) => a + s.beta * r[s.j], fit.intercept));
    const nom = fitLogistic(d.X.map((_, i) => [rad[i], ...d.clinical![i]]), d.y);
    if (!nom.converged) throw new Error(`the nomogram's logistic fit did not converge (${nom.warnings.join('; ') || 'separation?'})`);
    const [bRad, ...bClin] = nom.coefficients;
    const cStats = d.clinicalNames.map((_, j) => meanSd(column(d.clinical!, j)));
    cStats.forEach(([, sd], j) => { if (!(sd > 0)) throw new Error(`clinical ${d.clinicalNames![j]} has the same value in every case: it cannot enter the nomogram`); });
    intercept = nom.intercept + bRad * intercept + bClin.reduce((a, b, j) => a + b * cStats[j][0], 0);
    coefficients = [...coefficients.map((c) => bRad * c), ...bClin.map((b, j) => b * cStats[j][1])];
    terms.push(...d.clinicalNames.map((n) => `clinical.${n}`));
    mean.push(...cStats.map(([m]) => m));
    std.push(...cStats.map(([, sd]) => sd));
    selection.nomogram = [
      { name: 'Rad-score', coefficient: bRad, se: nom.standardErrors[0] },
      ...d.clinicalNames.map((name, j) => ({ name, coefficient: bClin[j], se: nom.standardErrors[j + 1] })),
    ];
  }
  return { terms, mean, std, coefficients, intercept, selection };
}

/** The linear predictor of a fitted model for one case (features by name, clinical by name). */
export function linearPredictor(m: Pick<FittedModel, 'terms' | 'mean' | 'std' | 'coefficients' | 'intercept'>, value: (term: string) => number): number {
  let lp = m.intercept;
  for (let i = 0; i < m.terms.length; i++) lp += m.coefficients[i] * ((value(m.terms[i]) - m.mean[i]) / m.std[i]);
  return lp;
}

export interface CohortFit {
  model: FittedModel;
  /** Held-out probability of each case from the nested cross-validation (design order). */
  heldOut: number[];
  outerFolds: number;
}

const subset = (d: Design, idx: number[]): Design => ({
  names: d.names, X: idx.map((i) => d.X[i]), y: idx.map((i) => d.y[i]),
  ...(d.clinical && { clinicalNames: d.clinicalNames, clinical: idx.map((i) => d.clinical![i]) }),
});

/**
 * The final model on all cases, and nested cross-validated probabilities for its performance.
 * `heldOutFrom`: the same cases and columns measured another way (e.g. on segmented masks): each
 * fold's model, fitted on `d`, predicts its held-out cases from these values instead.
 */
export function fitCohort(d: Design, opts: FitOptions, onFold?: (k: number, of: number) => void, heldOutFrom?: Design): CohortFit {
  if (heldOutFrom && (heldOutFrom.y.length !== d.y.length || heldOutFrom.names.join() !== d.names.join() || heldOutFrom.y.some((v, i) => v !== d.y[i])))
    throw new Error('fitCohort: heldOutFrom must hold the same cases, labels and columns');
  const outer = opts.outerFolds ?? 5;
  const foldOf = stratifiedFolds(d.y, outer, opts.seed);
  const heldOut = new Array<number>(d.y.length).fill(NaN);
  const at = new Map(d.names.map((n, j) => [n, j]));
  const cat = new Map((d.clinicalNames ?? []).map((n, j) => [`clinical.${n}`, j]));
  const src = heldOutFrom ?? d;
  const lookup = (i: number) => (t: string) => (at.has(t) ? src.X[i][at.get(t)!] : src.clinical![i][cat.get(t)!]);
  for (let k = 0; k < outer; k++) {
    const train = foldOf.flatMap((f, i) => (f === k ? [] : [i]));
    const test = foldOf.flatMap((f, i) => (f === k ? [i] : []));
    const m = fitOnce(subset(d, train), { ...opts, seed: opts.seed + 1 + k });
    for (const i of test) heldOut[i] = 1 / (1 + Math.exp(-linearPredictor(m, lookup(i))));
    onFold?.(k + 1, outer);
  }
  return { model: fitOnce(d, opts), heldOut, outerFolds: outer };
}
