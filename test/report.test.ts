// The HTML/JSON report of `sonomics fit` and `sonomics eval`, built from a small synthetic cohort
// whose ROC, confusion tables, calibration bins and decision curve are computed here by hand.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { renderReportHtml, writeReport, type CohortReport, type Confusion } from '../cli/report.js';

// Twelve cases: predicted risk and outcome (1 = malignant).
const scores = [0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.45, 0.55, 0.6, 0.7, 0.8, 0.9];
const labels = [0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1];
const nPos = labels.filter((y) => y === 1).length;
const nNeg = labels.length - nPos;

function confusion(cutoff: number): Confusion {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  scores.forEach((s, i) => {
    if (s >= cutoff) labels[i] ? tp++ : fp++;
    else labels[i] ? fn++ : tn++;
  });
  return { cutoff, tp, fp, tn, fn, sensitivity: tp / (tp + fn), specificity: tn / (tn + fp), ppv: tp / (tp + fp), npv: tn / (tn + fn) };
}

function syntheticReport(kind: 'fit' | 'eval'): CohortReport {
  const thresholds = [Infinity, ...[...scores].sort((a, b) => b - a)];
  const points = thresholds.map((c) => {
    const m = confusion(c);
    return { fpr: 1 - m.specificity, tpr: m.sensitivity, threshold: c };
  });
  // AUC by Mann-Whitney: P(score of a positive > score of a negative).
  let wins = 0;
  scores.forEach((sp, i) => labels[i] && scores.forEach((sn, j) => !labels[j] && (wins += sp > sn ? 1 : sp === sn ? 0.5 : 0)));
  const auc = wins / (nPos * nNeg);
  let best = { ...confusion(scores[0]), j: -1 };
  for (const c of scores) {
    const m = confusion(c);
    const j = m.sensitivity + m.specificity - 1;
    if (j > best.j) best = { ...m, j };
  }
  // Three bins of 3, 4 and 5 cases in score order.
  const bins = [[0, 3], [3, 7], [7, 12]].map(([a, b]) => {
    const idx = scores.map((_, i) => i).slice(a, b);
    const mean = (v: number[]) => idx.reduce((s, i) => s + v[i], 0) / idx.length;
    return { predicted: mean(scores), observed: mean(labels), n: idx.length };
  });
  const n = scores.length;
  const decisionCurve = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9].map((pt) => {
    const m = confusion(pt);
    const w = pt / (1 - pt);
    return { threshold: pt, model: m.tp / n - (m.fp / n) * w, treatAll: nPos / n - (nNeg / n) * w, treatNone: 0 };
  });
  const report: CohortReport = {
    kind,
    title: `busi-malignancy 1.0.0 — ${kind === 'fit' ? 'cross-validated performance' : 'external evaluation'}`,
    notice: 'Decision support only, not for diagnosis.',
    researchUseOnly: true,
    generated: { tool: 'sonomics 0.1.0', date: '2025-01-02T03:04:05Z', seed: 42, command: 'sonomics fit --cohort cases.csv --out "reports/a&b"' },
    model: { id: 'busi-malignancy', version: '1.0.0', task: 'benign vs malignant', cardSha256: 'ab'.repeat(32), link: 'logistic' },
    cohort: { path: '/data/<cohort>/cases.csv', n, nPositive: nPos, excluded: [{ case: 'case_013', reason: 'mask <empty> & no ROI' }] },
    validation: kind === 'fit' ? '5-fold stratified nested cross-validation' : 'external cohort, card applied as is',
    roc: { points, auc, ci: [0.62, 0.99], se: 0.087 },
    calibration: { slope: 0.91, intercept: -0.04, bins },
    decisionCurve,
    youden: best,
    notes: ['pixel spacing unknown: rings in pixels', 'one case had a non-finite feature'],
  };
  if (kind === 'eval') report.atCardCutoff = confusion(0.5);
  if (kind === 'fit') {
    const lambdas = [0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625];
    report.selection = {
      candidates: 120,
      dropped: { nearConstant: 7, correlated: 60, nonFinite: NaN },
      cv: { lambdas, cvMean: [1.38, 1.2, 1.05, 1.0, 1.03, 1.1], cvSe: [0.05, 0.06, 0.07, 0.08, 0.09, 0.1], lambdaMin: 0.025, lambda1se: 0.05, folds: 5 },
      selected: [
        { name: 'bmode.lesion.firstorder_Mean', coefficient: 0.21 },
        { name: 'bmode.lesion.glcm_<b>', coefficient: -0.87 },
        { name: 'bmode.ring3mm.glrlm_RunEntropy', coefficient: 0.45 },
      ],
      clinical: [{ name: 'age', coefficient: 0.03, se: 0.01 }],
    };
  }
  return report;
}

const count = (s: string, needle: string) => s.split(needle).length - 1;

t.test('fit report: one document, four plots, escaped text, tables', async (t) => {
  const r = syntheticReport('fit');
  const html = await renderReportHtml(r);
  t.ok(html.startsWith('<!DOCTYPE html>'), 'starts with a doctype');
  t.equal(count(html, '<html'), 1, 'one html element');
  t.equal(count(html, '</html>'), 1);
  t.equal(count(html, '<svg'), 4, 'ROC, calibration, decision curve, CV curve');
  t.equal(count(html, '</svg>'), 4);
  t.notMatch(html, /<script/i, 'no scripts');
  t.notMatch(html, /\s(src|href)="https?:/i, 'no external resources');
  t.notMatch(html, /<link\b/i, 'no linked stylesheets');
  t.ok(html.indexOf('Decision support only, not for diagnosis.') < html.indexOf('<h1>'), 'notice before the title');
  t.match(html, /class="ruo-banner"/, 'research-use banner');
  // 32 of the 36 positive/negative pairs are ranked right.
  t.equal(r.roc.auc, 32 / 36);
  t.match(html, '<td class="num">0.889 (95 % CI 0.620–0.990)</td>', 'AUC with CI in the summary');
  t.match(html, 'ROC curve — AUC 0.889 (95 % CI 0.620–0.990)', 'AUC with CI in the ROC title');
  t.match(html, 'Calibration — slope 0.910, intercept -0.040');
  t.match(html, 'bmode.lesion.glcm_&lt;b&gt;', 'feature name escaped');
  t.notMatch(html, 'glcm_<b>', 'no raw tag');
  t.match(html, '/data/&lt;cohort&gt;/cases.csv', 'path escaped');
  t.match(html, 'mask &lt;empty&gt; &amp; no ROI', 'exclusion reason escaped');
  t.match(html, '--out &quot;reports/a&amp;b&quot;', 'command escaped');
  // Selected features sorted by |coefficient|.
  const iA = html.indexOf('glcm_&lt;b&gt;'), iB = html.indexOf('RunEntropy'), iC = html.indexOf('firstorder_Mean');
  t.ok(iA < iB && iB < iC, 'features by |coef| descending');
  t.match(html, '-0.8700');
  t.match(html, 'log(λ)', 'CV x axis');
  t.match(html, 'λmin');
  t.match(html, 'pixel spacing unknown: rings in pixels');
  t.match(html, /<td class="num">0\.4500<\/td>/, 'Youden cutoff with 4 decimals');
  t.notMatch(html, 'Card cutoff</td>', 'no card-cutoff row in a fit');
  t.notMatch(html, /NaN/, 'no NaN printed');
  // SVG ids are unique across the page.
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  t.equal(new Set(ids).size, ids.length, 'unique ids');

  t.equal(await renderReportHtml(r), html, 'deterministic');
});

t.test('eval report: three plots, card-cutoff row, no banner when not research-only', async (t) => {
  const r = syntheticReport('eval');
  r.researchUseOnly = false;
  const html = await renderReportHtml(r);
  t.equal(count(html, '<svg'), 3, 'ROC, calibration, decision curve');
  t.notMatch(html, 'class="ruo-banner"', 'no research-use banner');
  t.notMatch(html, /RESEARCH USE ONLY/i);
  t.match(html, 'Decision support only, not for diagnosis.');
  t.match(html, 'Card cutoff</td><td class="num">0.5000</td>', 'card-cutoff row');
  t.match(html, 'card cutoff 0.5000', 'card cutoff marked on the ROC');
  t.notMatch(html, 'Feature selection', 'no selection section');
});

t.test('calibration null: a sentence instead of the plot', async (t) => {
  const r = syntheticReport('eval');
  r.calibration = null;
  r.model.link = 'cox';
  const html = await renderReportHtml(r);
  t.equal(count(html, '<svg'), 2, 'ROC and decision curve only');
  t.match(html, 'No calibration plot:', 'explains the missing plot');
  t.notMatch(html, 'Calibration —', 'no calibration plot title');
  t.match(html, /Calibration slope<\/td><td class="num">n\/a/);
});

t.test('writeReport writes HTML and JSON that round-trips', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = syntheticReport('fit');
  r.roc.se = NaN;
  r.selection!.cv.cvMean[0] = Infinity;
  const out = await writeReport(join(dir, 'sub'), 'fit-report', r);
  t.equal(out.html, join(dir, 'sub', 'fit-report.html'));
  t.equal(out.json, join(dir, 'sub', 'fit-report.json'));
  const html = readFileSync(out.html, 'utf8');
  t.equal(html, await renderReportHtml(r), 'the written HTML is the rendered one');
  const text = readFileSync(out.json, 'utf8');
  t.match(text, /\n {2}"kind": "fit"/, 'pretty printed');
  const back = JSON.parse(text);
  t.equal(back.roc.se, null, 'NaN -> null');
  t.equal(back.selection.dropped.nonFinite, null);
  t.equal(back.selection.cv.cvMean[0], null, 'Infinity -> null');
  const expected = JSON.parse(JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
  t.same(back, expected, 'round-trips');
  t.equal(back.roc.points[0].threshold, null, 'the Infinity threshold too');
  t.equal(back.selection.selected[1].name, 'bmode.lesion.glcm_<b>', 'names unescaped in JSON');
});
