// `sonomics train-segmenter`: trains the one-tap U-Net from a cohort of images and expert masks
// (the shipped one from ../shared/data/busi, `npm run train:segmenter`), plus phantom frames (the
// project's own fixture, so a tap on the demo works), writes the ONNX networks and segmenter.json.
// With --folds K it also trains K cross-validation models on grouped folds (near-duplicates kept
// together) for out-of-sample evaluation. Seeded and single-threaded per model: the same data and
// options give the same files. Models train in parallel worker threads (--jobs).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readCohort, type Cohort } from '../core/cohort.js';
import { readGrayImage } from '../core/imageio.js';
import { cropRows } from '../core/layout.js';
import { DEFAULT_RECIPE, parseSegmenterManifest, sameHeldOut, SEGMENTER_FORMAT, type SegmenterManifest, type SegmenterNetworkFile } from '../core/segment/manifest.js';
import { foldBatchNorm, type NetWeights } from '../core/segment/net.js';
import { unetToOnnx } from '../core/segment/onnx.js';
import { DEFAULT_TRAINING, duplicateGroups, groupedFolds, trainingImage, type TrainingImage, type TrainOptions } from '../core/segment/train.js';
import { PhantomScanner } from '../device/phantom.js';
import { UsageError } from './errors.js';

export interface TrainSegmenterOptions {
  cohort: string;
  labelColumn?: string;
  out: string;
  seed: number;
  epochs: number;
  folds: number;
  jobs: number;
  /** Phantom frames added to every training set (0: none). */
  phantomImages: number;
  /** Negatives at a lesion's scale (TrainOptions.boxNegativeFraction; default 0). */
  boxNegatives?: number;
  /** Also train a refining network for pass 2 per model (REFINE_TRAINING), on the same images. */
  refine?: boolean;
  /** Pass 1's network: the share of examples that are taps well outside the lesion (TrainOptions.negativeFraction; default 0.15). */
  negatives?: number;
  /** Pass 1's network: the share of positive examples cropped at a lesion's scale (TrainOptions.lesionScaleFraction; default 0.5). */
  lesionScaleShare?: number;
  /** The refining networks' crop side at a lesion's scale, in multiples of its extent (TrainOptions.lesionScaleRange; default [1.5, 3]). */
  refineScale?: [number, number];
  /** Epochs of the refining networks (default: `epochs`; the shipped segmenter 1.3.0: 48). */
  refineEpochs?: number;
  /**
   * A trial: train only these cross-validation folds' networks (1-based; the folds must hold out
   * the same images as the segmenter in `of`) and write `of` with them put in, a candidate for
   * `npm run bench:segment-compare`. `refineOnly`: train only their refining networks. `final`:
   * retrain the final model's too (the one the live system runs; the bench compares folds only).
   */
  trial?: { of: string; folds: number[]; final?: boolean; refineOnly?: boolean };
  command: string;
}

export interface TrainJob {
  cohort: string;
  labelColumn?: string;
  /** Indices of the cohort's cases to train on. */
  train: number[];
  phantomImages: number;
  options: TrainOptions;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * How a refining network differs from the network of both passes: every example is a tap inside
 * the lesion cropped at the lesion's scale, as pass 2 sees it (pass 2 runs only where pass 1
 * found something, so it needs no negatives).
 */
export const REFINE_TRAINING = { negativeFraction: 0, lesionScaleFraction: 1 } as const;

/** How this command's options set the training of pass 1's network and of the refining network. */
function trainingOptions(o: TrainSegmenterOptions): { options: TrainOptions; refine: TrainOptions } {
  const options: TrainOptions = {
    ...DEFAULT_TRAINING, recipe: DEFAULT_RECIPE, seed: o.seed, epochs: o.epochs, boxNegativeFraction: o.boxNegatives ?? DEFAULT_TRAINING.boxNegativeFraction,
    negativeFraction: o.negatives ?? DEFAULT_TRAINING.negativeFraction, lesionScaleFraction: o.lesionScaleShare ?? DEFAULT_TRAINING.lesionScaleFraction,
  };
  return { options, refine: { ...options, ...REFINE_TRAINING, lesionScaleRange: o.refineScale ?? DEFAULT_TRAINING.lesionScaleRange, epochs: o.refineEpochs ?? o.epochs } };
}

/**
 * What the manifest records of the refining networks' training: the scale range only when not the
 * default and the epochs only when not pass 1's (`epochs`), so manifests stay as they were.
 */
function refineRecord(r: TrainOptions, epochs: number): NonNullable<SegmenterManifest['training']['refine']> {
  const [a, b] = r.lesionScaleRange, [da, db] = DEFAULT_TRAINING.lesionScaleRange;
  return { ...REFINE_TRAINING, ...((a !== da || b !== db) && { lesionScaleRange: [a, b] as [number, number] }), ...(r.epochs !== epochs && { epochs: r.epochs }) };
}

/** The cohort's images and masks as training images (in cohort order); files' sha256 kept. */
export async function loadTrainingImages(cohort: Cohort, only?: number[]): Promise<Array<TrainingImage | undefined>> {
  const want = new Set(only ?? cohort.cases.map((_, i) => i));
  const out: Array<TrainingImage | undefined> = new Array(cohort.cases.length).fill(undefined);
  for (const [i, c] of cohort.cases.entries()) {
    if (!want.has(i)) continue;
    const bytes = readFileSync(c.image);
    const [image, mask] = await Promise.all([readGrayImage(c.image), readGrayImage(c.mask)]);
    if (image.width !== mask.width || image.height !== mask.height) throw new Error(`${c.id}: image ${image.width}x${image.height} but mask ${mask.width}x${mask.height}`);
    out[i] = trainingImage(c.id, sha256(bytes), c.label, image, mask.data);
  }
  return out;
}

/**
 * Phantom B-mode panes with their true masks: lesions of varied size, shape and depth, under
 * varied gain and motion (seeded by index), so the network knows the demo's images too.
 */
export function phantomTrainingImages(n: number): TrainingImage[] {
  const out: TrainingImage[] = [];
  for (let k = 0; k < n; k++) {
    const f = (a: number, b: number, salt: number) => a + (b - a) * (((k * 7919 + salt * 104729) % 1000) / 1000);
    const ph = new PhantomScanner({
      seed: 1000 + k, width: 640, height: 480,
      lesion: { radiusMm: f(3, 9, 1), aspect: f(0.6, 1.4, 2), irregularity: f(0, 0.3, 3), depthFraction: f(0.35, 0.65, 4) },
    });
    const { data, truth } = ph.render(Math.floor(f(0, 600, 5)));
    const r = ph.layout.panes.bmode.rect;
    const pane = cropRows(data, ph.layout.width, r);
    out.push(trainingImage(`phantom_${k}`, '', 1, { data: pane, width: r.width, height: r.height }, truth.lesionMask));
  }
  return out;
}

function runJob(job: TrainJob, name: string, log: (l: string) => void): Promise<NetWeights> {
  return new Promise((resolvePromise, reject) => {
    const w = new Worker(new URL('./train-segmenter-worker.js', import.meta.url), { workerData: job });
    w.on('message', (m: { type: 'epoch'; epoch: number; loss: number; seconds: number } | { type: 'done'; weights: NetWeights } | { type: 'error'; message: string }) => {
      if (m.type === 'epoch') log(`train-segmenter: ${name} epoch ${m.epoch}/${job.options.epochs} loss ${m.loss.toFixed(4)} (${m.seconds.toFixed(1)} s)`);
      else if (m.type === 'done') resolvePromise(m.weights);
      else reject(new Error(`${name}: ${m.message}`));
    });
    w.on('error', reject);
    w.on('exit', (code) => { if (code !== 0) reject(new Error(`${name}: training worker exited with ${code}`)); });
  });
}

export async function trainSegmenterCommand(o: TrainSegmenterOptions, log: (l: string) => void): Promise<SegmenterManifest> {
  const t0 = performance.now();
  const cohort = readCohort(o.cohort, { labelColumn: o.labelColumn });
  if (o.folds === 1 || o.folds < 0) throw new UsageError('train-segmenter: --folds must be 0 (no cross-validation models) or at least 2');
  log(`train-segmenter: ${cohort.cases.length} images from ${o.cohort}; reading them`);
  const images = (await loadTrainingImages(cohort)) as TrainingImage[];
  const groups = duplicateGroups(images);
  const nGroups = new Set(groups).size;
  log(`train-segmenter: ${nGroups} groups of near-duplicate images (${images.length - nGroups} images share a group)`);
  const { options, refine } = trainingOptions(o);
  const base = o.trial ? trialBase(o) : undefined;
  const foldOf = o.folds >= 2 ? groupedFolds(images, groups, o.folds, o.seed) : [];
  const all = images.map((_, i) => i);
  // Each model (a fold's, then the final one) is trained once, and once more as its refining network.
  const models = [
    ...Array.from({ length: o.folds }, (_, k) => ({
      name: `fold ${k + 1}/${o.folds}`, fold: k, base: `fold-${k + 1}`, train: all.filter((i) => foldOf[i] !== k), heldOut: images.filter((_, i) => foldOf[i] === k).map((im) => im.sha256),
    })),
    { name: 'final', fold: undefined, base: 'unet', train: all, heldOut: [] },
  ].filter((m) => !o.trial || (m.fold === undefined ? !!o.trial.final : o.trial.folds.includes(m.fold + 1)));
  if (base) checkTrialFolds(o, base, models);
  const kinds = [
    ...(o.trial?.refineOnly ? [] : [{ suffix: '', label: '', options }]),
    ...(o.refine || o.trial?.refineOnly ? [{ suffix: '-refine', label: ' (refining)', options: refine }] : []),
  ];
  const jobs = models.flatMap((m) => kinds.map((kind) => ({
    name: `${m.name}${kind.label}`, file: `${m.base}${kind.suffix}.onnx`,
    job: { cohort: o.cohort, labelColumn: o.labelColumn, train: m.train, phantomImages: o.phantomImages, options: kind.options } satisfies TrainJob,
  })));
  const results: Array<NetWeights | undefined> = new Array(jobs.length);
  let next = 0;
  const pool = async () => {
    for (;;) {
      const j = next++;
      if (j >= jobs.length) return;
      log(`train-segmenter: ${jobs[j].name}: ${jobs[j].job.train.length} cohort images + ${o.phantomImages} phantom frames`);
      results[j] = await runJob(jobs[j].job, jobs[j].name, log);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, jobs.length)) }, pool));
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const write = (file: string, w: NetWeights): string => {
    const bytes = unetToOnnx(foldBatchNorm(w), w.channels, options.recipe.inputSize, 'sonomics train-segmenter');
    writeFileSync(join(out, `${file}.tmp`), bytes);
    renameSync(join(out, `${file}.tmp`), join(out, file));
    return sha256(bytes);
  };
  const written = new Map(jobs.map((j, i) => [j.file, { file: j.file, sha256: write(j.file, results[i]!) }]));
  if (base) return writeTrial(o, base, out, written, options, refine, t0, log);
  /** A model's refining network file, when trained (written after the rest of the entry, as manifests have it). */
  const refineOf = (base: string) => (o.refine ? { refine: written.get(`${base}-refine.onnx`)! } : {});
  const final = results[jobs.findIndex((j) => j.file === 'unet.onnx')]!;
  const parameters = final.convs.reduce((s, c) => s + c.w.length + c.co + (c.k === 3 ? c.co : 0), 0);
  const manifest: SegmenterManifest = {
    // 1.1.0: one network for both passes; 1.2.0: a refining network for pass 2; 1.3.0: refining networks trained longer than pass 1's.
    format: SEGMENTER_FORMAT, id: 'tap-unet', version: !o.refine ? '1.1.0' : refine.epochs > options.epochs ? '1.3.0' : '1.2.0',
    intendedUse: 'Proposes a breast lesion outline from one tap on a B-mode image, for a sonographer to accept or correct. Decision support only, not for diagnosis.',
    model: { ...written.get('unet.onnx')!, channels: final.channels, parameters, ...refineOf('unet') },
    recipe: options.recipe,
    training: {
      command: o.command, cohort: basename(o.cohort), cohortSha256: sha256(readFileSync(o.cohort)), images: images.length,
      extraImages: o.phantomImages ? `${o.phantomImages} phantom B-mode frames (device/phantom.ts, seeds 1000..${1000 + o.phantomImages - 1})` : 'none',
      seed: o.seed, epochs: o.epochs, batchSize: options.batchSize, learningRate: options.learningRate, negativeFraction: options.negativeFraction,
      // Recorded when used, so manifests made without them stay as they were.
      ...(options.boxNegativeFraction > 0 && { boxNegativeFraction: options.boxNegativeFraction }),
      ...(options.lesionScaleFraction !== DEFAULT_TRAINING.lesionScaleFraction && { lesionScaleFraction: options.lesionScaleFraction }),
      ...(o.refine && { refine: refineRecord(refine, options.epochs) }),
      folds: o.folds, groups: nGroups, backend: '@tensorflow/tfjs wasm, 1 thread', minutes: Math.round((performance.now() - t0) / 600) / 100,
    },
    folds: models.slice(0, -1).map((m) => ({ ...written.get(`${m.base}.onnx`)!, ...refineOf(m.base), heldOut: m.heldOut })),
    notes: [
      'Trained on BUSI (one public dataset): images carry calipers and text, and lesions are mostly centred; accuracy on other scanners is unknown.',
      'Cross-validation folds keep near-duplicate images together; the fold models give out-of-sample masks for the training images.',
    ],
  };
  writeFileSync(join(out, 'segmenter.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  log(`train-segmenter: wrote ${out} in ${manifest.training.minutes} min`);
  return manifest;
}

/** A trial's base: the segmenter it is a variant of, checked to fit the trial. */
function trialBase(o: TrainSegmenterOptions): { dir: string; manifest: SegmenterManifest } {
  const t = o.trial!, dir = resolve(t.of), file = join(dir, 'segmenter.json');
  if (dir === resolve(o.out)) throw new UsageError(`train-segmenter: --out must not be --trial-of ${t.of}: a trial writes a copy, it never overwrites the segmenter it varies`);
  if (!existsSync(file)) throw new UsageError(`train-segmenter: --trial-of ${t.of}: ${file} is missing`);
  const manifest = parseSegmenterManifest(JSON.parse(readFileSync(file, 'utf8')), file);
  if (manifest.folds.length !== o.folds)
    throw new UsageError(`train-segmenter: --trial-of ${t.of} has ${manifest.folds.length} fold models, --folds is ${o.folds}: a trial trains the same folds`);
  if ((!t.folds.length && !t.final) || t.folds.some((k) => !Number.isInteger(k) || k < 1 || k > o.folds))
    throw new UsageError(`train-segmenter: --trial-folds must name folds 1..${o.folds} or final (got ${t.folds.join(',') || 'none'})`);
  if (t.refineOnly && !manifest.model.refine) throw new UsageError(`train-segmenter: --refine-only: ${t.of} has no refining networks to replace`);
  if (o.refine && !manifest.model.refine) throw new UsageError(`train-segmenter: --refine: ${t.of} has no refining networks, so a trial cannot add them to some folds only`);
  return { dir, manifest };
}

/** A trial's folds must hold out exactly the base's images (same cohort, seed and --folds), or the comparison is not paired. */
function checkTrialFolds(o: TrainSegmenterOptions, base: { manifest: SegmenterManifest }, models: Array<{ fold?: number; heldOut: string[] }>): void {
  for (const { fold: k, heldOut } of models) {
    if (k !== undefined && !sameHeldOut(heldOut, base.manifest.folds[k].heldOut))
      throw new UsageError(`train-segmenter: fold ${k + 1} would hold out other images than fold ${k + 1} of ${o.trial!.of} (another cohort, --seed or --folds?): a trial must be paired with it`);
  }
}

/** Writes a trial: the base segmenter's files and manifest with the trained networks (of folds, and of the final model with `final`) put in. */
function writeTrial(o: TrainSegmenterOptions, base: { dir: string; manifest: SegmenterManifest }, out: string, written: Map<string, SegmenterNetworkFile>,
  options: TrainOptions, refine: TrainOptions, t0: number, log: (l: string) => void): SegmenterManifest {
  const m = base.manifest, t = o.trial!;
  const files = [m.model.file, ...(m.model.refine ? [m.model.refine.file] : []), ...m.folds.flatMap((f) => [f.file, ...(f.refine ? [f.refine.file] : [])])];
  for (const f of files) if (!written.has(f)) copyFileSync(join(base.dir, f), join(out, f));
  const swap = (f: SegmenterNetworkFile) => written.get(f.file) ?? f;
  const networks = t.refineOnly ? 'refining' : o.refine ? 'both' : 'pass 1';
  const manifest: SegmenterManifest = {
    ...m, version: `${m.version}+trial`,
    model: { ...m.model, ...swap(m.model), ...(m.model.refine && { refine: swap(m.model.refine) }) },
    folds: m.folds.map((f) => ({ ...swap(f), ...(f.refine && { refine: swap(f.refine) }), heldOut: f.heldOut })),
    trial: {
      command: o.command, of: `${m.id} ${m.version}`, folds: [...new Set(t.folds)].sort((a, b) => a - b), ...(t.final && { final: true }), networks,
      epochs: o.epochs, seed: o.seed,
      ...(networks !== 'refining' && { negativeFraction: options.negativeFraction, lesionScaleFraction: options.lesionScaleFraction, boxNegativeFraction: options.boxNegativeFraction }),
      ...(networks !== 'pass 1' && { refine: refineRecord(refine, options.epochs) }),
      minutes: Math.round((performance.now() - t0) / 600) / 100,
    },
  };
  writeFileSync(join(out, 'segmenter.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  log(`train-segmenter: wrote the trial ${out} (${m.id} ${m.version} with the ${networks} networks of ${[...manifest.trial!.folds.map((k) => `fold ${k}`), ...(t.final ? ['the final model'] : [])].join(', ')} retrained); compare it: npm run bench:segment-compare -- ${out}`);
  return manifest;
}
