// The capture card through ffmpeg: probing, frame delivery, pixel fidelity, repeat marking,
// gap counting, and recovery from every way ffmpeg can go away (killed, failing, stalled,
// missing), while the pipeline and the overlay keep serving. There is no /dev/video device
// here: V4L2 argument building is checked against a fake ffmpeg that records its argv; every
// other path runs real ffmpeg on lavfi test patterns, files made here, and FIFOs.
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmodSync, constants, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Frame } from '../core/frame.js';
import type { Layout } from '../core/layout.js';
import { Pipeline, type DisplayFrame } from '../core/pipeline.js';
import { seededRandom } from '../core/random.js';
import { FfmpegError, FfmpegSource, probeMedia, RawFrameAssembler, type FfmpegSourceOptions } from '../device/ffmpeg.js';
import type { SignalState } from '../device/source.js';
import { OverlayServer } from '../web-overlay/server.js';
import { gone, sleep, until } from './helpers.js';



// ---------------------------------------------------------------------------------------------
// Helpers

/** Runs ffmpeg to make a test input; killed by its PID if it outlives the limit. */
function ffmpeg(args: string[], stdin?: Buffer, limitMs = 20000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args],
      { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { if (child.pid) process.kill(child.pid, 'SIGKILL'); }, limitMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg ${args.join(' ')}: ${signal ?? `exit ${code}`}: ${stderr.trim()}`));
    });
    if (stdin) {
      child.stdin!.on('error', () => { /* reported through the exit code */ });
      child.stdin!.end(stdin);
    }
  });
}

/** Encodes raw 8-bit gray frames losslessly (FFV1 in Matroska). */
async function encodeGray(path: string, frames: Uint8Array[], width: number, height: number, fps = 25): Promise<void> {
  await ffmpeg(['-f', 'rawvideo', '-pixel_format', 'gray', '-video_size', `${width}x${height}`, '-framerate', String(fps),
    '-i', 'pipe:0', '-c:v', 'ffv1', '-pix_fmt', 'gray', path], Buffer.concat(frames));
}

/** Resolves when `emitter` emits `event` with arguments satisfying `pred`; rejects after ms. */
function nextEvent<A extends unknown[]>(emitter: EventEmitter, event: string, ms: number, pred: (...a: A) => boolean = () => true): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.off(event, on); reject(new Error(`no '${event}' within ${ms} ms`)); }, ms);
    const on = (...a: unknown[]) => {
      if (!pred(...(a as A))) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(a as A);
    };
    emitter.on(event, on);
  });
}


interface SignalEvent { state: SignalState; reason: string | undefined; at: number; restarts: number }

/** A source under test: every frame and signal event recorded; stopped (ffmpeg killed) at teardown. */
function watch(t: Test, o: FfmpegSourceOptions) {
  const src = new FfmpegSource(o);
  const frames: Frame[] = [];
  const signals: SignalEvent[] = [];
  let ended = false;
  src.on('frame', (f: Frame) => frames.push(f));
  src.on('signal', (state: SignalState, reason?: string) => signals.push({ state, reason, at: performance.now(), restarts: src.stats.restarts ?? 0 }));
  src.on('end', () => { ended = true; });
  t.teardown(() => {
    const pid = src.pid;
    src.stop();
    // stop() kills ffmpeg; make sure, by its PID, that nothing outlives the test.
    if (pid !== undefined && !gone(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  });
  return { src, frames, signals, get ended() { return ended; } };
}

/** Runs a source to its 'end' (bounded). */
async function runToEnd(t: Test, o: FfmpegSourceOptions, ms = 15000) {
  const w = watch(t, o);
  const end = nextEvent(w.src, 'end', ms);
  w.src.start();
  await end;
  return w;
}

const rand = seededRandom(20240611);

/** A random gray image with values in [lo, hi]. */
function noiseImage(width: number, height: number, lo = 20, hi = 220): Uint8Array {
  const a = new Uint8Array(width * height);
  for (let i = 0; i < a.length; i++) a[i] = lo + Math.floor(rand() * (hi - lo + 1));
  return a;
}

/** The same image with independent +-amp gray-level noise. */
function jitter(img: Uint8Array, amp: number): Uint8Array {
  const a = new Uint8Array(img.length);
  for (let i = 0; i < a.length; i++) a[i] = Math.max(0, Math.min(255, img[i] + Math.round((rand() * 2 - 1) * amp)));
  return a;
}

/** Opens the write end of a FIFO once a reader (ffmpeg) holds it; never blocks a thread. */
class FifoWriter {
  private fh: FileHandle | undefined;
  constructor(readonly path: string) {}

  // ffmpeg opens the FIFO once it has started: seconds on a loaded two-core machine.
  async open(ms = 20000): Promise<void> {
    const end = performance.now() + ms;
    for (;;) {
      try {
        this.fh = await open(this.path, constants.O_WRONLY | constants.O_NONBLOCK);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
        if (performance.now() > end) throw new Error(`${this.path}: no reader opened the FIFO within ${ms} ms`);
        await sleep(5);
      }
    }
  }

  get isOpen(): boolean { return this.fh !== undefined; }

  async write(buf: Uint8Array): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      try {
        off += (await this.fh!.write(buf, off, buf.length - off)).bytesWritten;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await sleep(2);
      }
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

function mkfifo(t: Test, name: string): string {
  const path = join(t.testdir(), name);
  const r = spawnSync('mkfifo', [path], { timeout: 5000 });
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
  return path;
}

/** A fake ffmpeg: records its argv (one per line) and stderr text, then exits with `code`. */
function fakeFfmpeg(dir: string, code: number): { path: string; argv: () => string[] } {
  const path = join(dir, `fake-ffmpeg-${code}`), out = join(dir, `argv-${code}.txt`);
  writeFileSync(path, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${out}'\necho 'fake ffmpeg: no such device' >&2\nexit ${code}\n`);
  chmodSync(path, 0o755);
  return { path, argv: () => readFileSync(out, 'utf8').split('\n').slice(0, -1) };
}

/** The options just before -i and the input itself. */
function inputPart(argv: string[]): string[] {
  const i = argv.indexOf('-i');
  return argv.slice(argv.indexOf('-loglevel') + 2, i + 2);
}

// Test inputs shared by several tests: a known gray sequence and its lossless file.
const W = 160, H = 120;
let knownFrames: Uint8Array[] = [];
let knownFile = '';

t.before(async () => {
  const dir = t.testdir();
  // 30 frames with distinct patterns: gradients, stripes, a moving square, noise.
  knownFrames = Array.from({ length: 30 }, (_, k) => {
    const a = new Uint8Array(W * H);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let v = (x * (k + 1) + y * 3 + k * 17) & 0xff;
        if (((x >> 3) + k) % 5 === 0) v = 255 - v;
        if (x >= 4 * k && x < 4 * k + 20 && y >= 40 && y < 60) v = k % 2 ? 0 : 255;
        if (y >= 100) v = Math.floor(rand() * 256);
        a[y * W + x] = v;
      }
    return a;
  });
  knownFile = join(dir, 'known.mkv');
  await encodeGray(knownFile, knownFrames, W, H, 25);
});

// ---------------------------------------------------------------------------------------------
// Probing

t.test('probeMedia: size, rate, frame count and colour model of generated files', async (t) => {
  const gray = await probeMedia({ input: knownFile, countFrames: true });
  t.match(gray, { kind: 'media', input: knownFile, codec: 'ffv1', pixelFormat: 'gray', width: W, height: H, fps: 25, frames: 30, colourModel: 'gray' });
  t.match(gray.format, /matroska/);
  t.ok(Math.abs(gray.durationS! - 1.2) < 0.05, `duration ${gray.durationS} s`);

  const colour = join(t.testdir(), 'colour.mkv');
  await ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=10:duration=1.2', '-c:v', 'mpeg4', '-pix_fmt', 'yuv420p', colour]);
  const c = await probeMedia({ input: colour, countFrames: true });
  t.match(c, { codec: 'mpeg4', width: 96, height: 64, fps: 10, frames: 12, colourModel: 'rgb' });

  const lavfi = await probeMedia({ input: 'testsrc2=size=64x48:rate=15', format: 'lavfi' });
  t.match(lavfi, { width: 64, height: 48, fps: 15, colourModel: 'rgb' });
});

t.test('probeMedia: unreadable inputs fail with an FfmpegError naming the input', async (t) => {
  const dir = t.testdir();
  const missing = join(dir, 'nothing-here.mkv');
  const fails = async (what: string, p: Promise<unknown>, ...res: Array<RegExp | string>) => {
    const e = await p.then(() => undefined, (e: unknown) => e);
    t.ok(e instanceof FfmpegError, `${what}: FfmpegError`);
    for (const re of res) t.match((e as Error | undefined)?.message, re, `${what}: the message has ${re}`);
  };
  await fails('missing file', probeMedia({ input: missing }), missing, /No such file/);
  const text = join(dir, 'notes.mkv');
  writeFileSync(text, 'this is not a video\n'.repeat(50));
  await fails('text file', probeMedia({ input: text }), text, /ffprobe cannot read it/);
  const audio = join(dir, 'tone.wav');
  await ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.2', audio]);
  await fails('audio only', probeMedia({ input: audio }), audio, /no video stream/);
  await fails('ffprobe missing', probeMedia({ input: knownFile, ffprobePath: join(dir, 'no-ffprobe') }), /cannot run ffprobe/);
  await fails('open() probes, so a missing file fails there', FfmpegSource.open({ input: missing }), missing);
});

// ---------------------------------------------------------------------------------------------
// Delivery

function checkRun(t: Test, frames: Frame[], n: number, width: number, height: number, id: string) {
  t.equal(frames.length, n, `${n} frames`);
  t.same(frames.map((f) => f.seq), [...Array(n).keys()], 'seq 0..n-1');
  t.ok(frames.every((f) => f.width === width && f.height === height && f.data.length === width * height), `${width}x${height}, one byte per pixel`);
  t.ok(frames.every((f, i) => i === 0 || f.timestampMs >= frames[i - 1].timestampMs), 'monotonic timestamps');
  t.ok(frames.every((f) => f.sourceId === id && Object.isFrozen(f)), 'stamped by the source');
}

t.test('a lavfi test pattern: every frame, right size, in order', async (t) => {
  const w = await runToEnd(t, { input: 'testsrc2=size=128x96:rate=30:duration=1', format: 'lavfi', width: 128, height: 96, fps: 30, onInputEnd: 'end' });
  checkRun(t, w.frames, 30, 128, 96, 'ffmpeg:lavfi');
  t.same(w.signals.map((s) => s.state), ['live', 'no signal'], 'live, then no signal at the end');
  t.equal(w.signals[1].reason, 'end of input');
  t.match(w.src.stats, { delivered: 30, restarts: 0 });
  t.equal(w.src.pid, undefined, 'no ffmpeg left');
});

t.test('a file: every frame, byte-identical to what was encoded, then end', async (t) => {
  const w = await runToEnd(t, { input: knownFile, width: W, height: H, fps: 25, realtime: false });
  checkRun(t, w.frames, 30, W, H, `ffmpeg:${knownFile}`);
  t.ok(w.ended, "'end'");
  const wrong = w.frames.findIndex((f, i) => Buffer.compare(Buffer.from(f.data), Buffer.from(knownFrames[i])) !== 0);
  t.equal(wrong, -1, 'every frame byte-identical to the raw gray frame it was made from');
  t.equal(w.src.stats.duplicates, 0, 'distinct patterns are never repeats');
});

t.test('open() probes size and rate; a file is read at its own rate by default', async (t) => {
  const src = await FfmpegSource.open({ input: knownFile });
  t.match(src, { width: W, height: H, fps: 25 });
  const w = watch(t, { input: knownFile, frame: { width: W, height: H, fps: 25 } });
  const end = nextEvent(w.src, 'end', 10000);
  const t0 = performance.now();
  w.src.start();
  await end;
  const took = performance.now() - t0;
  t.equal(w.frames.length, 30);
  t.ok(took > 900, `30 frames at 25 fps took ${took.toFixed(0)} ms (-re pacing)`);
  const span = w.frames[29].timestampMs - w.frames[0].timestampMs;
  t.ok(span > 900 && span < 3000, `arrivals spread over ${span.toFixed(0)} ms`);
});

t.test('colour: RGB24 frames with a BT.601 gray plane', async (t) => {
  const w = await runToEnd(t, { input: 'testsrc=size=160x120:rate=25:duration=0.4', format: 'lavfi', width: 160, height: 120, fps: 25, colour: true, onInputEnd: 'end' });
  checkRun(t, w.frames, 10, 160, 120, 'ffmpeg:lavfi');
  const f = w.frames[3];
  t.equal(f.rgb?.length, 160 * 120 * 3, '3 bytes per pixel');
  let colourful = 0, worst = 0;
  for (let i = 0; i < 160 * 120; i++) {
    const r = f.rgb![3 * i], g = f.rgb![3 * i + 1], b = f.rgb![3 * i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 50) colourful++;
    worst = Math.max(worst, Math.abs(f.data[i] - (0.299 * r + 0.587 * g + 0.114 * b)));
  }
  t.ok(colourful > 1000, `a colourful pattern (${colourful} saturated pixels)`);
  t.ok(worst <= 1, `gray = 0.299 R + 0.587 G + 0.114 B within 1 level everywhere (worst ${worst.toFixed(2)})`);
  for (const [x, y] of [[10, 10], [80, 60], [150, 110], [40, 100]]) {
    const i = y * 160 + x;
    const [r, g, b] = [f.rgb![3 * i], f.rgb![3 * i + 1], f.rgb![3 * i + 2]];
    t.ok(Math.abs(f.data[i] - (0.299 * r + 0.587 * g + 0.114 * b)) <= 1, `pixel (${x},${y}) rgb(${r},${g},${b}) -> ${f.data[i]}`);
  }
});

t.test('RawFrameAssembler: whole frames from arbitrary chunks', async (t) => {
  const got: number[][] = [];
  const a = new RawFrameAssembler(4, (p) => got.push([...p]));
  a.push(Buffer.from([1, 2, 3]));
  t.equal(a.pending, 3);
  a.push(Buffer.from([4, 5, 6, 7, 8, 9, 10, 11]));
  t.same(got, [[1, 2, 3, 4], [5, 6, 7, 8]]);
  t.equal(a.pending, 3);
  a.reset();
  a.push(Buffer.from([20, 21, 22, 23]));
  t.same(got[2], [20, 21, 22, 23], 'reset drops the partial frame');
});

// ---------------------------------------------------------------------------------------------
// Repeated frames

t.test('repeats: each image three times -> K unique, 2K duplicates, flagged exactly on the repeats', async (t) => {
  const K = 8, w = 96, h = 64;
  const images = Array.from({ length: K }, () => noiseImage(w, h));
  const file = join(t.testdir(), 'repeats.mkv');
  await encodeGray(file, images.flatMap((im) => [im, im, im]), w, h);
  const a = await runToEnd(t, { input: file, width: w, height: h, fps: 25, realtime: false });
  t.equal(a.frames.length, 3 * K);
  t.same(a.frames.map((f) => f.duplicate === true), a.frames.map((_, i) => i % 3 !== 0), 'flags on positions 1, 2, 4, 5, ...');
  t.match(a.src.stats, { delivered: 3 * K, unique: K, duplicates: 2 * K });
  const b = await runToEnd(t, { input: file, width: w, height: h, fps: 25, realtime: false, duplicates: false });
  t.equal(b.frames.filter((f) => f.duplicate).length, 0, 'duplicates: false marks none');
  t.match(b.src.stats, { unique: 3 * K, duplicates: 0 });
});

t.test('repeats: capture noise of +-2 levels is still a repeat; a local change is not', async (t) => {
  const w = 96, h = 64;
  const a = noiseImage(w, h), c = noiseImage(w, h);
  // b: a with a 24x24 square brighter by 40 levels (the lesion moved; the rest of the screen did not).
  const b = a.slice();
  for (let y = 20; y < 44; y++) for (let x = 30; x < 54; x++) b[y * w + x] = Math.min(255, b[y * w + x] + 40);
  const seq = [a, jitter(a, 2), jitter(a, 2), b, jitter(b, 2), c, jitter(c, 2), a];
  const expected = [false, true, true, false, true, false, true, false];
  const file = join(t.testdir(), 'near.mkv');
  await encodeGray(file, seq, w, h);
  const r = await runToEnd(t, { input: file, width: w, height: h, fps: 25, realtime: false });
  t.same(r.frames.map((f) => f.duplicate === true), expected);
  t.match(r.src.stats, { unique: 4, duplicates: 4 });
});

// ---------------------------------------------------------------------------------------------
// Gaps and drops

t.test('gaps: a raw stream on a FIFO that pauses for ~10 frame periods', async (t) => {
  const w = 64, h = 48, fps = 20, period = 1000 / fps, missing = 9;
  const fifo = mkfifo(t, 'gaps.fifo');
  const s = watch(t, { input: fifo, format: 'rawvideo', pixelFormat: 'gray', width: w, height: h, fps, duplicates: false });
  const writer = new FifoWriter(fifo);
  t.teardown(() => writer.close());
  s.src.start();
  await writer.open();
  // Frames 0-19 on time, then nothing for 10 periods (9 frames never sent), then frames 20-39.
  const t0 = performance.now();
  for (let i = 0; i < 40; i++) {
    const due = t0 + (i < 20 ? i : i + missing) * period;
    await sleep(Math.max(0, due - performance.now()));
    await writer.write(noiseImage(w, h));
  }
  await writer.close(); // EOF: ffmpeg flushes the last frame
  await until(() => s.frames.length >= 40, 5000, '40 frames');
  const st = s.src.stats;
  t.equal(st.delivered, 40);
  t.ok(st.gaps >= 1 && st.gaps < 10, `${st.gaps} gap(s)`);
  t.ok(st.dropped >= missing - 3 && st.dropped <= missing + 3, `${st.dropped} dropped (${missing} never sent)`);
  t.notOk(s.signals.some((x) => x.state === 'no signal' && /stall/.test(x.reason ?? '')), 'a pause shorter than stallMs is not a lost signal');
});

// ---------------------------------------------------------------------------------------------
// Faults and recovery

t.test('ffmpeg killed (SIGKILL): no signal, restart after growing delays, live again', async (t) => {
  const s = watch(t, {
    input: 'testsrc2=size=128x96:rate=25', format: 'lavfi', inputOptions: ['-re'], width: 128, height: 96, fps: 25,
    restart: { initialMs: 100, factor: 2 },
  });
  s.src.start();
  await until(() => s.frames.length >= 5, 5000, 'first frames');
  t.equal(s.src.signal, 'live');
  const pid1 = s.src.pid!;
  const before = s.frames.length;
  process.kill(pid1, 'SIGKILL');
  await until(() => s.signals.filter((x) => x.state === 'no signal').length >= 1, 3000, 'no signal');
  const lost1 = s.signals.find((x) => x.state === 'no signal')!;
  t.match(lost1.reason, /killed \(SIGKILL\)/, `reason: ${lost1.reason}`);
  t.equal(s.src.signal, 'no signal');
  // The restarted ffmpeg is killed again before it delivers anything: the next delay doubles.
  await until(() => s.src.pid !== undefined && s.src.pid !== pid1, 3000, 'first restart');
  const respawn1 = performance.now();
  const pid2 = s.src.pid!;
  process.kill(pid2, 'SIGKILL');
  await until(() => s.src.pid !== undefined && s.src.pid !== pid2, 3000, 'second restart');
  const respawn2 = performance.now();
  const lost2 = s.signals.filter((x) => x.state === 'no signal')[1];
  t.ok(lost2, 'the second kill is reported too');
  await until(() => s.src.signal === 'live', 5000, 'live again');
  const after = s.frames.length;
  await until(() => s.frames.length >= after + 5, 5000, 'frames flowing again');
  t.equal(s.src.stats.restarts, 2, 'two restarts');
  const d1 = respawn1 - lost1.at, d2 = respawn2 - lost2.at;
  t.ok(d1 >= 95, `first delay ${d1.toFixed(0)} ms (initial 100)`);
  t.ok(d2 >= 195, `second delay ${d2.toFixed(0)} ms (doubled)`);
  t.ok(gone(pid1) && gone(pid2), 'the killed processes are gone');
  const later = s.frames.slice(before);
  t.ok(later.every((f, i) => f.seq === s.frames[before - 1].seq + 1 + i), 'seq carries on across the restart');
  t.ok(later.every((f) => f.data.length === 128 * 96), 'whole frames only after the kill');
  t.equal(s.signals.at(-1)!.state, 'live');
  // Frames flowed, so the backoff is back to its first step: the next loss restarts after 100 ms, not 400.
  const pid3 = s.src.pid!;
  process.kill(pid3, 'SIGKILL');
  await nextEvent<[SignalState, string]>(s.src, 'signal', 3000, (st) => st === 'no signal');
  const lost3 = performance.now();
  await until(() => s.src.pid !== undefined && s.src.pid !== pid3, 3000, 'third restart');
  const d3 = performance.now() - lost3;
  t.ok(d3 >= 95 && d3 < 390, `delay after a recovered signal ${d3.toFixed(0)} ms (back to 100)`);
  await until(() => s.src.signal === 'live', 5000, 'live after the third restart');
  t.equal(s.src.stats.restarts, 3);
});

t.test('ffmpeg fails (input missing) until the file appears; backoff grows, then live', async (t) => {
  const dir = t.testdir();
  const late = join(dir, 'late.mkv');
  const s = watch(t, { input: late, width: W, height: H, fps: 25, realtime: false, restart: { initialMs: 100, factor: 2, maxMs: 1000 } });
  // Spawn times: when a new ffmpeg PID appears.
  const spawns: number[] = [];
  let lastPid: number | undefined;
  const poll = setInterval(() => {
    const p = s.src.pid;
    if (p !== undefined && p !== lastPid) spawns.push(performance.now());
    lastPid = p;
  }, 1);
  t.teardown(() => clearInterval(poll));
  s.src.start();
  await until(() => s.signals.filter((x) => x.state === 'no signal').length >= 3, 5000, 'three failed attempts');
  const failures = s.signals.filter((x) => x.state === 'no signal');
  for (const f of failures) t.match(f.reason, /exited with code 1.*late\.mkv.*No such file/, `reason: ${f.reason}`);
  t.equal(s.frames.length, 0);
  // The file appears (written elsewhere, then renamed into place).
  const tmp = join(dir, 'tmp.mkv');
  await encodeGray(tmp, knownFrames.slice(0, 10), W, H, 25);
  renameSync(tmp, late);
  await until(() => s.src.signal === 'live', 8000, 'live');
  await until(() => s.frames.length >= 5, 5000, 'frames');
  clearInterval(poll);
  t.ok(s.src.stats.restarts! >= 3, `${s.src.stats.restarts} restarts`);
  // Delay k: from the k-th 'no signal' to the next spawn; 100, 200, 400 ms.
  const delays = failures.slice(0, 3).map((f) => spawns.find((x) => x > f.at)! - f.at);
  t.ok(delays[0] >= 95 && delays[1] >= 195 && delays[2] >= 395, `delays ${delays.map((d) => d.toFixed(0)).join(', ')} ms grow (100, 200, 400)`);
  t.ok(delays[1] > delays[0] && delays[2] > delays[1], 'each delay longer than the last');
  t.same(Buffer.from(s.frames[0].data), Buffer.from(knownFrames[0]), 'the late file\'s first frame');
});

t.test('ffmpeg stalls (FIFO input stops): no signal after stallMs, then live when bytes flow', async (t) => {
  // stallMs well above what a loaded machine takes to start ffmpeg and pass a frame through.
  const w = 64, h = 48, fps = 20, stallMs = 1500;
  const fifo = mkfifo(t, 'stall.fifo');
  const s = watch(t, { input: fifo, format: 'rawvideo', pixelFormat: 'gray', width: w, height: h, fps, stallMs, restart: { initialMs: 100 } });
  const writer = new FifoWriter(fifo);
  t.teardown(() => writer.close());
  /** Writes a frame every period until done() (reopening the FIFO for each new ffmpeg). */
  const feed = async (done: () => boolean) => {
    while (!done()) {
      if (!writer.isOpen) await writer.open();
      try {
        await writer.write(noiseImage(w, h));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
        await writer.close(); // that ffmpeg is gone; wait for the next one
      }
      await sleep(1000 / fps);
    }
  };
  s.src.start();
  await Promise.race([feed(() => s.frames.length >= 5), sleep(20000)]);
  t.ok(s.frames.length >= 5, 'frames flow');
  t.equal(s.src.signal, 'live');
  const pid = s.src.pid!;
  // Stop sending, keep the FIFO open: ffmpeg blocks on read and stays alive.
  const [, reason] = await nextEvent<[SignalState, string]>(s.src, 'signal', 10000, (st) => st === 'no signal');
  const silent = performance.now() - s.frames.at(-1)!.timestampMs;
  t.match(reason, /no data from ffmpeg for 1500 ms \(stalled input\)/);
  t.ok(silent >= stallMs && silent < stallMs + 2000, `reported ${silent.toFixed(0)} ms after the last frame (stallMs ${stallMs})`);
  await until(() => gone(pid), 3000, 'the stalled ffmpeg killed');
  t.pass('the stalled ffmpeg was killed');
  await writer.close();
  const n = s.frames.length;
  await Promise.race([feed(() => s.src.signal === 'live' && s.frames.length >= n + 3), sleep(20000)]);
  t.equal(s.src.signal, 'live', 'live again');
  t.ok(s.frames.length >= n + 3, 'frames flow again');
  t.ok(s.src.stats.restarts! >= 1, `${s.src.stats.restarts} restart(s)`);
});

t.test('started again after its end, the source still watches for stalls', async (t) => {
  const w = 64, h = 48, fps = 20, stallMs = 1000;
  const fifo = mkfifo(t, 'again.fifo');
  const s = watch(t, { input: fifo, format: 'rawvideo', pixelFormat: 'gray', width: w, height: h, fps, stallMs, onInputEnd: 'end' });
  const writer = new FifoWriter(fifo);
  t.teardown(() => writer.close());
  const end = nextEvent(s.src, 'end', 5000);
  s.src.start();
  await writer.open();
  for (let i = 0; i < 3; i++) await writer.write(noiseImage(w, h));
  await writer.close();
  await end;
  t.equal(s.frames.length, 3, "three frames, then 'end'");
  s.src.start();
  await writer.open();
  for (let i = 0; i < 3; i++) await writer.write(noiseImage(w, h));
  await until(() => s.frames.length >= 4, 3000, 'frames from the second run');
  // Silence, FIFO kept open.
  const [, reason] = await nextEvent<[SignalState, string]>(s.src, 'signal', 4000, (st) => st === 'no signal');
  t.match(reason, /stalled input/, 'the second run stalls and is reported');
});

t.test('ffmpeg missing: no signal saying it could not be started, one report per attempt, growing delays', async (t) => {
  const missing = join(t.testdir(), 'no-such-ffmpeg');
  const s = watch(t, { input: 'testsrc2', format: 'lavfi', width: 64, height: 48, fps: 10, ffmpegPath: missing, restart: { initialMs: 50, factor: 2 } });
  s.src.start();
  await until(() => s.signals.length >= 4, 5000, 'four failed attempts');
  const four = s.signals.slice(0, 4);
  for (const x of four) {
    t.equal(x.state, 'no signal');
    t.match(x.reason, /cannot start ffmpeg/);
    t.ok(x.reason!.includes(missing), 'names the executable');
  }
  t.same(four.map((x) => x.restarts), [0, 1, 2, 3], 'each attempt reported once');
  const gaps = [1, 2, 3].map((i) => four[i].at - four[i - 1].at);
  t.ok(gaps[0] >= 45 && gaps[1] >= 95 && gaps[2] >= 195, `delays ${gaps.map((d) => d.toFixed(0)).join(', ')} ms (50, 100, 200)`);
  t.equal(s.src.signal, 'no signal');
  t.equal(s.src.pid, undefined);
  t.equal(s.frames.length, 0);
});

t.test('stop() kills ffmpeg and cancels a pending restart', async (t) => {
  const s = watch(t, { input: 'testsrc2=size=64x48:rate=25', format: 'lavfi', inputOptions: ['-re'], width: 64, height: 48, fps: 25, restart: { initialMs: 200 } });
  s.src.start();
  await until(() => s.frames.length >= 2, 5000, 'frames');
  const pid = s.src.pid!;
  s.src.stop();
  t.equal(s.src.pid, undefined);
  await until(() => gone(pid), 3000, 'ffmpeg gone after stop()');
  t.pass('ffmpeg gone');
  // Restart pending when stopped: nothing starts afterwards.
  s.src.start();
  await until(() => s.src.pid !== undefined, 3000, 'running again');
  process.kill(s.src.pid!, 'SIGKILL');
  await until(() => s.src.signal === 'no signal', 3000, 'no signal');
  s.src.stop();
  const restarts = s.src.stats.restarts;
  await sleep(400);
  t.equal(s.src.pid, undefined, 'no ffmpeg started after stop()');
  t.equal(s.src.stats.restarts, restarts);
});

t.test('bad options: FfmpegError at construction, naming the option', async (t) => {
  const ok = { input: 'x.mkv', width: 64, height: 48, fps: 25 };
  const bad: Array<[Partial<FfmpegSourceOptions>, RegExp]> = [
    [{ width: 0 }, /width/],
    [{ height: 9000 }, /height/],
    [{ width: 64.5 }, /width/],
    [{ fps: -1 }, /fps/],
    [{ fps: 0 }, /fps/],
    [{ input: '' }, /input/],
    [{ frame: { width: 64, height: 0, fps: 25 } }, /height/],
    [{ restart: { initialMs: 0 } }, /initialMs/],
    [{ restart: { factor: 0.5 } }, /factor/],
  ];
  for (const [o, re] of bad) {
    let e: unknown;
    try { new FfmpegSource({ ...ok, ...o } as FfmpegSourceOptions); } catch (x) { e = x; }
    t.ok(e instanceof FfmpegError, `${JSON.stringify(o)}: FfmpegError`);
    t.match((e as Error | undefined)?.message, re, `${JSON.stringify(o)}: ${(e as Error | undefined)?.message}`);
  }
  t.throws(() => new FfmpegSource({ input: 'x.mkv' }), /FfmpegSource\.open/, 'no size: points to open()');
});

// ---------------------------------------------------------------------------------------------
// Argument building (a fake ffmpeg records what it was given)

t.test('V4L2 capture arguments, and how other inputs are opened', async (t) => {
  const dir = t.testdir();
  const fail = fakeFfmpeg(dir, 1), ok = fakeFfmpeg(dir, 0);
  const firstLoss = async (o: FfmpegSourceOptions) => {
    const s = watch(t, { restart: { initialMs: 5000 }, ...o });
    const lost = nextEvent<[SignalState, string]>(s.src, 'signal', 5000, (st) => st === 'no signal');
    s.src.start();
    const [, reason] = await lost;
    s.src.stop();
    return { s, reason };
  };

  const v4l2 = await firstLoss({ input: '/dev/video0', pixelFormat: 'yuyv422', width: 1280, height: 720, fps: 30, inputOptions: ['-thread_queue_size', '64'], ffmpegPath: fail.path });
  let argv = fail.argv();
  t.same(inputPart(argv), ['-f', 'v4l2', '-input_format', 'yuyv422', '-video_size', '1280x720', '-framerate', '30', '-thread_queue_size', '64', '-i', '/dev/video0'],
    'V4L2: format, capture pixel format, size and rate before -i; no -re');
  // yuyv422 to gray: the Y plane and a range table, then one output thread (bench:capture, table 5).
  t.match(argv.slice(argv.indexOf('-i') + 2).join(' '),
    /^-map 0:v:0 .*-fps_mode passthrough -vf format=yuv422p,extractplanes=y,lut=y=clip\(round\(\(val-16\)\*255\/219\)\\,0\\,255\),scale=1280:720 -pix_fmt gray -threads 1 -f rawvideo pipe:1$/);
  t.equal(v4l2.s.src.id, 'ffmpeg:/dev/video0');
  t.match(v4l2.reason, /exited with code 1: fake ffmpeg: no such device/, 'the reason carries ffmpeg\'s stderr');

  await firstLoss({ input: '/dev/video2', width: 640, height: 480, fps: 60, colour: true, ffmpegPath: fail.path });
  argv = fail.argv();
  t.same(inputPart(argv), ['-f', 'v4l2', '-video_size', '640x480', '-framerate', '60', '-i', '/dev/video2']);
  t.match(argv.join(' '), /-vf scale=\d+:\d+ -pix_fmt rgb24 -threads 1 -f rawvideo pipe:1$/, 'colour: rgb24, swscale (no Y-plane shortcut)');

  // A device that 'ends' normally has lost its signal: restart, never 'end'.
  const ended = await firstLoss({ input: '/dev/video0', width: 64, height: 48, fps: 30, ffmpegPath: ok.path });
  t.match(ended.reason, /ended \(end of input\)/);
  t.notOk(ended.s.ended, "a device never emits 'end'");

  await firstLoss({ input: 'cam.fifo', format: 'rawvideo', pixelFormat: 'uyvy422', width: 64, height: 48, fps: 25, ffmpegPath: fail.path });
  t.same(inputPart(fail.argv()), ['-f', 'rawvideo', '-pixel_format', 'uyvy422', '-video_size', '64x48', '-framerate', '25', '-i', 'cam.fifo'], 'raw stream');

  await firstLoss({ input: knownFile, width: W, height: H, fps: 25, ffmpegPath: fail.path });
  t.same(inputPart(fail.argv()), ['-re', '-i', knownFile], 'a file: its own size and rate, paced by -re');
  await firstLoss({ input: knownFile, width: W, height: H, fps: 25, realtime: false, ffmpegPath: fail.path });
  t.same(inputPart(fail.argv()), ['-i', knownFile], 'realtime: false, as fast as possible');
  await firstLoss({ input: 'testsrc2', format: 'lavfi', width: 64, height: 48, fps: 25, ffmpegPath: fail.path });
  t.same(inputPart(fail.argv()), ['-f', 'lavfi', '-i', 'testsrc2'], 'lavfi: no capture size or rate');
});

// ---------------------------------------------------------------------------------------------
// The pipeline and the overlay keep serving without a signal

t.test('pipeline and overlay keep serving while the signal is gone, and resume after the restart', async (t) => {
  const width = 256, height = 96;
  const pane = (name: 'bmode' | 'contrast', x: number) => ({ name, rect: { x, y: 0, width: 128, height: 96 }, spacingX: 0.2, spacingY: 0.2 });
  const layout: Layout = { width, height, panes: { bmode: pane('bmode', 0), contrast: pane('contrast', 128) } };
  const s = watch(t, {
    input: `testsrc2=size=${width}x${height}:rate=25`, format: 'lavfi', inputOptions: ['-re'], width, height, fps: 25,
    restart: { initialMs: 1500 },
  });
  const pipeline = new Pipeline({ layout }).start();
  const server = new OverlayServer({ pipeline, port: 0, status: () => ({ source: { signal: s.src.signal, ...s.src.stats } }) });
  const url = await server.listen();
  t.teardown(async () => { s.src.stop(); await server.close(); await pipeline.stop(); });
  let displayed = 0;
  pipeline.on('display', (d: DisplayFrame) => { if (d.frame.sourceId === s.src.id) displayed++; });
  s.src.on('frame', (f: Frame) => pipeline.push(f));
  s.src.start();
  await until(() => displayed >= 5, 5000, 'display frames');

  const status = async () => {
    const t0 = performance.now();
    const res = await fetch(url + 'api/status', { signal: AbortSignal.timeout(2000) });
    const body = await res.json() as { source: { signal: SignalState; restarts: number; delivered: number }; pipeline: { displayed: number } };
    return { code: res.status, ms: performance.now() - t0, body };
  };
  const live = await status();
  t.match(live, { code: 200, body: { source: { signal: 'live', restarts: 0 } } });

  process.kill(s.src.pid!, 'SIGKILL');
  await until(() => s.src.signal === 'no signal', 3000, 'no signal');
  const lostAt = performance.now();
  await sleep(200); // let the pipeline drain its last frame
  const shownAtLoss = displayed;
  for (let i = 0; i < 3; i++) {
    const r = await status();
    t.equal(r.code, 200, 'status answers without a signal');
    t.ok(r.ms < 500, `in ${r.ms.toFixed(0)} ms`);
    t.equal(r.body.source.signal, 'no signal');
    t.equal(r.body.source.restarts, 0, 'not yet restarted (1.5 s backoff)');
    await sleep(100);
  }
  t.ok(performance.now() - lostAt < 1400, 'all of that during the outage');
  t.equal(displayed, shownAtLoss, 'no display frames while there is no signal');
  await until(() => s.src.signal === 'live', 6000, 'live again');
  await until(() => displayed >= shownAtLoss + 5, 5000, 'display frames after the restart');
  const back = await status();
  t.match(back, { code: 200, body: { source: { signal: 'live', restarts: 1 } } });
  t.ok(back.body.pipeline.displayed >= shownAtLoss + 5, 'the pipeline counts them');
});
