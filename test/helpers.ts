// Shared test helpers.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { join, resolve } from 'node:path';
import { packageRoot } from '../core/paths.js';
import { chromium, type Browser } from 'playwright-core';
import type { Frame } from '../core/frame.js';
import type { FrameSource } from '../device/source.js';

export const CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * The read-only data folder beside the project (../shared). Under CI it must exist: a missing
 * folder fails the test loudly instead of skipping it.
 */
export function sharedDir(t: Test, ...parts: string[]): string | undefined {
  const dir = resolve(packageRoot(), '..', 'shared', ...parts);
  if (existsSync(dir)) return dir;
  const why = `${dir} is missing: these tests compare against the shared reference data (../shared beside the project)`;
  if (CI) t.fail(why);
  else t.comment(`SKIP: ${why}`);
  return undefined;
}

export const fromRoot = (...p: string[]) => join(packageRoot(), ...p);

/** Resolves after ms (for pacing test loops; never for timing assertions). */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Dice coefficient of two masks (non-zero = inside). */
export function dice(a: Uint8Array, b: Uint8Array): number {
  let inter = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0, y = b[i] !== 0;
    if (x) na++;
    if (y) nb++;
    if (x && y) inter++;
  }
  return (2 * inter) / (na + nb);
}

/** Fills a closed polygon (pixel-centre vertices) into a mask, counting boundary pixels as inside. */
export function fillPolygon(points: ArrayLike<number>, width: number, height: number): Uint8Array {
  const m = new Uint8Array(width * height);
  const n = points.length / 2;
  for (let y = 0; y < height; y++) {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const x1 = points[2 * i], y1 = points[2 * i + 1];
      const x2 = points[2 * ((i + 1) % n)], y2 = points[2 * ((i + 1) % n) + 1];
      if ((y1 <= y && y2 > y) || (y2 <= y && y1 > y)) xs.push(x1 + ((y - y1) * (x2 - x1)) / (y2 - y1));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2)
      for (let x = Math.max(0, Math.ceil(xs[k])); x <= Math.min(width - 1, Math.floor(xs[k + 1])); x++) m[y * width + x] = 255;
  }
  for (let i = 0; i < n; i++) {
    const x = points[2 * i], y = points[2 * i + 1];
    if (x >= 0 && y >= 0 && x < width && y < height) m[y * width + x] = 255;
  }
  return m;
}

/** An 8-bit binary PGM (P5, maxval <= 255): pixels row by row. */
export function readPgm(path: string): { data: Uint8Array; width: number; height: number } {
  const buf = readFileSync(path);
  const text = buf.subarray(0, 64).toString('latin1');
  const m = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (!m) throw new Error(`${path}: not a binary PGM`);
  const header = m[0].length, width = +m[1], height = +m[2];
  if (+m[3] > 255) throw new Error(`${path}: 16-bit PGM (maxval ${m[3]}) is not supported`);
  if (buf.length < header + width * height) throw new Error(`${path}: truncated (${buf.length - header} of ${width * height} pixel bytes)`);
  return { data: new Uint8Array(buf.subarray(header, header + width * height)), width, height };
}

// Runs the CLI as a child process; it is killed by its own PID if it outlives the limit.
export function runCli(args: string[], limitMs = 60000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fromRoot('bin', 'sonomics.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { if (child.pid) process.kill(child.pid, 'SIGKILL'); }, limitMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Is the process gone (no such process, or a zombie nobody has reaped yet)? */
export function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ..."; Z = exited, waiting to be reaped by its (new) parent.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** sha256 (hex) of the bytes of one typed array or several in order. */
export function sha(parts: Uint8Array | Uint16Array | Array<Uint8Array | Uint16Array>): string {
  const h = createHash('sha256');
  for (const p of Array.isArray(parts) ? parts : [parts]) h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return h.digest('hex');
}

/** Rejects when `p` does not settle within ms (every wait in the tests is bounded). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Polls until cond() holds; false after ms. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** Polls until cond() holds; throws after ms, naming what it waited for. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  if (!(await waitFor(cond, ms))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** The error f throws, or undefined. */
export function errorOf(f: () => unknown): Error | undefined {
  try { f(); } catch (e) { return e as Error; }
  return undefined;
}

const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's chromium through playwright-core, headless and offline; undefined (after failing the
 * test under CI, or a SKIP comment elsewhere) when it is not installed. The caller closes it.
 */
export async function launchChromium(t: Test): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the browser test`;
    if (CI) t.fail(why);
    else t.comment(`SKIP: ${why}`);
    return undefined;
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

export interface Run { frames: Frame[]; ended: boolean; errors: Error[]; elapsedMs: number }

/** Runs a source until 'end', 'error' or `count` frames, within `limitMs`; always stops it. */
export async function runSource(source: FrameSource, limitMs: number, count = Infinity): Promise<Run> {
  const out: Run = { frames: [], ended: false, errors: [], elapsedMs: 0 };
  const t0 = performance.now();
  try {
    await within(new Promise<void>((resolve) => {
      source.on('frame', (f: Frame) => { out.frames.push(f); if (out.frames.length >= count) resolve(); });
      source.on('end', () => { out.ended = true; resolve(); });
      source.on('error', (e: Error) => { out.errors.push(e); resolve(); });
      source.start();
    }), limitMs, `${source.id} to finish`);
  } finally {
    source.stop();
  }
  out.elapsedMs = performance.now() - t0;
  return out;
}
