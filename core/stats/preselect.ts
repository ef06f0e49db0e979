// Deterministic feature pre-selection before LASSO, after R caret (Kuhn 2008, "Building
// predictive models in R using the caret package", J Stat Softw 28(5)).
//
// nearConstant: caret nearZeroVar. A column is dropped when any value is not finite ('non-finite
// values'), when all values are equal, i.e. sd = 0 ('constant'), or when the ratio of the most
// frequent value's count to the second most frequent's exceeds freqCut (95/5) while the distinct
// values are at most uniqueCut % (10) of the cases ('near-constant'; caret compares
// percentUnique <= uniqueCut).
//
// correlated: caret findCorrelation(exact = FALSE). Pearson r from ml-matrix on the standardised
// columns (R = Z'Z/n). For every pair i < j with |r| > cutoff, the member with the larger mean
// absolute correlation (mean over the row of |R| including the diagonal) is dropped, the first
// one (i) on ties; all pairs are judged on the full matrix at once (not re-evaluated after a
// drop), as caret's exact = FALSE does. Columns that are constant or have non-finite values have
// no correlation: they are left out of the matrix here (run nearConstant first; caret would
// stop on the missing values).
import { Matrix } from 'ml-matrix';

export type NearConstantReason = 'constant' | 'near-constant' | 'non-finite values';

export interface Dropped<R extends string = string> {
  index: number;
  reason: R;
}

export interface NearConstantDrop extends Dropped<NearConstantReason> {
  /** Count of the most frequent value / count of the second (0 with a single value; NaN for non-finite). */
  freqRatio: number;
  /** 100 * distinct values / cases. */
  percentUnique: number;
}

export interface CorrelatedDrop extends Dropped<'correlated'> {
  /** The other member of the first pair (column-major order, as caret) that dropped this column. */
  with: number;
  /** Pearson r of that pair. */
  r: number;
}

export interface NearConstantOptions {
  freqCut?: number;
  uniqueCut?: number;
}

function columnCount(X: number[][], what: string): number {
  if (X.length === 0) return 0;
  const p = X[0].length;
  X.forEach((row, i) => { if (row.length !== p) throw new Error(`${what}: row ${i} has ${row.length} values, row 0 has ${p}`); });
  return p;
}

/** caret nearZeroVar plus non-finite columns; drops in column order. */
export function nearConstant(X: number[][], opts: NearConstantOptions = {}): { drop: NearConstantDrop[] } {
  const freqCut = opts.freqCut ?? 95 / 5, uniqueCut = opts.uniqueCut ?? 10;
  const n = X.length, p = columnCount(X, 'nearConstant');
  const drop: NearConstantDrop[] = [];
  for (let j = 0; j < p; j++) {
    const counts = new Map<number, number>();
    let finite = true;
    for (let i = 0; i < n; i++) {
      const v = X[i][j];
      if (!Number.isFinite(v)) { finite = false; break; }
      const key = v === 0 ? 0 : v; // -0 and 0 are one value
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    if (!finite) { drop.push({ index: j, reason: 'non-finite values', freqRatio: NaN, percentUnique: NaN }); continue; }
    const percentUnique = (100 * counts.size) / n;
    if (counts.size <= 1) { drop.push({ index: j, reason: 'constant', freqRatio: 0, percentUnique }); continue; }
    let first = 0, second = 0;
    for (const c of counts.values()) {
      if (c > first) { second = first; first = c; } else if (c > second) second = c;
    }
    const freqRatio = first / second;
    if (freqRatio > freqCut && percentUnique <= uniqueCut) drop.push({ index: j, reason: 'near-constant', freqRatio, percentUnique });
  }
  return { drop };
}

/** Pearson correlation matrix of the given columns (standardised with the population sd). */
export function correlationMatrix(X: number[][], columns: number[]): Matrix {
  const n = X.length;
  const Z = new Matrix(n, columns.length);
  columns.forEach((j, k) => {
    let m = 0;
    for (let i = 0; i < n; i++) m += X[i][j];
    m /= n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (X[i][j] - m) ** 2;
    const sd = Math.sqrt(ss / n);
    for (let i = 0; i < n; i++) Z.set(i, k, (X[i][j] - m) / sd);
  });
  const R = Z.transpose().mmul(Z).div(n);
  for (let a = 0; a < columns.length; a++) {
    R.set(a, a, 1);
    for (let b = 0; b < columns.length; b++) R.set(a, b, Math.max(-1, Math.min(1, R.get(a, b))));
  }
  return R;
}

/** caret findCorrelation(exact = FALSE); drops in column order. */
export function correlated(X: number[][], cutoff = 0.9): { drop: CorrelatedDrop[] } {
  if (!(cutoff >= 0 && cutoff <= 1)) throw new Error(`correlated: cutoff must be in [0, 1], got ${cutoff}`);
  const p = columnCount(X, 'correlated');
  const skip = new Set(nearConstant(X, { freqCut: Infinity }).drop.map((d) => d.index)); // constant or non-finite
  const cols = Array.from({ length: p }, (_, j) => j).filter((j) => !skip.has(j));
  const m = cols.length;
  if (m < 2) return { drop: [] };
  const R = correlationMatrix(X, cols);
  const avg = Array.from({ length: m }, (_, a) => {
    let s = 0;
    for (let b = 0; b < m; b++) s += Math.abs(R.get(a, b));
    return s / m;
  });
  const found = new Map<number, CorrelatedDrop>();
  // Pairs (row a < column b) in column-major order, as caret's which() on the upper triangle.
  const fromColumns: CorrelatedDrop[] = [], fromRows: CorrelatedDrop[] = [];
  for (let b = 1; b < m; b++) {
    for (let a = 0; a < b; a++) {
      const r = R.get(a, b);
      if (!(Math.abs(r) > cutoff)) continue;
      if (avg[b] > avg[a]) fromColumns.push({ index: cols[b], reason: 'correlated', with: cols[a], r });
      else fromRows.push({ index: cols[a], reason: 'correlated', with: cols[b], r });
    }
  }
  for (const d of [...fromColumns, ...fromRows]) if (!found.has(d.index)) found.set(d.index, d);
  return { drop: [...found.values()].sort((u, v) => u.index - v.index) };
}
