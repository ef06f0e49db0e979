// `sonomics fit`, `eval`, `import-sklearn` and `seal-card`: model cards from a cohort, their
// performance on a new cohort, cards from a scikit-learn pipeline, and resealing an edited card.
// Options are parsed and checked in main.ts. Decision support only, not for diagnosis.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { stringify } from 'csv-stringify/sync';
import { clinicalCell, cohortFeatures, completeCases, readCohort, UNIT_SHAPE_FEATURES, type CohortCase } from '../core/cohort.js';
import type { GrayImage } from '../core/imageio.js';
import { deepestPoint, Segmenter } from '../core/segment/segmenter.js';
import { fitCohort, type FittedModel } from '../core/fit.js';
import {
  CARD_FORMAT, clinicalVariableSchema, DECISION_SUPPORT_NOTICE, parseModelCard, sealCard, type ClinicalVariable, type ModelCard,
} from '../core/modelcard.js';
import { loadRiskModel } from '../core/models.js';
import { DEPRECATED_FEATURES, FEATURE_NAMES } from '../core/radiomics.js';
import { parseRing } from '../core/regions.js';
import { aucDeLong, confusionAt, rocCurve, youden } from '../core/stats/roc.js';
import { calibration } from '../core/stats/logistic.js';
import { decisionCurve } from '../core/stats/decision.js';
import { writeReport, type CohortReport } from './report.js';
import { UsageError } from './errors.js';

export const DEFAULT_RINGS_MM = [3, 5, 8];
/** Rings when the cohort has no pixel spacing: about 3/5/8 mm at 0.1 mm per pixel, a typical breast B-mode scale (an assumption the card states). */
export const DEFAULT_RINGS_PX = [30, 50, 80];

type Log = (line: string) => void;

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validateClinical = ajv.compile({ type: 'array', items: clinicalVariableSchema });

/** Clinical variable definitions for a nomogram: a JSON array of the card's clinical entries. */
export function readClinicalDefinitions(path: string): ClinicalVariable[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`clinical definitions ${path}: not readable JSON: ${(e as Error).message}`);
  }
  if (!validateClinical(json))
    throw new UsageError(`clinical definitions ${path} are invalid: ${(validateClinical.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
  const vars = json as ClinicalVariable[];
  for (const v of vars) {
    if ((v.type === 'number' || v.type === 'integer') && !v.range) throw new UsageError(`clinical definitions ${path}: ${v.name} needs a range [min, max]`);
    if (v.type === 'category' && !v.levels) throw new UsageError(`clinical definitions ${path}: ${v.name} is a category without levels`);
  }
  return vars;
}

/** ROC, AUC with DeLong CI, calibration, decision curve and Youden cutoff of probabilities (or, for Cox, linear predictors). */
function metricsOf(values: number[], y: number[], probabilities: boolean) {
  const auc = aucDeLong(values, y);
  const yd = youden(values, y);
  return {
    roc: { points: rocCurve(values, y), auc: auc.auc, ci: auc.ci as [number, number], se: auc.se },
    calibration: probabilities ? calibration(values, y) : null,
    decisionCurve: probabilities ? decisionCurve(values, y) : [],
    youden: yd,
  };
}

/** Where the lesion masks of a cohort come from: its own files, or one tap each (`--masks tap`). */
export type MaskSource = 'cohort' | 'tap';

/**
 * `--masks tap`: each image is segmented from a tap at the deepest point of its cohort mask (the
 * maximum of its distance transform); the cohort mask only places the tap. An image the segmenter
 * was trained on is segmented by the cross-validation fold model that never saw it, so the masks
 * are out of sample. A case whose tap finds no lesion is excluded with that reason.
 */
export async function tapMasks(log: Log, segmenterDir?: string) {
  const seg = await Segmenter.load({ dir: segmenterDir, folds: true }).catch((e: Error) => { throw new UsageError(`--masks tap: ${e.message}`); });
  let outOfFold = 0, segmented = 0;
  const maskOf = async (c: CohortCase, image: GrayImage, cohortMask: GrayImage): Promise<Uint8Array> => {
    const fold = seg.foldFor(sha256File(c.image));
    if (fold !== undefined) outOfFold++;
    const tap = deepestPoint(cohortMask.data, cohortMask.width, cohortMask.height);
    const r = await seg.segment(image, { seed: tap }, { fold });
    segmented++;
    if (!r.found) throw new Error(`${r.reason} (${tap.x},${tap.y})`);
    return r.mask;
  };
  const { id, version, sha256, refineSha256 } = seg.identity;
  const describe = () => `masks segmented from one tap at each cohort mask's deepest point (segmenter ${id} ${version}, ` +
    `sha256 ${sha256.slice(0, 16)}…${refineSha256 ? `, refining network ${refineSha256.slice(0, 16)}…` : ''}; ${outOfFold} of ${segmented} images were in its training set and got the fold model that never saw them)`;
  return { maskOf, describe, close: () => seg.close(), log: () => log(`masks: ${describe()}`) };
}

export interface FitOptions {
  cohort: string;
  out: string;
  id: string;
  version: string;
  task: string;
  labelColumn?: string;
  clinical?: string;
  seed: number;
  folds: number;
  outerFolds: number;
  binWidth: number;
  rings?: number[];
  pane: 'bmode' | 'contrast';
  researchUseOnly: boolean;
  /** How the cohort is named in the card (default: the CSV's file name). */
  cohortName?: string;
  /** Known limits of the data or model, written to the card and the report. */
  caveats?: string[];
  /** Where the held-out probability of every case goes (CSV), if anywhere. */
  heldout?: string;
  masks?: MaskSource;
  command: string;
}

export interface FitSummary {
  card: string; report: string; n: number; nPositive: number; excluded: number;
  auc: number; auc_ci: [number, number]; calibration_slope: number; calibration_intercept: number;
  selected: string[]; cutoff: number; seconds: { features: number; fit: number };
  notice: string;
}

/** `sonomics fit`: features of every case, selection and fit, nested cross-validated performance; writes card.json and the report. */
export async function fitCommand(o: FitOptions, log: Log): Promise<FitSummary> {
  const t0 = performance.now();
  const cohort = readCohort(o.cohort, { labelColumn: o.labelColumn });
  const clinical = o.clinical ? readClinicalDefinitions(o.clinical) : [];
  const missingCols = clinical.filter((v) => !cohort.columns.includes(v.name)).map((v) => v.name);
  if (missingCols.length) throw new UsageError(`cohort ${o.cohort} has no column for clinical ${missingCols.join(', ')}`);
  const rings = o.rings ?? (cohort.spacing === 'mm' ? DEFAULT_RINGS_MM : DEFAULT_RINGS_PX);
  // The ring engine needs increasing radii; unchecked, every case was excluded and the fit failed as "too few cases".
  if (rings.some((r, i) => i > 0 && r <= rings[i - 1])) throw new UsageError(`fit: --rings radii must increase (got ${rings.join(',')})`);
  log(`fit: ${cohort.cases.length} cases, spacing ${cohort.spacing === 'mm' ? 'in mm' : 'unknown (rings and features in pixels)'}, rings ${rings.join('/')} ${cohort.spacing === 'mm' ? 'mm' : 'px'}`);
  const taps = o.masks === 'tap' ? await tapMasks(log) : undefined;
  let f;
  try {
    f = await cohortFeatures(cohort, {
      binWidth: o.binWidth, rings, pane: o.pane, maskOf: taps?.maskOf,
      onCase: (done, total) => { if (done % 100 === 0 || done === total) log(`fit: features ${done}/${total}`); },
    });
  } finally {
    await taps?.close();
  }
  taps?.log();
  const maskNote = taps ? `Features from ${taps.describe()}.` : undefined;
  const t1 = performance.now();
  const d = completeCases(cohort, f, clinical);
  const nonFiniteCols = f.names.length - d.names.length;
  if (d.y.length < 20) {
    const why = d.excluded.length ? ` (${d.excluded.length} excluded, e.g. ${d.excluded[0].case}: ${d.excluded[0].reason})` : '';
    throw new Error(`only ${d.y.length} complete cases${why}: too few to fit and cross-validate`);
  }
  const fit = fitCohort({ names: d.names, X: d.X, y: d.y, ...(d.clinical && { clinicalNames: clinical.map((v) => v.name), clinical: d.clinical }) },
    { seed: o.seed, folds: o.folds, outerFolds: o.outerFolds }, (k, of) => log(`fit: outer fold ${k}/${of}`));
  const t2 = performance.now();
  const perf = metricsOf(fit.heldOut, d.y, true);
  const nPositive = d.y.filter((v) => v === 1).length;
  const validation = `${o.outerFolds}-fold stratified nested cross-validation (inner ${o.folds}-fold LASSO CV, 1-SE rule), seed ${o.seed}`;
  const cohortName = `${o.cohortName ?? basename(o.cohort)} (${basename(o.cohort)} sha256 ${sha256File(o.cohort).slice(0, 16)}…), ${d.y.length} lesions (${nPositive} positive)`;
  const spacingNote = cohort.spacing === 'pixel'
    ? `Pixel spacing unknown: rings are ${rings.join('/')} pixels (ring<r>px) and unit-bearing shape features are left out; on a scanner the rings are taken in the pane's pixels, whose size differs from the training images'.`
    : undefined;
  const card = sealCard<Omit<ModelCard, 'sha256'>>({
    format: CARD_FORMAT,
    id: o.id,
    version: o.version,
    task: o.task,
    intendedUse: `${o.researchUseOnly ? 'Research use only. ' : ''}${DECISION_SUPPORT_NOTICE} Fitted by sonomics fit on ${o.cohortName ?? basename(o.cohort)}; not clinically validated.`,
    researchUseOnly: o.researchUseOnly,
    inputs: {
      engine: { binWidth: o.binWidth, spacing: cohort.spacing, ...(spacingNote && { note: spacingNote }) },
      features: fit.model.terms.filter((t) => !t.startsWith('clinical.')),
      ...(clinical.length && { clinical }),
    },
    scaling: { mean: fit.model.mean, std: fit.model.std },
    linearPredictor: { coefficients: fit.model.coefficients, intercept: fit.model.intercept },
    link: 'logistic',
    categories: { cutoffs: [perf.youden.cutoff], labels: ['lower risk', 'higher risk'], method: 'Youden index on the nested cross-validated probabilities' },
    calibration: {
      slope: perf.calibration!.slope, intercept: perf.calibration!.recalibrationIntercept, inTheLarge: perf.calibration!.intercept, applied: false, cohort: cohortName,
      method: 'logistic recalibration of the nested cross-validated probabilities: logit P = intercept + slope * lp; inTheLarge with the slope fixed at 1',
    },
    performance: {
      auc: perf.roc.auc, aucCi: perf.roc.ci, n: d.y.length, nPositive, cohort: cohortName, validation,
      atCutoff: { cutoff: perf.youden.cutoff, sensitivity: perf.youden.sensitivity, specificity: perf.youden.specificity, ppv: perf.youden.ppv, npv: perf.youden.npv },
    },
    provenance: `sonomics fit: ${f.names.length} candidate features (lesion + rings, binWidth ${o.binWidth}); dropped ${nonFiniteCols} non-finite in > 5 % of cases, ` +
      `${fit.model.selection.dropped.nearConstant} near-constant, ${fit.model.selection.dropped.correlated} correlated (|r| > 0.9); LASSO logistic regression, ` +
      `${o.folds}-fold CV, 1-SE rule (lambda ${fit.model.selection.lambda.toPrecision(4)})${clinical.length ? '; nomogram: unpenalised logistic regression of the Rad-score and clinical variables' : ''}; seed ${o.seed}.` +
      (maskNote ? ` ${maskNote}` : ''),
    ...(o.caveats?.length && { caveats: o.caveats }),
  });
  parseModelCard(card, 'the fitted card');
  mkdirSync(o.out, { recursive: true });
  const cardPath = join(o.out, 'card.json');
  writeFileSync(cardPath, `${JSON.stringify(card, null, 2)}\n`);
  if (o.heldout) writeFileSync(o.heldout, stringify(d.ids.map((id, i) => [id, d.y[i], fit.heldOut[i]]), { header: true, columns: ['id', 'label', 'probability'] }));
  const report: CohortReport = {
    kind: 'fit', title: `${o.id} ${o.version} — nested cross-validated performance`, notice: DECISION_SUPPORT_NOTICE, researchUseOnly: o.researchUseOnly,
    generated: { tool: 'sonomics fit', date: new Date().toISOString(), seed: o.seed, command: o.command },
    model: { id: o.id, version: o.version, task: o.task, cardSha256: card.sha256, link: 'logistic' },
    cohort: { path: o.cohort, n: d.y.length, nPositive, excluded: d.excluded },
    validation, ...perf, youden: { ...perf.youden },
    selection: { ...selectionOf(fit.model), candidates: f.names.length, dropped: { ...fit.model.selection.dropped, nonFinite: nonFiniteCols } },
    notes: [...(o.caveats ?? []), ...(spacingNote ? [spacingNote] : []), 'Probabilities and cutoffs come from held-out folds: each case is predicted by a model fitted without it.'],
  };
  const { html } = await writeReport(o.out, 'report', report);
  return {
    card: resolve(cardPath), report: resolve(html), n: d.y.length, nPositive, excluded: d.excluded.length,
    auc: perf.roc.auc, auc_ci: perf.roc.ci, calibration_slope: perf.calibration!.slope, calibration_intercept: perf.calibration!.intercept,
    selected: fit.model.terms, cutoff: perf.youden.cutoff,
    seconds: { features: (t1 - t0) / 1000, fit: (t2 - t1) / 1000 }, notice: DECISION_SUPPORT_NOTICE,
  };
}

function selectionOf(m: FittedModel): NonNullable<CohortReport['selection']> {
  const s = m.selection;
  return { candidates: s.candidates, dropped: s.dropped, cv: s.cv, selected: s.selected, ...(s.nomogram && { clinical: s.nomogram }) };
}

export interface EvalOptions {
  model: string;
  cohort: string;
  labelColumn?: string;
  out?: string;
  masks?: MaskSource;
  command: string;
}

/** `sonomics eval`: a card's performance on a cohort; per-case values to CSV. */
export async function evalCommand(o: EvalOptions, log: Log) {
  const model = await loadRiskModel(o.model);
  const card = model.card;
  if (model.deep) throw new UsageError(`model ${card.id} has deep features: eval of deep cards on a cohort is not supported yet`);
  const cohort = readCohort(o.cohort, { labelColumn: o.labelColumn });
  const notes: string[] = [];
  if (card.inputs.engine.spacing === 'mm' && cohort.spacing === 'pixel')
    throw new UsageError(`model ${card.id} reads features in mm: cohort ${o.cohort} needs a spacing_mm column`);
  if (card.inputs.engine.spacing === 'pixel' && cohort.spacing === 'mm') notes.push('The card was fitted in pixels: the cohort\'s spacing_mm is ignored.');
  const panes = new Set(card.inputs.features.map((k) => k.split('.')[0]));
  if (panes.size > 1) throw new UsageError(`model ${card.id} reads both panes; a cohort image is one pane`);
  const pane = ([...panes][0] ?? 'bmode') as 'bmode' | 'contrast';
  // The card's checks make every ring's unit its engine's (mm or px).
  const rings = [...model.regions].flatMap((r) => parseRing(r)?.radius ?? []).sort((a, b) => a - b);
  log(`eval: ${cohort.cases.length} cases, model ${card.id} ${card.version}`);
  const taps = o.masks === 'tap' ? await tapMasks(log) : undefined;
  let f;
  try {
    f = await cohortFeatures(cohort, {
      binWidth: card.inputs.engine.binWidth, rings, pane, spacing: card.inputs.engine.spacing, maskOf: taps?.maskOf,
      onCase: (done, total) => { if (done % 100 === 0 || done === total) log(`eval: features ${done}/${total}`); },
    });
  } finally {
    await taps?.close();
  }
  if (taps) { taps.log(); notes.push(`Features from ${taps.describe()}.`); }
  const excluded = [...f.excluded];
  const ids: string[] = [], y: number[] = [], values: number[] = [], lps: number[] = [];
  const index = new Map(f.names.map((n, j) => [n, j]));
  cohort.cases.forEach((c, i) => {
    const row = f.rows[i];
    if (!row) return;
    const features: Record<string, number> = {};
    for (const k of card.inputs.features) features[k] = index.has(k) ? row[index.get(k)!] : NaN;
    const clinical = new Map<string, number>();
    try {
      for (const v of model.clinical) { const x = clinicalCell(v, c.cells[v.name]); if (x !== undefined) clinical.set(v.name, x); }
    } catch (e) {
      excluded.push({ case: c.id, reason: (e as Error).message });
      return;
    }
    const s = model.score(features, clinical, undefined, i);
    if (s.status !== 'ok') { excluded.push({ case: c.id, reason: s.problem ?? s.status }); return; }
    ids.push(c.id); y.push(c.label); values.push(s.value); lps.push(s.linearPredictor);
  });
  if (!y.includes(0) || !y.includes(1)) throw new Error(`cohort ${o.cohort}: after exclusions (${excluded.length}) both classes are needed (${y.length} cases left)`);
  const logistic = card.link === 'logistic';
  const perf = metricsOf(values, y, logistic);
  const atCard = confusionAt(values, y, card.categories.cutoffs[0] ?? 0.5);
  const nPositive = y.filter((v) => v === 1).length;
  const summary = {
    model: card.id, version: card.version, card_sha256: card.sha256, n: y.length, nPositive, excluded: excluded.length,
    auc: perf.roc.auc, auc_ci: perf.roc.ci, auc_se: perf.roc.se,
    calibration_slope: perf.calibration?.slope ?? null, calibration_intercept: perf.calibration?.intercept ?? null,
    youden: perf.youden, at_card_cutoff: atCard, masks: taps ? taps.describe() : 'the cohort\'s masks', notice: DECISION_SUPPORT_NOTICE,
  };
  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'cases.csv'), stringify(ids.map((id, i) => [id, y[i], values[i], lps[i]]),
      { header: true, columns: ['id', 'label', logistic ? 'probability' : 'value', 'linear_predictor'] }));
    await writeReport(o.out, 'report', {
      kind: 'eval', title: `${card.id} ${card.version} on ${basename(o.cohort)}`, notice: DECISION_SUPPORT_NOTICE, researchUseOnly: card.researchUseOnly ?? false,
      generated: { tool: 'sonomics eval', date: new Date().toISOString(), command: o.command },
      model: { id: card.id, version: card.version, task: card.task, cardSha256: card.sha256, link: card.link },
      cohort: { path: o.cohort, n: y.length, nPositive, excluded }, validation: 'external: the card applied unchanged to this cohort',
      ...perf, atCardCutoff: atCard, notes,
    });
  }
  return summary;
}

export interface SklearnExport {
  feature_names: string[];
  scaler?: { mean_?: number[] | null; scale_?: number[] | null };
  classifier: { coef_: number[][]; intercept_: number[]; classes_?: (number | string)[] };
}

export interface ImportOptions {
  /** Pane and region of bare PyRadiomics names (`original_glcm_Contrast`). */
  pane: 'bmode' | 'contrast';
  region: string;
  id: string;
  version: string;
  task: string;
  binWidth: number;
  spacing: 'mm' | 'pixel';
  cutoff: number;
  labels: [string, string];
  researchUseOnly: boolean;
}

const IMPORT_NAME = /^(?:(bmode|contrast)[._])?(?:(lesion|ring[0-9]+(?:p[0-9]+)?(?:mm|px))[._])?original_([A-Za-z0-9]+)_([A-Za-z0-9]+)$/;
/** A name already in the card's form, `<pane>.<region>.<class>_<Feature>`. */
const CARD_NAME = /^(?:bmode|contrast)\.(?:lesion|ring[0-9]+(?:p[0-9]+)?(?:mm|px))\.([A-Za-z0-9]+_[A-Za-z0-9]+)$/;

/**
 * A card from a scikit-learn StandardScaler + LogisticRegression fitted on PyRadiomics features
 * (docs/model-card.md "Importing from scikit-learn"): z = (x - mean_) / scale_, lp = intercept_ +
 * coef_ . z. Feature names are PyRadiomics' (`original_<class>_<Feature>`), optionally prefixed by
 * pane and region (`bmode_ring5mm_original_glcm_Contrast`); every name that cannot be mapped is named.
 */
export function importSklearn(ex: SklearnExport, o: ImportOptions): ModelCard {
  const problems: string[] = [];
  const names = Array.isArray(ex?.feature_names) ? ex.feature_names : [];
  if (!names.length) problems.push('feature_names must be a non-empty list');
  const p = names.length;
  const coef = ex?.classifier?.coef_;
  if (!Array.isArray(coef) || coef.length !== 1 || !Array.isArray(coef[0]) || coef[0].length !== p)
    problems.push(`classifier.coef_ must be one row of ${p} numbers (a binary LogisticRegression)`);
  const intercept = ex?.classifier?.intercept_;
  if (!Array.isArray(intercept) || intercept.length !== 1 || typeof intercept[0] !== 'number') problems.push('classifier.intercept_ must be [number]');
  const classes = ex?.classifier?.classes_;
  if (classes && !(classes.length === 2 && String(classes[0]) === '0' && String(classes[1]) === '1'))
    problems.push(`classifier.classes_ is ${JSON.stringify(classes)}: the positive class must be 1 and the negative 0`);
  const mean = ex?.scaler?.mean_ ?? new Array(p).fill(0);
  const scale = ex?.scaler?.scale_ ?? new Array(p).fill(1);
  if (mean.length !== p) problems.push(`scaler.mean_ has ${mean.length} values for ${p} features`);
  if (scale.length !== p) problems.push(`scaler.scale_ has ${scale.length} values for ${p} features`);
  // Only the features the engine computes live (FEATURE_NAMES: PyRadiomics' deprecated ones are not).
  const known = new Set(FEATURE_NAMES);
  const features = names.map((n, i) => {
    const card = typeof n === 'string' ? CARD_NAME.exec(n) : null;
    const m = typeof n === 'string' && !card ? IMPORT_NAME.exec(n) : null;
    if (!m && !card) {
      problems.push(`feature_names[${i}] ${JSON.stringify(n)} is not a PyRadiomics original-image feature ([pane_][region_]original_<class>_<Feature>; ` +
        'filtered images such as wavelet or LoG and diagnostics_ columns are not computed live)');
      return '';
    }
    const name = card ? card[1] : `${m![3]}_${m![4]}`;
    if (!known.has(name))
      problems.push(`feature_names[${i}] ${n}: ${name} is not ${DEPRECATED_FEATURES.has(name) ? 'computed live (deprecated in PyRadiomics)' : 'a 2D feature of the engine (PyRadiomics 2D names, e.g. shape2D_Elongation)'}`);
    else if (o.spacing === 'pixel' && UNIT_SHAPE_FEATURES.has(name))
      problems.push(`feature_names[${i}] ${n}: ${name} carries a unit (mm or mm²), which a card fitted in pixels cannot read (its pixel size is unknown)`);
    return card ? (n as string) : `${m![1] ?? o.pane}.${m![2] ?? o.region}.${name}`;
  });
  if (problems.length) throw new UsageError(`scikit-learn export: ${problems.join('; ')}`);
  const card = sealCard<Omit<ModelCard, 'sha256'>>({
    format: CARD_FORMAT, id: o.id, version: o.version, task: o.task,
    intendedUse: `${o.researchUseOnly ? 'Research use only. ' : ''}${DECISION_SUPPORT_NOTICE} Imported from a scikit-learn model.`,
    researchUseOnly: o.researchUseOnly,
    inputs: { engine: { binWidth: o.binWidth, spacing: o.spacing }, features },
    scaling: { mean, std: scale.map((s) => (s === 0 ? 1 : s)) },
    linearPredictor: { coefficients: coef[0], intercept: intercept[0] },
    link: 'logistic',
    categories: { cutoffs: [o.cutoff], labels: o.labels },
    provenance: 'sonomics import-sklearn: StandardScaler (mean_, scale_) + LogisticRegression (coef_, intercept_).',
  });
  return parseModelCard(card, 'the imported card');
}

/** `sonomics seal-card FILE`: recompute the sha256 of an edited card after checking everything else. */
export function sealCardFile(path: string): { card: string; sha256: string } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`model card ${path}: not readable JSON: ${(e as Error).message}`);
  }
  const sealed = sealCard(json);
  parseModelCard(sealed, `model card ${path}`);
  writeFileSync(path, `${JSON.stringify(sealed, null, 2)}\n`);
  return { card: resolve(path), sha256: sealed.sha256 };
}
