// LesionMask: a binary mask in pane coordinates (0 = outside, non-zero = lesion).
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
