// Agreement between two lesion masks: Dice and the 95th percentile Hausdorff distance (pixels).
import { quantile } from 'simple-statistics';
import { native } from '../native.js';

/** 2|A∩B| / (|A| + |B|); 1 when both are empty. Non-zero is inside. */
export function dice(a: Uint8Array, b: Uint8Array): number {
  let na = 0, nb = 0, both = 0;
  for (let i = 0; i < a.length; i++) {
    const p = a[i] ? 1 : 0, q = b[i] ? 1 : 0;
    na += p; nb += q; both += p & q;
  }
  return na + nb === 0 ? 1 : (2 * both) / (na + nb);
}

/**
 * 95 % Hausdorff distance: the larger of the two directed 95th percentiles of boundary-to-boundary
 * distances (as MedPy's hd95). Infinite when one mask is empty and the other is not.
 */
export function hd95(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  const ab = native.surfaceDistances(a, b, width, height), ba = native.surfaceDistances(b, a, width, height);
  if (ab.length === 0 && ba.length === 0) return 0;
  if (ab.length === 0 || ba.length === 0) return Infinity;
  return Math.max(quantile(Array.from(ab), 0.95), quantile(Array.from(ba), 0.95));
}
