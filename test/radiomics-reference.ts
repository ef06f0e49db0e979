// A deliberately plain, slow JavaScript re-statement of a few PyRadiomics texture features, used
// by the radiomics tests as an independent reference. It follows the PyRadiomics definitions
// (pyradiomics.readthedocs.io, feature classes) and its C matrix code literally: 2D, distance 1,
// 8-connected neighbourhoods, GLCM and GLRLM per angle (0, 45, 90, 135 degrees) then averaged,
// symmetric GLCM. Nothing here is tuned for speed; every loop is bounded by the image size.

/** A discretised ROI: levels[i] >= 1 inside the mask, 0 outside. */
export interface LevelImage {
  levels: Int32Array;
  width: number;
  height: number;
}

/** The four in-plane angles as (dy, dx); the opposite directions are implied (symmetric GLCM, runs). */
export const ANGLES: ReadonlyArray<readonly [number, number]> = [[0, 1], [1, 1], [1, 0], [1, -1]];
const NEIGHBOURS8: ReadonlyArray<readonly [number, number]> = [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]];

/**
 * PyRadiomics discretisation. binWidth: bin = floor(x/W) - floor(min/W) + 1. binCount: edges =
 * numpy.histogram(roi, binCount) edges (numpy.linspace over [min, max]) with the top edge + 1, then
 * numpy.digitize (a ROI of one value: numpy widens the range by 0.5 each side, so level binCount/2 + 1).
 * binWidth puts a ROI of one value at level 1.
 */
export function discretise(image: ArrayLike<number>, mask: ArrayLike<number>, width: number, height: number,
  opts: { binWidth?: number; binCount?: number }): LevelImage {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < width * height; i++) if (mask[i]) { min = Math.min(min, image[i]); max = Math.max(max, image[i]); }
  const levels = new Int32Array(width * height);
  if (!Number.isFinite(min)) return { levels, width, height };
  if (opts.binCount) {
    // numpy.histogram widens an empty range to [min - 0.5, max + 0.5].
    const lo = min === max ? min - 0.5 : min, hi = min === max ? max + 0.5 : max;
    const n = opts.binCount, step = (hi - lo) / n;
    const edges = Array.from({ length: n + 1 }, (_, k) => k * step + lo);
    edges[n] = hi + 1;
    for (let i = 0; i < levels.length; i++) {
      if (!mask[i]) continue;
      let k = 0;
      while (k < n + 1 && edges[k] <= image[i]) k++; // numpy.digitize: edges[k-1] <= x < edges[k]
      levels[i] = k;
    }
  } else {
    const w = opts.binWidth ?? 25, low = Math.floor(min / w);
    for (let i = 0; i < levels.length; i++) if (mask[i]) levels[i] = Math.floor(image[i] / w) - low + 1;
  }
  return { levels, width, height };
}

const inside = (L: LevelImage, y: number, x: number) => y >= 0 && x >= 0 && y < L.height && x < L.width && L.levels[y * L.width + x] > 0;
const level = (L: LevelImage, y: number, x: number) => L.levels[y * L.width + x];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function roiSize(L: LevelImage): number {
  let n = 0;
  for (const v of L.levels) if (v > 0) n++;
  return n;
}

/** GLCM JointEnergy, Contrast, JointAverage, averaged over the angles that have co-occurrences. */
export function glcmRef(L: LevelImage): { JointEnergy: number; Contrast: number; JointAverage: number } {
  const je: number[] = [], con: number[] = [], ja: number[] = [];
  for (const [dy, dx] of ANGLES) {
    const counts = new Map<string, number>();
    let total = 0;
    const add = (i: number, j: number) => { counts.set(`${i},${j}`, (counts.get(`${i},${j}`) ?? 0) + 1); total++; };
    for (let y = 0; y < L.height; y++) for (let x = 0; x < L.width; x++) {
      if (!inside(L, y, x) || !inside(L, y + dy, x + dx)) continue;
      const i = level(L, y, x), j = level(L, y + dy, x + dx);
      add(i, j); add(j, i); // symmetrical GLCM
    }
    if (total === 0) continue; // PyRadiomics deletes empty angles
    let e = 0, c = 0, a = 0;
    for (const [key, n] of counts) {
      const [i, j] = key.split(',').map(Number), p = n / total;
      e += p * p; c += (i - j) ** 2 * p; a += i * p;
    }
    je.push(e); con.push(c); ja.push(a);
  }
  return { JointEnergy: mean(je), Contrast: mean(con), JointAverage: mean(ja) };
}

/**
 * GLRLM ShortRunEmphasis and RunPercentage, per angle then averaged. As PyRadiomics' C code, an
 * angle along which no line holds two or more ROI pixels is dropped.
 */
export function glrlmRef(L: LevelImage): { ShortRunEmphasis: number; RunPercentage: number } {
  const Np = roiSize(L), sre: number[] = [], rp: number[] = [];
  for (const [dy, dx] of ANGLES) {
    const runs: number[] = [];
    let multi = false;
    for (let y0 = 0; y0 < L.height; y0++) for (let x0 = 0; x0 < L.width; x0++) {
      const py = y0 - dy, px = x0 - dx;
      if (py >= 0 && px >= 0 && py < L.height && px < L.width) continue; // not the start of a line
      let gl = 0, len = 0, elements = 0;
      for (let y = y0, x = x0; y >= 0 && x >= 0 && y < L.height && x < L.width; y += dy, x += dx) {
        const v = level(L, y, x);
        if (v > 0) elements++;
        if (v > 0 && v === gl) { len++; continue; }
        if (gl > 0) runs.push(len);
        gl = v; len = v > 0 ? 1 : 0;
      }
      if (gl > 0) runs.push(len);
      if (elements > 1) multi = true;
    }
    if (!multi || runs.length === 0) continue;
    sre.push(runs.reduce((s, r) => s + 1 / (r * r), 0) / runs.length);
    rp.push(runs.length / Np);
  }
  return { ShortRunEmphasis: mean(sre), RunPercentage: mean(rp) };
}

/** 8-connected zones of equal level: their sizes. */
export function zones(L: LevelImage): number[] {
  const seen = new Uint8Array(L.levels.length), sizes: number[] = [];
  for (let start = 0; start < L.levels.length; start++) {
    if (!L.levels[start] || seen[start]) continue;
    const gl = L.levels[start], stack = [start];
    seen[start] = 1;
    let size = 0;
    while (stack.length) {
      const p = stack.pop()!, y = Math.floor(p / L.width), x = p % L.width;
      size++;
      for (const [ny, nx] of NEIGHBOURS8) {
        const yy = y + ny, xx = x + nx;
        if (!inside(L, yy, xx)) continue;
        const q = yy * L.width + xx;
        if (!seen[q] && L.levels[q] === gl) { seen[q] = 1; stack.push(q); }
      }
    }
    sizes.push(size);
  }
  return sizes;
}

/** GLSZM ZonePercentage and SmallAreaEmphasis. */
export function glszmRef(L: LevelImage): { ZonePercentage: number; SmallAreaEmphasis: number } {
  const z = zones(L);
  return { ZonePercentage: z.length / roiSize(L), SmallAreaEmphasis: z.reduce((s, n) => s + 1 / (n * n), 0) / z.length };
}

/** GLDM: dependence = 1 + number of 8-neighbours in the ROI with |i - j| <= a. */
export function gldmRef(L: LevelImage, a = 0): { DependenceNonUniformity: number; SmallDependenceEmphasis: number } {
  const hist = new Map<number, number>();
  let Nz = 0;
  for (let y = 0; y < L.height; y++) for (let x = 0; x < L.width; x++) {
    if (!inside(L, y, x)) continue;
    let dep = 1;
    for (const [ny, nx] of NEIGHBOURS8) if (inside(L, y + ny, x + nx) && Math.abs(level(L, y + ny, x + nx) - level(L, y, x)) <= a) dep++;
    hist.set(dep, (hist.get(dep) ?? 0) + 1);
    Nz++;
  }
  let dnu = 0, sde = 0;
  for (const [d, n] of hist) { dnu += n * n; sde += n / (d * d); }
  return { DependenceNonUniformity: dnu / Nz, SmallDependenceEmphasis: sde / Nz };
}

/**
 * NGTDM Coarseness and Strength. Every ROI pixel counts in n_i; a pixel without ROI neighbours
 * adds 0 to s_i (PyRadiomics' C code). Flat conventions: Coarseness 1e6 when sum(p_i s_i) = 0,
 * Strength 0 when sum(s_i) = 0.
 */
export function ngtdmRef(L: LevelImage): { Coarseness: number; Strength: number } {
  const n = new Map<number, number>(), s = new Map<number, number>();
  let Nvp = 0;
  for (let y = 0; y < L.height; y++) for (let x = 0; x < L.width; x++) {
    if (!inside(L, y, x)) continue;
    let sum = 0, count = 0;
    for (const [ny, nx] of NEIGHBOURS8) if (inside(L, y + ny, x + nx)) { sum += level(L, y + ny, x + nx); count++; }
    const i = level(L, y, x);
    n.set(i, (n.get(i) ?? 0) + 1);
    s.set(i, (s.get(i) ?? 0) + (count ? Math.abs(i - sum / count) : 0));
    Nvp++;
  }
  let ps = 0, sumS = 0, num = 0;
  for (const [i, ni] of n) {
    ps += (ni / Nvp) * s.get(i)!;
    sumS += s.get(i)!;
    for (const [j, nj] of n) num += (ni / Nvp + nj / Nvp) * (i - j) ** 2;
  }
  return { Coarseness: ps === 0 ? 1e6 : 1 / ps, Strength: sumS === 0 ? 0 : num / sumS };
}

/** All reference features, with PyRadiomics names. */
export function referenceFeatures(L: LevelImage): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (cls: string, o: Record<string, number>) => { for (const [k, v] of Object.entries(o)) out[`${cls}_${k}`] = v; };
  put('glcm', glcmRef(L));
  put('glrlm', glrlmRef(L));
  put('glszm', glszmRef(L));
  put('gldm', gldmRef(L));
  put('ngtdm', ngtdmRef(L));
  return out;
}
