// Training the one-tap U-Net (net.ts): seeded sampling of crops around taps, Adam with a cosine
// learning rate, one thread, so the same images, options and seed give the same weights.
//
// Each step takes a batch of images (a seeded shuffle per epoch) and makes one example from each:
// - a tap at the lesion's deepest point (the maximum of its distance transform, the tap that
//   `--masks tap` uses) or at a random point of its inner half (distance >= half the maximum);
// - a crop around it as the two inference passes make them: the image's shorter side, or 1.5-3x
//   the lesion's extent, jittered by up to 8 % of its side, mirrored at random, with gain and
//   gamma jitter;
// - with probability negativeFraction, a tap well outside the lesion whose target is empty:
//   the network learns to answer "nothing here" rather than grow a blob anywhere. Its crop is the
//   image's shorter side (as a tap's pass 1 sees it); with probability boxNegativeFraction more,
//   the same kind of tap with a crop of 1.5-3x the lesion's extent, as pass 1 sees a box of a
//   lesion's size drawn around no lesion.
// Loss: binary cross-entropy plus soft Dice.
import type * as Tf from '@tensorflow/tfjs';
import type { GrayImage } from '../imageio.js';
import { native } from '../native.js';
import { seededRandom } from '../random.js';
import type { SegmenterRecipe } from './manifest.js';
import { segmentationLoss, TrainableUNet, trainingBackend, type NetWeights } from './net.js';

export interface TrainingImage {
  id: string;
  /** sha256 of the image file (hex), '' for generated images. */
  sha256: string;
  label: 0 | 1;
  image: GrayImage;
  /** 0/1 per pixel. */
  mask: Uint8Array;
  /** The deepest lesion point and its depth (pixels). */
  tap: { x: number; y: number; depth: number };
  /** Pixel indices of the inner half (distance to the border >= half the maximum). */
  inner: Int32Array;
  /** Lesion extent: the larger side of its bounding box (pixels). */
  extent: number;
}

/** The training view of an image and its lesion mask (non-zero inside). */
export function trainingImage(id: string, sha256: string, label: 0 | 1, image: GrayImage, mask: Uint8Array): TrainingImage {
  const { width: w, height: h } = image;
  if (mask.length !== w * h) throw new Error(`${id}: mask size differs from the image's`);
  const m = new Uint8Array(w * h);
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let i = 0; i < m.length; i++) {
    if (!mask[i]) continue;
    m[i] = 1;
    const x = i % w, y = (i - x) / w;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (x1 < 0) throw new Error(`${id}: the mask is empty`);
  const d = new Float32Array(w * h);
  const deep = native.maskDistance(m, w, h, d);
  const inner: number[] = [];
  for (let i = 0; i < d.length; i++) if (d[i] >= deep.distance / 2) inner.push(i);
  return { id, sha256, label, image, mask: m, tap: { x: deep.x, y: deep.y, depth: deep.distance }, inner: Int32Array.from(inner), extent: Math.max(x1 - x0 + 1, y1 - y0 + 1) };
}

/**
 * Near-duplicate groups (public datasets hold the same scan twice, even under two labels): images
 * whose 16x16 area-averaged thumbnails differ by less than 3 gray levels on average share a group,
 * so cross-validation never trains on one copy and tests on the other.
 */
export function duplicateGroups(images: TrainingImage[]): number[] {
  const T = 16;
  const thumbs = images.map(({ image: im }) => {
    const out = new Float32Array(T * T);
    native.cropResize(im.data, im.width, im.height, { x: 0, y: 0, width: im.width, height: im.height }, out, { width: T, height: T, channels: 1, layout: 'nchw' });
    return out;
  });
  const parent = images.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < images.length; i++) {
    for (let j = i + 1; j < images.length; j++) {
      let s = 0;
      const a = thumbs[i], b = thumbs[j];
      for (let k = 0; k < a.length && s < 3 * a.length; k++) s += Math.abs(a[k] - b[k]);
      if (s < 3 * a.length) parent[find(j)] = find(i);
    }
  }
  const ids = new Map<number, number>();
  return images.map((_, i) => {
    const r = find(i);
    if (!ids.has(r)) ids.set(r, ids.size);
    return ids.get(r)!;
  });
}

/** k folds of whole groups, stratified by the label of each group's first image, seeded. */
export function groupedFolds(images: TrainingImage[], groups: number[], k: number, seed: number): number[] {
  const random = seededRandom(seed);
  const byGroup = new Map<number, number[]>();
  groups.forEach((g, i) => byGroup.set(g, [...(byGroup.get(g) ?? []), i]));
  const foldOf = new Array<number>(images.length).fill(-1);
  let next = 0;
  for (const label of [0, 1]) {
    const gs = [...byGroup.values()].filter((members) => images[members[0]].label === label);
    for (let i = gs.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [gs[i], gs[j]] = [gs[j], gs[i]];
    }
    for (const members of gs) {
      for (const i of members) foldOf[i] = next;
      next = (next + 1) % k;
    }
  }
  return foldOf;
}

export interface TrainOptions {
  recipe: SegmenterRecipe;
  channels: number[];
  seed: number;
  epochs: number;
  batchSize: number;
  /** Cosine schedule from the first to the second over all steps. */
  learningRate: [number, number];
  negativeFraction: number;
  /**
   * Negatives at a lesion's scale (a box around no lesion), on top of negativeFraction. 0 (the
   * shipped segmenter's) draws exactly as before the option existed: the same examples, the same
   * weights.
   */
  boxNegativeFraction: number;
  /**
   * The share of positive examples cropped at a lesion's scale (1.5-3x its extent, as pass 2
   * sees it); the rest are cropped as pass 1 sees them (the image's shorter side). 0.5 for the
   * network of both passes; 1 for a refining network that only ever runs pass 2.
   */
  lesionScaleFraction: number;
  /**
   * The crop's side at a lesion's scale, as multiples of the lesion's extent (drawn uniformly):
   * [1.5, 3] for both networks of segmenter 1.2.0.
   */
  lesionScaleRange: [number, number];
}

export const DEFAULT_TRAINING: Omit<TrainOptions, 'recipe'> = {
  channels: [12, 24, 48, 96], seed: 1, epochs: 24, batchSize: 8, learningRate: [2e-3, 1e-4], negativeFraction: 0.15, boxNegativeFraction: 0, lesionScaleFraction: 0.5,
  lesionScaleRange: [1.5, 3],
};

/** What a training example was drawn as: a negative (a tap well outside the lesion) or not, and its crop. */
export interface ExampleDraw { negative: boolean; crop: { cx: number; cy: number; side: number } }

/** One training example (NHWC input, 0/1 target), drawn with `random`. */
export function trainingExample(img: TrainingImage, o: TrainOptions, random: () => number, x: Float32Array, y: Float32Array): ExampleDraw {
  const S = o.recipe.inputSize, { width: w, height: h } = img.image;
  const U = (a: number, b: number) => a + (b - a) * random();
  const flip = random() < 0.5;
  let tap = { x: img.tap.x, y: img.tap.y }, negative = false;
  const draw = random(), lesionScale = draw >= o.negativeFraction;
  if (draw < o.negativeFraction + o.boxNegativeFraction) {
    // Well outside: farther from the lesion than its depth and 8 px; 50 tries, else a positive.
    const grown = new Uint8Array(w * h);
    native.morphMask(img.mask, w, h, Math.max(8, img.tap.depth), grown);
    for (let t = 0; t < 50 && !negative; t++) {
      const px = Math.floor(random() * w), py = Math.floor(random() * h);
      if (!grown[py * w + px]) { tap = { x: px, y: py }; negative = true; }
    }
  }
  if (!negative && random() < 0.5) {
    const i = img.inner[Math.floor(random() * img.inner.length)];
    tap = { x: i % w, y: Math.floor(i / w) };
  }
  const side = (negative && !lesionScale) || (!negative && random() < 1 - o.lesionScaleFraction)
    ? Math.min(w, h) * o.recipe.firstPassFraction * Math.exp(U(-0.25, 0.25))
    : Math.max(o.recipe.minCropPx, img.extent * U(o.lesionScaleRange[0], o.lesionScaleRange[1]));
  const centre = negative ? tap : { x: (img.tap.x + tap.x) / 2, y: (img.tap.y + tap.y) / 2 };
  const crop = { cx: centre.x + U(-0.08, 0.08) * side, cy: centre.y + U(-0.08, 0.08) * side, side };
  native.tapInput(img.image.data, w, h, crop, tap, x, { size: S, sigma: o.recipe.tapSigma, layout: 'nhwc', flip, gain: U(0.8, 1.2), gamma: Math.exp(U(-0.25, 0.25)) });
  if (negative) { y.fill(0); return { negative, crop }; }
  native.cropSample(img.mask, w, h, crop, y, { size: S, flip });
  for (let i = 0; i < y.length; i++) y[i] = y[i] > 0.5 ? 1 : 0;
  return { negative, crop };
}

export interface EpochReport { epoch: number; loss: number; seconds: number }

/** Trains a network on the images; returns its weights (batch norm not folded). */
export async function trainUNet(images: TrainingImage[], o: TrainOptions, onEpoch?: (r: EpochReport) => void): Promise<NetWeights> {
  if (images.length < o.batchSize) throw new Error(`segmenter training: ${images.length} images, fewer than a batch of ${o.batchSize}`);
  const tf = await trainingBackend();
  const random = seededRandom(o.seed);
  const net = new TrainableUNet(tf, o.channels, 2, seededRandom(o.seed + 100));
  const opt = tf.train.adam(o.learningRate[0]);
  const S = o.recipe.inputSize, B = o.batchSize;
  const steps = Math.floor(images.length / B), total = steps * o.epochs;
  const X = new Float32Array(B * S * S * 2), Y = new Float32Array(B * S * S);
  const x = new Float32Array(S * S * 2), y = new Float32Array(S * S);
  const [lr0, lr1] = o.learningRate;
  let step = 0;
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      const order = images.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      let sum = 0;
      for (let s = 0; s < steps; s++) {
        for (let b = 0; b < B; b++) {
          trainingExample(images[order[s * B + b]], o, random, x, y);
          X.set(x, b * x.length);
          Y.set(y, b * y.length);
        }
        (opt as unknown as { learningRate: number }).learningRate = lr1 + 0.5 * (lr0 - lr1) * (1 + Math.cos((Math.PI * step) / total));
        step++;
        const xt = tf.tensor4d(X, [B, S, S, 2]), yt = tf.tensor4d(Y, [B, S, S, 1]);
        const loss = opt.minimize(() => segmentationLoss(tf, yt, net.forward(xt)), true, net.trainable) as Tf.Scalar;
        net.commitBatchNorm();
        sum += (await loss.data())[0];
        tf.dispose([loss, xt, yt]);
      }
      onEpoch?.({ epoch, loss: sum / steps, seconds: (performance.now() - t0) / 1000 });
    }
    return await net.weights();
  } finally {
    net.dispose();
    opt.dispose();
  }
}
