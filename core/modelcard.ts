// The model card: a documented, versioned JSON format (docs/model-card.md) that says what a risk
// model reads (radiomics features by pane and region, with the engine settings they were computed
// with; clinical variables; an optional CNN whose embedding goes through a PCA), how it turns them
// into a score (scaling, linear predictor, logistic or Cox link, cutoffs and labels), how well it
// did (performance, calibration) and what it is for. A card carries the sha256 of its own canonical
// JSON (RFC 8785) and of every model file it reads; both are checked on load. A card with problems
// is refused with every problem named.
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import canonicalize from 'canonicalize';

export const CARD_FORMAT = 'sonomics.modelcard/v2';
export const DECISION_SUPPORT_NOTICE = 'Decision support only, not for diagnosis.';

export type ClinicalType = 'number' | 'integer' | 'boolean' | 'category';
export type ClinicalSource = 'overlay' | 'panel' | 'api';

export interface ClinicalVariable {
  /** The variable's name in the card, cohort CSV columns and the API: `age`, `tumour_size_mm`. */
  name: string;
  type: ClinicalType;
  unit?: string;
  /** Allowed range, inclusive (number and integer). */
  range?: [number, number];
  /** Allowed values of a category, coded 0, 1, ... in this order (ordinal). */
  levels?: string[];
  /** Where the value is entered at the bedside. */
  source: ClinicalSource;
  description?: string;
}

/** A CNN run on the lesion crop; its embedding goes through the PCA into the linear predictor as `deep.pc1..k`. */
export interface DeepSpec {
  runtime: 'onnx' | 'tfjs-layers' | 'tfjs-graph';
  /** Model file relative to the card's folder: model.onnx, or a TF.js model.json. */
  file: string;
  /** sha256 (hex) of every file the model reads, by path relative to the card's folder. */
  sha256: Record<string, string>;
  input: {
    name?: string;
    width: number; height: number;
    channels: 1 | 3;
    layout: 'nchw' | 'nhwc';
    pane: 'bmode' | 'contrast';
    marginFraction: number;
    scale: number;
    mean: number[]; std: number[];
  };
  output?: string;
  embeddingSize: number;
  pca: { mean: number[]; components: number[][] };
}

/** Operating point at a cutoff, as a card reports it. */
export interface CutoffMetrics { cutoff: number; sensitivity: number; specificity: number; ppv: number; npv: number }

export interface ModelCard {
  format: typeof CARD_FORMAT;
  id: string;
  version: string;
  task: string;
  intendedUse: string;
  researchUseOnly?: boolean;
  inputs: {
    /** Engine settings the features were computed with; the pipeline must use the same. */
    engine: {
      binWidth: number;
      /** `mm`: rings and shape features in calibrated mm; `pixel`: spacing unknown, rings in pixels (`ring30px`). */
      spacing: 'mm' | 'pixel';
      note?: string;
    };
    /** Radiomics features `<pane>.<region>.<class>_<Feature>`, region `lesion`, `ring<r>mm` or `ring<r>px`. */
    features: string[];
    clinical?: ClinicalVariable[];
    deep?: DeepSpec;
  };
  /** One value per term: features, then clinical variables, then deep PCA components (see termNames). */
  scaling: { mean: number[]; std: number[] };
  linearPredictor: { coefficients: number[]; intercept: number };
  link: 'logistic' | 'cox';
  /** Cutoffs on the probability (logistic) or the linear predictor (Cox), increasing; labels has one more entry. */
  categories: { cutoffs: number[]; labels: string[]; method?: string };
  /**
   * Logistic recalibration logit P = intercept + slope * lp on a cohort: when applied,
   * p = sigmoid(intercept + slope * lp). inTheLarge: the calibration-in-the-large (slope fixed at 1), reported.
   */
  calibration?: { slope: number; intercept: number; inTheLarge?: number; applied: boolean; cohort?: string; method?: string };
  performance?: {
    auc?: number; aucCi?: [number, number]; n?: number; nPositive?: number;
    cohort?: string; validation?: string; atCutoff?: CutoffMetrics;
  };
  provenance?: string;
  /** Known limits of the model or its data, shown with the score. */
  caveats?: string[];
  /** sha256 (hex) of the card's canonical JSON (RFC 8785) without this key. */
  sha256: string;
}

const num = { type: 'number' } as const;
const str = { type: 'string', minLength: 1 } as const;
const hex = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const nums = { type: 'array', items: num } as const;
// A radiomics feature `<pane>.<region>.<class>_<Feature>`; the lesion's at a CEUS phase
// `<phase>:<pane>.lesion.<class>_<Feature>` or its change between phases `<phase>-<phase>:...`;
// or a perfusion parameter `perfusion.<region>.<P>` (relative to the reference: `r<P>`).
const RADIOMICS_KEY = '(bmode|contrast)\\.(lesion|ring[0-9]+(p[0-9]+)?(mm|px))\\.(firstorder|shape2D|glcm|glrlm|glszm|gldm|ngtdm)_[A-Za-z0-9]+';
const PHASE = '(pre|early|peak|late)';
const PHASE_KEY = `${PHASE}(-${PHASE})?:(bmode|contrast)\\.lesion\\.(firstorder|shape2D|glcm|glrlm|glszm|gldm|ngtdm)_[A-Za-z0-9]+`;
const PERFUSION_KEY = 'perfusion\\.(lesion|reference|ring[0-9]+(p[0-9]+)?(mm|px))\\.r?(AT|PE|TTP|RT|WiR|WiAUC|MTT|FT|WoR|AUC)';
const FEATURE_KEY = `^(${RADIOMICS_KEY}|${PHASE_KEY}|${PERFUSION_KEY})$`;

/** True for inputs that come from the session's perfusion analysis (phase, delta and perfusion terms), not from one frame. */
export function isSessionTerm(name: string): boolean {
  return name.startsWith('perfusion.') || name.includes(':');
}

/** The card's deep section (also checked on its own by core/deep.ts loadDeepModel). */
export const deepSpecSchema = {
  type: 'object', required: ['runtime', 'file', 'sha256', 'input', 'embeddingSize', 'pca'], additionalProperties: false,
  properties: {
    runtime: { enum: ['onnx', 'tfjs-layers', 'tfjs-graph'] },
    file: { type: 'string', pattern: '^[^/\\\\][^\\\\]*$', not: { pattern: '(^|/)\\.\\.(/|$)' } },
    sha256: { type: 'object', additionalProperties: hex },
    input: {
      type: 'object', required: ['width', 'height', 'channels', 'layout', 'pane', 'marginFraction', 'scale', 'mean', 'std'], additionalProperties: false,
      properties: {
        name: str,
        width: { type: 'integer', minimum: 8, maximum: 1024 },
        height: { type: 'integer', minimum: 8, maximum: 1024 },
        channels: { enum: [1, 3] },
        layout: { enum: ['nchw', 'nhwc'] },
        pane: { enum: ['bmode', 'contrast'] },
        marginFraction: { type: 'number', minimum: 0, maximum: 2 },
        scale: num,
        mean: nums,
        std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 } },
      },
    },
    output: str,
    embeddingSize: { type: 'integer', minimum: 1 },
    pca: {
      type: 'object', required: ['mean', 'components'], additionalProperties: false,
      properties: { mean: nums, components: { type: 'array', minItems: 1, items: nums } },
    },
  },
} as const;

/** One clinical variable's definition (also what `fit --clinical FILE` reads, as an array). */
export const clinicalVariableSchema = {
  type: 'object', required: ['name', 'type', 'source'], additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9_]*$' },
    type: { enum: ['number', 'integer', 'boolean', 'category'] },
    unit: { type: 'string' },
    range: { type: 'array', items: num, minItems: 2, maxItems: 2 },
    levels: { type: 'array', items: str, minItems: 2 },
    source: { enum: ['overlay', 'panel', 'api'] },
    description: { type: 'string' },
  },
} as const;

const cardSchema = {
  type: 'object',
  required: ['format', 'id', 'version', 'task', 'intendedUse', 'inputs', 'scaling', 'linearPredictor', 'link', 'categories', 'sha256'],
  additionalProperties: false,
  properties: {
    format: { const: CARD_FORMAT },
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$' },
    version: str,
    task: str,
    intendedUse: { type: 'string', pattern: '[Nn]ot for diagnosis' },
    researchUseOnly: { type: 'boolean' },
    inputs: {
      type: 'object', required: ['engine', 'features'], additionalProperties: false,
      properties: {
        engine: {
          type: 'object', required: ['binWidth', 'spacing'], additionalProperties: false,
          properties: { binWidth: { type: 'number', exclusiveMinimum: 0 }, spacing: { enum: ['mm', 'pixel'] }, note: { type: 'string' } },
        },
        features: { type: 'array', items: { type: 'string', pattern: FEATURE_KEY } },
        clinical: { type: 'array', items: clinicalVariableSchema },
        deep: deepSpecSchema,
      },
    },
    scaling: {
      type: 'object', required: ['mean', 'std'], additionalProperties: false,
      properties: { mean: nums, std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 } } },
    },
    linearPredictor: {
      type: 'object', required: ['coefficients', 'intercept'], additionalProperties: false,
      properties: { coefficients: nums, intercept: num },
    },
    link: { enum: ['logistic', 'cox'] },
    categories: {
      type: 'object', required: ['cutoffs', 'labels'], additionalProperties: false,
      properties: { cutoffs: nums, labels: { type: 'array', items: str, minItems: 1 }, method: { type: 'string' } },
    },
    calibration: {
      type: 'object', required: ['slope', 'intercept', 'applied'], additionalProperties: false,
      properties: { slope: num, intercept: num, inTheLarge: num, applied: { type: 'boolean' }, cohort: { type: 'string' }, method: { type: 'string' } },
    },
    performance: {
      type: 'object', additionalProperties: false,
      properties: {
        auc: { type: 'number', minimum: 0, maximum: 1 },
        aucCi: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 }, minItems: 2, maxItems: 2 },
        n: { type: 'integer', minimum: 0 }, nPositive: { type: 'integer', minimum: 0 },
        cohort: { type: 'string' }, validation: { type: 'string' },
        atCutoff: {
          type: 'object', required: ['cutoff', 'sensitivity', 'specificity', 'ppv', 'npv'], additionalProperties: false,
          properties: { cutoff: num, sensitivity: num, specificity: num, ppv: num, npv: num },
        },
      },
    },
    provenance: { type: 'string' },
    caveats: { type: 'array', items: str },
    sha256: hex,
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateCard = ajv.compile(cardSchema);
const validateDeepSpec = ajv.compile(deepSpecSchema);

export class ModelCardError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`${source} is invalid: ${problems.join('; ')}`);
    this.name = 'ModelCardError';
  }
}

/** Term names of the linear predictor, in order: features, `clinical.<name>`, `deep.pc<i>`. */
export function termNames(card: Pick<ModelCard, 'inputs'>): string[] {
  const deep = card.inputs.deep?.pca.components.length ?? 0;
  return [
    ...card.inputs.features,
    ...(card.inputs.clinical ?? []).map((c) => `clinical.${c.name}`),
    ...Array.from({ length: deep }, (_, i) => `deep.pc${i + 1}`),
  ];
}

/** sha256 (hex) of the card's canonical JSON without its `sha256` key. */
export function cardHash(card: object): string {
  const { sha256: _ignored, ...rest } = card as Record<string, unknown>;
  return createHash('sha256').update(canonicalize(rest) ?? '').digest('hex');
}

/** The card with its sha256 (re)computed: what `fit`, `import` and `seal-card` write. */
export function sealCard<T extends object>(card: T): T & { sha256: string } {
  const { sha256: _old, ...rest } = card as T & { sha256?: string };
  return { ...rest, sha256: cardHash(rest) } as T & { sha256: string };
}

/** What the deep section's schema cannot say: one mean/std per channel, PCA rows of embeddingSize. (The hashes are checked file by file when the model loads.) */
function deepSpecProblems(d: DeepSpec, at: string): string[] {
  const problems: string[] = [];
  if (d.input.mean.length !== d.input.channels) problems.push(`${at}/input/mean has ${d.input.mean.length} values for ${d.input.channels} channels`);
  if (d.input.std.length !== d.input.channels) problems.push(`${at}/input/std has ${d.input.std.length} values for ${d.input.channels} channels`);
  if (d.pca.mean.length !== d.embeddingSize) problems.push(`${at}/pca/mean has ${d.pca.mean.length} values for embeddingSize ${d.embeddingSize}`);
  d.pca.components.forEach((row, i) => { if (row.length !== d.embeddingSize) problems.push(`${at}/pca/components/${i} has ${row.length} values for embeddingSize ${d.embeddingSize}`); });
  return problems;
}

/** Checks a deep section on its own (schema and cross-checks); throws an Error naming every problem. */
export function checkDeepSpec(spec: unknown): DeepSpec {
  if (!validateDeepSpec(spec))
    throw new Error(`deep model: ${(validateDeepSpec.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
  const problems = deepSpecProblems(spec as unknown as DeepSpec, '');
  if (problems.length) throw new Error(`deep model ${(spec as unknown as DeepSpec).file}: ${problems.join('; ')}`);
  return spec as unknown as DeepSpec;
}

function crossChecks(c: ModelCard): string[] {
  const problems: string[] = [];
  const terms = termNames(c);
  const n = terms.length;
  if (n === 0) problems.push('/inputs has no features, clinical variables or deep components: the model reads nothing');
  const sized = (path: string, a: unknown[]) => { if (a.length !== n) problems.push(`${path} has ${a.length} values for ${n} terms (${terms.join(', ')})`); };
  sized('/scaling/mean', c.scaling.mean);
  sized('/scaling/std', c.scaling.std);
  sized('/linearPredictor/coefficients', c.linearPredictor.coefficients);
  const dup = terms.find((t, i) => terms.indexOf(t) !== i);
  if (dup) problems.push(`/inputs lists ${dup} twice`);
  for (const [i, f] of c.inputs.features.entries()) {
    const region = f.split('.')[1];
    if (c.inputs.engine.spacing === 'mm' && region.endsWith('px')) problems.push(`/inputs/features/${i} ${f} is a ring in pixels but /inputs/engine/spacing is mm`);
    if (c.inputs.engine.spacing === 'pixel' && region.endsWith('mm')) problems.push(`/inputs/features/${i} ${f} is a ring in mm but /inputs/engine/spacing is pixel (spacing unknown)`);
  }
  for (const [i, v] of (c.inputs.clinical ?? []).entries()) {
    const at = `/inputs/clinical/${i} (${v.name})`;
    if (v.type === 'category' && !v.levels) problems.push(`${at} is a category without levels`);
    if (v.type !== 'category' && v.levels) problems.push(`${at} has levels but is of type ${v.type}`);
    if ((v.type === 'number' || v.type === 'integer') && !v.range) problems.push(`${at} needs a range [min, max]`);
    if (v.range && !(v.range[0] <= v.range[1])) problems.push(`${at} range [${v.range.join(', ')}] is not increasing`);
  }
  if (c.inputs.deep) problems.push(...deepSpecProblems(c.inputs.deep, '/inputs/deep'));
  const { cutoffs, labels } = c.categories;
  if (labels.length !== cutoffs.length + 1) problems.push(`/categories has ${cutoffs.length} cutoffs, so it needs ${cutoffs.length + 1} labels (has ${labels.length})`);
  if (cutoffs.some((x, i) => i > 0 && !(x > cutoffs[i - 1]))) problems.push('/categories/cutoffs must be strictly increasing');
  if (c.link === 'logistic' && cutoffs.some((x) => x < 0 || x > 1)) problems.push('/categories/cutoffs of a logistic model are probabilities in [0, 1]');
  if (c.link === 'cox' && c.calibration?.applied) problems.push('/calibration/applied: logistic recalibration cannot be applied to a Cox model');
  if (c.performance?.aucCi && !(c.performance.aucCi[0] <= c.performance.aucCi[1])) problems.push('/performance/aucCi must be [low, high]');
  return problems;
}

/**
 * Validates a parsed card: the schema, the cross-checks (one value per term, labels per cutoff,
 * ...) and its sha256. Throws a ModelCardError naming every problem.
 */
export function parseModelCard(json: unknown, source = 'model card'): ModelCard {
  if (json !== null && typeof json === 'object' && (json as { format?: unknown }).format !== CARD_FORMAT && typeof (json as { format?: unknown }).format === 'string')
    throw new ModelCardError(source, [`/format is ${JSON.stringify((json as { format: string }).format)}: this version reads ${CARD_FORMAT} (docs/model-card.md lists the changes)`]);
  if (!validateCard(json)) {
    const problems = (validateCard.errors ?? []).map((e) => {
      const extra = e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : '';
      const allowed = e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
      return `${e.instancePath || '/'} ${e.message}${extra}${allowed}`;
    });
    throw new ModelCardError(source, problems);
  }
  const card = json as unknown as ModelCard;
  const problems = crossChecks(card);
  const actual = cardHash(card);
  if (actual !== card.sha256) problems.push(`/sha256 does not match the card's content (computed ${actual}): the card was changed after it was sealed; run \`sonomics seal-card\` if the change is intended`);
  if (problems.length) throw new ModelCardError(source, problems);
  return card;
}
