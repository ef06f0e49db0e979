// The BUSI cases the segmentation benchmarks run on: each image, its expert mask (0/1), the
// segmenter fold whose model never saw it, and the tap `--masks tap` uses (the mask's deepest point).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCohort, type Cohort, type CohortCase } from '../core/cohort.js';
import { readGrayImage, type GrayImage } from '../core/imageio.js';
import { createLesionMask, maskStats } from '../core/mask.js';
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
