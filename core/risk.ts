// Risk models: a model card (documented JSON, validated by a schema) turns features into a
// score: standardise, linear predictor, logistic link, cutoff -> category. Scores are
// aggregated over recent tracked frames (median with a 10-90 % band) so the overlay does not
// flicker. Issue #6 extends the card (clinical variables, Cox link, deep features, hashes).
import { Ajv } from 'ajv';
import { quantile } from 'simple-statistics';
import type { FeatureSet } from './features.js';

export const DECISION_SUPPORT_NOTICE = 'Decision support only, not for diagnosis.';

export interface ModelCard {
  format: 'sonomics.modelcard/v1';
  id: string;
  version: string;
  task: string;
  intendedUse: string;
  inputs: { features: string[]; settings?: { binWidth?: number; rings?: number[] } };
  scaling: { mean: number[]; std: number[] };
  linearPredictor: { coefficients: number[]; intercept: number };
  link: 'logistic';
  cutoff: number;
  categories: { below: string; atOrAbove: string };
  performance?: { auc?: number; aucCi?: [number, number]; cohort?: string; validation?: string };
  provenance?: string;
}

const cardSchema = {
  type: 'object',
  required: ['format', 'id', 'version', 'task', 'intendedUse', 'inputs', 'scaling', 'linearPredictor', 'link', 'cutoff', 'categories'],
  additionalProperties: false,
  properties: {
    format: { const: 'sonomics.modelcard/v1' },
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$' },
    version: { type: 'string', minLength: 1 },
    task: { type: 'string', minLength: 1 },
    intendedUse: { type: 'string', pattern: '[Nn]ot for diagnosis' },
    inputs: {
      type: 'object', required: ['features'], additionalProperties: false,
      properties: {
        features: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^(bmode|contrast)\\.[A-Za-z0-9]+\\.[a-zA-Z0-9]+_[A-Za-z0-9]+$' } },
        settings: { type: 'object', additionalProperties: false, properties: { binWidth: { type: 'number', exclusiveMinimum: 0 }, rings: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 } } } },
      },
    },
    scaling: {
      type: 'object', required: ['mean', 'std'], additionalProperties: false,
      properties: { mean: { type: 'array', items: { type: 'number' } }, std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 } } },
    },
    linearPredictor: {
      type: 'object', required: ['coefficients', 'intercept'], additionalProperties: false,
      properties: { coefficients: { type: 'array', items: { type: 'number' } }, intercept: { type: 'number' } },
    },
    link: { const: 'logistic' },
    cutoff: { type: 'number', minimum: 0, maximum: 1 },
    categories: { type: 'object', required: ['below', 'atOrAbove'], additionalProperties: false, properties: { below: { type: 'string' }, atOrAbove: { type: 'string' } } },
    performance: {
      type: 'object', additionalProperties: false,
      properties: { auc: { type: 'number' }, aucCi: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 }, cohort: { type: 'string' }, validation: { type: 'string' } },
    },
    provenance: { type: 'string' },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateCard = ajv.compile(cardSchema);

/** Validates a parsed card; throws one error naming every problem. */
export function parseModelCard(json: unknown, source = 'model card'): ModelCard {
  const problems: string[] = [];
  if (!validateCard(json)) {
    for (const e of validateCard.errors ?? []) problems.push(`${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
  } else {
    const c = json as ModelCard;
    const n = c.inputs.features.length;
    if (c.scaling.mean.length !== n) problems.push(`/scaling/mean has ${c.scaling.mean.length} values for ${n} features`);
    if (c.scaling.std.length !== n) problems.push(`/scaling/std has ${c.scaling.std.length} values for ${n} features`);
    if (c.linearPredictor.coefficients.length !== n) problems.push(`/linearPredictor/coefficients has ${c.linearPredictor.coefficients.length} values for ${n} features`);
    if (new Set(c.inputs.features).size !== n) problems.push('/inputs/features lists a feature twice');
  }
  if (problems.length) throw new Error(`${source} is invalid: ${problems.join('; ')}`);
  return json as ModelCard;
}

export interface Driver { feature: string; contribution: number }

export interface FrameScore {
  seq: number;
  linearPredictor: number;
  probability: number;
  contributions: Driver[];
  status: 'ok' | 'invalid';
  problem?: string;
}

export function scoreFeatures(card: ModelCard, features: FeatureSet, seq: number): FrameScore {
  const { mean, std } = card.scaling;
  const coef = card.linearPredictor.coefficients;
  let lp = card.linearPredictor.intercept;
  const contributions: Driver[] = [];
  for (let i = 0; i < card.inputs.features.length; i++) {
    const name = card.inputs.features[i];
    const v = features[name];
    if (v === undefined || !Number.isFinite(v))
      return { seq, linearPredictor: NaN, probability: NaN, contributions: [], status: 'invalid', problem: `${name} is ${v === undefined ? 'not computed' : 'not finite'}` };
    const c = coef[i] * ((v - mean[i]) / std[i]);
    contributions.push({ feature: name, contribution: c });
    lp += c;
  }
  return { seq, linearPredictor: lp, probability: 1 / (1 + Math.exp(-lp)), contributions, status: 'ok' };
}

export interface RiskScore {
  modelId: string;
  version: string;
  task: string;
  /** Aggregated probability (median over the recent tracked frames). */
  value: number;
  /** 10th-90th percentile of the recent frame scores. */
  band: [number, number];
  category: string;
  cutoff: number;
  /** Largest |contribution| first, from the most recent frame. */
  drivers: Driver[];
  status: 'ok' | 'invalid' | 'warming-up';
  problem?: string;
  /** Frames aggregated. */
  frames: number;
  seq: number;
  notice: string;
}

/** Keeps the recent frame scores of one model and reports the aggregated, banded score. */
export class RiskAggregator {
  private recent: number[] = [];
  readonly minFrames: number;
  constructor(readonly card: ModelCard, readonly window = 15, minFrames = 3) {
    this.minFrames = Math.min(minFrames, window);
  }

  reset(): void { this.recent = []; }

  add(fs: FrameScore): RiskScore {
    const c = this.card;
    const base = { modelId: c.id, version: c.version, task: c.task, cutoff: c.cutoff, seq: fs.seq, notice: DECISION_SUPPORT_NOTICE };
    if (fs.status === 'invalid')
      return { ...base, value: NaN, band: [NaN, NaN], category: 'invalid', drivers: [], status: 'invalid', problem: fs.problem, frames: this.recent.length };
    this.recent.push(fs.probability);
    if (this.recent.length > this.window) this.recent.shift();
    const value = quantile(this.recent, 0.5);
    const drivers = [...fs.contributions].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution)).slice(0, 3);
    return {
      ...base, value, band: [quantile(this.recent, 0.1), quantile(this.recent, 0.9)],
      category: value >= c.cutoff ? c.categories.atOrAbove : c.categories.below,
      drivers, status: this.recent.length >= this.minFrames ? 'ok' : 'warming-up', frames: this.recent.length,
    };
  }
}
