// npm run bench:overlay: the overlay's speed from capture to the viewer, on the real pipeline and
// server fed by the phantom scanner live at 30 fps (1280x720, the shipped busi-malignancy model
// scoring, the lesion locked on the first frame as the demo does).
//   1. Capture -> WebSocket send (the server's stats().captureToSend) and capture -> receive
//      (viewers in a child process, so their work does not load the server's event loop) with
//      1, 3 and 10 viewers, and 1 viewer beside a stalled one (connected, never reading): the
//      normal viewer's latency must not grow (the backpressure claim).
//   2. Capture -> paint in chromium: each frame carries its capture time burnt into the header
//      band (black/white blocks); the page reads its canvas back at every animation frame (and,
//      with BENCH_SCREENCAST=1, CDP screencast frames are decoded too), against the anchor of
//      2-3 frame intervals glass to glass that NVIDIA Holoscan reports for 4K60 pass-through.
// Env: BENCH_SECONDS (10) per run, BENCH_WARMUP_SECONDS (2), BENCH_SCREENCAST=1 to add the screencast
// (off by default: on a loaded two-core box it runs at ~4 frames/s and its timestamps lag the rAF figure),
// BENCH_CAST_QUALITY (90) for the screencast JPEGs, BENCH_ONLY=viewers or BENCH_ONLY=paint for one part.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { quantileSorted } from 'simple-statistics';
import WebSocket from 'ws';
import type { Frame } from '../core/frame.js';
import type { DisplayFrame, Pipeline, PipelineStats } from '../core/pipeline.js';
import type { PhantomScanner, PhantomTruth } from '../device/phantom.js';
import type { OverlayServer, OverlayStats } from '../web-overlay/server.js';
import { table } from './table.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const screencast = process.env.BENCH_SCREENCAST === '1';
const only = process.env.BENCH_ONLY;
const FPS = 30;
const INTERVAL_MS = 1000 / FPS;
/** Frames run through the pipeline after the viewers connect and before the window opens. */
const SETTLE_MS = 1000;
const CHROMIUM = '/usr/bin/chromium';
const SUBPROTOCOL = 'sonomics.v3';
/** Every sample list is bounded. */
const MAX_SAMPLES = 100_000;

const epochNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const pp = (s: { p50: number; p99: number }) => `${f(s.p50)} / ${f(s.p99)}`;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

interface Summary { n: number; p50: number; p99: number; max: number }
function summarize(xs: number[]): Summary {
  if (xs.length === 0) return { n: 0, p50: NaN, p99: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantileSorted(s, 0.5), p99: quantileSorted(s, 0.99), max: s[s.length - 1] };
}

// ---- The capture-time stamp --------------------------------------------------------------------
// 44 bits of epoch time in quarter milliseconds (performance.timeOrigin + frame.timestampMs) and
// an 8-bit check, one bit per 16x16 block, white = 1, in the header band above the panes (the
// phantom's panes start at y = 79). Blocks sit on the JPEG 8x8 grid, so each JPEG block is flat
// and survives q70 exactly; readers sample block centres and threshold at 128.
const STAMP = { x0: 0, y0: 32, block: 16, bits: 52 };

/** The bits of a stamp (LSB first): 44 of time, 8 of check. */
function stampBits(epochMs: number): number[] {
  const q = Math.round(epochMs * 4);
  let k = 0x5a;
  for (let i = 0; i < 6; i++) k = (k * 31 + (Math.floor(q / 2 ** (8 * i)) % 256)) & 0xff;
  const bits: number[] = [];
  for (let i = 0; i < 44; i++) bits.push(Math.floor(q / 2 ** i) % 2);
  for (let i = 0; i < 8; i++) bits.push((k >> i) & 1);
  return bits;
}

/**
 * Epoch ms from the 52 bits, or null when the check fails. Self-contained: its source is also
 * sent into the page (page.evaluate), so it must not refer to anything outside itself.
 */
function decodeStamp(bits: number[]): number | null {
  let q = 0;
  for (let i = 0; i < 44; i++) q += bits[i] * 2 ** i;
  let c = 0;
  for (let i = 0; i < 8; i++) c += bits[44 + i] << i;
  let k = 0x5a;
  for (let i = 0; i < 6; i++) k = (k * 31 + (Math.floor(q / 2 ** (8 * i)) % 256)) & 0xff;
  return k === c ? q / 4 : null;
}

/** A copy of the frame with its capture time burnt into the header band (frames are frozen). */
function stampFrame(fr: Frame, createFrame: typeof import('../core/frame.js').createFrame): Frame {
  const data = fr.data.slice();
  const bits = stampBits(performance.timeOrigin + fr.timestampMs);
  const { x0, y0, block } = STAMP;
  for (let i = 0; i < bits.length; i++) {
    const v = bits[i] ? 255 : 0;
    for (let y = y0; y < y0 + block; y++) data.fill(v, y * fr.width + x0 + i * block, y * fr.width + x0 + (i + 1) * block);
  }
  return createFrame(data, fr.width, fr.height, fr.seq, fr.sourceId, fr.timestampMs);
}

/** Reads a stamp from gray pixels through a sampler of canvas-pixel positions. */
function readStamp(sample: (x: number, y: number) => number): number | null {
  const { x0, y0, block, bits } = STAMP;
  const b: number[] = [];
  for (let i = 0; i < bits; i++) b.push(sample(x0 + i * block + block / 2, y0 + block / 2) >= 128 ? 1 : 0);
  return decodeStamp(b);
}

/** The stamp survives the server's JPEG (q70) exactly: checked before anything is timed. */
async function checkStamp(sharp: typeof import('sharp'), createFrame: typeof import('../core/frame.js').createFrame): Promise<void> {
  const w = 1280, h = 720, data = new Uint8Array(w * h);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24; // noise around the band
  for (const t of [0, 1234.25, 98765.5]) {
    const fr = stampFrame(createFrame(data, w, h, 0, 'check', t), createFrame);
    const jpeg = await sharp(Buffer.from(fr.data), { raw: { width: w, height: h, channels: 1 } }).jpeg({ quality: 70 }).toBuffer();
    const { data: px } = await sharp(jpeg).greyscale().raw().toBuffer({ resolveWithObject: true });
    const got = readStamp((x, y) => px[y * w + x]);
    const want = Math.round((performance.timeOrigin + t) * 4) / 4;
    if (got !== want) throw new Error(`stamp check failed: wrote ${want}, read ${got} after JPEG q70`);
  }
}

// ---- Viewers in a child process ---------------------------------------------------------------
type ToChild =
  | { type: 'start'; url: string; viewers: number; stalled: number; parentOrigin: number }
  | { type: 'ping'; i: number }
  | { type: 'window' }
  | { type: 'report' };
/** Frames received in the window; per frame its captureMs and capture -> receive (ms). */
interface ViewerReport { received: number; cap: number[]; lat: number[] }
type FromChild =
  | { type: 'connected' }
  | { type: 'pong'; i: number; t: number }
  | { type: 'report'; viewers: ViewerReport[]; stalledReceived: number }
  | { type: 'error'; error: string };

/** The child: opens the viewers, counts binary frames, times capture -> receive on the parent's clock. */
function viewersChild(): void {
  // Never outlive a stuck parent.
  setTimeout(() => process.exit(3), 10 * 60 * 1000).unref();
  process.on('disconnect', () => process.exit(0));
  const send = (m: FromChild) => process.send?.(m);
  let measuring = false, parentOrigin = 0, stalledReceived = 0;
  const viewers: ViewerReport[] = [];
  const open = (url: string, onMessage: (data: Buffer, binary: boolean) => void) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + 'ws', [SUBPROTOCOL]);
    ws.on('message', (d, binary) => onMessage(d as Buffer, binary));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
  process.on('message', (m: ToChild) => {
    if (m.type === 'start') {
      parentOrigin = m.parentOrigin;
      void (async () => {
        // Stalled viewers: connected, then never read again (their socket is paused).
        for (let k = 0; k < m.stalled; k++) (await within(open(m.url, () => { stalledReceived++; }), 10000, 'stalled viewer to connect')).pause();
        for (let k = 0; k < m.viewers; k++) {
          const v: ViewerReport = { received: 0, cap: [], lat: [] };
          viewers.push(v);
          await within(open(m.url, (data, binary) => {
            if (!binary) return;
            const t = epochNow();
            if (!measuring) return;
            const n = data.readUInt32LE(0);
            const h = JSON.parse(data.toString('utf8', 4, 4 + n)) as { captureMs?: unknown };
            v.received++;
            if (typeof h.captureMs === 'number' && v.lat.length < MAX_SAMPLES) { v.cap.push(h.captureMs); v.lat.push(t - (parentOrigin + h.captureMs)); }
          }), 10000, 'viewer to connect');
        }
        send({ type: 'connected' });
      })().catch((e: Error) => send({ type: 'error', error: e.message }));
    } else if (m.type === 'ping') {
      send({ type: 'pong', i: m.i, t: epochNow() });
    } else if (m.type === 'window') {
      for (const v of viewers) { v.received = 0; v.cap = []; v.lat = []; }
      measuring = true;
    } else if (m.type === 'report') {
      measuring = false;
      send({ type: 'report', viewers, stalledReceived });
    }
  });
}

const children = new Set<ChildProcess>();

function spawnViewers(): ChildProcess {
  const child = fork(fileURLToPath(import.meta.url), ['--viewers'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The next message of this type from the child (an 'error' from it rejects). */
function fromChild<T extends FromChild['type']>(child: ChildProcess, type: T, ms: number, pred: (m: Extract<FromChild, { type: T }>) => boolean = () => true): Promise<Extract<FromChild, { type: T }>> {
  let onMsg: (m: FromChild) => void = () => {};
  let onExit: () => void = () => {};
  return within(new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
    onMsg = (m: FromChild) => {
      if (m.type === 'error') reject(new Error(`viewers: ${m.error}`));
      else if (m.type === type && pred(m as Extract<FromChild, { type: T }>)) resolve(m as Extract<FromChild, { type: T }>);
    };
    onExit = () => reject(new Error('the viewers process exited'));
    child.on('message', onMsg);
    child.once('exit', onExit);
  }), ms, `viewers: ${type}`).finally(() => { child.off('message', onMsg); child.off('exit', onExit); });
}

/** Ends a child by its own PID: asked to go, killed if it has not within 2 s. */
async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.connected) child.disconnect();
  await Promise.race([exited, sleep(2000)]);
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([exited, sleep(2000)]);
  }
}

function killChildren(): void {
  for (const c of children) if (c.pid && c.exitCode === null && c.signalCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
}

/** Another clock's offset from ours (ms, theirs - ours) from the tightest of a few round trips; ± half that round trip. */
async function clockOffset(probe: () => Promise<number>, tries: number): Promise<{ offset: number; bound: number }> {
  let best = { offset: NaN, bound: Infinity };
  for (let i = 0; i < tries; i++) {
    const t0 = epochNow();
    const theirs = await probe();
    const t1 = epochNow();
    if ((t1 - t0) / 2 < best.bound) best = { offset: theirs - (t0 + t1) / 2, bound: (t1 - t0) / 2 };
  }
  return best;
}

// ---- The bench --------------------------------------------------------------------------------
interface Rig {
  pipeline: Pipeline;
  source: PhantomScanner;
  OverlayServer: typeof OverlayServer;
  stamping: boolean;
  /** Capture -> the pipeline's 'display' event (ms), collected while a window is open. */
  published?: Map<number, number>;
}

interface Snap { t: number; pipeline: PipelineStats; server: OverlayStats; source: { delivered: number; dropped: number } }
const snap = (rig: Rig, server: OverlayServer): Snap =>
  ({ t: performance.now(), pipeline: rig.pipeline.stats(), server: server.stats(), source: { ...rig.source.stats } });

interface Window { published: Summary; encode: OverlayStats['encode']; seconds: number; displayFps: number; sourceDropped: number; skipped: number; encodeDropped: number; sent: number; captureToSend: OverlayStats['captureToSend'] }
function windowOf(a: Snap, b: Snap, published: Map<number, number>): Window {
  const s = (b.t - a.t) / 1000;
  return {
    published: summarize([...published.values()]), encode: b.server.encode,
    seconds: s, displayFps: (b.pipeline.displayed - a.pipeline.displayed) / s, sourceDropped: b.source.dropped - a.source.dropped,
    skipped: b.server.skipped - a.server.skipped, encodeDropped: b.server.encodeDropped - a.server.encodeDropped, sent: b.server.sent - a.server.sent,
    captureToSend: b.server.captureToSend,
  };
}

interface ViewerRun {
  label: string; viewers: number; stalled: number; win: Window; recv: Summary; afterPublish: Summary;
  fpsPerViewer: number; minFps: number; stalledReceived: number; clock: { offset: number; bound: number };
}

async function viewerRun(rig: Rig, viewers: number, stalled: number): Promise<ViewerRun> {
  const server = new rig.OverlayServer({ pipeline: rig.pipeline, host: '127.0.0.1', port: 0, audit: undefined });
  const url = await server.listen();
  const child = spawnViewers();
  try {
    child.send({ type: 'start', url, viewers, stalled, parentOrigin: performance.timeOrigin } satisfies ToChild);
    await fromChild(child, 'connected', 30000);
    let ping = 0;
    const clock = await clockOffset(async () => {
      const i = ping++;
      const reply = fromChild(child, 'pong', 5000, (m) => m.i === i);
      child.send({ type: 'ping', i } satisfies ToChild);
      return (await reply).t;
    }, 20);
    await sleep(SETTLE_MS);
    server.resetStats();
    const a = snap(rig, server);
    const published = rig.published = new Map<number, number>();
    child.send({ type: 'window' } satisfies ToChild);
    await sleep(seconds * 1000);
    const report = fromChild(child, 'report', 15000);
    child.send({ type: 'report' } satisfies ToChild);
    const b = snap(rig, server);
    rig.published = undefined;
    const rep = await report;
    const win = windowOf(a, b, published);
    const lat = rep.viewers.flatMap((v) => v.lat);
    // Per frame: published -> received (encode, waiting, socket), by the frame's captureMs.
    const afterPublish: number[] = [];
    for (const v of rep.viewers) v.cap.forEach((c, k) => { const p = published.get(c); if (p !== undefined) afterPublish.push(v.lat[k] - p); });
    const fps = rep.viewers.map((v) => v.received / win.seconds);
    return {
      label: stalled ? `${viewers} + ${stalled} stalled` : String(viewers), viewers, stalled, win, recv: summarize(lat), afterPublish: summarize(afterPublish),
      fpsPerViewer: fps.reduce((s, x) => s + x, 0) / Math.max(1, fps.length), minFps: Math.min(...fps), stalledReceived: rep.stalledReceived, clock,
    };
  } finally {
    await endChild(child);
    await server.close();
  }
}

interface PaintRun {
  win?: Window; raf?: Summary; rafFps?: number; rafBad?: number; rafs?: number;
  cast?: Summary; castFps?: number; castFrames?: number; castUndecoded?: number;
  clock?: { offset: number; bound: number }; chromium?: string; notes: string[];
}

/** Installed in the page: reads the stamp off #view at every animation frame (a string is sent; see paintRun). */
function installReadback(decode: (bits: number[]) => number | null, s: { x0: number; y0: number; block: number; bits: number }, limit: number, maxFrames: number): void {
  const canvas = document.getElementById('view') as HTMLCanvasElement;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  const out = { lat: [] as number[], painted: 0, bad: 0, rafs: 0, last: -1, running: true };
  (window as unknown as { __sonomicsBench: typeof out }).__sonomicsBench = out;
  const tick = () => {
    if (!out.running || out.rafs >= maxFrames) return;
    out.rafs++;
    const now = performance.timeOrigin + performance.now();
    if (canvas.width >= s.x0 + s.block * s.bits) {
      const row = ctx.getImageData(s.x0, s.y0 + s.block / 2, s.block * s.bits, 1).data;
      const bits: number[] = [];
      for (let i = 0; i < s.bits; i++) bits.push(row[(i * s.block + s.block / 2) * 4] >= 128 ? 1 : 0);
      const ts = decode(bits);
      if (ts === null) out.bad++;
      else if (ts !== out.last) {
        out.last = ts;
        out.painted++;
        if (out.lat.length < limit) out.lat.push(now - ts);
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

/** Reads the stamp on #view once (page side, as a string expression). */
const readOnceExpr = `(() => {
  const decode = ${decodeStamp.toString()};
  const s = ${JSON.stringify(STAMP)};
  const c = document.getElementById('view');
  if (!c || c.width < s.x0 + s.block * s.bits) return null;
  const row = c.getContext('2d').getImageData(s.x0, s.y0 + s.block / 2, s.block * s.bits, 1).data;
  const bits = [];
  for (let i = 0; i < s.bits; i++) bits.push(row[(i * s.block + s.block / 2) * 4] >= 128 ? 1 : 0);
  return decode(bits);
})()`;

async function paintRun(rig: Rig, sharp: typeof import('sharp')): Promise<PaintRun> {
  const out: PaintRun = { notes: [] };
  if (!existsSync(CHROMIUM)) { out.notes.push(`${CHROMIUM} is missing (apt-get install -y chromium): no paint figures`); return out; }
  const { chromium } = await import('playwright-core');
  rig.stamping = true;
  const server = new rig.OverlayServer({ pipeline: rig.pipeline, host: '127.0.0.1', port: 0, audit: undefined });
  const url = await server.listen();
  const browser = await chromium.launch({
    executablePath: CHROMIUM, timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  try {
    out.chromium = browser.version();
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(url, { timeout: 15000 });
    // Wait (bounded) for the page to draw a stamped frame.
    let first: number | null = null;
    for (const end = performance.now() + 20000; first === null && performance.now() < end;) {
      first = await page.evaluate(readOnceExpr) as number | null;
      if (first === null) await sleep(100);
    }
    if (first === null) {
      out.notes.push(`the page drew no readable stamp on #view within 20 s${pageErrors.length ? ` (page errors: ${pageErrors.slice(0, 3).join('; ')})` : ''}: no paint figures`);
      return out;
    }
    out.clock = await clockOffset(() => page.evaluate(() => performance.timeOrigin + performance.now()), 10);
    await sleep(SETTLE_MS);

    // A. Canvas readback at every animation frame.
    const a = snap(rig, server);
    const published = rig.published = new Map<number, number>();
    const maxRafs = Math.ceil(seconds * 240) + 100;
    await page.evaluate(`(${installReadback.toString()})(${decodeStamp.toString()}, ${JSON.stringify(STAMP)}, ${MAX_SAMPLES}, ${maxRafs})`);
    await sleep(seconds * 1000);
    const r = await page.evaluate(() => {
      const o = (window as unknown as { __sonomicsBench: { lat: number[]; painted: number; bad: number; rafs: number; running: boolean } }).__sonomicsBench;
      o.running = false;
      return { lat: o.lat, painted: o.painted, bad: o.bad, rafs: o.rafs };
    });
    const b = snap(rig, server);
    rig.published = undefined;
    out.win = windowOf(a, b, published);
    out.raf = summarize(r.lat);
    out.rafFps = r.painted / out.win.seconds;
    out.rafBad = r.bad;
    out.rafs = r.rafs;

    // B. CDP screencast: each composited frame as a JPEG with its swap time; decoded after the window.
    if (screencast) {
      const geo = await page.evaluate(() => {
        const c = document.getElementById('view') as HTMLCanvasElement;
        const rc = c.getBoundingClientRect();
        return { left: rc.left, top: rc.top, width: rc.width, height: rc.height, cw: c.width, ch: c.height };
      });
      const cdp = await context.newCDPSession(page);
      const shots: Array<{ data: string; ts?: number; arrived: number; offsetTop: number; deviceWidth: number }> = [];
      const maxShots = Math.ceil(seconds * 90);
      cdp.on('Page.screencastFrame', (e) => {
        if (shots.length < maxShots) shots.push({ data: e.data, ts: e.metadata.timestamp, arrived: epochNow(), offsetTop: e.metadata.offsetTop, deviceWidth: e.metadata.deviceWidth });
        cdp.send('Page.screencastFrameAck', { sessionId: e.sessionId }).catch(() => {});
      });
      await cdp.send('Page.startScreencast', { format: 'jpeg', quality: Number(process.env.BENCH_CAST_QUALITY ?? 90), everyNthFrame: 1 });
      const t0 = performance.now();
      await sleep(seconds * 1000);
      await cdp.send('Page.stopScreencast');
      const castSeconds = (performance.now() - t0) / 1000;
      await cdp.detach().catch(() => {});
      // The canvas is drawn scaled to fit its box (object-fit: contain), centred.
      const s = Math.min(geo.width / geo.cw, geo.height / geo.ch);
      const ox = geo.left + (geo.width - geo.cw * s) / 2, oy = geo.top + (geo.height - geo.ch * s) / 2;
      const lat: number[] = [], arrival: number[] = [];
      let last = -1, undecoded = 0, distinct = 0;
      for (const shot of shots) {
        const { data, info } = await sharp(Buffer.from(shot.data, 'base64')).greyscale().raw().toBuffer({ resolveWithObject: true });
        const k = info.width / shot.deviceWidth;
        const ts = readStamp((x, y) => {
          const px = Math.round((ox + x * s) * k), py = Math.round((shot.offsetTop + oy + y * s) * k);
          return px >= 0 && py >= 0 && px < info.width && py < info.height ? data[py * info.width + px] : 0;
        });
        if (ts === null) { undecoded++; continue; }
        if (ts === last) continue;
        last = ts;
        distinct++;
        if (shot.ts !== undefined) lat.push(shot.ts * 1000 - ts);
        arrival.push(shot.arrived - ts);
      }
      out.cast = summarize(lat);
      out.castFps = distinct / castSeconds;
      out.castFrames = shots.length;
      out.castUndecoded = undecoded;
      if (shots.length && shots[0].ts === undefined) out.notes.push('screencast frames carry no timestamp: no screencast latency');
      const arr = summarize(arrival);
      out.notes.push(`screencast: capture -> frame event in node p50 ${f(arr.p50)} ms, p99 ${f(arr.p99)} ms`);
      out.notes.push(`screencast: ${shots.length} frames in ${f(castSeconds)} s, ${distinct} new stamps, ${undecoded} unreadable; canvas shown at ${f(s, 3)}x (${f(geo.width, 0)}x${f(geo.height, 0)} css px)`);
    }
    if (pageErrors.length) out.notes.push(`page errors: ${pageErrors.slice(0, 3).join('; ')}`);
    return out;
  } finally {
    rig.stamping = false;
    await browser.close();
    await server.close();
  }
}

async function main(): Promise<void> {
  // Bounded as a whole: whatever hangs, the children are killed and the bench ends.
  const limitMs = (warmupSeconds + 8 * seconds + 180) * 1000;
  const watchdog = setTimeout(() => { console.error(`bench: over its ${limitMs / 1000} s limit`); killChildren(); process.exit(2); }, limitMs);
  watchdog.unref();

  const [{ default: sharp }, { createFrame }, { createLesionMask }, { loadRiskModel }, { Pipeline }, { resolveConfig }, { PhantomScanner }, { OverlayServer }] = await Promise.all([
    import('sharp'), import('../core/frame.js'), import('../core/mask.js'), import('../core/models.js'), import('../core/pipeline.js'),
    import('../core/config.js'), import('../device/phantom.js'), import('../web-overlay/server.js'),
  ]);
  const cpus = os.cpus();
  console.log(`sonomics bench: overlay, capture -> send / receive / paint at 1280x720 ${FPS} fps, ${seconds} s per run`);
  console.log(`${new Date().toISOString()}, ${cpus[0]?.model ?? 'cpu'} x ${cpus.length}, ${process.platform} ${os.release()}, node ${process.version}, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  await checkStamp(sharp, createFrame);

  const cfg = resolveConfig({});
  const model = await loadRiskModel('busi-malignancy');
  // The stalled run right after the 1-viewer run it is compared with: the box's other load drifts.
  const runs = [[1, 0], [1, 1], [3, 0], [10, 0]] as const;
  const totalS = warmupSeconds + (runs.length + 2) * (seconds + 5) + 60;
  const source = new PhantomScanner({ seed: 42, fps: FPS, frames: Math.ceil(FPS * totalS) });
  const layout = source.layout;
  const pipeline = new Pipeline({
    layout, ringsMm: cfg.pipeline.ringsMm, binWidth: cfg.pipeline.binWidth, featureThreads: cfg.pipeline.featureThreads,
    tracker: cfg.pipeline.tracker, models: [model], scoreWindow: cfg.pipeline.scoreWindow,
  });
  const rig: Rig = { pipeline, source, OverlayServer, stamping: false };
  const frameErrors: string[] = [];
  pipeline.on('frameError', (e: Error) => { if (frameErrors.length < 5) frameErrors.push(e.message); });
  pipeline.on('display', (d: DisplayFrame) => { if (rig.published && rig.published.size < MAX_SAMPLES) rig.published.set(d.frame.timestampMs, performance.now() - d.frame.timestampMs); });
  let locked = false;
  source.on('frame', (frame: Frame, truth: PhantomTruth) => {
    if (!locked) {
      const r = layout.panes.bmode.rect;
      pipeline.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height)).catch((e: Error) => frameErrors.push(`lock: ${e.message}`));
      locked = true;
    }
    pipeline.push(rig.stamping ? stampFrame(frame, createFrame) : frame, truth);
  });

  const viewerRuns: ViewerRun[] = [];
  let paint: PaintRun = { notes: [] };
  pipeline.start();
  source.start();
  try {
    await sleep(warmupSeconds * 1000);
    if (only !== 'paint') for (const [n, stalled] of runs) viewerRuns.push(await viewerRun(rig, n, stalled));
    if (only !== 'viewers') paint = await paintRun(rig, sharp).catch((e: Error) => ({ notes: [`chromium run failed: ${e.message}`] }));
  } finally {
    source.stop();
    await pipeline.stop();
    killChildren();
  }

  if (viewerRuns.length) table(`Capture -> WebSocket send / receive at ${FPS} fps (ms; ${seconds} s window per row)`,
    ['<viewers', 'send p50', 'send p99', 'send max', 'recv p50', 'recv p99', 'recv max', 'recv n', 'fps/viewer', 'min fps', 'skipped', 'enc dropped', 'display fps', 'src dropped'],
    viewerRuns.map((r) => [r.label, f(r.win.captureToSend.p50), f(r.win.captureToSend.p99), f(r.win.captureToSend.max), f(r.recv.p50), f(r.recv.p99), f(r.recv.max), String(r.recv.n),
      f(r.fpsPerViewer), f(r.minFps), String(r.win.skipped), String(r.win.encodeDropped), f(r.win.displayFps), String(r.win.sourceDropped)]),
    [
      'send = capture (frame.timestampMs) -> ws send callback, the server\'s stats().captureToSend: every viewer and frame in the window (resetStats at its start)',
      '  (connect + 1 s settle + the window; the server keeps the last 2048 samples, so 10 viewers cover the window\'s last ~7 s)',
      'recv = capture -> binary message received by viewers in a child process, on the parent\'s clock (timeOrigin + now); normal viewers only',
      '  (recv can come before send: the send callback waits its turn on the busy server loop, the child reads at once)',
      'fps/viewer = frames received per normal viewer per second (mean, min); skipped = frames a viewer\'s latest-value slot replaced, all viewers',
      'enc dropped = display frames replaced while JPEG encoding was busy; display fps = pipeline displayed/s; src dropped = phantom frames lost to a busy process',
      `child clock offsets (child - parent, ms): ${viewerRuns.map((r) => `${f(r.clock.offset, 2)} ±${f(r.clock.bound, 2)}`).join(', ')}`,
      ...viewerRuns.filter((r) => r.stalled).map((r) => `stalled viewer(s) received ${r.stalledReceived} messages before and while paused (socket paused after open, never read)`),
    ]);

  if (viewerRuns.length) table('Where the time goes, per row above (ms, p50 / p99)',
    ['<viewers', 'capture->published', 'JPEG encode', 'published->recv', 'capture->send', 'capture->recv'],
    viewerRuns.map((r) => [r.label, pp(r.win.published), pp(r.win.encode), pp(r.afterPublish), pp(r.win.captureToSend), pp(r.recv)]),
    ['capture->published = frame.timestampMs -> the pipeline\'s \'display\' event (layout, track, regions, publish; the phantom renders after its stamp), in the window',
      'JPEG encode = the server\'s stats().encode (sharp, one libvips thread); published->recv = per frame, the pipeline\'s display event -> a normal viewer',
      '  received it (waiting for the encoder, encoding, the socket): the stalled row must not exceed the row before it (1 viewer) beyond the noise']);
  if (only !== 'viewers') paintTable(paint);
  if (frameErrors.length) console.log(`\npipeline errors: ${frameErrors.join('; ')}`);
  const st = pipeline.stats();
  console.log(`\nPipeline over the whole run: ${st.displayed} displayed, ${st.scored} scored, dropped display/features/risk ${st.dropped.display}/${st.dropped.features}/${st.dropped.risk}; phantom delivered ${source.stats.delivered}, dropped ${source.stats.dropped}`);
}

function paintTable(paint: PaintRun): void {
  const rows: string[][] = [];
  const intervals = (v: number) => f(v / INTERVAL_MS, 2);
  if (paint.win) rows.push(['capture -> display published (pipeline)', String(paint.win.published.n), f(paint.win.published.p50), f(paint.win.published.p99), f(paint.win.published.max), f(paint.win.displayFps), intervals(paint.win.published.p50), intervals(paint.win.published.p99)]);
  if (paint.win) rows.push(['JPEG encode (server)', String(paint.win.encode.count), f(paint.win.encode.p50), f(paint.win.encode.p99), f(paint.win.encode.max), '-', '-', '-']);
  if (paint.win) rows.push(['capture -> ws send (server, page socket)', String(paint.win.captureToSend.count), f(paint.win.captureToSend.p50), f(paint.win.captureToSend.p99), f(paint.win.captureToSend.max), f(paint.win.sent / paint.win.seconds), intervals(paint.win.captureToSend.p50), intervals(paint.win.captureToSend.p99)]);
  if (paint.raf) rows.push(['capture -> on canvas at next rAF (page readback)', String(paint.raf.n), f(paint.raf.p50), f(paint.raf.p99), f(paint.raf.max), f(paint.rafFps ?? NaN), intervals(paint.raf.p50), intervals(paint.raf.p99)]);
  if (paint.cast) rows.push(['capture -> composited frame swap (CDP screencast)', String(paint.cast.n), f(paint.cast.p50), f(paint.cast.p99), f(paint.cast.max), f(paint.castFps ?? NaN), intervals(paint.cast.p50), intervals(paint.cast.p99)]);
  rows.push(['anchor: NVIDIA Holoscan 4K60 pass-through, glass to glass', '-', '33.3-50.0', '-', '-', '60', '1.00-1.50', '-']);
  table(`Capture -> paint in chromium at ${FPS} fps (ms; ${seconds} s per row${paint.chromium ? `, chromium ${paint.chromium}` : ''})`,
    ['<path', 'n', 'p50', 'p99', 'max', 'frames/s', 'p50 /33.3ms', 'p99 /33.3ms'], rows, [
      'the capture time (epoch ms = timeOrigin + frame.timestampMs) is burnt into the frame\'s header band as 52 16x16 blocks (44 bits + 8-bit check) before pipeline.push',
      'rAF: the page reads #view (getImageData of one row) at every animation frame; a new stamp counts as painted: (page timeOrigin + now) - stamp',
      ...(screencast ? ['screencast: Page.startScreencast JPEGs decoded after the window; latency = metadata.timestamp (frame swap) - stamp, first frame showing each stamp'] : []),
      'anchor: 2-3 frame intervals at 60 fps = 33-50 ms (light in to light out); ours starts at the Frame stamp and ends in the browser\'s compositor, no display scan-out',
      '/33.3ms = frame intervals at 30 fps (the anchor\'s 2-3 intervals at 60 fps are 1.0-1.5 of them)',
      ...(paint.clock ? [`page clock offset (page - node, ms): ${f(paint.clock.offset, 2)} ±${f(paint.clock.bound, 2)}`] : []),
      ...(paint.rafBad !== undefined ? [`rAF: ${paint.rafs} animation frames, ${paint.rafBad} unreadable stamps`] : []),
      ...(screencast ? [] : ['screencast: off (BENCH_SCREENCAST=1 adds it: Page.startScreencast frames decoded, latency to their frame-swap timestamp)']),
      ...paint.notes,
    ]);
}

if (process.argv[2] === '--viewers') viewersChild();
else main().then(() => process.exit(0), (e) => { console.error(e); killChildren(); process.exit(1); });
