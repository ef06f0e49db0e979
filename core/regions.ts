// Regions: the lesion and its peritumoral rings. Ring k is the band between the lesion border
// and radiiMm[k] (lesion excluded), from an exact Euclidean distance transform that honours the
// pane's pixel spacing in x and y, clipped to the pane and to the scan sector when given.
import type { Pane } from './layout.js';
import type { LesionMask } from './mask.js';
import { native } from './native.js';

export const DEFAULT_RING_RADII_MM = [3, 5, 8] as const;

export interface RingSet {
  readonly width: number;
  readonly height: number;
  readonly radiiMm: readonly number[];
  /** Per pixel: 0 none, 1 lesion, k+2 = first ring (k) that contains it. Ring k = codes 2..k+2. */
  readonly codes: Uint8Array;
  /** Pixel counts: [lesion, ring 0, ring 1, ...] (rings cumulative, lesion excluded). */
  readonly counts: readonly number[];
}

export function ringName(mm: number): string {
  return `ring${Number.isInteger(mm) ? mm : String(mm).replace('.', 'p')}mm`;
}

export function computeRings(mask: LesionMask, pane: Pane, radiiMm: readonly number[] = DEFAULT_RING_RADII_MM, sector?: Uint8Array): RingSet {
  const codes = new Uint8Array(mask.width * mask.height);
  const counts = native.ringCodes(mask.data, mask.width, mask.height,
    { spacingX: pane.spacingX, spacingY: pane.spacingY, radiiMm: [...radiiMm] }, codes, sector ?? null);
  return { width: mask.width, height: mask.height, radiiMm: [...radiiMm], codes, counts };
}

export interface RegionContours {
  /** Outer boundary of the lesion, [x0, y0, x1, y1, ...] pixel centres in pane coordinates. */
  lesion: Int32Array;
  /** Outer boundary of each ring (lesion + band), in ring order. */
  rings: Int32Array[];
}

export function regionContours(r: RingSet): RegionContours {
  return {
    lesion: native.contour(r.codes, r.width, r.height, 1, 1),
    rings: r.radiiMm.map((_, k) => native.contour(r.codes, r.width, r.height, 1, k + 2)),
  };
}
