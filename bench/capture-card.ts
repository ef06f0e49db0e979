// An emulated capture card for `npm run bench:capture` (bench/capture.ts forks it; it is not a
// library). A separate Node process that plays what an HDMI/SDI capture card hands to ffmpeg:
// raw UYVY 4:2:2 frames (limited-range Y, U = V = 128) at a steady rate, written into a FIFO that
// ffmpeg reads as `-f rawvideo -pixel_format uyvy422`.
//
// - Content: `images` phantom scanner screens, pre-rendered once at startup; the scanner refreshes
//   its image at `imageHz` inside the `fps` signal, so each image goes out fps/imageHz times in a
//   row (at 60/20 Hz two frames in three repeat the previous one).
// - Every frame carries a stamp in its top STAMP_ROWS rows, in big 8x8 cells of black (Y 16) or
//   white (Y 235) that survive any Y -> gray conversion (threshold at 128): a marker, the frame
//   counter (the index of the frame in the signal) and the time the frame became available at the
//   card, on CLOCK_MONOTONIC (process.hrtime.bigint(), comparable across processes on Linux), then
//   a check word; the second cell row repeats the first one inverted.
// - Pacing: absolute deadlines t0 + k / fps (no drift). At each deadline the frame is "captured"
//   (stamped with the current time) and queued; one asynchronous write into the FIFO at a time.
//   Like a card with `buffers` free capture buffers, a frame that finds them all full is dropped
//   (its counter is never sent): a reader that cannot keep up shows as counter gaps.
//
// Protocol (IPC with the parent): child -> {type:'ready', renderMs} after pre-rendering. Then any
// number of sessions, one at a time: parent -> {type:'open', fifo}; child -> {type:'started', t0Ns}
// once the reader (ffmpeg) has opened the FIFO; parent -> {type:'stop'}; child -> {type:'report'}
// (also sent when the FIFO breaks, e.g. EPIPE). Parent -> {type:'exit'} ends it. It also exits on
// its own when the parent goes away, and after maxSeconds in any case.
import { closeSync, open, write, writev } from 'node:fs';
import { PhantomScanner } from '../device/phantom.js';

/** Stamp geometry, shared with bench/capture.ts. */
export const STAMP_CELL = 8;
export const STAMP_ROWS = 2 * STAMP_CELL;
export const STAMP_MARKER = 0xa5;
/** Bits in one cell row of the stamp: marker 8, counter 32, time 64, check 16. */
export const STAMP_BITS = 8 + 32 + 64 + 16;

export interface CardOptions {
  width: number;
  height: number;
  fps: number;
  imageHz: number;
  images: number;
  seed: number;
  /** Capture buffers: frames that may wait for the reader before the card drops new ones. */
  buffers: number;
  /** Hard limit on the emulator's life (seconds). */
  maxSeconds: number;
}

export interface CardReport {
  type: 'report';
  /** CLOCK_MONOTONIC of deadline 0, ns, as a decimal string (BigInt does not cross IPC). */
  t0Ns: string;
  periodNs: number;
  /** Per signal frame k (index = counter): capture time relative to t0 (ns), or -1 when never generated. */
  captureNs: number[];
  /** How late the tick ran after the frame's deadline (ns). */
  lateNs: number[];
  /** 1 if the frame was dropped by the card (all buffers full), else 0. */
  dropped: number[];
  /** Write into the FIFO: start and end relative to t0 (ns), -1 when not written (completely). */
  writeStartNs: number[];
  writeEndNs: number[];
  /** Ticks that ran more than one frame period after their deadline (the emulator itself was late). */
  lateTicks: number;
  /** Per signal frame: frames in the card's buffers (waiting or being written) just after this one was captured. */
  backlog: number[];
  error: string | null;
}

/** The stamp bits (row of STAMP_BITS booleans) for a counter and a time. */
export function stampBits(counter: number, timeNs: bigint): number[] {
  const bits: number[] = [];
  const push = (v: bigint, n: number) => { for (let i = n - 1; i >= 0; i--) bits.push(Number((v >> BigInt(i)) & 1n)); };
  const c = BigInt(counter >>> 0), t = BigInt.asUintN(64, timeNs);
  push(BigInt(STAMP_MARKER), 8);
  push(c, 32);
  push(t, 64);
  push(stampCheck(c, t), 16);
  return bits;
}

/** 16-bit check word: xor of the 16-bit words of counter and time, rotated by one. */
export function stampCheck(counter: bigint, timeNs: bigint): bigint {
  let x = 0x5a5an;
  for (let i = 0n; i < 2n; i++) x ^= (counter >> (16n * i)) & 0xffffn;
  for (let i = 0n; i < 4n; i++) x ^= (timeNs >> (16n * i)) & 0xffffn;
  return ((x << 1n) | (x >> 15n)) & 0xffffn;
}

/**
 * Reads the stamp back from a gray frame (after ffmpeg's UYVY -> gray): the counter and the
 * capture time (ns, CLOCK_MONOTONIC), or undefined when the stamp is not there or inconsistent.
 */
export function readStamp(gray: Uint8Array, width: number): { counter: number; timeNs: bigint } | undefined {
  const half = STAMP_CELL >> 1;
  let v = 0n;
  const n = STAMP_BITS;
  if (n * STAMP_CELL > width) return undefined;
  const row0 = half * width, row1 = (STAMP_CELL + half) * width;
  let marker = 0, counter = 0n, time = 0n, check = 0n;
  for (let i = 0; i < n; i++) {
    const x = i * STAMP_CELL + half;
    const b = gray[row0 + x] >= 128 ? 1 : 0;
    const inv = gray[row1 + x] >= 128 ? 1 : 0;
    if (b === inv) return undefined;
    v = (v << 1n) | BigInt(b);
    if (i === 7) { marker = Number(v); v = 0n; }
    else if (i === 39) { counter = v; v = 0n; }
    else if (i === 103) { time = v; v = 0n; }
  }
  check = v;
  if (marker !== STAMP_MARKER || check !== stampCheck(counter, time)) return undefined;
  return { counter: Number(counter), timeNs: time };
}

const Y_BLACK = 16, Y_WHITE = 235;

/** Gray (full range) to UYVY with limited-range Y (16..235) and neutral chroma, rows [y0, y1). */
export function grayToUyvy(gray: Uint8Array, width: number, y0: number, y1: number): Buffer {
  const out = Buffer.allocUnsafe((y1 - y0) * width * 2);
  const lut = new Uint8Array(256);
  for (let g = 0; g < 256; g++) lut[g] = Math.round(16 + (g * 219) / 255);
  let o = 0;
  for (let y = y0; y < y1; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      out[o++] = 128; // U (even pixel) / V (odd pixel)
      out[o++] = lut[gray[row + x]];
    }
  }
  return out;
}

/** The STAMP_ROWS x width UYVY band carrying a counter and a time. */
export function stampBand(width: number, counter: number, timeNs: bigint): Buffer {
  // Black UYVY (U/V 128, Y black), filled natively from the two-byte pattern.
  const band = Buffer.alloc(STAMP_ROWS * width * 2, Buffer.from([128, Y_BLACK]));
  const bits = stampBits(counter, timeNs);
  for (let i = 0; i < bits.length; i++) {
    for (let cellRow = 0; cellRow < 2; cellRow++) {
      const on = cellRow === 0 ? bits[i] === 1 : bits[i] === 0;
      if (!on) continue;
      for (let y = cellRow * STAMP_CELL; y < (cellRow + 1) * STAMP_CELL; y++)
        for (let x = i * STAMP_CELL; x < (i + 1) * STAMP_CELL; x++) band[(y * width + x) * 2 + 1] = Y_WHITE;
    }
  }
  return band;
}

function runCard(o: CardOptions): void {
  const send = (m: unknown) => { if (process.connected) process.send!(m); };
  setTimeout(() => process.exit(3), o.maxSeconds * 1000);
  process.on('disconnect', () => process.exit(0));

  // Pre-render: the images as UYVY, without the stamp rows (the band is written per frame).
  const r0 = performance.now();
  const phantom = new PhantomScanner({ width: o.width, height: o.height, seed: o.seed, fps: o.imageHz });
  const bodies: Buffer[] = [];
  for (let i = 0; i < o.images; i++) bodies.push(grayToUyvy(phantom.render(i).data, o.width, STAMP_ROWS, o.height));
  send({ type: 'ready', renderMs: performance.now() - r0 });

  let session: { stop(): void } | undefined;
  process.on('message', (m: { type?: string; fifo?: string }) => {
    if (m?.type === 'open' && typeof m.fifo === 'string' && !session) session = runSession(o, bodies, m.fifo, send, () => { session = undefined; });
    else if (m?.type === 'stop') session?.stop();
    else if (m?.type === 'exit') process.exit(0);
  });
}

/** One capture session: open the FIFO, play frames until 'stop', then report. */
function runSession(o: CardOptions, bodies: Buffer[], fifo: string, send: (m: unknown) => void, ended: () => void): { stop(): void } {
  const repeats = Math.max(1, Math.round(o.fps / o.imageHz));
  const periodNs = 1e9 / o.fps;
  const captureNs: number[] = [], lateNs: number[] = [], dropped: number[] = [], writeStartNs: number[] = [], writeEndNs: number[] = [], backlog: number[] = [];
  let t0 = 0n, next = 0, lateTicks = 0, error: string | null = null;
  let fd = -1, writing = false, stopping = false, timer: NodeJS.Timeout | undefined;
  const queue: Array<{ k: number; band: Buffer }> = [];
  const rel = (t: bigint) => Number(t - t0);

  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const report: CardReport = { type: 'report', t0Ns: t0.toString(), periodNs, captureNs, lateNs, dropped, writeStartNs, writeEndNs, lateTicks, backlog, error };
    try { if (fd >= 0) closeSync(fd); } catch { /* already broken */ }
    fd = -1;
    ended();
    send(report);
  };

  const pump = () => {
    if (writing || fd < 0) return;
    const item = queue.shift();
    if (!item) { if (stopping) finish(); return; }
    writing = true;
    const body = bodies[Math.floor(item.k / repeats) % bodies.length];
    const total = item.band.length + body.length;
    writeStartNs[item.k] = rel(process.hrtime.bigint());
    const done = (err: NodeJS.ErrnoException | null) => {
      writing = false;
      if (err) {
        error = `write into the FIFO: ${err.code ?? err.message}`;
        stopping = true;
        queue.length = 0;
        finish();
        return;
      }
      writeEndNs[item.k] = rel(process.hrtime.bigint());
      pump();
    };
    // A blocking pipe write normally completes in one call; finish a partial one.
    const writeRest = (rest: Buffer) => write(fd, rest, 0, rest.length, null,
      (e, n) => (e ? done(e) : n < rest.length ? writeRest(rest.subarray(n)) : done(null)));
    writev(fd, [item.band, body], (e, n) =>
      (e ? done(e) : n < total ? writeRest(Buffer.concat([item.band, body]).subarray(n)) : done(null)));
  };

  const tick = () => {
    timer = undefined;
    if (stopping) return;
    const now = process.hrtime.bigint();
    // Every deadline that has passed is a frame the card captured (a late tick captures several).
    while (t0 + BigInt(Math.round(next * periodNs)) <= now) {
      const k = next++;
      const late = Number(now - (t0 + BigInt(Math.round(k * periodNs))));
      if (late > periodNs) lateTicks++;
      captureNs[k] = rel(now);
      lateNs[k] = late;
      writeStartNs[k] = writeEndNs[k] = -1;
      // The frame being written holds a buffer too.
      if (queue.length + (writing ? 1 : 0) >= o.buffers) { dropped[k] = 1; backlog[k] = o.buffers; continue; }
      dropped[k] = 0;
      queue.push({ k, band: stampBand(o.width, k, now) });
      backlog[k] = queue.length + (writing ? 1 : 0);
    }
    pump();
    const due = t0 + BigInt(Math.round(next * periodNs));
    timer = setTimeout(tick, Math.max(0, Number(due - process.hrtime.bigint()) / 1e6));
  };

  // Opening a FIFO for writing waits for its reader (ffmpeg); done on the thread pool so IPC stays live.
  open(fifo, 'w', (err, f) => {
    if (err) { error = `open ${fifo}: ${err.message}`; stopping = true; finish(); return; }
    fd = f;
    if (stopping) { finish(); return; }
    t0 = process.hrtime.bigint() + 20_000_000n;
    send({ type: 'started', t0Ns: t0.toString() });
    timer = setTimeout(tick, 20);
  });

  return {
    stop() {
      if (stopping) return;
      stopping = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      // Frames still waiting are not sent; the one being written completes (or breaks).
      for (const item of queue) writeStartNs[item.k] = writeEndNs[item.k] = -1;
      queue.length = 0;
      // Before the FIFO opened there is nothing to finish yet: the open callback reports.
      if (!writing && fd >= 0) finish();
    },
  };
}

// Run as the card when forked with its options; importing the module (bench/capture.ts) does nothing.
if (process.send && process.argv[2] === '--card') {
  let o: CardOptions;
  try {
    o = JSON.parse(process.argv[3] ?? '');
  } catch {
    console.error('capture-card: expected --card <options as JSON>');
    process.exit(2);
  }
  runCard(o);
}
