// The segmenter's manifest (`segmenter.json`, format sonomics.segmenter/v1): the network file and
// its sha256, the recipe that turns a tap into the network's input and its output into a mask
// (shared by training and inference, so they cannot drift apart), how it was trained, and the
// cross-validation fold models with the images each one did not see, so that an evaluation on
// the training images can use a model that never saw them.
import { Ajv } from 'ajv';

export const SEGMENTER_FORMAT = 'sonomics.segmenter/v1';

export interface SegmenterRecipe {
  /** The network's input and output side (samples). */
  inputSize: number;
  /** The tap heatmap's sigma (samples). */
  tapSigma: number;
  /** Pass 1: the crop's side as a fraction of the image's shorter side, centred on the tap. */
  firstPassFraction: number;
  /** Pass 2 (and a box's pass 1): the crop's side as a multiple of the lesion's extent, at least minCropPx. */
  contextFactor: number;
  minCropPx: number;
  /** Logit threshold (0 = probability 0.5). */
  threshold: number;
  /** A tap just outside the proposed mask still selects it within this fraction of the crop's side. */
  snapFraction: number;
  /** A box prompt: the mask stays inside the box grown by this fraction of its larger side on every side. */
  boxMarginFraction: number;
  /** A mask smaller than this (pixels) is "no lesion found". */
  minAreaPx: number;
  /** Average a left-right mirrored pass in (test-time augmentation; one batch of two). */
  mirror: boolean;
}

/** A network file and its sha256 (checked on load). */
export interface SegmenterNetworkFile { file: string; sha256: string }

export interface SegmenterFold {
  file: string;
  sha256: string;
  /** This fold's refining network (pass 2), trained on the same images. */
  refine?: SegmenterNetworkFile;
  /** Images this fold's model was not trained on: sha256 (hex) of each image file. */
  heldOut: string[];
}

export interface SegmenterManifest {
  format: typeof SEGMENTER_FORMAT;
  id: string;
  version: string;
  intendedUse: string;
  /**
   * The network. With `refine`, pass 2 runs that second network of the same shape, trained only
   * on crops at a lesion's scale (pass 2's view); pass 1 and a box's first pass run `file`.
   */
  model: { file: string; sha256: string; channels: number[]; parameters: number; refine?: SegmenterNetworkFile };
  recipe: SegmenterRecipe;
  training: {
    command: string; cohort: string; cohortSha256: string; images: number; extraImages: string;
    seed: number; epochs: number; batchSize: number; learningRate: [number, number]; negativeFraction: number; boxNegativeFraction?: number;
    /** Pass 1's network: the share of positive examples cropped at a lesion's scale, when not 0.5. */
    lesionScaleFraction?: number;
    /** How the refining networks were trained (when there are any); lesionScaleRange when not [1.5, 3]. */
    refine?: SegmenterRefineTraining;
    folds: number; groups: number; backend: string; minutes: number;
  };
  folds: SegmenterFold[];
  notes: string[];
  /**
   * A trial (`train-segmenter --trial-of`): the segmenter `of` with the networks of some folds
   * retrained another way, to be compared with it (`npm run bench:segment-compare`), never shipped.
   * `training` above is `of`'s; this says what the retrained networks were trained with.
   */
  trial?: {
    command: string; of: string; folds: number[]; final?: boolean; networks: 'pass 1' | 'refining' | 'both'; epochs: number; seed: number;
    negativeFraction?: number; lesionScaleFraction?: number; boxNegativeFraction?: number; refine?: SegmenterRefineTraining; minutes: number;
  };
}

/** How refining networks were trained; `epochs` when not pass 1's (the manifest's `epochs`). */
export interface SegmenterRefineTraining { negativeFraction: number; lesionScaleFraction: number; lesionScaleRange?: [number, number]; epochs?: number }

/**
 * Whether two fold models hold out the same images: their held-out lists as sorted lists (not as
 * sets: BUSI holds one image twice under two names, so a list may name the same sha256 twice).
 */
export function sameHeldOut(a: string[], b: string[]): boolean {
  return [...a].sort().join() === [...b].sort().join();
}

export const DEFAULT_RECIPE: SegmenterRecipe = {
  inputSize: 96, tapSigma: 3.84, firstPassFraction: 1, contextFactor: 2.2, minCropPx: 48,
  threshold: 0, snapFraction: 0.03, boxMarginFraction: 0.15, minAreaPx: 30, mirror: true,
};

const str = { type: 'string', minLength: 1 };
const sha = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const pos = { type: 'number', exclusiveMinimum: 0 };
const share = { type: 'number', minimum: 0, maximum: 1 };
const refineTraining = { type: 'object', additionalProperties: false, required: ['negativeFraction', 'lesionScaleFraction'],
  properties: { negativeFraction: share, lesionScaleFraction: share, lesionScaleRange: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number', minimum: 0.5, maximum: 10 } },
    epochs: { type: 'integer', minimum: 1 } } };
const networkFile = { type: 'object', additionalProperties: false, required: ['file', 'sha256'], properties: { file: str, sha256: sha } };
const schema = {
  type: 'object', additionalProperties: false,
  required: ['format', 'id', 'version', 'intendedUse', 'model', 'recipe', 'training', 'folds', 'notes'],
  properties: {
    format: { const: SEGMENTER_FORMAT }, id: str, version: str, intendedUse: str,
    model: { type: 'object', additionalProperties: false, required: ['file', 'sha256', 'channels', 'parameters'],
      properties: { file: str, sha256: sha, channels: { type: 'array', minItems: 2, items: { type: 'integer', minimum: 1 } }, parameters: { type: 'integer', minimum: 1 }, refine: networkFile } },
    recipe: { type: 'object', additionalProperties: false,
      required: ['inputSize', 'tapSigma', 'firstPassFraction', 'contextFactor', 'minCropPx', 'threshold', 'snapFraction', 'boxMarginFraction', 'minAreaPx', 'mirror'],
      properties: {
        inputSize: { type: 'integer', minimum: 16, maximum: 1024 }, tapSigma: pos, firstPassFraction: { type: 'number', exclusiveMinimum: 0, maximum: 4 },
        contextFactor: { type: 'number', minimum: 1, maximum: 10 }, minCropPx: { type: 'number', minimum: 8 }, threshold: { type: 'number' },
        snapFraction: { type: 'number', minimum: 0, maximum: 0.5 }, boxMarginFraction: { type: 'number', minimum: 0, maximum: 2 }, minAreaPx: { type: 'integer', minimum: 1 }, mirror: { type: 'boolean' },
      } },
    training: { type: 'object', additionalProperties: false,
      required: ['command', 'cohort', 'cohortSha256', 'images', 'extraImages', 'seed', 'epochs', 'batchSize', 'learningRate', 'negativeFraction', 'folds', 'groups', 'backend', 'minutes'],
      properties: {
        command: str, cohort: str, cohortSha256: sha, images: { type: 'integer', minimum: 1 }, extraImages: { type: 'string' },
        seed: { type: 'integer' }, epochs: { type: 'integer', minimum: 1 }, batchSize: { type: 'integer', minimum: 1 },
        learningRate: { type: 'array', minItems: 2, maxItems: 2, items: pos }, negativeFraction: share, boxNegativeFraction: share,
        lesionScaleFraction: share, refine: refineTraining,
        folds: { type: 'integer', minimum: 0 }, groups: { type: 'integer', minimum: 1 }, backend: str, minutes: { type: 'number', minimum: 0 },
      } },
    folds: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['file', 'sha256', 'heldOut'],
      properties: { file: str, sha256: sha, refine: networkFile, heldOut: { type: 'array', items: sha } } } },
    notes: { type: 'array', items: { type: 'string' } },
    trial: { type: 'object', additionalProperties: false, required: ['command', 'of', 'folds', 'networks', 'epochs', 'seed', 'minutes'],
      properties: {
        command: str, of: str, folds: { type: 'array', items: { type: 'integer', minimum: 1 } }, final: { const: true }, networks: { enum: ['pass 1', 'refining', 'both'] },
        epochs: { type: 'integer', minimum: 1 }, seed: { type: 'integer' }, negativeFraction: share, lesionScaleFraction: share, boxNegativeFraction: share,
        refine: refineTraining, minutes: { type: 'number', minimum: 0 },
      } },
  },
};

const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);

/** Checks a parsed segmenter.json; the error names every problem by its path. */
export function parseSegmenterManifest(json: unknown, where: string): SegmenterManifest {
  if (!validate(json))
    throw new Error(`segmenter manifest ${where} is invalid: ${(validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
  const m = json as unknown as SegmenterManifest;
  // A fold model evaluates the shipped segmenter out of sample, so it must run the same passes.
  const odd = m.folds.findIndex((f) => !f.refine !== !m.model.refine);
  if (odd >= 0)
    throw new Error(`segmenter manifest ${where} is invalid: /folds/${odd}/refine ${m.model.refine ? 'is missing, but /model has a refining network' : 'is given, but /model has no refining network'}`);
  return m;
}
