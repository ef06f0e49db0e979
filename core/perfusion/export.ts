// A session's perfusion export: the curve as CSV (every sample: time, each region's measured
// value, then each fitted region's model curve) and the whole analysis as JSON. Written by
// `sonomics perfusion --csv/--json` and served by the overlay (/api/perfusion.csv, .json).
import { stringify } from 'csv-stringify/sync';
import { DECISION_SUPPORT_NOTICE } from '../modelcard.js';
import type { PerfusionAnalysis } from './analysis.js';
import type { PerfusionAnalyzer } from './analyzer.js';
import { evaluateBolusCurve } from './models.js';

const cell = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '' : Number(v.toPrecision(7)));

/** The curve as CSV text: t_s, one column per region, then `<region>_fit_<model>` per fitted region. */
export function perfusionCsv(analyzer: PerfusionAnalyzer, a: PerfusionAnalysis | undefined = analyzer.analysis): string {
  const { t, series } = analyzer.curves();
  const regions = Object.keys(series);
  const fitted = a ? a.regions.filter((r) => r.parameters && r.fits[a.model]) : [];
  const tt = Float64Array.from(t);
  const fits = fitted.map((r) => evaluateBolusCurve(a!.model, r.fits[a!.model]!.params as never, tt));
  const rows = t.map((ti, i) => [Number(ti.toFixed(4)), ...regions.map((r) => cell(series[r][i])), ...fits.map((f) => cell(f[i]))]);
  return stringify([['t_s', ...regions, ...fitted.map((r) => `${r.name}_fit_${a!.model}`)], ...rows]);
}

/** The analysis as a JSON-ready object (non-finite numbers become null), with the notice and the curve. */
export function perfusionJson(analyzer: PerfusionAnalyzer, a: PerfusionAnalysis | undefined = analyzer.analysis): unknown {
  return JSON.parse(JSON.stringify({
    notice: DECISION_SUPPORT_NOTICE, originCaptureMs: analyzer.origin ?? null, linearisation: analyzer.linearisation, counts: analyzer.stats,
    analysis: a ?? null, curve: analyzer.curves(),
  }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
}
