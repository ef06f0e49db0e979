// `sonomics segment`: the lesion mask from one tap (or a rough box) on an image, written as a PNG
// (0/255). "No lesion found" is an answer, not a failure: no file is written and the command
// says so (exit status 3). Decision support only, not for diagnosis.
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import sharp from 'sharp';
import { readGrayImage } from '../core/imageio.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { checkPrompt, Segmenter, SegmentError, type SegmenterIdentity, type SegmentPrompt } from '../core/segment/segmenter.js';
import { UsageError } from './errors.js';

export interface SegmentOptions {
  image: string;
  prompt: SegmentPrompt;
  out: string;
  segmenter?: string;
}

export interface SegmentSummary {
  found: boolean;
  image: string;
  width: number;
  height: number;
  prompt: SegmentPrompt;
  /** Only when found. */
  out?: string;
  area?: number;
  bbox?: { x0: number; y0: number; x1: number; y1: number };
  reason?: string;
  confidence: number;
  ms: number;
  /** The segmenter: its network's sha256, and its refining network's (pass 2) when it has one. */
  segmenter: SegmenterIdentity;
  notice: string;
}

/** Writes a 0/255 mask PNG atomically (a temporary file renamed into place). */
export async function writeMaskPng(path: string, mask: Uint8Array, width: number, height: number): Promise<void> {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}.png`;
  await sharp(Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength), { raw: { width, height, channels: 1 } }).png().toFile(tmp);
  renameSync(tmp, path);
}

export async function segmentCommand(o: SegmentOptions): Promise<SegmentSummary> {
  const image = await readGrayImage(o.image).catch((e: Error) => { throw new UsageError(`segment: ${e.message}`); });
  try {
    checkPrompt(o.prompt, image.width, image.height);
  } catch (e) {
    throw new UsageError(`segment: ${(e as Error).message}`);
  }
  const seg = await Segmenter.load({ dir: o.segmenter }).catch((e: Error) => { throw new UsageError(`segment: ${e.message}`); });
  try {
    const r = await seg.segment(image, o.prompt);
    const base = {
      image: o.image, width: image.width, height: image.height, prompt: o.prompt, confidence: Math.round(r.confidence * 1000) / 1000, ms: Math.round(r.ms * 10) / 10,
      segmenter: seg.identity, notice: DECISION_SUPPORT_NOTICE,
    };
    if (!r.found) return { found: false, ...base, reason: r.reason };
    await writeMaskPng(o.out, r.mask, r.width, r.height);
    return { found: true, ...base, out: o.out, area: r.area, bbox: r.bbox };
  } catch (e) {
    if (e instanceof SegmentError) throw new UsageError(`segment: ${e.message}`);
    throw e;
  } finally {
    await seg.close();
  }
}
