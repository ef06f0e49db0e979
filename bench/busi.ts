// The BUSI cases the segmentation benchmarks run on: each image, its expert mask (0/1), the
// segmenter fold whose model never saw it, and the tap `--masks tap` uses (the mask's deepest point).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCohort, type Cohort, type CohortCase } from '../core/cohort.js';
import { readGrayImage, type GrayImage } from '../core/imageio.js';
import { createLesionMask, maskStats } from '../core/mask.js';
import { native } from '../core/native.js';
import { packageRoot } from '../core/paths.js';
import { deepestPoint, type Segmenter } from '../core/segment/segmenter.js';

const BUSI = join(packageRoot(), '..', 'shared', 'data', 'busi', 'labels.csv');

export interface BusiCase {
  c: CohortCase; image: GrayImage; mask: Uint8Array; fold: number; tap: { x: number; y: number; depth: number };
  /** The expert lesion's bounding box (inclusive pixel corners). */
  bbox: { x0: number; y0: number; x1: number; y1: number };
}

/** The BUSI cohort, and its images (every 4th when `quick`) each with the fold model that held it out. */
export async function loadBusiCases(seg: Segmenter, quick: boolean): Promise<{ cohort: Cohort; cases: BusiCase[] }> {
  if (!existsSync(BUSI)) throw new Error(`${BUSI} is missing: this benchmark measures against the BUSI expert masks in ../shared`);
  const cohort = readCohort(BUSI, { labelColumn: 'malignant' });
  const cases: BusiCase[] = [];
  for (const [i, c] of cohort.cases.entries()) {
    if (quick && i % 4 !== 0) continue;
    const image = await readGrayImage(c.image), m = await readGrayImage(c.mask);
    const mask = Uint8Array.from(m.data, (v) => (v ? 1 : 0));
    const fold = seg.foldFor(createHash('sha256').update(readFileSync(c.image)).digest('hex'));
    if (fold === undefined) throw new Error(`${c.id}: no segmenter fold held it out (was the segmenter trained on this cohort?)`);
    const { x0, y0, x1, y1 } = maskStats(createLesionMask(mask, image.width, image.height));
    cases.push({ c, image, mask, fold, tap: deepestPoint(mask, image.width, image.height), bbox: { x0, y0, x1, y1 } });
  }
  return { cohort, cases };
}

/** A box: inclusive pixel corners. */
export type Box = { x0: number; y0: number; x1: number; y1: number };

/**
 * The expert lesion's bounding box with each side moved out by `out` of the lesion's extent along
 * its axis, then by up to 10 % of it either way (seeded by `random`), clipped to the image.
 */
export function jitteredBox(k: BusiCase, random: () => number, out: number): Box {
  const { width: w, height: h } = k.image;
  const { x0, y0, x1, y1 } = k.bbox;
  const ew = x1 - x0 + 1, eh = y1 - y0 + 1, j = () => out + 0.1 * (2 * random() - 1);
  return { x0: Math.max(0, x0 - j() * ew), y0: Math.max(0, y0 - j() * eh), x1: Math.min(w - 1, x1 + j() * ew), y1: Math.min(h - 1, y1 + j() * eh) };
}

/** The pixels (indices) of the lesion's inner half: distance to its border at least half the maximum. */
export function innerHalf(k: BusiCase): number[] {
  const { width: w, height: h } = k.image;
  const d = new Float32Array(w * h);
  native.maskDistance(k.mask, w, h, d);
  const pts: number[] = [];
  for (let i = 0; i < d.length; i++) if (d[i] >= k.tap.depth / 2) pts.push(i);
  return pts;
}

/** A tap at a random pixel of `pts` (indices, as innerHalf gives them). */
export function tapAt(k: BusiCase, pts: number[], random: () => number): { x: number; y: number } {
  const i = pts[Math.floor(random() * pts.length)];
  return { x: i % k.image.width, y: Math.floor(i / k.image.width) };
}

/**
 * Up to n taps well outside the lesion: farther from it than its depth and 8 px, drawn at random
 * over the image (200 draws at most).
 */
export function outsideTaps(k: BusiCase, random: () => number, n: number): Array<{ x: number; y: number }> {
  const { width: w, height: h } = k.image;
  const grown = new Uint8Array(w * h);
  native.morphMask(k.mask, w, h, Math.max(8, k.tap.depth), grown);
  const taps: Array<{ x: number; y: number }> = [];
  for (let t = 0; t < 200 && taps.length < n; t++) {
    const x = Math.floor(random() * w), y = Math.floor(random() * h);
    if (!grown[y * w + x]) taps.push({ x, y });
  }
  return taps;
}
