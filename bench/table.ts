// Plain text tables for the benchmarks: every bench prints its figures the same way.

/** A figure to 3 or 1 decimals; '-' when it is not finite (an empty set, a lesion not found). */
export const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');
export const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

/** Plain aligned table; columns whose header starts with '<' are left-aligned, the rest right-aligned. */
export function table(title: string, header: string[], rows: string[][], notes: string[] = []): void {
  const left = header.map((h) => h.startsWith('<'));
  const head = header.map((h) => (h.startsWith('<') ? h.slice(1) : h));
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (left[i] ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) console.log(line(r));
  for (const n of notes) console.log(`  ${n}`);
}
