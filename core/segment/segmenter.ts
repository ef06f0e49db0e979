// The lesion mask from one tap (or a rough box), with the trained one-tap U-Net on onnxruntime
// (one thread). Two passes, each one native call in, one network run (a batch of two with the
// mirrored input when the recipe says so), one native call out:
//   1. a crop of the image's shorter side centred on the tap (a box: contextFactor x its larger
//      side, centred on the box), so the lesion is seen whole whatever its size;
//   2. a crop of contextFactor x the extent of pass 1's mask, centred on it: the lesion at the
//      network's working scale. When the manifest has a refining network, pass 2 runs it: a
//      network of the same shape trained only on such crops.
// The mask is the 4-connected region at the tap, holes filled; from a box, it also stays inside
// the box grown by boxMarginFraction of its larger side (the user said the lesion lies there).
// When nothing lies at the tap (or it is smaller than minAreaPx) the answer is "no lesion found",
// never a blob somewhere else.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { GrayImage } from '../imageio.js';
import { native, type SquareCrop } from '../native.js';
import { packageRoot } from '../paths.js';
import { parseSegmenterManifest, type SegmenterManifest, type SegmenterNetworkFile, type SegmenterRecipe } from './manifest.js';

/** A tap inside the lesion (image pixels), or a rough box around it (inclusive corners). */
export type SegmentPrompt = { seed: { x: number; y: number } } | { box: { x0: number; y0: number; x1: number; y1: number } };

export interface SegmentFound {
  found: true;
  /** 255 inside, image-sized. */
  mask: Uint8Array;
  width: number;
  height: number;
  area: number;
  bbox: { x0: number; y0: number; x1: number; y1: number };
  /** The network's probability at the tap (after both passes). */
  confidence: number;
  /** Where the mask was started: the tap, or the nearest proposed pixel to it. */
  at: { x: number; y: number };
  ms: number;
}

export interface SegmentNotFound { found: false; reason: string; confidence: number; ms: number }

export type SegmentResult = SegmentFound | SegmentNotFound;

/** A segmenter's id, version and network sha256s: what made a mask. */
export interface SegmenterIdentity { id: string; version: string; sha256: string; refineSha256?: string }

export class SegmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SegmentError';
  }
}

export const DEFAULT_SEGMENTER_DIR = 'models/segmenter';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Checks a prompt against the image; the error says what is wrong. */
export function checkPrompt(p: SegmentPrompt, width: number, height: number): void {
  const inside = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && x >= 0 && y >= 0 && x <= width - 1 && y <= height - 1;
  if ('seed' in p) {
    if (!inside(p.seed.x, p.seed.y))
      throw new SegmentError(`the seed (${p.seed.x}, ${p.seed.y}) lies outside the ${width}x${height} image (x 0..${width - 1}, y 0..${height - 1})`);
    return;
  }
  const { x0, y0, x1, y1 } = p.box;
  if (![x0, y0, x1, y1].every(Number.isFinite)) throw new SegmentError('the box needs four finite numbers X0,Y0,X1,Y1');
  if (x1 <= x0 || y1 <= y0) throw new SegmentError(`the box (${x0},${y0})-(${x1},${y1}) is empty: X1 must exceed X0 and Y1 exceed Y0`);
  if (!inside((x0 + x1) / 2, (y0 + y1) / 2) || x1 < 0 || y1 < 0 || x0 > width - 1 || y0 > height - 1)
    throw new SegmentError(`the box (${x0},${y0})-(${x1},${y1}) lies outside the ${width}x${height} image`);
}

class Network {
  private queue: Promise<unknown> = Promise.resolve();
  constructor(private readonly ort: typeof Ort, private readonly session: Ort.InferenceSession, readonly sha256: string) {}

  static async load(ort: typeof Ort, bytes: Uint8Array): Promise<Network> {
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
    return new Network(ort, session, sha256(bytes));
  }

  /** Logits for a batch of inputs (nchw, 2 x S x S each); runs one at a time. */
  run(inputs: Float32Array[], S: number): Promise<Float32Array[]> {
    const job = this.queue.then(async () => {
      const x = new Float32Array(inputs.length * 2 * S * S);
      inputs.forEach((v, i) => x.set(v, i * v.length));
      const out = await this.session.run({ x: new this.ort.Tensor('float32', x, [inputs.length, 2, S, S]) });
      const l = out.logits.data as Float32Array;
      return inputs.map((_, i) => l.slice(i * S * S, (i + 1) * S * S));
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  release(): Promise<void> { return this.session.release(); }
}

export interface SegmenterOptions {
  /** The directory holding segmenter.json (default: the shipped models/segmenter). */
  dir?: string;
  /** Also load the cross-validation fold models (for evaluations on the training images). */
  folds?: boolean;
}

/** The networks of one model: pass 1's, and pass 2's when it has a refining one. */
interface Networks { net: Network; refine?: Network }

export class Segmenter {
  private constructor(readonly manifest: SegmenterManifest, readonly dir: string, private readonly main: Networks,
    private readonly foldNets: Networks[], private readonly heldOutBy: Map<string, number>) {}

  get recipe(): SegmenterRecipe { return this.manifest.recipe; }

  /** Which segmenter this is: what a mask's provenance names (the refining network's sha256 when it has one). */
  get identity(): SegmenterIdentity {
    const { id, version, model } = this.manifest;
    return { id, version, sha256: model.sha256, ...(model.refine && { refineSha256: model.refine.sha256 }) };
  }

  /** Loads and checks the manifest and the networks (sha256 of every file). */
  static async load(opts: SegmenterOptions = {}): Promise<Segmenter> {
    const dir = resolve(opts.dir ?? join(packageRoot(), DEFAULT_SEGMENTER_DIR));
    const path = join(dir, 'segmenter.json');
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new SegmentError(`segmenter ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `not readable JSON: ${(e as Error).message}`}`);
    }
    const m = parseSegmenterManifest(json, path);
    const ort: typeof Ort = await import('onnxruntime-node');
    const read = (file: string, want: string): Uint8Array => {
      const full = resolve(dir, file);
      if (isAbsolute(file) || !full.startsWith(dir + sep)) throw new SegmentError(`segmenter ${path}: ${file} lies outside ${dir}`);
      let b: Uint8Array;
      try {
        b = readFileSync(full);
      } catch (e) {
        throw new SegmentError(`segmenter ${path}: cannot read ${file}: ${(e as Error).message}`);
      }
      if (sha256(b) !== want) throw new SegmentError(`segmenter ${path}: ${file} does not match its sha256 in the manifest`);
      return b;
    };
    const networks = async (f: SegmenterNetworkFile & { refine?: SegmenterNetworkFile }): Promise<Networks> => ({
      net: await Network.load(ort, read(f.file, f.sha256)),
      ...(f.refine && { refine: await Network.load(ort, read(f.refine.file, f.refine.sha256)) }),
    });
    const main = await networks(m.model);
    const folds: Networks[] = [];
    const heldOutBy = new Map<string, number>();
    if (opts.folds) {
      for (const [k, f] of m.folds.entries()) {
        folds.push(await networks(f));
        for (const s of f.heldOut) heldOutBy.set(s, k);
      }
    }
    return new Segmenter(m, dir, main, folds, heldOutBy);
  }

  /** The fold whose model never saw this image (by its file's sha256), if the folds are loaded and it was a training image. */
  foldFor(imageSha256: string): number | undefined {
    return this.heldOutBy.get(imageSha256);
  }

  /**
   * The lesion mask from a tap or box. `fold`: use that cross-validation fold's model; `mirror`
   * overrides the recipe's mirrored pass, `boxMargin: false` leaves a box's mask unclipped,
   * `refine: false` runs pass 2 on pass 1's network (for benchmarks).
   */
  async segment(image: GrayImage, prompt: SegmentPrompt, opts: { fold?: number; mirror?: boolean; boxMargin?: boolean; refine?: boolean } = {}): Promise<SegmentResult> {
    const t0 = performance.now();
    const { width: w, height: h, data } = image;
    checkPrompt(prompt, w, h);
    const nets = opts.fold === undefined ? this.main : this.foldNets[opts.fold];
    if (!nets) throw new SegmentError(`segmenter: no fold ${opts.fold} loaded`);
    const second = (opts.refine !== false && nets.refine) || nets.net;
    const r = this.recipe, S = r.inputSize, mirror = opts.mirror ?? r.mirror;
    // A box: its centre is the tap, its larger side sets pass 1's scale and, grown by the margin, where the mask may lie.
    const box = 'box' in prompt ? prompt.box : null;
    const boxSide = box ? Math.max(box.x1 - box.x0 + 1, box.y1 - box.y0 + 1) : 0;
    const tap = 'seed' in prompt ? prompt.seed : { x: (prompt.box.x0 + prompt.box.x1) / 2, y: (prompt.box.y0 + prompt.box.y1) / 2 };
    const firstSide = box ? Math.max(r.minCropPx, r.contextFactor * boxSide) : Math.min(w, h) * r.firstPassFraction;
    const m = r.boxMarginFraction * boxSide;
    const within = box && opts.boxMargin !== false ? { x0: box.x0 - m, y0: box.y0 - m, x1: box.x1 + m, y1: box.y1 + m } : null;
    const mask = new Uint8Array(w * h);
    const pass = async (crop: SquareCrop, net: Network) => {
      const inputs = [false, ...(mirror ? [true] : [])].map((flip) => {
        const x = new Float32Array(2 * S * S);
        native.tapInput(data, w, h, crop, tap, x, { size: S, sigma: r.tapSigma, layout: 'nchw', flip });
        return x;
      });
      const [logits, flipped] = await net.run(inputs, S);
      return native.tapMask(logits, crop, w, h, tap, mask, { size: S, threshold: r.threshold, snapRadius: r.snapFraction * crop.side, flipped: flipped ?? null, within });
    };
    let res = await pass({ cx: tap.x, cy: tap.y, side: firstSide }, nets.net);
    if (res.area > 0) {
      const first = res, firstMask = mask.slice();
      const extent = Math.max(res.x1 - res.x0 + 1, res.y1 - res.y0 + 1);
      res = await pass({ cx: (res.x0 + res.x1) / 2, cy: (res.y0 + res.y1) / 2, side: Math.max(r.minCropPx, r.contextFactor * extent) }, second);
      // A second pass that loses the tap keeps the first pass's answer.
      if (res.area === 0) { mask.set(firstMask); res = first; }
    }
    const confidence = sigmoid(res.tapLogit);
    const ms = performance.now() - t0;
    if (res.area < r.minAreaPx) {
      const where = box ? 'in the box' : 'at the tap';
      return { found: false, confidence, ms, reason: res.area === 0
        ? `no lesion found ${where}: ${box ? 'drag the box around the lesion' : 'tap inside the lesion'}, or draw its outline`
        : `no lesion found ${where}: only ${res.area} pixels look like lesion there` };
    }
    return { found: true, mask, width: w, height: h, area: res.area, bbox: { x0: res.x0, y0: res.y0, x1: res.x1, y1: res.y1 }, confidence, at: { x: res.atX!, y: res.atY! }, ms };
  }

  async close(): Promise<void> {
    await Promise.all([this.main, ...this.foldNets].flatMap((n) => [n.net, ...(n.refine ? [n.refine] : [])]).map((n) => n.release()));
  }
}

/** The point of a mask farthest from its border (the maximum of its distance transform): the tap `--masks tap` uses. */
export function deepestPoint(mask: Uint8Array, width: number, height: number): { x: number; y: number; depth: number } {
  const d = native.maskDistance(mask, width, height, new Float32Array(width * height));
  if (!(d.distance > 0)) throw new SegmentError('the mask is empty: no point to tap');
  return { x: d.x, y: d.y, depth: d.distance };
}

