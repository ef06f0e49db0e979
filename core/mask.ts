// LesionMask: a binary mask in pane coordinates (0 = outside, non-zero = lesion).
import { native } from './native.js';

export interface LesionMask {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export function createLesionMask(data: Uint8Array, width: number, height: number): LesionMask {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new RangeError(`lesion mask: width and height must be positive integers (got ${width}x${height})`);
  if (data.length !== width * height)
    throw new RangeError(`lesion mask: ${data.length} bytes for a ${width}x${height} mask (expected ${width * height})`);
  return { width, height, data };
}

/**
 * The mask shrunk and grown by a Euclidean disc of radiusPx (native morphMask, one call each): the
 * score's mask sensitivity. Undefined when either keeps fewer than minArea pixels (a lesion too
 * small to shrink).
 */
export function shrinkAndGrow(m: LesionMask, radiusPx: number, minArea = 16): { shrunk: LesionMask; grown: LesionMask } | undefined {
  const [shrunk, grown] = [-radiusPx, radiusPx].map((r) => {
    const out = new Uint8Array(m.width * m.height);
    return native.morphMask(m.data, m.width, m.height, r, out) < minArea ? undefined : createLesionMask(out, m.width, m.height);
  });
  return shrunk && grown ? { shrunk, grown } : undefined;
}

export interface MaskStats { area: number; cx: number; cy: number; x0: number; y0: number; x1: number; y1: number }

/** Area, centroid (pixel centres) and inclusive bounding box. Runs once per lock, not per frame. */
export function maskStats(m: LesionMask): MaskStats {
  let area = 0, sx = 0, sy = 0, x0 = m.width, y0 = m.height, x1 = -1, y1 = -1;
  const d = m.data;
  for (let y = 0, i = 0; y < m.height; y++) {
    for (let x = 0; x < m.width; x++, i++) {
      if (d[i]) {
        area++; sx += x; sy += y;
        if (x < x0) x0 = x; if (x > x1) x1 = x;
        if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
  }
  if (area === 0) throw new RangeError('lesion mask is empty: outline the lesion first');
  return { area, cx: sx / area, cy: sy / area, x0, y0, x1, y1 };
}

/** Most vertices a polygon outline may have (polygonMask). */
export const MAX_POLYGON_POINTS = 1024;
/** Largest coordinate magnitude accepted by polygonMask (pixels); keeps the edge arithmetic finite. */
export const MAX_POLYGON_COORD = 1e6;

function checkPaneSize(fn: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new RangeError(`${fn}: width and height must be positive integers (got ${width}x${height})`);
}

/**
 * The lesion mask (0/255) of a closed polygon outline drawn on the pane. `points` is flat
 * [x0, y0, x1, y1, ...] in pane pixel coordinates (an integer position names a pixel centre, as
 * in the overlay contours); the last point joins the first. A pixel is inside when its centre is
 * (nonzero winding rule, so a self-crossing outline is filled as a whole; centres on a left or
 * top edge count, on a right or bottom edge do not, so a 10x10 square covers 100 pixels).
 * Vertices may lie outside the pane: the outline is clipped. Scanline fill: the cost is rows
 * spanned x vertices, not pane pixels. Runs once per lock, not per frame.
 */
export function polygonMask(width: number, height: number, points: ArrayLike<number>): LesionMask {
  checkPaneSize('polygonMask', width, height);
  const len = points.length;
  if (len % 2 !== 0) throw new RangeError(`polygonMask: odd length ${len}: points must be x,y pairs [x0, y0, x1, y1, ...]`);
  const n = len / 2;
  if (n < 3) throw new RangeError(`polygonMask: ${n} point${n === 1 ? '' : 's'}: at least 3 are needed`);
  if (n > MAX_POLYGON_POINTS) throw new RangeError(`polygonMask: ${n} points: at most ${MAX_POLYGON_POINTS} are accepted`);
  const p = new Float64Array(len);
  let minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < len; i++) {
    const v = points[i];
    const which = `value ${i} (${i % 2 ? 'y' : 'x'} of point ${i >> 1})`;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`polygonMask: ${which} is not a finite number (got ${String(points[i])})`);
    if (Math.abs(v) > MAX_POLYGON_COORD) throw new RangeError(`polygonMask: ${which} is out of range (beyond ±${MAX_POLYGON_COORD} pixels)`);
    p[i] = v;
    if (i % 2) { if (v < minY) minY = v; if (v > maxY) maxY = v; }
  }
  const data = new Uint8Array(width * height);
  // Edge crossings of one scanline, split by direction and sorted by x; winding = downs - ups.
  const down = new Float64Array(n), up = new Float64Array(n);
  let area = 0;
  const yFirst = Math.max(0, Math.ceil(minY)), yLast = Math.min(height - 1, Math.ceil(maxY) - 1);
  for (let y = yFirst; y <= yLast; y++) {
    let nd = 0, nu = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const ax = p[2 * j], ay = p[2 * j + 1], bx = p[2 * i], by = p[2 * i + 1];
      // Half-open in y: a vertex on the scanline is counted once, horizontal edges never.
      if (ay <= y && by > y) down[nd++] = ax + ((y - ay) * (bx - ax)) / (by - ay);
      else if (by <= y && ay > y) up[nu++] = bx + ((y - by) * (ax - bx)) / (ay - by);
    }
    const ds = down.subarray(0, nd).sort(), us = up.subarray(0, nu).sort();
    const row = y * width;
    let a = 0, b = 0, w = 0, start = 0;
    while (a < nd || b < nu) {
      const fromDown = b >= nu || (a < nd && ds[a] <= us[b]);
      const x = fromDown ? ds[a++] : us[b++];
      const was = w;
      w += fromDown ? 1 : -1;
      if (was === 0 && w !== 0) start = x;
      else if (was !== 0 && w === 0) {
        // Pixel centres x with start <= x < end, clipped to the pane.
        const x0 = Math.max(0, Math.ceil(start)), x1 = Math.min(width, Math.ceil(x));
        if (x1 > x0) { data.fill(255, row + x0, row + x1); area += x1 - x0; }
      }
    }
  }
  if (area === 0)
    throw new RangeError(`polygonMask: the outline covers no pixel centre of the ${width}x${height} pane (it lies outside the pane or encloses no area)`);
  return createLesionMask(data, width, height);
}

export interface EllipseSpec { cx: number; cy: number; rx: number; ry: number }

/**
 * The lesion mask (0/255) of an axis-aligned ellipse in pane pixel coordinates: centre (cx, cy),
 * radii rx, ry in pixels. A pixel is inside when its centre is inside or on the ellipse. The
 * ellipse may reach past the pane edge (clipped). Runs once per lock, not per frame.
 */
export function ellipseMask(width: number, height: number, e: EllipseSpec): LesionMask {
  checkPaneSize('ellipseMask', width, height);
  if (typeof e !== 'object' || e === null) throw new RangeError('ellipseMask: give the ellipse as {cx, cy, rx, ry}');
  const { cx, cy, rx, ry } = e;
  for (const [k, v] of [['cx', cx], ['cy', cy]] as const)
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`ellipseMask: ${k} must be a finite number (got ${String(v)})`);
  for (const [k, v] of [['rx', rx], ['ry', ry]] as const)
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`ellipseMask: ${k} must be a finite number > 0 (got ${String(v)})`);
  const data = new Uint8Array(width * height);
  let area = 0;
  const yFirst = Math.max(0, Math.ceil(cy - ry)), yLast = Math.min(height - 1, Math.floor(cy + ry));
  for (let y = yFirst; y <= yLast; y++) {
    const t = (y - cy) / ry;
    const dx = rx * Math.sqrt(Math.max(0, 1 - t * t));
    const x0 = Math.max(0, Math.ceil(cx - dx)), x1 = Math.min(width - 1, Math.floor(cx + dx));
    if (x1 >= x0) { data.fill(255, y * width + x0, y * width + x1 + 1); area += x1 - x0 + 1; }
  }
  if (area === 0) throw new RangeError(`ellipseMask: no pixel centre of the ${width}x${height} pane falls inside the ellipse`);
  return createLesionMask(data, width, height);
}
