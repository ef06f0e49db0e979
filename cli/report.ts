// The report of `sonomics fit` and `sonomics eval`: one self-contained HTML file (inline SVG plots,
// no scripts, no network) plus the same data as JSON. Plots are vega-lite specs compiled to vega and
// rendered headless to SVG (renderer 'none', no canvas needed); vega is imported on first use so the
// other commands do not pay for it. Output is deterministic: the same report gives the same bytes.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Confusion } from '../core/stats/roc.js';
import { nonFiniteToNull } from './features.js';

export type { Confusion };

export interface CohortReport {
  kind: 'fit' | 'eval';
  /** E.g. "busi-malignancy 1.0.0 — cross-validated performance". */
  title: string;
  /** E.g. "Decision support only, not for diagnosis."; shown prominently at the top. */
  notice: string;
  /** Show a research-use-only banner. */
  researchUseOnly: boolean;
  generated: { tool: string; date: string; seed?: number; command: string };
  model: { id: string; version: string; task: string; cardSha256: string; link: 'logistic' | 'cox' };
  cohort: { path: string; n: number; nPositive: number; excluded: { case: string; reason: string }[] };
  /** How the numbers were obtained, e.g. "5-fold stratified nested cross-validation". */
  validation: string;
  roc: { points: { fpr: number; tpr: number; threshold: number }[]; auc: number; ci: [number, number]; se: number };
  /** Null for Cox cards. */
  calibration: { slope: number; intercept: number; bins: { predicted: number; observed: number; n: number }[] } | null;
  decisionCurve: { threshold: number; model: number; treatAll: number; treatNone: number }[];
  youden: Confusion & { j: number };
  /** Eval: metrics at the card's own cutoff. */
  atCardCutoff?: Confusion;
  /** Fit only. */
  selection?: {
    /** Features extracted. */
    candidates: number;
    dropped: { nearConstant: number; correlated: number; nonFinite: number };
    cv: { lambdas: number[]; cvMean: number[]; cvSe: number[]; lambdaMin: number; lambda1se: number; folds: number };
    /** Coefficients on the standardised scale. */
    selected: { name: string; coefficient: number }[];
    /** Nomogram terms, when used. */
    clinical?: { name: string; coefficient: number; se: number }[];
  };
  /** Free-text caveats, e.g. "pixel spacing unknown: rings in pixels". */
  notes: string[];
}

/** Lower bound of the decision curve's net-benefit axis; lines below it are clipped. */
export const NET_BENEFIT_FLOOR = -0.05;

// ---------------------------------------------------------------------------------------------
// Formatting

/** Text escaped for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const NA = 'n/a';

function fixed(x: number | undefined | null, digits: number): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return NA;
  const s = x.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s; // no "-0.000"
}

/** Metrics (AUC, sensitivity, slope, net benefit, ...): 3 decimals. */
export const fmtMetric = (x: number | undefined | null): string => fixed(x, 3);
/** Probability cutoffs: 4 decimals. */
export const fmtCutoff = (x: number | undefined | null): string => fixed(x, 4);
/** Model coefficients: 4 decimals. */
const fmtCoef = (x: number): string => fixed(x, 4);
/** Penalties (lambda): 3 significant digits, exponent form when tiny. */
function fmtLambda(x: number): string {
  if (!Number.isFinite(x)) return NA;
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(3);
}
function fmtCount(x: number): string {
  return Number.isFinite(x) ? String(Math.round(x)) : NA;
}
function fmtPercent(part: number, whole: number): string {
  return whole > 0 && Number.isFinite(part) ? `${((100 * part) / whole).toFixed(1)} %` : NA;
}
/** "0.812 (95 % CI 0.750–0.870)". */
export function fmtAucCi(roc: CohortReport['roc']): string {
  return `${fmtMetric(roc.auc)} (95 % CI ${fmtMetric(roc.ci[0])}–${fmtMetric(roc.ci[1])})`;
}

const finite = (...xs: number[]): boolean => xs.every((x) => typeof x === 'number' && Number.isFinite(x));

// ---------------------------------------------------------------------------------------------
// Plots

const WIDTH = 360;
const HEIGHT = 300;
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
/** Black and greys; series are told apart by dash pattern and point shape as well as shade. */
const INK = '#000000';
const GREY = '#6b6b6b';

const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  background: 'white',
  view: { stroke: '#999999' },
  title: { fontSize: 13, fontWeight: 'bold', anchor: 'start', offset: 10, limit: 0 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e4e4e4', domainColor: '#444444', tickColor: '#444444' },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', symbolStrokeWidth: 2, symbolSize: 200 },
} as const;

function base(title: string) {
  return { $schema: SCHEMA, width: WIDTH, height: HEIGHT, title, background: 'white', padding: 8, config: CONFIG as NonNullable<TopLevelSpec['config']> };
}

function rocSpec(r: CohortReport): TopLevelSpec {
  const pts = r.roc.points.filter((p) => finite(p.fpr, p.tpr)).map((p) => ({ fpr: p.fpr, tpr: p.tpr }));
  pts.sort((a, b) => a.fpr - b.fpr || a.tpr - b.tpr);
  if (pts.length === 0 || pts[0].fpr !== 0 || pts[0].tpr !== 0) pts.unshift({ fpr: 0, tpr: 0 });
  const last = pts[pts.length - 1];
  if (last.fpr !== 1 || last.tpr !== 1) pts.push({ fpr: 1, tpr: 1 });
  const curve = pts.map((p, i) => ({ ...p, i }));

  const marks: { fpr: number; tpr: number; label: string; kind: string }[] = [];
  if (finite(r.youden.sensitivity, r.youden.specificity)) {
    marks.push({ fpr: 1 - r.youden.specificity, tpr: r.youden.sensitivity, label: `Youden cutoff ${fmtCutoff(r.youden.cutoff)}`, kind: 'Youden-optimal cutoff' });
  }
  if (r.atCardCutoff && finite(r.atCardCutoff.sensitivity, r.atCardCutoff.specificity)) {
    marks.push({ fpr: 1 - r.atCardCutoff.specificity, tpr: r.atCardCutoff.sensitivity, label: `card cutoff ${fmtCutoff(r.atCardCutoff.cutoff)}`, kind: 'Card cutoff' });
  }
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1] } };
  const x = { field: 'fpr', ...unit, title: '1 − specificity (false-positive rate)' };
  const y = { field: 'tpr', ...unit, title: 'Sensitivity (true-positive rate)' };
  return {
    ...base(`ROC curve — AUC ${fmtAucCi(r.roc)}`),
    layer: [
      {
        data: { values: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
        mark: { type: 'line', color: GREY, strokeDash: [5, 4], strokeWidth: 1 },
        encoding: { x, y },
      },
      {
        data: { values: curve },
        mark: { type: 'line', color: INK, strokeWidth: 2, interpolate: 'linear' },
        encoding: { x, y, order: { field: 'i', type: 'quantitative' } },
      },
      {
        data: { values: marks },
        layer: [
          {
            mark: { type: 'point', filled: true, color: INK, size: 110, stroke: 'white', strokeWidth: 1 },
            encoding: {
              x,
              y,
              shape: {
                field: 'kind',
                type: 'nominal',
                title: null,
                scale: { domain: marks.map((m) => m.kind), range: marks.map((m) => (m.kind === 'Card cutoff' ? 'square' : 'diamond')) },
                legend: { orient: 'bottom-right', padding: 6, labelLimit: 0 },
              },
            },
          },
          {
            mark: { type: 'text', align: 'left', dx: 8, dy: 10, fontSize: 11, color: INK },
            encoding: { x, y, text: { field: 'label', type: 'nominal' } },
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

function calibrationSpec(cal: NonNullable<CohortReport['calibration']>): TopLevelSpec {
  const bins = cal.bins.filter((b) => finite(b.predicted, b.observed)).map((b, i) => ({ ...b, i }));
  bins.sort((a, b) => a.predicted - b.predicted || a.i - b.i);
  const ns = bins.map((b) => b.n).filter((n) => finite(n));
  const minN = ns.length ? Math.min(...ns) : 0, maxN = ns.length ? Math.max(...ns) : 0;
  const equalN = minN === maxN;
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1] } };
  const x = { field: 'predicted', ...unit, title: 'Predicted probability (bin mean)' };
  const y = { field: 'observed', ...unit, title: 'Observed proportion positive' };
  return {
    ...base(`Calibration — slope ${fmtMetric(cal.slope)}, intercept ${fmtMetric(cal.intercept)}`),
    layer: [
      {
        data: { values: [{ predicted: 0, observed: 0 }, { predicted: 1, observed: 1 }] },
        mark: { type: 'line', color: GREY, strokeDash: [5, 4], strokeWidth: 1 },
        encoding: { x, y },
      },
      {
        data: { values: bins },
        layer: [
          { mark: { type: 'line', color: INK, strokeWidth: 1.5 }, encoding: { x, y, order: { field: 'predicted', type: 'quantitative' } } },
          {
            mark: { type: 'point', filled: true, color: INK, stroke: 'white', strokeWidth: 1, shape: 'circle', ...(equalN ? { size: 120 } : {}) },
            encoding: {
              x,
              y,
              // Area by cases per bin; equal-count bins (the usual quantile bins) get one size, no legend.
              ...(equalN
                ? {}
                : { size: { field: 'n', type: 'quantitative', title: 'Cases in bin', scale: { domain: [0, maxN], range: [0, 300] }, legend: { values: [minN, maxN], labelLimit: 0 } } }),
            },
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

function decisionCurveSpec(rows: CohortReport['decisionCurve']): TopLevelSpec {
  const series = ['Model', 'Treat all', 'Treat none'] as const;
  const values: { threshold: number; netBenefit: number; strategy: string }[] = [];
  let top = 0.05;
  let lo = Infinity, hi = -Infinity;
  for (const r of [...rows].sort((a, b) => a.threshold - b.threshold)) {
    if (!finite(r.threshold)) continue;
    const nb = [r.model, r.treatAll, r.treatNone];
    for (let k = 0; k < 3; k++) {
      if (!finite(nb[k])) continue;
      values.push({ threshold: r.threshold, netBenefit: nb[k], strategy: series[k] });
      top = Math.max(top, nb[k]);
      lo = Math.min(lo, r.threshold);
      hi = Math.max(hi, r.threshold);
    }
  }
  if (!(lo < hi)) (lo = 0), (hi = 1);
  // Round the top up to a tidy value so the axis ends on a tick.
  top = Math.ceil(top * 20 - 1e-9) / 20;
  return {
    ...base('Decision curve — net benefit by threshold probability'),
    data: { values },
    mark: { type: 'line', strokeWidth: 2, clip: true },
    encoding: {
      x: { field: 'threshold', type: 'quantitative', title: 'Threshold probability', scale: { domain: [lo, hi], zero: false, nice: false } },
      y: { field: 'netBenefit', type: 'quantitative', title: 'Net benefit', scale: { domain: [NET_BENEFIT_FLOOR, top], nice: false, zero: false } },
      color: { field: 'strategy', type: 'nominal', title: null, scale: { domain: [...series], range: [INK, GREY, '#9a9a9a'] }, legend: { orient: 'bottom', direction: 'horizontal', symbolType: 'stroke' } },
      strokeDash: { field: 'strategy', type: 'nominal', title: null, scale: { domain: [...series], range: [[1, 0], [6, 4], [2, 3]] } },
      order: { field: 'threshold', type: 'quantitative' },
    },
  } as TopLevelSpec;
}

function cvSpec(sel: NonNullable<CohortReport['selection']>, link: CohortReport['model']['link']): TopLevelSpec {
  const { lambdas, cvMean, cvSe, lambdaMin, lambda1se, folds } = sel.cv;
  const pts: { logLambda: number; mean: number; lower: number; upper: number }[] = [];
  for (let i = 0; i < lambdas.length; i++) {
    const l = lambdas[i], m = cvMean[i], s = cvSe[i];
    if (!(l > 0) || !finite(l, m)) continue;
    const se = finite(s) ? s : 0;
    pts.push({ logLambda: Math.log(l), mean: m, lower: m - se, upper: m + se });
  }
  pts.sort((a, b) => a.logLambda - b.logLambda);
  const rules = [
    { logLambda: Math.log(lambdaMin), label: 'λmin', align: 'right', dx: -3 },
    { logLambda: Math.log(lambda1se), label: 'λ1se', align: 'left', dx: 3 },
  ].filter((r) => finite(r.logLambda));
  const x = { field: 'logLambda', type: 'quantitative', title: 'log(λ)', scale: { zero: false } } as const;
  const deviance = link === 'cox' ? 'Partial-likelihood deviance' : 'Binomial deviance';
  const y = { field: 'mean', type: 'quantitative', title: `${deviance} (CV mean ± SE)`, scale: { zero: false } } as const;
  return {
    ...base(`LASSO penalty — ${fmtCount(folds)}-fold cross-validation`),
    layer: [
      {
        data: { values: pts },
        layer: [
          { mark: { type: 'rule', color: GREY, strokeWidth: 1 }, encoding: { x, y: { ...y, field: 'lower' }, y2: { field: 'upper' } } },
          { mark: { type: 'line', color: INK, strokeWidth: 1 }, encoding: { x, y, order: { field: 'logLambda', type: 'quantitative' } } },
          { mark: { type: 'point', filled: true, color: INK, size: 25, shape: 'circle' }, encoding: { x, y } },
        ],
      },
      ...rules.map((r, k) => ({
        data: { values: [r] },
        layer: [
          { mark: { type: 'rule', color: INK, strokeWidth: 1, strokeDash: k === 0 ? [6, 4] : [2, 3] }, encoding: { x } },
          { mark: { type: 'text', align: r.align, dx: r.dx, y: 10, fontSize: 11, color: INK }, encoding: { x, text: { field: 'label', type: 'nominal' } } },
        ],
      })),
    ],
  } as TopLevelSpec;
}

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
let libs: Promise<[Vega, VegaLite]> | undefined;

/** A vega-lite spec as an SVG string whose ids are prefixed, so several can share one page. */
async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  libs ??= Promise.all([import('vega'), import('vega-lite')]);
  const [vega, vl] = await libs;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return uniqueIds(await view.toSVG(), idPrefix);
  } finally {
    view.finalize();
  }
}

/**
 * Vega numbers clip paths and gradients from a process-wide counter ("clip1", "clip7", ...), which
 * makes the output depend on what was rendered before and clashes between inline SVGs. Renumber
 * every id in order of appearance under the plot's own prefix.
 */
function uniqueIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!ids.has(m[1])) ids.set(m[1], `${prefix}-${ids.size + 1}`);
  if (ids.size === 0) return svg;
  const rename = (id: string): string => ids.get(id) ?? id;
  return svg
    .replace(/(\sid=")([^"]+)(")/g, (_, a: string, id: string, b: string) => a + rename(id) + b)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${rename(id)})`)
    .replace(/(href=")#([^"]+)(")/g, (_, a: string, id: string, b: string) => `${a}#${rename(id)}${b}`);
}

// ---------------------------------------------------------------------------------------------
// HTML

const STYLE = `
:root { color: #111; background: #fff; }
body { font: 14px/1.45 Helvetica, Arial, sans-serif; max-width: 1120px; margin: 0 auto; padding: 1.5em; }
h1 { font-size: 1.5em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #999; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.notice { border: 3px solid #000; padding: 0.6em 0.9em; font-size: 1.15em; font-weight: bold; margin: 0.8em 0; }
.ruo-banner { border: 3px dashed #000; background: #fff3b0; padding: 0.6em 0.9em; font-weight: bold; letter-spacing: 0.02em; margin: 0.8em 0; }
.meta { color: #333; margin: 0.2em 0; }
code { font-family: Menlo, Consolas, monospace; font-size: 0.92em; background: #f2f2f2; padding: 0 0.2em; word-break: break-all; }
table { border-collapse: collapse; margin: 0.4em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1em 1.5em; }
figure { margin: 0; display: table; }
figure svg { display: block; }
figcaption { display: table-caption; caption-side: bottom; }
figcaption { font-size: 0.9em; color: #333; margin-top: 0.3em; }
.missing { font-style: italic; color: #333; max-width: 420px; }
footer { margin-top: 2em; border-top: 1px solid #999; padding-top: 0.6em; font-size: 0.9em; color: #333; }
@media print { .figures { display: block; } figure { page-break-inside: avoid; margin-bottom: 1em; } }
`;

type Cell = string | { num: string };

/** A table; cells are escaped unless given as { num } (already-formatted numbers, escaped too). */
function table(head: Cell[], rows: Cell[][], caption?: string): string {
  const cell = (tag: 'th' | 'td', c: Cell): string =>
    typeof c === 'string' ? `<${tag}>${escapeHtml(c)}</${tag}>` : `<${tag} class="num">${escapeHtml(c.num)}</${tag}>`;
  return [
    '<table>',
    caption ? `<caption>${escapeHtml(caption)}</caption>` : '',
    `<thead><tr>${head.map((h) => cell('th', h)).join('')}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => cell('td', c)).join('')}</tr>`).join('\n')}</tbody>`,
    '</table>',
  ].join('');
}

/** Key/value rows with the keys as row headers. */
function keyValues(rows: [string, string, boolean?][]): string {
  return `<table><tbody>${rows
    .map(([k, v, num]) => `<tr><th scope="row">${escapeHtml(k)}</th><td${num ? ' class="num"' : ''}>${escapeHtml(v)}</td></tr>`)
    .join('\n')}</tbody></table>`;
}

function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function confusionRow(label: string, c: Confusion, extra: string): Cell[] {
  return [
    label,
    { num: fmtCutoff(c.cutoff) },
    { num: fmtCount(c.tp) },
    { num: fmtCount(c.fp) },
    { num: fmtCount(c.tn) },
    { num: fmtCount(c.fn) },
    { num: fmtMetric(c.sensitivity) },
    { num: fmtMetric(c.specificity) },
    { num: fmtMetric(c.ppv) },
    { num: fmtMetric(c.npv) },
    { num: extra },
  ];
}

/** The report as one HTML document: inline SVG, inline CSS, no scripts, no external resources. */
export async function renderReportHtml(report: CohortReport): Promise<string> {
  const r = report;
  const fit = r.kind === 'fit';
  const cal = r.calibration;
  const sel = r.selection;

  // Render sequentially: vega's id counter is global, so order matters for nothing after
  // uniqueIds(), but sequential rendering keeps memory low and output trivially reproducible.
  const rocSvg = await renderSvg(rocSpec(r), 'roc');
  const calSvg = cal ? await renderSvg(calibrationSpec(cal), 'cal') : null;
  const dcaSvg = await renderSvg(decisionCurveSpec(r.decisionCurve), 'dca');
  const cvSvg = fit && sel ? await renderSvg(cvSpec(sel, r.model.link), 'cv') : null;

  const out: string[] = [];
  out.push(
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator" content="${escapeHtml(r.generated.tool)}">`,
    `<title>${escapeHtml(r.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<header>',
    `<p class="notice" role="note">${escapeHtml(r.notice)}</p>`,
  );
  if (r.researchUseOnly) {
    out.push(
      '<p class="ruo-banner" role="note">RESEARCH USE ONLY — this model has not been validated for clinical use. ' +
        'Results must not be used to make diagnostic or treatment decisions.</p>',
    );
  }
  out.push(
    `<h1>${escapeHtml(r.title)}</h1>`,
    `<p class="meta">${escapeHtml(fit ? 'Model fit: LASSO feature selection and cross-validated performance' : 'Evaluation of an existing model card on a new cohort')}</p>`,
    `<p class="meta">Generated by ${escapeHtml(r.generated.tool)} on ${escapeHtml(r.generated.date)}` +
      (r.generated.seed !== undefined ? `, seed ${escapeHtml(r.generated.seed)}` : '') +
      `. Command: <code>${escapeHtml(r.generated.command)}</code></p>`,
    '</header>',
  );

  // Model and cohort.
  out.push('<h2>Model and cohort</h2>');
  out.push(
    keyValues([
      ['Model', `${r.model.id} ${r.model.version}`],
      ['Task', r.model.task],
      ['Link', r.model.link === 'cox' ? 'Cox proportional hazards' : 'logistic'],
      ['Model card SHA-256', r.model.cardSha256],
      ['Cohort', r.cohort.path],
      ['Cases analysed', fmtCount(r.cohort.n), true],
      ['Positives', `${fmtCount(r.cohort.nPositive)} (${fmtPercent(r.cohort.nPositive, r.cohort.n)})`, true],
      ['Cases excluded', fmtCount(r.cohort.excluded.length), true],
      ['Validation', r.validation],
    ]),
  );

  // Summary.
  out.push('<h2>Summary</h2>');
  out.push(
    table(
      ['Measure', 'Value'],
      [
        ['Cases (n)', { num: fmtCount(r.cohort.n) }],
        ['Positives', { num: fmtCount(r.cohort.nPositive) }],
        ['AUC (95 % CI)', { num: fmtAucCi(r.roc) }],
        ['AUC standard error', { num: fmtMetric(r.roc.se) }],
        ['Calibration slope', { num: cal ? fmtMetric(cal.slope) : NA }],
        ['Calibration intercept', { num: cal ? fmtMetric(cal.intercept) : NA }],
      ],
    ),
  );

  // Figures.
  out.push('<h2>Figures</h2>', '<div class="figures">');
  out.push(
    figure(
      rocSvg,
      'Solid line: model ROC curve; dashed line: chance (AUC 0.5); diamond: Youden-optimal cutoff' +
        (r.atCardCutoff ? '; square: the card’s own cutoff.' : '.'),
    ),
  );
  if (calSvg && cal) {
    out.push(figure(calSvg, `Points: bins of predicted risk (mean predicted probability against observed proportion positive${cal.bins.every((b) => b.n === cal.bins[0].n) ? '' : '; area proportional to the number of cases'}); dashed line: perfect calibration.`));
  } else {
    out.push(
      `<p class="missing">No calibration plot: ${
        r.model.link === 'cox'
          ? 'this is a Cox model card, whose linear predictor gives relative risks rather than absolute probabilities, so calibration of probabilities does not apply.'
          : 'calibration was not computed for this report.'
      }</p>`,
    );
  }
  out.push(
    figure(
      dcaSvg,
      `Net benefit of acting on the model (solid), treating all (long dashes) and treating none (short dashes) across threshold probabilities; the axis is clipped at ${NET_BENEFIT_FLOOR}.`,
    ),
  );
  if (cvSvg && sel) {
    out.push(
      figure(
        cvSvg,
        `Cross-validated deviance (mean ± standard error over ${fmtCount(sel.cv.folds)} folds) by penalty; dashed rule: λmin = ${fmtLambda(sel.cv.lambdaMin)}, dotted rule: λ1se = ${fmtLambda(sel.cv.lambda1se)}.`,
      ),
    );
  }
  out.push('</div>');

  // Operating points.
  out.push('<h2>Operating points</h2>');
  const opRows = [confusionRow('Youden-optimal', r.youden, fmtMetric(r.youden.j))];
  if (r.atCardCutoff) {
    const c = r.atCardCutoff;
    opRows.push(confusionRow('Card cutoff', c, fmtMetric(c.sensitivity + c.specificity - 1)));
  }
  out.push(
    table(
      ['Operating point', { num: 'Cutoff (risk ≥)' }, { num: 'TP' }, { num: 'FP' }, { num: 'TN' }, { num: 'FN' }, { num: 'Sensitivity' }, { num: 'Specificity' }, { num: 'PPV' }, { num: 'NPV' }, { num: 'Youden J' }],
      opRows,
    ),
  );

  // Feature selection (fit).
  if (sel) {
    out.push('<h2>Feature selection</h2>');
    const kept = sel.candidates - sel.dropped.nearConstant - sel.dropped.correlated - sel.dropped.nonFinite;
    out.push(
      table(
        ['Step', { num: 'Features' }],
        [
          ['Candidates extracted', { num: fmtCount(sel.candidates) }],
          ['Dropped: non-finite values', { num: fmtCount(sel.dropped.nonFinite) }],
          ['Dropped: near-constant', { num: fmtCount(sel.dropped.nearConstant) }],
          ['Dropped: highly correlated', { num: fmtCount(sel.dropped.correlated) }],
          ['Entered LASSO', { num: fmtCount(kept) }],
          ['Selected (non-zero at chosen λ)', { num: fmtCount(sel.selected.length) }],
        ],
      ),
    );
    out.push(
      `<p>Penalty chosen by ${escapeHtml(fmtCount(sel.cv.folds))}-fold cross-validation over ${escapeHtml(fmtCount(sel.cv.lambdas.length))} values: ` +
        `λmin = ${escapeHtml(fmtLambda(sel.cv.lambdaMin))}, λ1se = ${escapeHtml(fmtLambda(sel.cv.lambda1se))}.</p>`,
    );
    out.push('<h3>Selected features</h3>');
    if (sel.selected.length === 0) {
      out.push('<p>No feature was selected: the model is intercept-only (plus any clinical terms).</p>');
    } else {
      const sorted = sel.selected
        .map((f, i) => ({ ...f, i }))
        .sort((a, b) => absOrder(b.coefficient) - absOrder(a.coefficient) || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.i - b.i));
      out.push(
        table(
          [{ num: '#' }, 'Feature', { num: 'Coefficient (standardised)' }],
          sorted.map((f, k) => [{ num: String(k + 1) }, f.name, { num: fmtCoef(f.coefficient) }]),
        ),
      );
    }
    if (sel.clinical && sel.clinical.length > 0) {
      out.push('<h3>Clinical terms (nomogram)</h3>');
      out.push(
        table(
          ['Term', { num: 'Coefficient' }, { num: 'SE' }],
          sel.clinical.map((c) => [c.name, { num: fmtCoef(c.coefficient) }, { num: fmtCoef(c.se) }]),
        ),
      );
    }
  }

  // Excluded cases.
  out.push('<h2>Excluded cases</h2>');
  if (r.cohort.excluded.length === 0) out.push('<p>None.</p>');
  else out.push(table(['Case', 'Reason'], r.cohort.excluded.map((e) => [e.case, e.reason])));

  // Notes.
  out.push('<h2>Notes</h2>');
  if (r.notes.length === 0) out.push('<p>None.</p>');
  else out.push(`<ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}</ul>`);

  out.push(
    `<footer><p><strong>${escapeHtml(r.notice)}</strong></p>` +
      `<p>${escapeHtml(r.generated.tool)} · ${escapeHtml(r.generated.date)} · model card SHA-256 <code>${escapeHtml(r.model.cardSha256)}</code></p></footer>`,
    '</body>',
    '</html>',
    '',
  );
  return out.join('\n');
}

/** |x| for sorting, with non-finite values last. */
function absOrder(x: number): number {
  return Number.isFinite(x) ? Math.abs(x) : -1;
}

/** The report as pretty JSON (NaN and infinities as null). */
export function reportJson(report: CohortReport): string {
  return JSON.stringify(report, nonFiniteToNull, 2) + '\n';
}

/** Write `<basename>.html` and `<basename>.json` into dir (created if needed); returns their paths. */
export async function writeReport(dir: string, basename: string, report: CohortReport): Promise<{ html: string; json: string }> {
  const html = join(dir, `${basename}.html`);
  const json = join(dir, `${basename}.json`);
  const page = await renderReportHtml(report);
  await mkdir(dir, { recursive: true });
  await writeFile(json, reportJson(report), 'utf8');
  await writeFile(html, page, 'utf8');
  return { html, json };
}
