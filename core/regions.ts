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
  /** Ring radii in mm, strictly increasing. */
  readonly radiiMm: readonly number[];
  /** Region names each ring answers to (`ring5mm`; `ring50px` for a model fitted in pixels), one list per radius. */
  readonly names: readonly (readonly string[])[];
  /** Per pixel: 0 none, 1 lesion, k+2 = first ring (k) that contains it. Ring k = codes 2..k+2. */
  readonly codes: Uint8Array;
  /** Pixel counts: [lesion, ring 0, ring 1, ...] (rings cumulative, lesion excluded). */
  readonly counts: readonly number[];
}

export function ringName(mm: number, unit: 'mm' | 'px' = 'mm'): string {
  return `ring${Number.isInteger(mm) ? mm : String(mm).replace('.', 'p')}${unit}`;
}

const RING_REGION = /^ring([0-9]+)(?:p([0-9]+))?(mm|px)$/;

/** A ring region's radius and unit (`ring2p5mm` -> 2.5 mm, `ring30px` -> 30 px); undefined for anything else. */
export function parseRing(region: string): { radius: number; unit: 'mm' | 'px' } | undefined {
  const m = RING_REGION.exec(region);
  return m ? { radius: Number(`${m[1]}.${m[2] ?? 0}`), unit: m[3] as 'mm' | 'px' } : undefined;
}

/** The rings to compute: radii in mm and the names each answers to. */
export interface RingPlan { radiiMm: number[]; names: string[][] }

/**
 * The rings a pane needs: the displayed radii (mm) plus every ring region the models read
 * (`ring5mm`, or `ring50px` for a model fitted without a pixel spacing: its radius is taken in
 * this pane's pixels, which needs square pixels). Equal radii are computed once.
 */
export function planRings(displayMm: readonly number[], regions: Iterable<string>, pane: Pick<Pane, 'name' | 'spacingX' | 'spacingY'>): RingPlan {
  const byRadius = new Map<number, Set<string>>();
  const add = (mm: number, name: string) => {
    const key = Math.round(mm * 1e9) / 1e9;
    if (!byRadius.has(key)) byRadius.set(key, new Set());
    byRadius.get(key)!.add(name);
  };
  for (const mm of displayMm) add(mm, ringName(mm));
  for (const r of regions) {
    if (r === 'lesion') continue;
    const ring = parseRing(r);
    if (!ring) throw new Error(`region ${r} is neither lesion nor a ring (ring<r>mm, ring<r>px)`);
    const { radius } = ring;
    if (!(radius > 0)) throw new Error(`region ${r}: the ring radius must be > 0`);
    if (ring.unit === 'mm') add(radius, r);
    else {
      if (Math.abs(pane.spacingX - pane.spacingY) > 0.01 * pane.spacingX)
        throw new Error(`region ${r} is a ring in pixels, but the ${pane.name} pane's pixels are not square (${pane.spacingX} x ${pane.spacingY} mm)`);
      add(radius * pane.spacingX, r);
    }
  }
  const radiiMm = [...byRadius.keys()].sort((a, b) => a - b);
  return { radiiMm, names: radiiMm.map((mm) => [...byRadius.get(mm)!]) };
}

export function computeRings(mask: LesionMask, pane: Pane, radiiMm: readonly number[] = DEFAULT_RING_RADII_MM, sector?: Uint8Array,
  names: readonly (readonly string[])[] = radiiMm.map((mm) => [ringName(mm)])): RingSet {
  const codes = new Uint8Array(mask.width * mask.height);
  const counts = native.ringCodes(mask.data, mask.width, mask.height,
    { spacingX: pane.spacingX, spacingY: pane.spacingY, radiiMm: [...radiiMm] }, codes, sector ?? null);
  return { width: mask.width, height: mask.height, radiiMm: [...radiiMm], names, codes, counts };
}

export interface RegionContours {
  /** Outer boundary of the lesion, [x0, y0, x1, y1, ...] pixel centres in pane coordinates. */
  lesion: Int32Array;
  /** Radii of the rings drawn, mm. */
  ringsMm: number[];
  /** Outer boundary of each ring drawn (lesion + band), in ringsMm order. */
  rings: Int32Array[];
}

/** Contours of the lesion and of the rings with the given radii (default all). */
export function regionContours(r: RingSet, ringsMm: readonly number[] = r.radiiMm): RegionContours {
  const ks = ringsMm.map((mm) => {
    const k = r.radiiMm.findIndex((x) => Math.abs(x - mm) < 1e-9);
    if (k < 0) throw new Error(`no ${mm} mm ring in this ring set`);
    return k;
  });
  return {
    lesion: native.contour(r.codes, r.width, r.height, 1, 1),
    ringsMm: [...ringsMm],
    rings: ks.map((k) => native.contour(r.codes, r.width, r.height, 1, k + 2)),
  };
}
