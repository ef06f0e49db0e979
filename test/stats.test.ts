import t from 'tap';
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../core/random.js';
import { aucDeLong, confusionAt, delongComponents, normalQuantile, pairedAucDeLong, rocCurve, youden } from '../core/stats/roc.js';
import { calibration, fitLogistic, sigmoid } from '../core/stats/logistic.js';
import { cvLassoLogistic, lassoLogisticPath } from '../core/stats/lasso.js';
import { decisionCurve } from '../core/stats/decision.js';
import { correlated, nearConstant } from '../core/stats/preselect.js';
import { CI, errorOf } from './helpers.js';

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol;

function normals(seed: number): () => number {
  const rnd = seededRandom(seed);
  return () => {
    const u = 1 - rnd(), v = rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

// ---------------------------------------------------------------- python3 + scikit-learn

const PYTHON = '/usr/bin/python3';
let sklearnChecked: boolean | undefined;
function sklearn(t: Test): boolean {
  if (sklearnChecked === undefined) {
    try {
      execFileSync(PYTHON, ['-c', 'import sklearn, numpy'], { stdio: 'ignore', timeout: 60000 });
      sklearnChecked = true;
    } catch {
      sklearnChecked = false;
    }
  }
  if (!sklearnChecked) {
    const why = `${PYTHON} with scikit-learn is missing: install the Debian package python3-sklearn (apt-get install -y python3-sklearn) to compare against scikit-learn`;
    if (CI) t.fail(why);
    else t.comment(`SKIP: ${why}`);
  }
  return sklearnChecked;
}

const tmp = mkdtempSync(join(tmpdir(), 'sonomics-stats-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs a python script on a JSON input file; returns its JSON output. */
function runPython(name: string, script: string, input: unknown): any {
  const inFile = join(tmp, `${name}.json`);
  writeFileSync(inFile, JSON.stringify(input));
  const out = execFileSync(PYTHON, ['-c', script, inFile], { encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

// ---------------------------------------------------------------- ROC / DeLong

t.test('normal quantile is exact (not the approximate simple-statistics probit)', async (t) => {
  t.ok(close(normalQuantile(0.975), 1.959963984540054, 1e-14), `${normalQuantile(0.975)}`);
  t.ok(close(normalQuantile(0.5), 0, 0));
  t.ok(close(normalQuantile(0.05), -1.6448536269514722, 1e-14));
  t.ok(close(normalQuantile(1e-10), -6.361340902404056, 1e-12));
});

t.test('DeLong on a hand-worked example with a tie', async (t) => {
  // Positives X = 0.9, 0.6, 0.4; negatives Y = 0.6, 0.3, 0.2, 0.1 (the 0.6 pair is a tie, 1/2).
  // V10(0.9) = 4/4 = 1, V10(0.6) = (0.5+1+1+1)/4 = 0.875, V10(0.4) = 3/4 = 0.75 -> AUC = 2.625/3 = 0.875
  // V01(0.6) = (1+0.5+0)/3 = 0.5, V01(0.3) = V01(0.2) = V01(0.1) = 1 -> mean 3.5/4 = 0.875
  // S10 = (0.125^2 + 0 + 0.125^2)/2 = 0.015625; S01 = (0.375^2 + 3*0.125^2)/3 = 0.0625
  // var = S10/3 + S01/4 = 1/192 + 1/64 = 1/48; se = 0.1443375673
  // CI95 = 0.875 -+ 1.959964 * 0.1443376 = [0.592109, 1.157891] -> upper clipped to 1.
  const scores = [0.6, 0.9, 0.3, 0.4, 0.2, 0.6, 0.1];
  const labels = [0, 1, 0, 1, 0, 1, 0];
  const c = delongComponents(scores, labels);
  t.same(c.v10, [1, 0.75, 0.875]); // input order: 0.9, 0.4, 0.6
  t.same(c.v01, [0.5, 1, 1, 1]);
  const r = aucDeLong(scores, labels);
  t.equal(r.auc, 0.875);
  t.ok(close(r.se, Math.sqrt(1 / 48), 1e-15), `se ${r.se}`);
  t.ok(close(r.ci[0], 0.875 - 1.959963984540054 * Math.sqrt(1 / 48), 1e-12), `lo ${r.ci[0]}`);
  t.equal(r.ci[1], 1);
  t.equal(r.nPositive, 3);
  t.equal(r.nNegative, 4);
  t.match(errorOf(() => aucDeLong([0.1, 0.2], [0, 0]))?.message, /no positive cases/);
  t.match(errorOf(() => aucDeLong([0.1, 0.2], [1, 1]))?.message, /no negative cases/);
  t.match(errorOf(() => aucDeLong([0.1, 0.2], [1, 2]))?.message, /0 or 1/);
  t.ok(Number.isNaN(aucDeLong([0.1, 0.2, 0.3], [0, 1, 0]).se), 'one positive: the sample variance is undefined');
});

t.test('paired DeLong on a hand-worked example, and its identities', async (t) => {
  // a: the example above (AUC 0.875; V10 1, 0.75, 0.875; V01 0.5, 1, 1, 1).
  // b on the same cases: positives 0.9, 0.1, 0.8 -> V10 1, 0, 1 (AUC 2/3); negatives 0.2, 0.5, 0.3,
  // 0.4 -> V01 2/3 each. d10 = 0, 3/4, -1/8 (mean 5/24, sample variance 129/576); d01 = -1/6, 1/3,
  // 1/3, 1/3 (mean 5/24, sample variance 1/16). var = 129/576/3 + 1/16/4 = 52/576 = 13/144.
  const labels = [0, 1, 0, 1, 0, 1, 0];
  const a = [0.6, 0.9, 0.3, 0.4, 0.2, 0.6, 0.1], b = [0.2, 0.9, 0.5, 0.1, 0.3, 0.8, 0.4];
  const r = pairedAucDeLong(a, b, labels);
  t.ok(close(r.difference, 5 / 24, 1e-15), `difference ${r.difference}`);
  t.ok(close(r.a, 0.875, 1e-15) && close(r.b, 2 / 3, 1e-15), `${r.a} ${r.b}`);
  t.ok(close(r.se, Math.sqrt(13) / 12, 1e-15), `se ${r.se}`);
  t.ok(close(r.ci[0], 5 / 24 - 1.959963984540054 * Math.sqrt(13) / 12, 1e-12), `lo ${r.ci[0]}`);
  const s = pairedAucDeLong(b, a, labels);
  t.ok(close(s.difference, -r.difference, 1e-15) && close(s.se, r.se, 1e-15), 'swapping negates the difference');
  const same = pairedAucDeLong(a, a, labels);
  t.equal(same.difference, 0);
  t.equal(same.se, 0);
  // var(A - B) = var(A) + var(B) - 2 cov(A, B) on a larger correlated pair.
  const z = normals(77);
  const y: number[] = [], p: number[] = [], q: number[] = [];
  for (let i = 0; i < 200; i++) {
    const l = i % 3 === 0 ? 1 : 0, u = z();
    y.push(l); p.push(l + u); q.push(0.5 * l + 0.7 * u + 0.7 * z());
  }
  const cp = delongComponents(p, y), cq = delongComponents(q, y);
  const cov = (u: number[], v: number[]) => {
    const mu = u.reduce((x, w) => x + w, 0) / u.length, mv = v.reduce((x, w) => x + w, 0) / v.length;
    return u.reduce((x, w, i) => x + (w - mu) * (v[i] - mv), 0) / (u.length - 1);
  };
  const m = cp.v10.length, n = cp.v01.length;
  const covAB = cov(cp.v10, cq.v10) / m + cov(cp.v01, cq.v01) / n;
  const want = aucDeLong(p, y).se ** 2 + aucDeLong(q, y).se ** 2 - 2 * covAB;
  const got = pairedAucDeLong(p, q, y);
  t.ok(close(got.se ** 2, want, 1e-12), `${got.se ** 2} vs ${want}`);
  t.ok(close(got.difference, aucDeLong(p, y).auc - aucDeLong(q, y).auc, 1e-14));
  t.ok(covAB > 0, 'the two scores are correlated, so the paired se is below the unpaired one');
  t.ok(got.se < Math.hypot(aucDeLong(p, y).se, aucDeLong(q, y).se));
  t.match(errorOf(() => pairedAucDeLong([0.1, 0.2], [0.1], [0, 1]))?.message, /pairedAucDeLong: 1 scores but 2 labels/);
  t.match(errorOf(() => pairedAucDeLong([0.1, 0.2], [0.1, NaN], [0, 1]))?.message, /score 1 is NaN/);
});

t.test('DeLong agrees with the O(mn) definition, Hanley-McNeil and a bootstrap', async (t) => {
  const z = normals(2024);
  const m = 120, n = 150;
  const scores: number[] = [], labels: number[] = [];
  for (let i = 0; i < m; i++) { scores.push(1 + z()); labels.push(1); }
  for (let i = 0; i < n; i++) { scores.push(z()); labels.push(0); }
  // Brute force DeLong on a tied (rounded) copy and on the continuous scores.
  for (const s of [scores, scores.map((v) => Math.round(v * 4) / 4)]) {
    const pos = s.filter((_, i) => labels[i] === 1), neg = s.filter((_, i) => labels[i] === 0);
    const psi = (x: number, y: number) => (x > y ? 1 : x === y ? 0.5 : 0);
    const v10 = pos.map((x) => neg.reduce((a, y) => a + psi(x, y), 0) / neg.length);
    const v01 = neg.map((y) => pos.reduce((a, x) => a + psi(x, y), 0) / pos.length);
    const auc = v10.reduce((a, b) => a + b, 0) / m;
    const varOf = (v: number[]) => v.reduce((a, b) => a + (b - auc) ** 2, 0) / (v.length - 1);
    const se = Math.sqrt(varOf(v10) / m + varOf(v01) / n);
    const r = aucDeLong(s, labels);
    t.ok(close(r.auc, auc, 1e-13), `auc ${r.auc} vs ${auc}`);
    t.ok(close(r.se, se, 1e-13), `se ${r.se} vs ${se}`);
  }
  const r = aucDeLong(scores, labels);
  // Hanley & McNeil (1982).
  const A = r.auc, q1 = A / (2 - A), q2 = (2 * A * A) / (1 + A);
  const seHM = Math.sqrt((A * (1 - A) + (m - 1) * (q1 - A * A) + (n - 1) * (q2 - A * A)) / (m * n));
  t.ok(Math.abs(r.se / seHM - 1) < 0.2, `DeLong se ${r.se} vs Hanley-McNeil ${seHM}`);
  // Stratified bootstrap (as pROC), B = 2000, brute-force Mann-Whitney AUC.
  const rnd = seededRandom(7);
  const pos = scores.slice(0, m), neg = scores.slice(m);
  const sorted = (a: number[]) => Float64Array.from(a).sort();
  const boots: number[] = [];
  for (let b = 0; b < 2000; b++) {
    const bp = sorted(Array.from({ length: m }, () => pos[Math.floor(rnd() * m)]));
    const bn = sorted(Array.from({ length: n }, () => neg[Math.floor(rnd() * n)]));
    let wins = 0, k = 0, kEq = 0;
    for (const x of bp) { // merge: negatives below x and equal to x
      while (k < n && bn[k] < x) k++;
      kEq = k;
      while (kEq < n && bn[kEq] === x) kEq++;
      wins += k + 0.5 * (kEq - k);
    }
    boots.push(wins / (m * n));
  }
  const bm = boots.reduce((a, b) => a + b, 0) / boots.length;
  const seBoot = Math.sqrt(boots.reduce((a, b) => a + (b - bm) ** 2, 0) / (boots.length - 1));
  t.ok(Math.abs(r.se / seBoot - 1) < 0.15, `DeLong se ${r.se} vs bootstrap ${seBoot}`);
  t.ok(r.ci[0] < A && A < r.ci[1] && close(r.ci[1] - A, A - r.ci[0], 1e-12), 'symmetric Wald interval');
  t.comment(`AUC ${A.toFixed(4)}: se DeLong ${r.se.toFixed(5)}, Hanley-McNeil ${seHM.toFixed(5)}, bootstrap ${seBoot.toFixed(5)}`);
});

t.test('ROC curve, Youden and confusion table on a hand example', async (t) => {
  const scores = [0.9, 0.8, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2];
  const labels = [1, 1, 0, 1, 0, 1, 0, 0];
  t.same(rocCurve(scores, labels), [
    { fpr: 0, tpr: 0, threshold: Infinity },
    { fpr: 0, tpr: 0.25, threshold: 0.9 },
    { fpr: 0.25, tpr: 0.5, threshold: 0.8 }, // the tie moves diagonally in one step
    { fpr: 0.25, tpr: 0.75, threshold: 0.6 },
    { fpr: 0.5, tpr: 0.75, threshold: 0.5 },
    { fpr: 0.5, tpr: 1, threshold: 0.4 },
    { fpr: 0.75, tpr: 1, threshold: 0.3 },
    { fpr: 1, tpr: 1, threshold: 0.2 },
  ]);
  // AUC: positives 0.9 (4 wins), 0.8 (3 + tie), 0.6 (3), 0.4 (2) -> 12.5/16; = trapezoids of the curve.
  const roc = rocCurve(scores, labels);
  let trap = 0;
  for (let k = 1; k < roc.length; k++) trap += ((roc[k].fpr - roc[k - 1].fpr) * (roc[k].tpr + roc[k - 1].tpr)) / 2;
  t.equal(aucDeLong(scores, labels).auc, 0.78125);
  t.ok(close(trap, 0.78125, 1e-15));
  // J: 0.9 .25, 0.8 .25, 0.6 .5, 0.5 .25, 0.4 .5, 0.3 .25, 0.2 0 -> tie 0.6/0.4, the higher wins.
  t.same(youden(scores, labels), { cutoff: 0.6, tp: 3, fp: 1, tn: 3, fn: 1, sensitivity: 0.75, specificity: 0.75, ppv: 0.75, npv: 0.75, j: 0.5 });
  const c = confusionAt(scores, labels, 0.45);
  t.same(c, { cutoff: 0.45, tp: 3, fp: 2, tn: 2, fn: 1, sensitivity: 0.75, specificity: 0.5, ppv: 0.6, npv: 2 / 3 });
  const none = confusionAt(scores, labels, 1);
  t.equal(none.tp + none.fp, 0);
  t.ok(Number.isNaN(none.ppv), 'ppv with nothing called positive is NaN');
  t.equal(none.npv, 0.5);
  t.equal(none.sensitivity, 0);
  t.equal(none.specificity, 1);
});

t.test('decision curve on a hand example', async (t) => {
  const p = [0.9, 0.7, 0.4, 0.2, 0.1], y = [1, 0, 1, 0, 0]; // n 5, prevalence 0.4
  const d = decisionCurve(p, y, [0.25, 0.4, 0.5, 0.8]);
  // 0.25: treat 0.9, 0.7, 0.4 -> TP 2, FP 1: 2/5 - 1/5 * 1/3; all: 0.4 - 0.6/3
  // 0.4 (p >= pt treats the 0.4 case): 2/5 - 1/5 * 2/3; all: 0.4 - 0.6 * 2/3
  // 0.5: TP 1, FP 1: 0.2 - 0.2; all: 0.4 - 0.6
  // 0.8: TP 1: 0.2; all 0.4 - 0.6 * 4
  const want = [[0.4 - 0.2 / 3, 0.2], [0.4 - 0.4 / 3, 0], [0, -0.2], [0.2, -2]];
  d.forEach((r, k) => {
    t.ok(close(r.model, want[k][0], 1e-15) && close(r.treatAll, want[k][1], 1e-15), `pt ${r.threshold}: ${r.model} ${r.treatAll}`);
    t.equal(r.treatNone, 0);
  });
  const def = decisionCurve(p, y);
  t.equal(def.length, 99);
  t.equal(def[0].threshold, 0.01);
  t.equal(def[49].threshold, 0.5);
  t.equal(def[98].threshold, 0.99);
  t.match(errorOf(() => decisionCurve(p, y, [1]))?.message, /threshold/);
});

// ---------------------------------------------------------------- logistic regression

const LOGISTIC_PY = `
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
d = json.load(open(sys.argv[1]))
X = np.array(d['X'], dtype=float); y = np.array(d['y'], dtype=float)
m = LogisticRegression(penalty=None, tol=1e-10, max_iter=10000).fit(X, y)
p = m.predict_proba(X)[:, 1]
Z = np.column_stack([np.ones(len(y)), X])
se = np.sqrt(np.diag(np.linalg.inv(Z.T @ (Z * (p * (1 - p))[:, None]))))
# newton-cg reaches the optimum to machine precision; lbfgs stops ~1e-6 (relative) short of it.
nc = LogisticRegression(penalty=None, tol=1e-12, max_iter=10000, solver='newton-cg').fit(X, y)
print(json.dumps({'intercept': float(m.intercept_[0]), 'coef': m.coef_[0].tolist(), 'se': se.tolist(),
                  'ncIntercept': float(nc.intercept_[0]), 'ncCoef': nc.coef_[0].tolist()}))
`;

t.test('fitLogistic matches scikit-learn (penalty=None)', async (t) => {
  const z = normals(99), rnd = seededRandom(100);
  const n = 400, beta = [0.8, -1.2, 0.5, 0.3], scale = [1, 2.5, 0.4, 7], shift = [0, 3, -1, 10];
  const X: number[][] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = scale.map((s, j) => shift[j] + s * z());
    const eta = -0.4 + row.reduce((a, v, j) => a + (beta[j] * (v - shift[j])) / scale[j], 0);
    X.push(row);
    y.push(rnd() < sigmoid(eta) ? 1 : 0);
  }
  const fit = fitLogistic(X, y);
  t.ok(fit.converged, `converged in ${fit.iterations} iterations`);
  t.equal(fit.ridge, 0);
  t.same(fit.warnings, []);
  if (!sklearn(t)) return;
  const sk = runPython('logistic', LOGISTIC_PY, { X, y });
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 0.1);
  t.ok(rel(fit.intercept, sk.intercept) < 1e-5, `intercept ${fit.intercept} vs ${sk.intercept}`);
  fit.coefficients.forEach((b, j) => t.ok(rel(b, sk.coef[j]) < 1e-5, `b${j} ${b} vs ${sk.coef[j]}`));
  t.ok(rel(fit.interceptSe, sk.se[0]) < 1e-4, `se0 ${fit.interceptSe} vs ${sk.se[0]}`);
  fit.standardErrors.forEach((s, j) => t.ok(rel(s, sk.se[j + 1]) < 1e-4, `se${j + 1} ${s} vs ${sk.se[j + 1]}`));
  t.ok(rel(fit.intercept, sk.ncIntercept) < 1e-9, `newton-cg intercept ${fit.intercept} vs ${sk.ncIntercept}`);
  fit.coefficients.forEach((b, j) => t.ok(rel(b, sk.ncCoef[j]) < 1e-9, `newton-cg b${j} ${b} vs ${sk.ncCoef[j]}`));
});

t.test('fitLogistic: intercept only, separation, collinearity', async (t) => {
  const y = [0, 1, 1, 0, 1, 1, 1, 0];
  const f0 = fitLogistic([], y);
  t.ok(close(f0.intercept, Math.log(5 / 3), 1e-12), `intercept-only = logit(mean y): ${f0.intercept}`);
  t.ok(close(f0.interceptSe, Math.sqrt(1 / (8 * (5 / 8) * (3 / 8))), 1e-10), `se ${f0.interceptSe}`);
  const off = y.map((_, i) => (i % 3) - 1);
  const fo = fitLogistic(y.map(() => []), y, { offset: off });
  // Score equation: sum(y - sigmoid(a + offset)) = 0.
  t.ok(close(y.reduce((s, v, i) => s + v - sigmoid(fo.intercept + off[i]), 0), 0, 1e-10), 'offset fit solves its score equation');

  const sep = fitLogistic([[1], [2], [3], [4], [5], [6]], [0, 0, 0, 1, 1, 1]);
  t.equal(sep.converged, false);
  t.equal(sep.separation, true);
  t.match(sep.warnings.join(' '), /separated/);
  t.ok(sep.coefficients.every(Number.isFinite), 'finite numbers, flagged rather than Infinity');

  // Quasi-complete separation: x <= 4 -> 0, x >= 4 -> 1 with both labels at 4.
  const quasi = fitLogistic([[1], [2], [3], [4], [4], [5], [6], [7]], [0, 0, 0, 0, 1, 1, 1, 1]);
  t.equal(quasi.converged, false);
  t.equal(quasi.separation, true);
  t.ok(quasi.standardErrors.every(Number.isNaN), 'no standard errors without an estimate');
  // One case with a fitted probability numerically 1 (an outlying covariate) is not separation.
  const zz = normals(8), rr = seededRandom(9);
  const xo: number[][] = [], yo: number[] = [];
  for (let i = 0; i < 200; i++) { const x = zz(); xo.push([x]); yo.push(rr() < sigmoid(1.5 * x) ? 1 : 0); }
  xo.push([40]); yo.push(1);
  const outlier = fitLogistic(xo, yo);
  t.ok(outlier.converged && !outlier.separation, `outlier fit converged (slope ${outlier.coefficients[0]})`);
  t.ok(outlier.intercept + 40 * outlier.coefficients[0] > 34.5, 'the outlier is fitted at probability numerically 1');

  const rows = [[1, 2], [2, 4], [3, 6.0], [4, 8], [5, 10], [6, 12], [2, 4], [5, 10]];
  const col = fitLogistic(rows, [0, 1, 0, 1, 0, 1, 1, 0]);
  t.ok(col.ridge > 0, 'collinear columns use the ridge fallback');
  t.match(col.warnings.join(' '), /singular/);
  t.match(errorOf(() => fitLogistic([[1], [2]], [0, 2]))?.message, /0 or 1/);
  t.match(errorOf(() => fitLogistic([[1], [NaN]], [0, 1]))?.message, /finite/);
});

t.test('calibration slope and calibration-in-the-large', async (t) => {
  const z = normals(5), rnd = seededRandom(6);
  const n = 6000;
  const lpTrue = Array.from({ length: n }, () => 1.2 * z());
  const pTrue = lpTrue.map(sigmoid);
  const y = pTrue.map((p) => (rnd() < p ? 1 : 0));
  const perfect = calibration(pTrue, y);
  t.ok(perfect.converged);
  t.ok(Math.abs(perfect.slope - 1) < 4 * perfect.slopeSe && perfect.slopeSe < 0.06, `slope ${perfect.slope} +- ${perfect.slopeSe}`);
  t.ok(Math.abs(perfect.intercept) < 4 * perfect.interceptSe && perfect.interceptSe < 0.05, `intercept ${perfect.intercept} +- ${perfect.interceptSe}`);
  t.equal(perfect.bins.length, 10);
  t.ok(perfect.bins.every((b) => b.n === 600), 'equal-size quantile bins');
  for (const b of perfect.bins) t.ok(Math.abs(b.observed - b.predicted) < 0.07, `bin ${b.predicted.toFixed(3)} observed ${b.observed.toFixed(3)}`);
  for (let k = 1; k < 10; k++) t.ok(perfect.bins[k].predicted > perfect.bins[k - 1].predicted);

  // Overfitted model: logit p = 2 logit p_true -> logit P(y) = 0.5 logit p.
  const over = calibration(lpTrue.map((l) => sigmoid(2 * l)), y);
  t.ok(Math.abs(over.slope - 0.5) < 4 * over.slopeSe && over.slopeSe < 0.03, `slope ${over.slope} +- ${over.slopeSe}`);
  // Predictions shifted up by 1 on the logit scale -> calibration-in-the-large about -1.
  const shifted = calibration(lpTrue.map((l) => sigmoid(l + 1)), y);
  t.ok(Math.abs(shifted.intercept + 1) < 4 * shifted.interceptSe, `intercept ${shifted.intercept} +- ${shifted.interceptSe}`);
  t.ok(Math.abs(shifted.slope - 1) < 4 * shifted.slopeSe, `slope ${shifted.slope}`);
  // Probabilities of exactly 0 and 1 are clamped, not infinite.
  const edge = calibration([0, 1, 0.3, 0.6, 0.2, 0.8], [0, 1, 1, 0, 0, 1], 3);
  t.ok(Number.isFinite(edge.intercept) && Number.isFinite(edge.slope));
  t.same(edge.bins.map((b) => b.n), [2, 2, 2]);
});

// ---------------------------------------------------------------- LASSO

const LASSO_PY = `
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
d = json.load(open(sys.argv[1]))
X = np.array(d['X'], dtype=float); y = np.array(d['y'], dtype=float)
mu = X.mean(axis=0); sd = X.std(axis=0)  # ddof = 0
Z = (X - mu) / sd
n = len(y)
out = []
for lam in d['lambdas']:
    m = LogisticRegression(penalty='l1', solver='saga', C=1.0 / (n * lam), tol=1e-12, max_iter=200000).fit(Z, y)
    b = m.coef_[0] / sd
    out.append({'intercept': float(m.intercept_[0] - np.sum(b * mu)), 'coef': b.tolist(), 'n_iter': int(m.n_iter_[0])})
print(json.dumps(out))
`;

function lassoData(seed: number, n = 200, p = 20) {
  const z = normals(seed), rnd = seededRandom(seed + 1);
  const shift = Array.from({ length: p }, (_, j) => ((j * 37) % 9) - 4);
  const scale = Array.from({ length: p }, (_, j) => 0.5 + ((j * 13) % 11) / 4);
  const truth: Record<number, number> = { 0: 1.0, 3: -0.8, 7: 0.6 };
  const X: number[][] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const common = z();
    const s = Array.from({ length: p }, () => 0.3 * common + z()); // mildly correlated features
    let eta = -0.3;
    for (const [j, b] of Object.entries(truth)) eta += b * s[+j];
    X.push(s.map((v, j) => shift[j] + scale[j] * v));
    y.push(rnd() < sigmoid(eta) ? 1 : 0);
  }
  return { X, y };
}

/** KKT conditions of the standardised problem, from original-scale coefficients. */
function kktViolation(X: number[][], y: number[], lambda: number, intercept: number, coef: number[]): number {
  const n = y.length, p = coef.length;
  const r = X.map((row, i) => y[i] - sigmoid(intercept + row.reduce((a, v, j) => a + v * coef[j], 0)));
  let worst = Math.abs(r.reduce((a, b) => a + b, 0) / n);
  for (let j = 0; j < p; j++) {
    const m = X.reduce((a, row) => a + row[j], 0) / n;
    const sd = Math.sqrt(X.reduce((a, row) => a + (row[j] - m) ** 2, 0) / n);
    const g = X.reduce((a, row, i) => a + ((row[j] - m) / sd) * r[i], 0) / n;
    worst = Math.max(worst, coef[j] === 0 ? Math.max(0, Math.abs(g) - lambda) : Math.abs(g - lambda * Math.sign(coef[j])));
  }
  return worst;
}

t.test('LASSO path: lambda_max, KKT, and scikit-learn saga', async (t) => {
  const { X, y } = lassoData(42);
  const path = lassoLogisticPath(X, y);
  t.equal(path.lambdas.length, 100);
  t.equal(path.lambdas[0], path.lambdaMax);
  t.ok(close(path.lambdas[99] / path.lambdaMax, 1e-4, 1e-12), 'n >= p: lambdaMinRatio 1e-4');
  t.equal(path.fits[0].nonZero, 0, 'lambda_max: all coefficients zero');
  t.ok(path.fits.every((f) => f.converged), 'every lambda converged');
  t.ok(path.fits[99].nonZero > path.fits[0].nonZero && path.fits[99].nonZero >= 15, `nonzero ${path.fits[0].nonZero} -> ${path.fits[99].nonZero}`);
  for (let k = 1; k < 100; k++) t.ok(path.fits[k].deviance <= path.fits[k - 1].deviance + 1e-6, `deviance falls along the path (${k})`);
  const ybar = y.reduce((a, b) => a + b, 0) / y.length;
  t.ok(close(path.fits[0].intercept, Math.log(ybar / (1 - ybar)), 1e-12), 'null intercept at lambda_max');
  const below = lassoLogisticPath(X, y, { lambdas: [0.995 * path.lambdaMax] }).fits[0];
  t.ok(below.nonZero >= 1, 'just below lambda_max a feature enters (lambda_max is the smallest all-zero lambda)');

  const lambdas = [0.5, 0.15, 0.03].map((r) => r * path.lambdaMax);
  const ours = lassoLogisticPath(X, y, { lambdas });
  for (const f of ours.fits) t.ok(kktViolation(X, y, f.lambda, f.intercept, f.coefficients) < 1e-6, `KKT at lambda ${f.lambda.toFixed(5)} (${f.nonZero} nonzero)`);
  t.ok(ours.fits[0].nonZero < ours.fits[2].nonZero);
  if (!sklearn(t)) return;
  const t0 = performance.now();
  const sk = runPython('lasso', LASSO_PY, { X, y, lambdas }) as { intercept: number; coef: number[]; n_iter: number }[];
  t.comment(`scikit-learn saga: ${((performance.now() - t0) / 1000).toFixed(1)} s, epochs ${sk.map((s) => s.n_iter).join(', ')}`);
  ours.fits.forEach((f, k) => {
    let worst = Math.abs(f.intercept - sk[k].intercept);
    f.coefficients.forEach((b, j) => { worst = Math.max(worst, Math.abs(b - sk[k].coef[j])); });
    t.ok(worst < 1e-3, `lambda ${f.lambda.toFixed(5)}: max |ours - sklearn| = ${worst.toExponential(2)}`);
    t.same(f.coefficients.map((b) => b !== 0), sk[k].coef.map((b) => b !== 0), `same zero pattern at lambda ${f.lambda.toFixed(5)}`);
  });
});

t.test('cvLassoLogistic is reproducible for a seed, stratified, and follows the 1-SE rule', async (t) => {
  const { X, y } = lassoData(7, 150, 12);
  const a = cvLassoLogistic(X, y, { folds: 5, seed: 11, nLambda: 40 });
  const b = cvLassoLogistic(X, y, { folds: 5, seed: 11, nLambda: 40 });
  t.same(a, b, 'same seed, identical result');
  const c = cvLassoLogistic(X, y, { folds: 5, seed: 12, nLambda: 40 });
  t.not(a.foldOf.join(), c.foldOf.join(), 'another seed deals other folds');
  t.same(c.lambdas, a.lambdas, 'the lambda sequence comes from the full data');
  for (const r of [a, c]) {
    const pos = [0, 0, 0, 0, 0], all = [0, 0, 0, 0, 0];
    r.foldOf.forEach((f, i) => { all[f]++; pos[f] += y[i]; });
    t.ok(Math.max(...pos) - Math.min(...pos) <= 1 && Math.max(...all) - Math.min(...all) <= 1, `stratified folds: ${pos} of ${all}`);
    t.equal(r.cvMean[r.indexMin], Math.min(...r.cvMean));
    t.ok(r.index1se <= r.indexMin && r.cvMean[r.index1se] <= r.cvMean[r.indexMin] + r.cvSe[r.indexMin]);
    for (let l = 0; l < r.index1se; l++) t.ok(r.cvMean[l] > r.cvMean[r.indexMin] + r.cvSe[r.indexMin], 'no larger lambda within one SE');
    t.equal(r.lambdaMin, r.lambdas[r.indexMin]);
    t.equal(r.lambda1se, r.lambdas[r.index1se]);
    t.ok(r.cvMean[r.indexMin] < r.cvMean[0], 'the signal beats the null model out of sample');
    t.ok(r.cvSe.every((s) => s >= 0 && Number.isFinite(s)));
  }
  t.match(errorOf(() => cvLassoLogistic(X, y, { folds: 1, seed: 1 }))?.message, /folds/);
});

// ---------------------------------------------------------------- pre-selection

t.test('pre-selection: near-constant and correlated columns', async (t) => {
  const z = normals(3);
  const n = 100;
  const X: number[][] = [];
  for (let i = 0; i < n; i++) {
    const a = z(), b = z();
    X.push([
      5, //                                  0 constant
      i < 96 ? 0 : 1, //                     1 96/4: freqRatio 24 > 19, 2 % unique
      a, //                                  2 independent
      a + 0.05 * z(), //                     3 duplicate of 2 with noise (r > 0.99)
      b, //                                  4 independent
      i === 50 ? NaN : z(), //               5 non-finite
      i % 10 === 0 ? 1 : 0, //               6 90/10: freqRatio 9, kept
      Math.round(z() * 3), //                7 few distinct values but balanced, kept
    ]);
  }
  t.same(nearConstant(X).drop.map((d) => [d.index, d.reason]), [[0, 'constant'], [1, 'near-constant'], [5, 'non-finite values']]);
  const nc = nearConstant(X).drop[1];
  t.equal(nc.freqRatio, 24);
  t.equal(nc.percentUnique, 2);

  const cor = correlated(X);
  t.equal(cor.drop.length, 1, JSON.stringify(cor.drop));
  const d = cor.drop[0];
  t.ok((d.index === 2 && d.with === 3) || (d.index === 3 && d.with === 2), 'one of the duplicated pair goes');
  t.ok(d.r > 0.99, `r ${d.r}`);
  // Independent check of the caret rule: the member with the larger mean |r| over the usable columns goes.
  const cols = [2, 3, 4, 6, 7];
  const pear = (u: number, v: number) => {
    const xu = X.map((r) => r[u]), xv = X.map((r) => r[v]);
    const mu = xu.reduce((s, q) => s + q, 0) / n, mv = xv.reduce((s, q) => s + q, 0) / n;
    let suv = 0, suu = 0, svv = 0;
    for (let i = 0; i < n; i++) { suv += (xu[i] - mu) * (xv[i] - mv); suu += (xu[i] - mu) ** 2; svv += (xv[i] - mv) ** 2; }
    return suv / Math.sqrt(suu * svv);
  };
  const avg = (u: number) => cols.reduce((s, v) => s + Math.abs(pear(u, v)), 0) / cols.length;
  t.equal(d.index, avg(3) > avg(2) ? 3 : 2, `mean |r|: col 2 ${avg(2)}, col 3 ${avg(3)}`);
  t.ok(close(d.r, pear(2, 3), 1e-12));
  t.same(correlated(X, 0.9999).drop, [], 'nothing above a cutoff of 0.9999');

  // Three near-copies: caret judges all pairs at once. Mean |r| decides each pair.
  const Y = Array.from({ length: 50 }, () => { const a = z(); return [a, a + 0.01 * z(), a + 0.02 * z(), z()]; });
  const dropped = correlated(Y).drop.map((q) => q.index);
  t.ok(dropped.length >= 1 && dropped.length <= 2 && !dropped.includes(3), `drops ${dropped}`);
});
