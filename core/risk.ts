// Live risk scores from a model card: standardise each term, linear predictor, link (logistic
// probability, optionally recalibrated; or the Cox linear predictor), cutoffs -> category. A
// missing clinical input makes a frame's score `incomplete` (never imputed); a missing or
// non-finite feature makes it `invalid`. Scores are aggregated over the recent tracked frames
// (median with a 10-90 % band) so the overlay does not flicker.
import { quantile, quantileSorted } from 'simple-statistics';
import type { FeatureSet } from './features.js';
import { DECISION_SUPPORT_NOTICE, isSessionTerm, termNames, type ClinicalVariable, type ModelCard } from './modelcard.js';

export { DECISION_SUPPORT_NOTICE };

export type ClinicalValue = number | boolean | string;
export type ClinicalValues = Readonly<Record<string, ClinicalValue>>;

export class ClinicalInputError extends Error {
  constructor(message: string, readonly variable: string) {
    super(message);
    this.name = 'ClinicalInputError';
  }
}

/** The number a clinical value enters the model as; throws a ClinicalInputError naming the variable and the rule. */
export function codeClinical(v: ClinicalVariable, value: unknown): number {
  const bad = (rule: string) => new ClinicalInputError(`clinical ${v.name} = ${JSON.stringify(value)}: ${rule}`, v.name);
  switch (v.type) {
    case 'boolean':
      if (value === true || value === 1) return 1;
      if (value === false || value === 0) return 0;
      throw bad('must be true or false');
    case 'category': {
      const i = typeof value === 'string' ? v.levels!.indexOf(value) : -1;
      if (i < 0) throw bad(`must be one of ${v.levels!.join(', ')}`);
      return i;
    }
    default: {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`must be a finite number${v.unit ? ` (${v.unit})` : ''}`);
      if (v.type === 'integer' && !Number.isInteger(value)) throw bad('must be an integer');
      const [lo, hi] = v.range!;
      if (value < lo || value > hi) throw bad(`must be in [${lo}, ${hi}]${v.unit ? ` ${v.unit}` : ''}`);
      return value;
    }
  }
}

export interface Driver { feature: string; contribution: number }

export interface FrameScore {
  seq: number;
  status: 'ok' | 'invalid' | 'incomplete';
  linearPredictor: number;
  /** Probability (logistic) or linear predictor (Cox). */
  value: number;
  /** coefficient x scaled value, one per term (empty unless ok). */
  contributions: Float64Array;
  problem?: string;
  /** Clinical inputs that are missing (incomplete). */
  missing?: string[];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A lesion box in frame pixels. */
export interface Box { x: number; y: number; width: number; height: number }

/** What the risk stage needs from a card's CNN (core/deep.ts implements it). */
export interface DeepFeatureSource {
  /** `deep.pc1` ... in the card's term order. */
  readonly names: readonly string[];
  /** PCA scores by name for the lesion `box` (frame pixels); the crop is clipped to `pane` (frame pixels). */
  features(image: { data: Uint8Array; width: number; height: number }, box: Box, pane?: Box): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** A card compiled for scoring: flat arrays, no per-frame allocation beyond the contributions. */
/** No session inputs (no perfusion analysis). */
const NO_SESSION: FeatureSet = Object.freeze({});

export class RiskModel {
  readonly card: ModelCard;
  /** The card's CNN, loaded (absent when the card has no deep section). */
  readonly deep?: DeepFeatureSource;
  readonly terms: readonly string[];
  readonly clinical: readonly ClinicalVariable[];
  /** Regions the card's features read: `lesion`, `ring5mm`, `ring30px`, ... */
  readonly regions: ReadonlySet<string>;
  /** Inputs from the session's perfusion analysis (phase, delta, perfusion terms). */
  readonly sessionTerms: readonly string[];
  /** Per feature term: read from the session's inputs instead of the frame's features. */
  private readonly fromSession: readonly boolean[];
  private readonly mean: Float64Array;
  private readonly std: Float64Array;
  private readonly coef: Float64Array;
  private readonly nFeatures: number;
  private readonly nDeep: number;

  constructor(card: ModelCard, deep?: DeepFeatureSource) {
    if (card.inputs.deep && !deep) throw new Error(`model card ${card.id} has a deep section: load it with loadRiskModel so its CNN is loaded`);
    this.card = card;
    this.deep = deep;
    this.terms = termNames(card);
    this.clinical = card.inputs.clinical ?? [];
    // Regions the pipeline must compute rings for (the reference region is the perfusion analysis' own).
    this.regions = new Set(card.inputs.features.map((f) => f.split('.')[1]).filter((r) => r !== 'reference'));
    this.sessionTerms = card.inputs.features.filter(isSessionTerm);
    this.fromSession = card.inputs.features.map(isSessionTerm);
    this.mean = Float64Array.from(card.scaling.mean);
    this.std = Float64Array.from(card.scaling.std);
    this.coef = Float64Array.from(card.linearPredictor.coefficients);
    this.nFeatures = card.inputs.features.length;
    this.nDeep = card.inputs.deep?.pca.components.length ?? 0;
  }

  get id(): string { return this.card.id; }

  /** Probability (logistic, recalibrated when the card says so) or the linear predictor itself (Cox). */
  valueOf(lp: number): number {
    if (this.card.link === 'cox') return lp;
    const cal = this.card.calibration;
    return sigmoid(cal?.applied ? cal.intercept + cal.slope * lp : lp);
  }

  categoryOf(value: number): string {
    const { cutoffs, labels } = this.card.categories;
    let k = 0;
    while (k < cutoffs.length && value >= cutoffs[k]) k++;
    return labels[k];
  }

  /**
   * One frame's score. `clinical` holds coded values (codeClinical) by name; `deep` the PCA
   * components in order (when the card has a deep section).
   */
  score(features: FeatureSet, clinical: ReadonlyMap<string, number>, deep: ArrayLike<number> | undefined, seq: number,
    session: FeatureSet = NO_SESSION): FrameScore {
    const missing = this.clinical.filter((v) => !clinical.has(v.name)).map((v) => v.name);
    const none = new Float64Array(0);
    if (missing.length)
      return { seq, status: 'incomplete', linearPredictor: NaN, value: NaN, contributions: none, missing, problem: `clinical input missing: ${missing.join(', ')}` };
    // Phase, delta and perfusion inputs exist once the session's curve has been fitted: wait for them.
    const waiting = this.sessionTerms.filter((f) => !Number.isFinite(session[f]));
    if (waiting.length)
      return { seq, status: 'incomplete', linearPredictor: NaN, value: NaN, contributions: none, missing: waiting,
        problem: `waiting for the perfusion analysis: ${waiting.length > 3 ? `${waiting.slice(0, 3).join(', ')} and ${waiting.length - 3} more` : waiting.join(', ')}` };
    if (this.nDeep && (!deep || deep.length !== this.nDeep))
      return { seq, status: 'invalid', linearPredictor: NaN, value: NaN, contributions: none, problem: 'deep features are not computed' };
    const c = new Float64Array(this.terms.length);
    let lp = this.card.linearPredictor.intercept;
    for (let i = 0; i < c.length; i++) {
      let x: number | undefined;
      if (i < this.nFeatures) x = (this.fromSession[i] ? session : features)[this.terms[i]];
      else if (i < this.nFeatures + this.clinical.length) x = clinical.get(this.clinical[i - this.nFeatures].name);
      else x = deep![i - this.nFeatures - this.clinical.length];
      if (x === undefined || !Number.isFinite(x))
        return { seq, status: 'invalid', linearPredictor: NaN, value: NaN, contributions: none, problem: `${this.terms[i]} is ${x === undefined ? 'not computed' : 'not finite'}` };
      c[i] = this.coef[i] * ((x - this.mean[i]) / this.std[i]);
      lp += c[i];
    }
    return { seq, status: 'ok', linearPredictor: lp, value: this.valueOf(lp), contributions: c };
  }

  /** The terms with the largest |contribution|, largest first. */
  drivers(contributions: Float64Array, k = 3): Driver[] {
    const idx = Array.from(contributions.keys()).sort((a, b) => Math.abs(contributions[b]) - Math.abs(contributions[a]));
    return idx.slice(0, k).map((i) => ({ feature: this.terms[i], contribution: contributions[i] }));
  }
}

/** Refuses models fitted with another bin width than the engine runs with (names the card and both values). */
export function checkBinWidth(models: readonly RiskModel[], binWidth: number, key = 'pipeline.binWidth'): void {
  for (const m of models) {
    const e = m.card.inputs.engine;
    if (e.binWidth !== binWidth) throw new Error(`model card ${m.id} was fitted with binWidth ${e.binWidth}, but ${key} is ${binWidth}: set ${key} to ${e.binWidth} or refit`);
  }
}

/** Every region some model reads (for planRings). */
export function modelRegions(models: readonly RiskModel[]): Set<string> {
  return new Set(models.flatMap((m) => [...m.regions]));
}

/**
 * Clinical inputs coded for each model by its own card's definition (levels may differ between
 * cards): one list of [name, code] per model, null to clear. Throws a ClinicalInputError for a
 * name no model reads or a value a card refuses, before anything is returned. `code` turns a value
 * into a number (codeClinical; the command line passes text through cohort's clinicalCell).
 */
export function codeClinicalInputs<V>(models: readonly RiskModel[], values: Readonly<Record<string, V | null>>,
  code: (v: ClinicalVariable, value: V) => number = codeClinical as (v: ClinicalVariable, value: V) => number): Array<Array<[string, number | null]>> {
  const known = new Set(models.flatMap((m) => m.clinical.map((v) => v.name)));
  for (const name of Object.keys(values))
    if (!known.has(name))
      throw new ClinicalInputError(`clinical ${name}: no loaded model reads it (${known.size ? `known: ${[...known].join(', ')}` : 'the models read no clinical input'})`, name);
  return models.map((m) => m.clinical.flatMap((v): Array<[string, number | null]> => {
    if (!(v.name in values)) return [];
    const value = values[v.name];
    return [[v.name, value === null ? null : code(v, value)]];
  }));
}

export interface RiskScore {
  modelId: string;
  version: string;
  /** sha256 of the card the score comes from. */
  cardSha256: string;
  task: string;
  link: ModelCard['link'];
  /** Aggregated value (median over the recent tracked frames): a probability (logistic) or the linear predictor (Cox). */
  value: number;
  /**
   * The score's band: the 10th-90th percentile of the recent frame values (the tracker's
   * frame-to-frame mask changes), widened to the mask's sensitivity when measured: the value
   * with the lesion mask shrunk and grown by a few pixels.
   */
  band: [number, number];
  /** The 10th-90th percentile of the recent frame values alone. */
  frameBand?: [number, number];
  /** The value shifted by the mask's sensitivity: [shrunk, grown] (medians of recent measurements). */
  maskBand?: { radiusPx: number; shrunk: number; grown: number };
  /** Aggregated linear predictor (the Rad-score of a radiomics-only card). */
  linearPredictor: number;
  category: string;
  cutoffs: number[];
  /** The first cutoff (the one a two-category card has), for the overlay's gauge. */
  cutoff: number;
  /** Largest |contribution| first, from the most recent frame. */
  drivers: Driver[];
  status: 'ok' | 'invalid' | 'incomplete' | 'warming-up';
  problem?: string;
  missing?: string[];
  /** Frames aggregated. */
  frames: number;
  seq: number;
  researchUseOnly: boolean;
  notice: string;
}

/** Mask-sensitivity measurements kept (their median widens the band). */
export const MASK_SENSITIVITY_WINDOW = 5;

/** Keeps the recent frame scores of one model and reports the aggregated, banded score. */
export class RiskAggregator {
  private values: number[] = [];
  private lps: number[] = [];
  /** Recent mask-sensitivity measurements: the value with the mask shrunk / grown minus the value as tracked. */
  private shrunk: number[] = [];
  private grown: number[] = [];
  private radiusPx = 0;
  readonly minFrames: number;
  constructor(readonly model: RiskModel, readonly window = 15, minFrames = 3) {
    this.minFrames = Math.min(minFrames, window);
  }

  reset(): void {
    this.values = [];
    this.lps = [];
    this.shrunk = [];
    this.grown = [];
  }

  /**
   * A frame's score; `variants`: the same frame scored with the lesion mask shrunk and grown by
   * radiusPx (the mask's sensitivity), when measured on this frame.
   */
  add(fs: FrameScore, variants?: { radiusPx: number; shrunk: FrameScore; grown: FrameScore }): RiskScore {
    const c = this.model.card;
    const base = {
      modelId: c.id, version: c.version, cardSha256: c.sha256, task: c.task, link: c.link, cutoffs: c.categories.cutoffs,
      cutoff: c.categories.cutoffs[0] ?? NaN, seq: fs.seq, researchUseOnly: c.researchUseOnly ?? false, notice: DECISION_SUPPORT_NOTICE,
    };
    if (fs.status !== 'ok') {
      return {
        ...base, value: NaN, band: [NaN, NaN], linearPredictor: NaN, category: fs.status, drivers: [], status: fs.status,
        problem: fs.problem, ...(fs.missing && { missing: fs.missing }), frames: this.values.length,
      };
    }
    this.values.push(fs.value);
    this.lps.push(fs.linearPredictor);
    if (this.values.length > this.window) {
      this.values.shift();
      this.lps.shift();
    }
    if (variants && variants.shrunk.status === 'ok' && variants.grown.status === 'ok') {
      this.radiusPx = variants.radiusPx;
      this.shrunk.push(variants.shrunk.value - fs.value);
      this.grown.push(variants.grown.value - fs.value);
      if (this.shrunk.length > MASK_SENSITIVITY_WINDOW) { this.shrunk.shift(); this.grown.shift(); }
    }
    // One sort for the three quantiles of the window.
    const sorted = [...this.values].sort((a, b) => a - b);
    const value = quantileSorted(sorted, 0.5);
    const frameBand: [number, number] = [quantileSorted(sorted, 0.1), quantileSorted(sorted, 0.9)];
    const band: [number, number] = [...frameBand];
    let maskBand: RiskScore['maskBand'];
    if (this.shrunk.length) {
      maskBand = { radiusPx: this.radiusPx, shrunk: value + quantile(this.shrunk, 0.5), grown: value + quantile(this.grown, 0.5) };
      band[0] = Math.min(band[0], maskBand.shrunk, maskBand.grown);
      band[1] = Math.max(band[1], maskBand.shrunk, maskBand.grown);
    }
    return {
      ...base, value, band, frameBand, ...(maskBand && { maskBand }), linearPredictor: quantile(this.lps, 0.5),
      category: this.model.categoryOf(value), drivers: this.model.drivers(fs.contributions),
      status: this.values.length >= this.minFrames ? 'ok' : 'warming-up', frames: this.values.length,
    };
  }
}
