// npm run bench:capture: live capture at 1920x1080 / 60 fps through ffmpeg into Frames, on this
// machine, with an emulated capture card (no /dev/video here). bench/capture-card.ts runs as its
// own process and writes raw UYVY 4:2:2 frames at 60 fps into a FIFO; FfmpegSource reads the FIFO
// (-f rawvideo -pixel_format uyvy422) exactly as it would read a card's raw stream, converts to
// gray and stamps Frames on arrival. Every frame carries the card's frame counter and capture time
// (CLOCK_MONOTONIC) in its top rows, so drops and capture-to-frame latency are measured per frame.
// Prints tables (medians, p99, max; CPU as % of one core), all measured in this run:
//   1. rates and drops; 2. capture-to-frame latency and its parts; 3. CPU per process;
//   4. repeated frames marked vs expected (the image refreshes at 20 Hz in the 60 Hz signal);
//   5. the same capture with FfmpegSource's ffmpeg choices taken back one by one (shorter windows);
//   6. duplicate-detection cost per frame (native.frameDifference at 1920x1080, in-process);
//   7. the duplicate threshold against real consecutive frames (../shared/data/us_seq_liver1) and
//      against one frame captured twice with Gaussian noise.
// Env: BENCH_SECONDS (measured window, default 20; BENCH_QUICK=1 -> 5), BENCH_WARMUP_SECONDS
// (default 3; quick 2), BENCH_COMPARE_SECONDS (measured time per ffmpeg variant in table 5, split
// over BENCH_COMPARE_ROUNDS rounds, default 12 s in 2 rounds; quick 4 s; 0 skips table 5), BENCH_CARD_BUFFERS (capture buffers of the card, default 4),
// BENCH_NOISE_FRAMES (real frames used per noise level, default 200 = all; quick 20),
// SONOMICS_LIVER_SEQ (folder of the real frames).
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { quantileSorted } from 'simple-statistics';
import { DEFAULT_DUPLICATE_BLOCK, DEFAULT_DUPLICATE_THRESHOLD } from '../core/arrival.js';
import type { Frame } from '../core/frame.js';
import { readGrayImage } from '../core/imageio.js';
import { native, type PixelRect } from '../core/native.js';
import { packageRoot } from '../core/paths.js';
import { FfmpegSource } from '../device/ffmpeg.js';
import type { SourceStats } from '../device/source.js';
import { PhantomScanner } from '../device/phantom.js';
import { readStamp, STAMP_ROWS, type CardOptions, type CardReport } from './capture-card.js';
import { table } from './table.js';

const QUICK = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '');
function envNumber(name: string, dflt: number, ok: (v: number) => boolean): number {
  const s = process.env[name];
  if (s === undefined || s === '') return dflt;
  const v = Number(s);
  if (!ok(v)) { console.error(`bench:capture: ${name}=${s} is not valid`); process.exit(2); }
  return v;
}
const SECONDS = envNumber('BENCH_SECONDS', QUICK ? 5 : 20, (v) => v > 0 && v <= 3600);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', QUICK ? 2 : 3, (v) => v >= 0 && v <= 600);
const BUFFERS = envNumber('BENCH_CARD_BUFFERS', 4, (v) => Number.isInteger(v) && v >= 1 && v <= 256);
const COMPARE_SECONDS = envNumber('BENCH_COMPARE_SECONDS', QUICK ? 4 : 12, (v) => v >= 0 && v <= 3600);
const COMPARE_ROUNDS = envNumber('BENCH_COMPARE_ROUNDS', 2, (v) => Number.isInteger(v) && v >= 1 && v <= 20);
const COMPARE_WARMUP_SECONDS = Math.min(WARMUP_SECONDS, 2);
const NOISE_FRAMES = envNumber('BENCH_NOISE_FRAMES', QUICK ? 20 : 200, (v) => Number.isInteger(v) && v >= 1);
const W = 1920, H = 1080, FPS = 60, IMAGE_HZ = 20, IMAGES = 24, SEED = 11;
const FRAME_MS = 1000 / FPS;
/** The duplicate detector looks below the stamp rows (whole blocks), the stamp changes every frame. */
const DUP_RECTS: PixelRect[] = [{ x: 0, y: Math.ceil(STAMP_ROWS / DEFAULT_DUPLICATE_BLOCK) * DEFAULT_DUPLICATE_BLOCK, width: W, height: H - Math.ceil(STAMP_ROWS / DEFAULT_DUPLICATE_BLOCK) * DEFAULT_DUPLICATE_BLOCK }];

// ---- cleanup: everything started here is stopped by PID, temp dirs removed, on any exit --------

const cleanups: Array<() => void> = [];
function cleanup(): void {
  while (cleanups.length) {
    try { cleanups.pop()!(); } catch { /* best effort */ }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => { console.error(`\nbench:capture: ${sig}, stopping`); cleanup(); process.exit(130); });

function killByPid(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

// ---- output ------------------------------------------------------------------------------------

const ms = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const pct = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)}%` : '-');


interface Dist { n: number; min: number; p1: number; p50: number; p99: number; max: number }
function dist(values: number[]): Dist {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return { n: 0, min: NaN, p1: NaN, p50: NaN, p99: NaN, max: NaN };
  return { n: s.length, min: s[0], p1: quantileSorted(s, 0.01), p50: quantileSorted(s, 0.5), p99: quantileSorted(s, 0.99), max: s[s.length - 1] };
}

// ---- helpers -----------------------------------------------------------------------------------

const sleep = (msec: number) => new Promise<void>((r) => setTimeout(r, msec));

function withTimeout<T>(p: Promise<T>, msec: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${msec} ms waiting for ${what}`)), msec); })])
    .finally(() => clearTimeout(t));
}

let clkTck = 100;
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100; } catch { /* Linux default */ }

/** user and system CPU time of a process (all its threads), ms, from /proc/<pid>/stat. */
function procCpu(pid: number | undefined): { user: number; sys: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { user: (Number(f[11]) * 1000) / clkTck, sys: (Number(f[12]) * 1000) / clkTck }; // fields 14 (utime) and 15 (stime)
  } catch {
    return undefined;
  }
}

/** All cores: busy and total jiffies, from /proc/stat. */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - (f[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** Offset such that CLOCK_MONOTONIC ns = performance.now() * 1e6 + offset (tightest of many brackets). */
function perfToHrOffsetNs(): { offset: bigint; widthNs: number } {
  let best: bigint | undefined, width = Infinity;
  for (let i = 0; i < 200; i++) {
    const a = process.hrtime.bigint();
    const p = performance.now();
    const b = process.hrtime.bigint();
    const wd = Number(b - a);
    if (wd < width) { width = wd; best = (a + b) / 2n - BigInt(Math.round(p * 1e6)); }
  }
  return { offset: best!, widthNs: width };
}

// ---- 1-4. live capture -------------------------------------------------------------------------

/**
 * How ffmpeg is run. The stock variant is FfmpegSource as shipped (one output thread; for a
 * packed 4:2:2 card, the Y plane with a range table). The others take those choices back, by a
 * wrapper script that edits FfmpegSource's ffmpeg arguments and then execs ffmpeg (same PID, so
 * its CPU and kill-by-PID are unchanged): they show what each choice buys.
 */
interface Variant { name: string; dropThreads: boolean; vf?: string }
const STOCK: Variant = { name: 'FfmpegSource as shipped', dropThreads: false };
const VARIANTS: Variant[] = [
  // ffmpeg 5.1's rawvideo encoder is frame-threaded: with automatic threads it holds a frame back.
  { name: 'automatic output threads', dropThreads: true },
  // swscale has no fast path from packed UYVY to gray.
  { name: 'automatic threads, swscale UYVY->gray', dropThreads: true, vf: `scale=${W}:${H}` },
];

const shq = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
function wrapperScript(v: Variant): string {
  return ['#!/bin/bash',
    '# bench:capture: FfmpegSource\'s ffmpeg arguments with one of its choices taken back, then exec ffmpeg (same PID).',
    'a=(); skip=0; prev=""',
    'for x in "$@"; do',
    '  if [ "$skip" = 1 ]; then skip=0; prev="$x"; continue; fi',
    ...(v.dropThreads ? ['  if [ "$x" = "-threads" ]; then skip=1; prev="$x"; continue; fi'] : []),
    ...(v.vf ? [`  if [ "$prev" = "-vf" ]; then x=${shq(v.vf)}; fi`] : []),
    '  a+=("$x"); prev="$x"',
    'done',
    'exec ffmpeg "${a[@]}"', ''].join('\n');
}

interface FrameRec { k: number; capNs: number; arrNs: number; evNs: number; dup: boolean }
interface Cpu { user: number; sys: number }
interface Sample { relNs: number; nodeCpu: NodeJS.CpuUsage; ffmpeg?: Cpu; card?: Cpu; machine?: { busy: number; total: number }; stats: SourceStats; ffmpegPid?: number }

interface LiveResult {
  variant: Variant; seconds: number; warmupS: number; recs: FrameRec[]; badStamps: number; report: CardReport; s0: Sample; s1: Sample; renderMs: number;
  loop: { p50: number; p99: number; max: number }; signals: string[]; restartsInWindow: number; stderr: string[]; cmdline: string; loadEnd: string;
  /** Width of the tightest hrtime / performance.now() bracket behind the clock offset (ns). */
  clockBracketNs: number;
}

function cmdlineOf(pid: number | undefined): string {
  if (pid === undefined) return '';
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch { return ''; }
}

/** The card emulator: one process for the whole bench, frames pre-rendered once, one session per run. */
interface Card { child: ChildProcess; renderMs: number; tmp: string; next<T>(type: string): Promise<T>; sessions: number }

async function startCard(): Promise<Card> {
  const here = dirname(fileURLToPath(import.meta.url));
  const tmp = mkdtempSync(join(os.tmpdir(), 'sonomics-capture-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const opts: CardOptions = { width: W, height: H, fps: FPS, imageHz: IMAGE_HZ, images: IMAGES, seed: SEED, buffers: BUFFERS,
    // A safety bound only (the bench stops it): every window and warm-up, plus a generous margin.
    maxSeconds: 300 + SECONDS + WARMUP_SECONDS + (1 + VARIANTS.length) * (COMPARE_SECONDS + COMPARE_ROUNDS * (COMPARE_WARMUP_SECONDS + 10)) };
  const child = fork(join(here, 'capture-card.js'), ['--card', JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanups.push(() => {
    if (child.connected) { try { child.send({ type: 'exit' }); child.disconnect(); } catch { /* gone */ } }
    killByPid(child);
  });
  // Waiters for messages fail together when the emulator fails or exits.
  let failure: Error | undefined;
  const waiters = new Set<(e: Error) => void>();
  const fail = (e: Error) => { failure ??= e; for (const w of waiters) w(e); waiters.clear(); };
  child.on('error', fail);
  child.on('exit', (code, sig) => fail(new Error(`the card emulator exited (${sig ?? code})`)));
  const next = <T>(type: string) => {
    const p = new Promise<T>((res, rej) => {
      if (failure) { rej(failure); return; }
      const on = (m: { type?: string }) => {
        if (m?.type !== type) return;
        child.off('message', on);
        waiters.delete(rej);
        res(m as T);
      };
      child.on('message', on);
      waiters.add(rej);
    });
    p.catch(() => { /* awaited by the caller */ });
    return p;
  };
  const ready = next<{ renderMs: number }>('ready');
  const { renderMs } = await withTimeout(ready, 120000, 'the card emulator to pre-render its frames');
  return { child, renderMs, tmp, next, sessions: 0 };
}

async function live(card: Card, variant: Variant, seconds: number, warmupS: number): Promise<LiveResult> {
  const n = card.sessions++;
  const fifo = join(card.tmp, `card-${n}.uyvy`);
  execFileSync('mkfifo', [fifo], { timeout: 5000 });
  let ffmpegPath: string | undefined;
  if (variant !== STOCK) {
    ffmpegPath = join(card.tmp, `ffmpeg-variant-${n}`);
    writeFileSync(ffmpegPath, wrapperScript(variant), { mode: 0o755 });
  }
  const started = card.next<{ t0Ns: string }>('started');
  const reportP = card.next<CardReport>('report');
  card.child.send({ type: 'open', fifo });
  const renderMs = card.renderMs;

  const source = new FfmpegSource({ input: fifo, format: 'rawvideo', pixelFormat: 'uyvy422', width: W, height: H, fps: FPS,
    duplicates: { rects: DUP_RECTS }, onInputEnd: 'end', ffmpegPath });
  cleanups.push(() => source.stop());
  const signals: string[] = [], stderr: string[] = [];
  let windowOn = false, restartsInWindow = 0;
  source.on('signal', (st: string, why?: string) => {
    signals.push(`${(performance.now() / 1000).toFixed(1)} s: ${st}${why ? ` (${why})` : ''}`);
    if (windowOn && st === 'no signal') restartsInWindow++;
  });
  source.on('stderr', (line: string) => { if (stderr.length < 20) stderr.push(line); });
  source.on('error', (e: Error) => signals.push(`error: ${e.message}`));
  source.start();

  const t0 = BigInt((await withTimeout(started, 20000, 'ffmpeg to open the FIFO')).t0Ns);
  const { offset, widthNs: clockBracketNs } = perfToHrOffsetNs();
  const base = Number(offset - t0);
  const rel = (perfMs: number) => perfMs * 1e6 + base;
  const relNow = () => Number(process.hrtime.bigint() - t0);

  const recs: FrameRec[] = [];
  let badStamps = 0;
  let firstFrame!: () => void;
  const gotFirst = new Promise<void>((r) => { firstFrame = r; });
  source.on('frame', (f: Frame) => {
    const ev = performance.now();
    const st = readStamp(f.data, W);
    if (!st) { badStamps++; return; }
    recs.push({ k: st.counter, capNs: Number(st.timeNs - t0), arrNs: rel(f.timestampMs), evNs: rel(ev), dup: f.duplicate === true });
    firstFrame();
  });
  await withTimeout(gotFirst, 20000, 'the first frame through ffmpeg');
  const cmdline = cmdlineOf(source.pid);
  await sleep(warmupS * 1000);

  const sample = (): Sample => ({ relNs: relNow(), nodeCpu: process.cpuUsage(), ffmpeg: procCpu(source.pid), card: procCpu(card.child.pid),
    machine: machineCpu(), stats: { ...source.stats }, ffmpegPid: source.pid });
  const LOOP_RES_MS = 5;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  loop.enable();
  windowOn = true;
  const s0 = sample();
  await sleep(seconds * 1000);
  const s1 = sample();
  const loadEnd = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  windowOn = false;
  loop.disable();
  // Frames captured before the window's end may still be in the pipes: give them time to land.
  await sleep(Math.max(500, 30 * FRAME_MS));
  card.child.send({ type: 'stop' });
  const report = await withTimeout(reportP, 10000, "the card emulator's report");
  source.stop();
  rmSync(fifo, { force: true });
  // The histogram holds the time between its samples: take the sampling interval off.
  const beyond = (v: number) => Math.max(0, v / 1e6 - LOOP_RES_MS);
  return { variant, seconds, warmupS, recs, badStamps, report, s0, s1, renderMs, loop: { p50: beyond(loop.percentile(50)), p99: beyond(loop.percentile(99)), max: beyond(loop.max) },
    signals, restartsInWindow, stderr, cmdline, loadEnd, clockBracketNs };
}

interface Metrics {
  r: LiveResult; windowS: number; signal: number; sent: number; cardDropped: number; received: number; drops: number; gapRuns: number;
  repeatedCounters: number; stampMismatch: number; deliveredFps: number; iv: Dist; late: Dist; maxBacklog: number; worst: string;
  srcDelta: (key: keyof SourceStats) => number;
  lat: Array<[string, Dist]>; total: Dist; afterWrite: Dist; totalMs: number[]; afterMs: number[];
  cpu: { wallMs: number; frames: number; nodeUser: number; nodeSys: number; ffUser: number; ffSys: number; cardUser: number; cardSys: number; machinePct: number };
  dup: { expRep: number; repMarked: number; expNew: number; newMarked: number; markedAll: number; judged: number };
}

function metrics(r: LiveResult): Metrics {
  const { report, s0, s1 } = r;
  const windowS = (s1.relNs - s0.relNs) / 1e9;
  // Signal frames whose capture fell inside the window.
  const ks: number[] = [];
  for (let k = 0; k < report.captureNs.length; k++) {
    const c = report.captureNs[k];
    if (c >= s0.relNs && c < s1.relNs) ks.push(k);
  }
  const byK = new Map<number, FrameRec>();
  let repeatedCounters = 0, stampMismatch = 0;
  for (const x of r.recs) {
    if (byK.has(x.k)) repeatedCounters++;
    byK.set(x.k, x);
    if (report.captureNs[x.k] !== undefined && Math.abs(report.captureNs[x.k] - x.capNs) > 1) stampMismatch++;
  }
  const signal = ks.length;
  const received = ks.filter((k) => byK.has(k)).length;
  let gapRuns = 0;
  for (let i = 0; i < ks.length; i++) if (!byK.has(ks[i]) && (i === 0 || byK.has(ks[i - 1]))) gapRuns++;
  const arrived = r.recs.filter((x) => x.arrNs >= s0.relNs && x.arrNs < s1.relNs).sort((a, b) => a.arrNs - b.arrNs);
  const got = ks.filter((k) => byK.has(k)).map((k) => ({ rec: byK.get(k)!, ws: report.writeStartNs[k], we: report.writeEndNs[k] }));
  const seg = (f: (g: typeof got[number]) => number) => dist(got.map(f).map((v) => v / 1e6));
  const lat: Array<[string, Dist]> = [
    ['capture -> Frame stamped (frame.timestampMs)', seg((g) => g.rec.arrNs - g.rec.capNs)],
    ['capture -> \'frame\' event (after repeat detection)', seg((g) => g.rec.evNs - g.rec.capNs)],
    ['  capture -> write starts (waiting in card buffers)', seg((g) => (g.ws >= 0 ? g.ws - g.rec.capNs : NaN))],
    ['  write starts -> write ends (ffmpeg reads 4 MB UYVY)', seg((g) => (g.ws >= 0 && g.we >= 0 ? g.we - g.ws : NaN))],
    ['  write ends -> Frame stamped (ffmpeg -> 2 MB pipe -> node)', seg((g) => (g.we >= 0 ? g.rec.arrNs - g.we : NaN))],
    ['  Frame stamped -> \'frame\' event', seg((g) => g.rec.evNs - g.rec.arrNs)],
  ];
  const nodeUser = (s1.nodeCpu.user - s0.nodeCpu.user) / 1000, nodeSys = (s1.nodeCpu.system - s0.nodeCpu.system) / 1000;
  const sameFf = s0.ffmpegPid === s1.ffmpegPid && s0.ffmpeg && s1.ffmpeg;
  const d = (a: Cpu | undefined, b: Cpu | undefined, key: keyof Cpu) => (a && b ? b[key] - a[key] : NaN);
  const repeats = Math.round(FPS / IMAGE_HZ);
  const dup = { expRep: 0, repMarked: 0, expNew: 0, newMarked: 0, markedAll: 0, judged: 0 };
  for (const k of ks) {
    const x = byK.get(k);
    if (!x) continue;
    if (x.dup) dup.markedAll++;
    if (!byK.has(k - 1)) continue;
    dup.judged++;
    // A frame repeats when it shows the same image as the frame before it.
    if (Math.floor(k / repeats) === Math.floor((k - 1) / repeats)) { dup.expRep++; if (x.dup) dup.repMarked++; }
    else { dup.expNew++; if (x.dup) dup.newMarked++; }
  }
  let worst = '';
  let worstMs = -1;
  for (const g of got) {
    const t = (g.rec.arrNs - g.rec.capNs) / 1e6;
    if (t > worstMs) {
      worstMs = t;
      const part = (a: number, b: number) => (a >= 0 && b >= 0 ? ms((b - a) / 1e6) : '-');
      worst = `slowest frame: #${g.rec.k} at ${((g.rec.capNs - s0.relNs) / 1e9).toFixed(2)} s into the window, ${ms(t)} ms = ` +
        `${part(g.rec.capNs, g.ws)} waiting in the card + ${part(g.ws, g.we)} writing + ${part(g.we, g.rec.arrNs)} after the write`;
    }
  }
  return {
    r, windowS, signal, received, gapRuns, repeatedCounters, stampMismatch, worst,
    maxBacklog: Math.max(0, ...ks.map((k) => report.backlog[k] ?? 0)),
    sent: ks.filter((k) => report.writeEndNs[k] >= 0).length,
    cardDropped: ks.filter((k) => report.dropped[k] === 1).length,
    drops: signal - received,
    deliveredFps: arrived.length / windowS,
    iv: dist(arrived.slice(1).map((x, i) => (x.arrNs - arrived[i].arrNs) / 1e6)),
    late: dist(ks.map((k) => report.lateNs[k] / 1e6)),
    srcDelta: (key) => (s1.stats[key] ?? 0) - (s0.stats[key] ?? 0),
    lat, total: lat[0][1], afterWrite: lat[4][1],
    totalMs: got.map((g) => (g.rec.arrNs - g.rec.capNs) / 1e6), afterMs: got.filter((g) => g.we >= 0).map((g) => (g.rec.arrNs - g.we) / 1e6),
    cpu: {
      wallMs: (s1.relNs - s0.relNs) / 1e6, frames: arrived.length, nodeUser, nodeSys,
      ffUser: sameFf ? d(s0.ffmpeg, s1.ffmpeg, 'user') : NaN, ffSys: sameFf ? d(s0.ffmpeg, s1.ffmpeg, 'sys') : NaN,
      cardUser: d(s0.card, s1.card, 'user'), cardSys: d(s0.card, s1.card, 'sys'),
      machinePct: s0.machine && s1.machine ? (100 * os.cpus().length * (s1.machine.busy - s0.machine.busy)) / (s1.machine.total - s0.machine.total) : NaN,
    },
    dup,
  };
}

function printLive(m: Metrics): void {
  const { r } = m;
  table(`1. Rates and drops: ${W}x${H} UYVY at ${FPS} fps -> FIFO -> ffmpeg -> gray Frames, ${m.windowS.toFixed(1)} s window after ${r.warmupS} s warm-up`,
    ['<measure', 'value'], [
      ['signal frames (card deadlines in the window)', String(m.signal)],
      ['sent (written whole into the FIFO)', String(m.sent)],
      ['dropped at the card (all capture buffers full)', String(m.cardDropped)],
      ['received as Frames (stamp decoded)', String(m.received)],
      ['lost between card and Frame (sent - received)', String(m.sent - m.received)],
      ['drops: counter gaps (frames / runs)', `${m.drops} / ${m.gapRuns}`],
      ['FfmpegSource.stats dropped / gaps in the window', `${m.srcDelta('dropped')} / ${m.srcDelta('gaps')}`],
      ['delivered fps (Frames arriving in the window)', ms(m.deliveredFps)],
      ['inter-arrival ms p50 / p99 / max', `${ms(m.iv.p50)} / ${ms(m.iv.p99)} / ${ms(m.iv.max)}`],
      ['largest backlog in the card buffers (frames, of ' + BUFFERS + ')', String(m.maxBacklog)],
      ['card tick lateness ms p50 / p99 / max', `${ms(m.late.p50)} / ${ms(m.late.p99)} / ${ms(m.late.max)}`],
      ['card ticks later than one period (whole run)', String(r.report.lateTicks)],
      ['unreadable stamps / repeated counters / stamp vs card log', `${r.badStamps} / ${m.repeatedCounters} / ${m.stampMismatch}`],
      ['ffmpeg restarts in the window', String(r.restartsInWindow)],
      ['bench event-loop delay ms p50 / p99 / max', `${ms(r.loop.p50)} / ${ms(r.loop.p99)} / ${ms(r.loop.max)}`],
    ], [`card: ${IMAGES} phantom images pre-rendered in ${(r.renderMs / 1000).toFixed(1)} s, ${BUFFERS} capture buffers${r.report.error ? `; card error: ${r.report.error}` : ''}`,
      `ffmpeg: ${r.cmdline || '(command line not read)'}`]);

  table(`2. Capture-to-frame latency (ms), ${m.total.n} frames; capture = the card's stamp (CLOCK_MONOTONIC), Frame = performance.now() on arrival`,
    ['<segment', 'n', 'p50', 'p99', 'max'], m.lat.map(([name, d]) => [name, String(d.n), ms(d.p50), ms(d.p99), ms(d.max)]),
    [m.worst, 'the card makes a whole frame available at its deadline; a real card does so at the end of scan-out (add up to one frame period for the first line)',
      `performance.now() -> CLOCK_MONOTONIC offset taken from a ${r.clockBracketNs} ns bracket`]);

  const c = m.cpu;
  const cpuRow = (name: string, user: number, sys: number) =>
    [name, pct((100 * (user + sys)) / c.wallMs), pct((100 * user) / c.wallMs), pct((100 * sys) / c.wallMs), ms((user + sys) / c.frames, 3)];
  table(`3. CPU over the ${m.windowS.toFixed(1)} s window (% of one core; ms per delivered Frame, ${c.frames} Frames)`,
    ['<process', '% core', 'user', 'sys', 'ms/frame'], [
      cpuRow('node (FfmpegSource: pipe reads, assembly, repeat detection; bench bookkeeping)', c.nodeUser, c.nodeSys),
      cpuRow('ffmpeg (FIFO read, UYVY -> gray, pipe write)', c.ffUser, c.ffSys),
      cpuRow('capture path, ours (node + ffmpeg)', c.nodeUser + c.ffUser, c.nodeSys + c.ffSys),
      cpuRow('card emulator (not ours: stands in for the card and its driver)', c.cardUser, c.cardSys),
      ['other processes on the machine (whole machine minus the three above)', pct(c.machinePct - (100 * (c.nodeUser + c.nodeSys + c.ffUser + c.ffSys + c.cardUser + c.cardSys)) / c.wallMs), '', '', ''],
      ['whole machine, all processes', pct(c.machinePct), '', '', ''],
    ], [`${os.cpus().length} logical cores, load average at the window's end ${m.r.loadEnd}; process times from process.cpuUsage() and /proc/<pid>/stat (${clkTck} ticks/s), machine from /proc/stat`]);

  const u = m.dup, repeats = Math.round(FPS / IMAGE_HZ);
  table(`4. Repeated frames: image refreshed at ${IMAGE_HZ} Hz inside the ${FPS} Hz signal (each image sent ${repeats} times), threshold ${DEFAULT_DUPLICATE_THRESHOLD}`,
    ['<frames (received, previous frame received)', 'count', 'marked repeat', 'share marked'], [
      ['expected repeats', String(u.expRep), String(u.repMarked), pct((100 * u.repMarked) / u.expRep)],
      ['expected new images', String(u.expNew), String(u.newMarked), pct((100 * u.newMarked) / u.expNew)],
      ['all received in the window', String(m.received), String(u.markedAll), pct((100 * u.markedAll) / m.received)],
    ], [`expected share of repeats: ${pct((100 * (repeats - 1)) / repeats)}; FfmpegSource.stats duplicates in the window: ${m.srcDelta('duplicates')} of ${m.srcDelta('delivered')}; judged ${u.judged} frames`]);
  printSignals(r);
}

function printSignals(r: LiveResult): void {
  if (r.signals.length > 1 || r.restartsInWindow) for (const s of r.signals) console.log(`  signal ${s}`);
  if (r.stderr.length) console.log(`  ffmpeg stderr: ${r.stderr.join(' | ')}`);
}

function printCompare(groups: Array<{ variant: Variant; runs: Metrics[] }>, rounds: number): void {
  const sum = (xs: Metrics[], f: (m: Metrics) => number) => xs.reduce((a, m) => a + f(m), 0);
  const rows = groups.filter((g) => g.runs.length).map(({ variant, runs }) => {
    const wall = sum(runs, (m) => m.cpu.wallMs), frames = sum(runs, (m) => m.cpu.frames);
    const ff = sum(runs, (m) => m.cpu.ffUser + m.cpu.ffSys), node = sum(runs, (m) => m.cpu.nodeUser + m.cpu.nodeSys), card = sum(runs, (m) => m.cpu.cardUser + m.cpu.cardSys);
    const machine = sum(runs, (m) => (m.cpu.machinePct * m.cpu.wallMs) / 100);
    const lat = dist(runs.flatMap((m) => m.totalMs)), after = dist(runs.flatMap((m) => m.afterMs));
    const d = (f: (m: Metrics) => number) => sum(runs, f);
    const cmd = runs[0].r.cmdline;
    const applied = variant === STOCK || ((!variant.dropThreads || !cmd.includes('-threads 1')) && (!variant.vf || cmd.includes(`-vf ${variant.vf} `)));
    return [applied ? variant.name : `${variant.name} (NOT applied, see below)`, `${(wall / 1000).toFixed(0)} s`, `${d((m) => m.drops)}/${d((m) => m.signal)}`, ms((1000 * frames) / wall),
      ms(lat.p50), ms(lat.p99), ms(lat.max), ms(after.p50), pct((100 * ff) / wall), pct((100 * node) / wall), ms((ff + node) / frames, 2),
      `${d((m) => m.dup.repMarked)}/${d((m) => m.dup.expRep)}, ${d((m) => m.dup.newMarked)}/${d((m) => m.dup.expNew)}`,
      pct((100 * (machine - ff - node - card)) / wall), pct((100 * machine) / wall / os.cpus().length)];
  });
  table(`5. FfmpegSource's ffmpeg arguments against the choices taken back, side by side: ${rounds} round(s) per variant, order reversed every other round, pooled (latency ms, CPU % of one core)`,
    ['<ffmpeg', 'window', 'drops', 'fps', 'lat p50', 'lat p99', 'lat max', 'after write p50', 'ffmpeg', 'node', 'ours ms/frame', 'repeats marked, new marked', 'other load', 'machine busy'], rows,
    [`lat = capture -> Frame stamped; after write = the card's write into the FIFO ends -> Frame stamped; other load = CPU of processes outside this bench (noise); machine busy = all processes, % of all ${os.cpus().length} cores`,
      ...groups.filter((g) => g.variant !== STOCK && g.runs.length).map((g) => `${g.variant.name}: ${g.runs[0].r.cmdline || '(command line not read)'}`)]);
  for (const g of groups) for (const m of g.runs) if (m.r.signals.length > 1 || m.r.restartsInWindow || m.r.stderr.length) { console.log(`  ${g.variant.name}:`); printSignals(m.r); }
}

// ---- 5. duplicate detection cost ---------------------------------------------------------------

function timeCalls(fn: () => number, maxReps: number, budgetMs: number): { median: number; p90: number; n: number; value: number } {
  let value = 0;
  for (let i = 0; i < 20; i++) value = fn();
  const t: number[] = [];
  const start = performance.now();
  while (t.length < maxReps && (t.length < 5 || performance.now() - start < budgetMs)) {
    const a = performance.now();
    value = fn();
    t.push(performance.now() - a);
  }
  t.sort((a, b) => a - b);
  return { median: quantileSorted(t, 0.5) * 1000, p90: quantileSorted(t, 0.9) * 1000, n: t.length, value };
}

function dupCost(): void {
  const p = new PhantomScanner({ width: W, height: H, seed: SEED, fps: IMAGE_HZ });
  const a = p.render(5).data, b = p.render(6).data;
  const a2 = Uint8Array.from(a);
  const thr = DEFAULT_DUPLICATE_THRESHOLD, bs = DEFAULT_DUPLICATE_BLOCK;
  const reps = QUICK ? 300 : 2000, budget = QUICK ? 500 : 3000;
  const cases: Array<[string, () => number]> = [
    ['(a) repeated frame: full scan, below threshold', () => native.frameDifference(a, a2, W, H, DUP_RECTS, { blockSize: bs, stopAbove: thr })],
    ['(b) new frame: early exit at the first block above', () => native.frameDifference(a, b, W, H, DUP_RECTS, { blockSize: bs, stopAbove: thr })],
    ['(c) new frame: full scan, no early exit', () => native.frameDifference(a, b, W, H, DUP_RECTS, { blockSize: bs })],
    ['(d) repeated frame, whole frame (no rects)', () => native.frameDifference(a, a2, W, H, null, { blockSize: bs, stopAbove: thr })],
  ];
  const res = cases.map(([name, fn]) => ({ name, ...timeCalls(fn, reps, budget) }));
  const rows = res.map((x) => [x.name, ms(x.value, 2), ms(x.median, 1), ms(x.p90, 1), pct((100 * x.median) / 1000 / FRAME_MS), String(x.n)]);
  const repeats = Math.round(FPS / IMAGE_HZ);
  const mean = ((repeats - 1) * res[0].median + res[1].median) / repeats;
  table(`6. Repeat detection cost per frame: native.frameDifference at ${W}x${H}, ${bs}x${bs} blocks, stopAbove ${thr}, phantom frames, in-process (µs)`,
    ['<case', 'statistic', 'median µs', 'p90 µs', '% of 16.7 ms', 'calls'], rows,
    [`rects: ${JSON.stringify(DUP_RECTS)} (below the stamp rows)`,
      `expected mean per frame at ${FPS} Hz with a ${IMAGE_HZ} Hz image ((${repeats - 1} x a + b) / ${repeats}): ${ms(mean, 1)} µs = ${pct((100 * mean) / 1000 / FRAME_MS)} of the frame budget`]);
}

// ---- 6. threshold on real frames ---------------------------------------------------------------

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * Adds rounded Gaussian noise (sigma gray levels) to a frame, clamped to 0..255. The deviates come
 * from a seeded mulberry32 stream through a 65,536-entry inverse-CDF table (16 bits per deviate,
 * tails at |z| = 4.3), already multiplied by sigma and rounded: src + round(sigma z) equals
 * round(src + sigma z) for integer src. Much faster than computing each deviate.
 */
class NoiseSource {
  private state: number;
  private readonly table = new Int16Array(65536);
  constructor(seed: number, sigma: number) {
    this.state = (seed >>> 0) ^ 0x6d2b79f5;
    for (let i = 0; i < 65536; i++) this.table[i] = Math.round(sigma * normalQuantile((i + 0.5) / 65536));
  }

  apply(src: Uint8Array, out: Uint8Array): Uint8Array {
    const t = this.table;
    let a = this.state;
    for (let i = 0; i < src.length; i += 2) {
      // mulberry32 (core/random.ts), inlined: one 32-bit draw gives two 16-bit table indices.
      a = (a + 0x6d2b79f5) | 0;
      let x = Math.imul(a ^ (a >>> 15), a | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      x = (x ^ (x >>> 14)) >>> 0;
      const v0 = src[i] + t[x >>> 16];
      out[i] = v0 < 0 ? 0 : v0 > 255 ? 255 : v0;
      if (i + 1 < src.length) {
        const v1 = src[i + 1] + t[x & 0xffff];
        out[i + 1] = v1 < 0 ? 0 : v1 > 255 ? 255 : v1;
      }
    }
    this.state = a;
    return out;
  }
}

async function thresholdTable(): Promise<void> {
  const dir = resolve(process.env.SONOMICS_LIVER_SEQ ?? join(packageRoot(), '..', 'shared', 'data', 'us_seq_liver1', 'frames'));
  let files: string[] = [];
  try { files = existsSync(dir) ? readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.png')).sort() : []; } catch { /* below */ }
  if (files.length < 2) {
    const why = process.env.SONOMICS_LIVER_SEQ ? 'SONOMICS_LIVER_SEQ points elsewhere' : '../shared/data/us_seq_liver1 is not next to the package; set SONOMICS_LIVER_SEQ to its frames folder';
    console.log(`\n7. Duplicate threshold on real frames: skipped: no PNG frames at ${dir} (${why}).`);
    return;
  }
  const t0 = performance.now();
  const frames: Array<{ data: Uint8Array; width: number; height: number }> = [];
  for (const f of files) frames.push(await readGrayImage(join(dir, f)));
  const { width, height } = frames[0];
  if (frames.some((f) => f.width !== width || f.height !== height)) throw new Error(`${dir}: the frames differ in size`);
  const stat = (x: Uint8Array, y: Uint8Array) => native.frameDifference(x, y, width, height, null, { blockSize: DEFAULT_DUPLICATE_BLOCK });
  const step = Math.max(1, Math.floor(frames.length / NOISE_FRAMES));
  const chosen = frames.filter((_, i) => i % step === 0).slice(0, NOISE_FRAMES);
  const n1 = new Uint8Array(width * height), n2 = new Uint8Array(width * height);
  const thr = DEFAULT_DUPLICATE_THRESHOLD;
  const noise = [1, 2, 3, 4].map((sigma) => {
    const g = new NoiseSource(1000 + sigma, sigma);
    const v = chosen.map((f) => stat(g.apply(f.data, n1), g.apply(f.data, n2)));
    return { sigma, d: dist(v), above: v.filter((x) => x > thr).length };
  });
  const realV = frames.slice(1).map((f, i) => stat(frames[i].data, f.data));
  const real = dist(realV), realBelow = realV.filter((x) => x <= thr).length;
  const row = (name: string, d: Dist, wrong: number) => [name, String(d.n), ms(d.min), ms(d.p1), ms(d.p50), ms(d.p99), ms(d.max), String(wrong)];
  const ok = noise.filter((x) => x.d.max <= thr).map((x) => x.sigma);
  const okUpTo = ok.length && ok.every((sg, i) => sg === i + 1) ? ok[ok.length - 1] : 0;
  const notes = [
    `${frames.length} frames of ${dir} (read with sharp); noise rows: ${chosen.length} frames (every ${step}), independent seeded noise on both copies, rounded and clamped to 0..255; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    `wrong side = real pairs at or below the threshold (a new image taken for a repeat), or noisy copies above it (a repeat taken for a new image)`,
  ];
  if (realBelow === 0 && okUpTo > 0) {
    const maxOk = Math.max(...noise.filter((x) => x.sigma <= okUpTo).map((x) => x.d.max));
    notes.push(`DEFAULT_DUPLICATE_THRESHOLD ${thr} sits between repeats with capture noise up to sigma ${okUpTo} (max ${ms(maxOk)}, margin ${ms(thr - maxOk)}) and real consecutive frames (min ${ms(real.min)}, margin ${ms(real.min - thr)})` +
      (okUpTo < 4 ? `; NOT for sigma ${okUpTo + 1}..4: ${noise.filter((x) => x.sigma > okUpTo).map((x) => `sigma ${x.sigma} max ${ms(x.d.max)}, ${x.above} of ${x.d.n} above`).join('; ')}` : ''));
  } else {
    notes.push(`DEFAULT_DUPLICATE_THRESHOLD ${thr} does NOT sit between: ${realBelow} real pairs at or below it; noise maxima ${noise.map((x) => `sigma ${x.sigma}: ${ms(x.d.max)}`).join(', ')}`);
  }
  table(`7. Repeat statistic (largest ${DEFAULT_DUPLICATE_BLOCK}x${DEFAULT_DUPLICATE_BLOCK} block mean absolute difference, gray levels, whole ${width}x${height} frame) on real B-mode frames, threshold ${thr}`,
    ['<pair of frames', 'pairs', 'min', 'p1', 'median', 'p99', 'max', 'wrong side'], [
      row('real consecutive frames', real, realBelow),
      ...noise.map((x) => row(`same frame twice, Gaussian noise sigma ${x.sigma} on each`, x.d, x.above)),
    ], notes);
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let ffv = 'ffmpeg: not found';
  try { ffv = execFileSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10000 }).split('\n')[0]; } catch { /* reported by the live run */ }
  console.log(`sonomics bench:capture: ${W}x${H} at ${FPS} fps through ffmpeg from an emulated card (UYVY into a FIFO), ${SECONDS} s measured${QUICK ? ' (quick)' : ''}`);
  console.log(`${new Date().toISOString()}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.cpus().length}, ${process.platform} ${os.release()}, node ${process.version}, ${ffv}, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  let failed = false, verdict = '';
  let card: Card | undefined;
  try {
    card = await startCard();
    const m = metrics(await live(card, STOCK, SECONDS, WARMUP_SECONDS));
    printLive(m);
    const busy = `whole machine ${pct(m.cpu.machinePct / os.cpus().length)} busy over ${os.cpus().length} cores, ${pct(m.cpu.machinePct - (100 * (m.cpu.nodeUser + m.cpu.nodeSys + m.cpu.ffUser + m.cpu.ffSys + m.cpu.cardUser + m.cpu.cardSys)) / m.cpu.wallMs)} of a core used by other processes`;
    verdict = m.drops === 0 && m.signal > 0
      ? `verdict: sustained ${W}x${H}@${FPS} with 0 drops (${m.received}/${m.signal} frames in ${m.windowS.toFixed(1)} s; latency p50 ${ms(m.total.p50)} ms, p99 ${ms(m.total.p99)} ms; ffmpeg + node ${pct((100 * (m.cpu.ffUser + m.cpu.ffSys + m.cpu.nodeUser + m.cpu.nodeSys)) / m.cpu.wallMs)} of one core; ${busy})`
      : `verdict: NOT sustained: ${W}x${H}@${FPS} with ${m.drops} drops (${m.received}/${m.signal} frames in ${m.windowS.toFixed(1)} s, ${m.cardDropped} dropped at the card for want of a free buffer; ${busy})`;
  } catch (e) {
    failed = true;
    card = undefined;
    verdict = `verdict: live capture failed: ${(e as Error).message}`;
  }
  if (card && COMPARE_SECONDS > 0) {
    const groups = [STOCK, ...VARIANTS].map((variant) => ({ variant, runs: [] as Metrics[] }));
    const perRun = COMPARE_SECONDS / COMPARE_ROUNDS;
    try {
      for (let round = 0; round < COMPARE_ROUNDS; round++)
        for (const g of round % 2 ? [...groups].reverse() : groups) g.runs.push(metrics(await live(card, g.variant, perRun, COMPARE_WARMUP_SECONDS)));
    } catch (e) {
      console.log(`\n5. stopped: ${(e as Error).message}`);
    }
    printCompare(groups, COMPARE_ROUNDS);
  }
  cleanup();
  dupCost();
  try {
    await thresholdTable();
  } catch (e) {
    failed = true;
    console.log(`\n7. Duplicate threshold on real frames: failed: ${(e as Error).message}`);
  }
  console.log(`\n${verdict}`);
  cleanup();
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); cleanup(); process.exit(1); });
