// ROC analysis for a binary outcome: the empirical ROC curve, the AUC with DeLong's variance and
// confidence interval, two correlated AUCs compared (paired DeLong), the Youden-optimal cutoff and the confusion table at a cutoff.
//
// Convention throughout: a case is called positive when score >= cutoff (higher score = more
// likely label 1). Unlike R pROC, the direction is never flipped automatically: a model worse
// than chance gets an AUC below 0.5.
//
// AUC: the Mann-Whitney statistic, ties between a positive and a negative counted 1/2.
// Variance: DeLong, DeLong & Clarke-Pearson (1988) "Comparing the areas under two or more
// correlated receiver operating characteristic curves: a nonparametric approach", Biometrics
// 44:837-845. Structural components V10(X_i) = mean_j psi(X_i, Y_j) for each positive and
// V01(Y_j) = mean_i psi(X_i, Y_j) for each negative; var(AUC) = S10/m + S01/n with S10, S01 the
// sample variances (denominator m-1, n-1) of the components. CI = auc +- z*se clipped to [0, 1],
// as R pROC's ci.auc(method = "delong") does. The components are computed by sorting and binary
// search, O(N log N), with exactly the same values as the O(mn) definition.
//
// z is the exact normal quantile (Wichura's AS241, ~1e-16 relative). simple-statistics' probit
// uses Winitzki's closed-form approximation (probit(0.975) = 1.95716 instead of 1.95996), which
// would shift pROC-comparable bounds by ~1e-4; see normalQuantile below.

export interface RocPoint { fpr: number; tpr: number; threshold: number }

export interface AucResult {
  auc: number;
  /** DeLong standard error; NaN when a class has a single case (sample variance undefined). */
  se: number;
  ci: [number, number];
  level: number;
  nPositive: number;
  nNegative: number;
}

export interface Confusion {
  cutoff: number;
  tp: number; fp: number; tn: number; fn: number;
  /** tp/(tp+fn); NaN when there are no positives. */
  sensitivity: number;
  /** tn/(tn+fp); NaN when there are no negatives. */
  specificity: number;
  /** tp/(tp+fp); NaN when nothing is called positive. */
  ppv: number;
  /** tn/(tn+fn); NaN when nothing is called negative. */
  npv: number;
}

export interface YoudenResult extends Confusion {
  /** Youden's J = sensitivity + specificity - 1 at the cutoff. */
  j: number;
}

/** Checks scores/labels (same length, finite scores, labels exactly 0 or 1); returns the class sizes. */
export function checkBinary(scores: ArrayLike<number>, labels: ArrayLike<number>, what: string): { nPos: number; nNeg: number } {
  if (scores.length !== labels.length) throw new Error(`${what}: ${scores.length} scores but ${labels.length} labels`);
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l !== 0 && l !== 1) throw new Error(`${what}: label ${i} is ${l}; labels must be 0 or 1`);
    if (!Number.isFinite(scores[i])) throw new Error(`${what}: score ${i} is ${scores[i]}; scores must be finite`);
    nPos += l;
  }
  return { nPos, nNeg: labels.length - nPos };
}

function requireBothClasses(nPos: number, nNeg: number, what: string): void {
  if (nPos === 0) throw new Error(`${what}: no positive cases (label 1); the ROC needs both classes`);
  if (nNeg === 0) throw new Error(`${what}: no negative cases (label 0); the ROC needs both classes`);
}

/**
 * Empirical ROC curve: one point per distinct score used as threshold, from (0, 0) (threshold
 * +Infinity, nothing positive) to (1, 1) (threshold = the smallest score). Tied scores move the
 * curve diagonally in one step.
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocPoint[] {
  const { nPos, nNeg } = checkBinary(scores, labels, 'rocCurve');
  requireBothClasses(nPos, nNeg, 'rocCurve');
  const out: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  for (const c of rocCounts(scores, labels)) out.push({ fpr: c.fp / nNeg, tpr: c.tp / nPos, threshold: c.threshold });
  return out;
}

/** Cumulative (tp, fp) at each distinct score, thresholds descending (inputs already checked). */
function rocCounts(scores: ArrayLike<number>, labels: ArrayLike<number>): { tp: number; fp: number; threshold: number }[] {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const out: { tp: number; fp: number; threshold: number }[] = [];
  let tp = 0, fp = 0;
  for (let k = 0; k < order.length;) {
    const t = scores[order[k]];
    while (k < order.length && scores[order[k]] === t) {
      if (labels[order[k]] === 1) tp++; else fp++;
      k++;
    }
    out.push({ tp, fp, threshold: t });
  }
  return out;
}

/** Number of entries of the ascending array `a` that are < v (lower) and <= v (upper). */
function countBelow(a: Float64Array, v: number): { less: number; lessEq: number } {
  let lo = 0, hi = a.length;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (a[mid] < v) lo = mid + 1; else hi = mid; }
  const less = lo;
  hi = a.length;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (a[mid] <= v) lo = mid + 1; else hi = mid; }
  return { less, lessEq: lo };
}

/** DeLong's structural components: V10 per positive, V01 per negative (ties count 1/2). */
export function delongComponents(scores: ArrayLike<number>, labels: ArrayLike<number>): { v10: number[]; v01: number[] } {
  const pos: number[] = [], neg: number[] = [];
  for (let i = 0; i < labels.length; i++) (labels[i] === 1 ? pos : neg).push(scores[i]);
  const sp = Float64Array.from(pos).sort(), sn = Float64Array.from(neg).sort();
  // V10(x) = (#neg < x + 0.5 #neg == x) / n ; V01(y) = (#pos > y + 0.5 #pos == y) / m.
  const v10 = pos.map((x) => { const c = countBelow(sn, x); return (c.less + 0.5 * (c.lessEq - c.less)) / sn.length; });
  const v01 = neg.map((y) => { const c = countBelow(sp, y); return (sp.length - c.lessEq + 0.5 * (c.lessEq - c.less)) / sp.length; });
  return { v10, v01 };
}

function meanOf(a: number[]): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

/** The AUC from DeLong's components: both means equal it mathematically; the mean over the smaller set has less rounding. */
function aucOfComponents(v10: number[], v01: number[]): number {
  return v10.length <= v01.length ? meanOf(v10) : meanOf(v01);
}

function sampleVariance(a: number[], m: number): number {
  if (a.length < 2) return NaN;
  let s = 0;
  for (const v of a) s += (v - m) * (v - m);
  return s / (a.length - 1);
}

/** AUC (Mann-Whitney, ties 1/2) with DeLong's standard error and a Wald CI clipped to [0, 1]. */
export function aucDeLong(scores: ArrayLike<number>, labels: ArrayLike<number>, level = 0.95): AucResult {
  const { nPos, nNeg } = checkBinary(scores, labels, 'aucDeLong');
  requireBothClasses(nPos, nNeg, 'aucDeLong');
  if (!(level > 0 && level < 1)) throw new Error(`aucDeLong: level must be in (0, 1), got ${level}`);
  const { v10, v01 } = delongComponents(scores, labels);
  const auc = aucOfComponents(v10, v01);
  const s10 = sampleVariance(v10, auc), s01 = sampleVariance(v01, auc);
  const se = Math.sqrt(s10 / nPos + s01 / nNeg);
  const z = normalQuantile((1 + level) / 2);
  const ci: [number, number] = Number.isFinite(se)
    ? [Math.max(0, auc - z * se), Math.min(1, auc + z * se)]
    : [NaN, NaN];
  return { auc, se, ci, level, nPositive: nPos, nNegative: nNeg };
}

export interface PairedAucResult {
  /** AUC of a minus AUC of b. */
  difference: number;
  /** DeLong standard error of the difference (the two AUCs' covariance from the same cases). */
  se: number;
  ci: [number, number];
  level: number;
  a: number;
  b: number;
}

/**
 * Two scores of the same cases compared by AUC (DeLong et al. 1988, the paired form that R pROC's
 * roc.test(paired = TRUE, method = "delong") uses): var(A - B) = var(V10a - V10b)/m +
 * var(V01a - V01b)/n, which equals var(A) + var(B) - 2 cov(A, B) of the structural components.
 * The CI is the Wald interval, not clipped.
 */
export function pairedAucDeLong(a: ArrayLike<number>, b: ArrayLike<number>, labels: ArrayLike<number>, level = 0.95): PairedAucResult {
  const { nPos, nNeg } = checkBinary(a, labels, 'pairedAucDeLong');
  checkBinary(b, labels, 'pairedAucDeLong');
  requireBothClasses(nPos, nNeg, 'pairedAucDeLong');
  if (!(level > 0 && level < 1)) throw new Error(`pairedAucDeLong: level must be in (0, 1), got ${level}`);
  const ca = delongComponents(a, labels), cb = delongComponents(b, labels);
  const d10 = ca.v10.map((v, i) => v - cb.v10[i]), d01 = ca.v01.map((v, i) => v - cb.v01[i]);
  const aucA = aucOfComponents(ca.v10, ca.v01), aucB = aucOfComponents(cb.v10, cb.v01);
  const difference = aucA - aucB;
  const se = Math.sqrt(sampleVariance(d10, meanOf(d10)) / nPos + sampleVariance(d01, meanOf(d01)) / nNeg);
  const z = normalQuantile((1 + level) / 2);
  const ci: [number, number] = Number.isFinite(se) ? [difference - z * se, difference + z * se] : [NaN, NaN];
  return { difference, se, ci, level, a: aucA, b: aucB };
}

/** Confusion table when a case is called positive for score >= cutoff. */
export function confusionAt(scores: ArrayLike<number>, labels: ArrayLike<number>, cutoff: number): Confusion {
  checkBinary(scores, labels, 'confusionAt');
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const called = scores[i] >= cutoff;
    if (labels[i] === 1) { if (called) tp++; else fn++; } else if (called) fp++; else tn++;
  }
  const ratio = (a: number, b: number) => (b === 0 ? NaN : a / b);
  return {
    cutoff, tp, fp, tn, fn,
    sensitivity: ratio(tp, tp + fn), specificity: ratio(tn, tn + fp),
    ppv: ratio(tp, tp + fp), npv: ratio(tn, tn + fn),
  };
}

/**
 * The observed score maximising Youden's J = sensitivity + specificity - 1 (score >= cutoff is
 * positive). J is compared exactly, as the integer tp*nNeg - fp*nPos; on ties the higher cutoff
 * wins (fewer cases called positive).
 */
export function youden(scores: ArrayLike<number>, labels: ArrayLike<number>): YoudenResult {
  const { nPos, nNeg } = checkBinary(scores, labels, 'youden');
  requireBothClasses(nPos, nNeg, 'youden');
  let best = -Infinity, cutoff = NaN;
  // Thresholds come in descending order, so a strict > keeps the higher cutoff on ties.
  for (const c of rocCounts(scores, labels)) {
    const jScaled = c.tp * nNeg - c.fp * nPos;
    if (jScaled > best) { best = jScaled; cutoff = c.threshold; }
  }
  const c = confusionAt(scores, labels, cutoff);
  return { ...c, j: c.sensitivity + c.specificity - 1 };
}

/**
 * Standard normal quantile (probit), Wichura (1988) Algorithm AS 241 PPND16, Applied Statistics
 * 37:477-484; relative accuracy about 1e-16. Returns -Infinity/Infinity at 0/1, NaN outside.
 */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r
      + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r + 133.14166789178437745) * r
      + 3.387132872796366608))
      / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r
      + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r + 42.313330701600911252) * r + 1);
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
      + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r + 4.6303378461565452959) * r
      + 1.42343711074968357734)
      / (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
      + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r + 2.05319162663775882187) * r + 1);
  } else {
    r -= 5;
    x = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
      + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r + 5.4637849111641143699) * r
      + 6.6579046435011037772)
      / (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
      + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r + 0.59983220655588793769) * r + 1);
  }
  return q < 0 ? -x : x;
}
