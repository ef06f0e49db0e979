// Session recordings: crash-safe, lossless, replayable. A recording is a folder (NAME.sonrec):
//   session.json   what was recorded (size, pixel format, rate, source, layout), written first;
//   frames.jsonl   one line per frame, appended as the frame is handed to the encoder:
//                  {"i": video frame, "seq": source seq, "t": arrival ms from the first frame,
//                   "src": source time ms or null, "dup": 0|1};
//   video.nut      the pixels, FFV1 (lossless, every frame a key frame) in NUT, written by an
//                  ffmpeg child that writes each frame out as soon as it is encoded.
// A killed sonomics loses at most the frame being written: ffmpeg sees end of input and closes
// the file. If ffmpeg is killed too, the file is readable up to its last whole frame: at most the
// frame in the pipe and the one being encoded are lost. (Matroska would hold each encoded frame
// back until the next arrives: NUT writes it at once.) See docs/capture.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { FrameStamper } from '../core/arrival.js';
import type { Frame } from '../core/frame.js';
import { validateLayout, type Layout, type Pane } from '../core/layout.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { lastLines, probeMedia, RawFrameAssembler, run, stderrTail } from './ffmpeg.js';
import type { FrameSource, SourceStats } from './source.js';

export const RECORDING_FORMAT = 'sonomics-recording';
export const RECORDING_VERSION = 1;

export class RecordingError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${basename(path)}: ${problem}`);
    this.name = 'RecordingError';
  }
}

export interface RecordingHeader {
  format: typeof RECORDING_FORMAT;
  version: number;
  createdAt: string;
  notice: string;
  width: number;
  height: number;
  pixelFormat: 'gray' | 'rgb24';
  /** Nominal frame rate of the recorded signal. */
  fps: number;
  source: { id: string };
  video: { file: 'video.nut'; codec: 'ffv1' };
  /** Screen layout at recording time; the sector mask is deflated and base64-encoded. */
  layout?: { width: number; height: number; panes: { bmode: Pane; contrast: Pane }; sector?: string };
  /**
   * Frames in video.nut, written when the recording was closed cleanly. Opening then only counts
   * packets to confirm it; a recording without it (a crash) is decoded to count its frames.
   */
  frames?: number;
  /** Set on a trimmed copy: the range of the original it holds. */
  trimmedFrom?: { recording: string; firstFrame: number; lastFrame: number };
}

export interface RecordedFrame {
  /** Frame number in video.nut. */
  i: number;
  seq: number;
  /** Arrival time, ms from the first recorded frame. */
  t: number;
  src: number | null;
  dup: 0 | 1;
}

export interface RecorderOptions {
  /** The .sonrec folder to create (must not exist, or be empty). */
  path: string;
  width: number;
  height: number;
  fps: number;
  sourceId: string;
  /** Record the frames' RGB (frame.rgb) instead of gray. */
  colour?: boolean;
  layout?: Layout;
  ffmpegPath?: string;
}

export interface RecorderStats {
  /** Frames handed to the encoder and indexed. */
  written: number;
  /** Frames not recorded because the encoder was still busy with the previous one. */
  dropped: number;
}

/** Writes session.json whole or not at all (a crash mid-write leaves the previous one). */
function writeHeader(dir: string, h: RecordingHeader): void {
  const tmp = join(dir, 'session.json.tmp');
  writeFileSync(tmp, JSON.stringify(h, null, 2) + '\n');
  renameSync(tmp, join(dir, 'session.json'));
}

function layoutToHeader(l: Layout): RecordingHeader['layout'] {
  return {
    width: l.width, height: l.height, panes: l.panes,
    ...(l.sector && { sector: deflateSync(l.sector).toString('base64') }),
  };
}

function headerToLayout(h: NonNullable<RecordingHeader['layout']>): Layout {
  const sector = h.sector ? new Uint8Array(inflateSync(Buffer.from(h.sector, 'base64'))) : undefined;
  return validateLayout({ width: h.width, height: h.height, panes: h.panes, ...(sector && { sector }) });
}

/**
 * Records frames as they arrive. write() never blocks: while the encoder still has the previous
 * frame in hand, a new frame is dropped and counted (a slow disk must not stall the pipeline).
 * Events: 'error' (RecordingError) when ffmpeg fails; the recording then stops, the rest of
 * sonomics carries on.
 */
export class SessionRecorder extends EventEmitter {
  readonly path: string;
  readonly header: RecordingHeader;
  private readonly ffmpeg: ChildProcess;
  private readonly indexFd: number;
  private readonly frameBytes: number;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private firstArrival: number | undefined;
  private failed = false;
  private closed = false;
  private readonly stderrTail: () => string;
  private counts: RecorderStats = { written: 0, dropped: 0 };

  constructor(o: RecorderOptions) {
    super();
    if (!(Number.isInteger(o.width) && o.width > 0 && Number.isInteger(o.height) && o.height > 0))
      throw new RecordingError(o.path, `width and height must be positive integers (got ${o.width}x${o.height})`);
    if (!(o.fps > 0 && o.fps <= 1000)) throw new RecordingError(o.path, `fps must be in (0, 1000] (got ${o.fps})`);
    if (existsSync(o.path) && readdirSync(o.path).length > 0) throw new RecordingError(o.path, 'already exists and is not empty; choose a new name');
    mkdirSync(o.path, { recursive: true });
    this.path = o.path;
    this.header = {
      format: RECORDING_FORMAT, version: RECORDING_VERSION, createdAt: new Date().toISOString(), notice: DECISION_SUPPORT_NOTICE,
      width: o.width, height: o.height, pixelFormat: o.colour ? 'rgb24' : 'gray', fps: o.fps, source: { id: o.sourceId },
      video: { file: 'video.nut', codec: 'ffv1' },
      ...(o.layout && { layout: layoutToHeader(o.layout) }),
    };
    writeHeader(o.path, this.header);
    this.indexFd = openSync(join(o.path, 'frames.jsonl'), 'a');
    this.frameBytes = o.width * o.height * (o.colour ? 3 : 1);
    this.ffmpeg = spawn(o.ffmpegPath ?? 'ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      '-f', 'rawvideo', '-pixel_format', this.header.pixelFormat, '-video_size', `${o.width}x${o.height}`, '-framerate', String(o.fps), '-i', 'pipe:0',
      // FFV1 version 3: lossless, intra-only (each frame decodable alone: trims are exact and a
      // cut file loses only its last frame), slice CRCs to detect damage.
      '-c:v', 'ffv1', '-level', '3', '-g', '1', '-slices', '4', '-slicecrc', '1',
      // NUT writes each packet as it comes; flushed at once, what was encoded is on disk.
      '-flush_packets', '1', '-f', 'nut', join(o.path, 'video.nut'),
    ], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.stderrTail = stderrTail(this.ffmpeg, 2000);
    this.ffmpeg.stdin!.on('error', () => { /* reported through 'close' */ });
    this.exited = new Promise((resolve) => {
      this.ffmpeg.on('error', (e) => { this.fail(`cannot start ffmpeg: ${e.message}`); resolve({ code: null, signal: null }); });
      this.ffmpeg.on('close', (code, signal) => {
        if (!this.closed) this.fail(`ffmpeg stopped while recording (${signal ?? `exit ${code}`}): ${lastLines(this.stderrTail(), 2)}`);
        resolve({ code, signal });
      });
    });
  }

  get stats(): RecorderStats { return { ...this.counts }; }

  /** ffmpeg's PID (tests check it ends). */
  get pid(): number | undefined { return this.ffmpeg.pid; }

  /** Records one frame; false when it was dropped (encoder busy) or the recorder is closed or failed. */
  write(frame: Frame): boolean {
    if (this.closed || this.failed) return false;
    if (frame.width !== this.header.width || frame.height !== this.header.height)
      throw new RecordingError(this.path, `frame ${frame.seq} is ${frame.width}x${frame.height}, the recording is ${this.header.width}x${this.header.height}`);
    const pixels = this.header.pixelFormat === 'rgb24' ? frame.rgb : frame.data;
    if (!pixels) throw new RecordingError(this.path, `frame ${frame.seq} has no RGB pixels but the recording is in colour`);
    const stdin = this.ffmpeg.stdin!;
    // At most one frame waits in our buffer: a kill loses at most that frame.
    if (stdin.writableLength >= this.frameBytes) {
      this.counts.dropped++;
      return false;
    }
    stdin.write(pixels);
    this.firstArrival ??= frame.timestampMs;
    const entry: RecordedFrame = {
      i: this.counts.written, seq: frame.seq, t: Math.round((frame.timestampMs - this.firstArrival) * 1000) / 1000,
      src: frame.sourceTimeMs ?? null, dup: frame.duplicate ? 1 : 0,
    };
    writeSync(this.indexFd, JSON.stringify(entry) + '\n');
    this.counts.written++;
    return true;
  }

  /** Ends the recording: ffmpeg closes the file. Resolves with the counts. */
  async close(): Promise<RecorderStats> {
    if (!this.closed) {
      this.closed = true;
      this.ffmpeg.stdin!.end();
      const timer = setTimeout(() => this.ffmpeg.kill('SIGKILL'), 30000);
      const { code, signal } = await this.exited;
      clearTimeout(timer);
      closeSync(this.indexFd);
      if (!this.failed && code !== 0)
        throw new RecordingError(this.path, `ffmpeg could not finish the video (${signal ?? `exit ${code}`}): ${this.stderrTail().trim()}`);
      if (!this.failed) writeHeader(this.path, { ...this.header, frames: this.counts.written });
    }
    return this.stats;
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    const err = new RecordingError(this.path, reason);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err.message);
  }
}

/** A marked moment of a recording (events.jsonl): the overlay's "mark event". */
export interface RecordedEvent { kind: string; label: string; seq: number | null; at: string; by: string; /** Frames written when it was marked. */ i: number }

export interface OnDemandRecorderOptions extends Omit<RecorderOptions, 'path'> {
  /** Folder the recordings go to, one session-<time>.sonrec each. */
  dir: string;
}

/**
 * Recording started and stopped at will (from the overlay or the panel): while active, every
 * frame given to write() is recorded by a SessionRecorder. Events: 'change' when it starts,
 * stops or fails ('error' then carries the RecordingError).
 */
export class OnDemandRecorder extends EventEmitter {
  private current: { recorder: SessionRecorder; name: string; since: string } | undefined;
  private stopping: Promise<{ name: string; frames: number; dropped: number }> | undefined;

  constructor(private readonly o: OnDemandRecorderOptions) {
    super();
  }

  state(): { available: true; active: boolean; name: string | null; since: string | null } {
    return { available: true, active: this.current !== undefined, name: this.current?.name ?? null, since: this.current?.since ?? null };
  }

  async start(): Promise<string> {
    if (this.current) throw new RecordingError(this.current.name, 'already recording');
    if (this.stopping) await this.stopping;
    const since = new Date().toISOString();
    // A time stamp names it: never anything about the patient.
    const name = `session-${since.replace(/[:.]/g, '-')}.sonrec`;
    mkdirSync(this.o.dir, { recursive: true });
    const recorder = new SessionRecorder({ ...this.o, path: join(this.o.dir, name) });
    recorder.on('error', (e: RecordingError) => {
      if (this.current?.recorder === recorder) this.current = undefined;
      this.emit('error', e);
      this.emit('change');
    });
    this.current = { recorder, name, since };
    this.emit('change');
    return name;
  }

  /** Records the frame while a recording is active. */
  write(frame: Frame): void {
    this.current?.recorder.write(frame);
  }

  mark(e: Omit<RecordedEvent, 'i'>): void {
    const c = this.current;
    if (!c) return;
    const line: RecordedEvent = { ...e, i: c.recorder.stats.written };
    appendFileSync(join(c.recorder.path, 'events.jsonl'), JSON.stringify(line) + '\n');
  }

  async stop(): Promise<{ name: string; frames: number; dropped: number }> {
    const c = this.current;
    if (!c) throw new RecordingError(this.o.dir, 'not recording');
    this.current = undefined;
    this.stopping = c.recorder.close().then((st) => ({ name: c.name, frames: st.written, dropped: st.dropped }));
    try {
      return await this.stopping;
    } finally {
      this.stopping = undefined;
      this.emit('change');
    }
  }
}

/** A recording opened for reading. */
export interface Recording {
  path: string;
  header: RecordingHeader;
  frames: RecordedFrame[];
  /** Frames whose pixels are in video.nut (a crash can leave the index ahead: one frame, two if ffmpeg was killed too). */
  videoFrames: number;
  layout?: Layout;
  /** What was found wrong but could be worked around (a cut last line, a short video). */
  notes: string[];
}

function checkHeader(path: string, h: unknown): RecordingHeader {
  const bad = (key: string, what: string) => new RecordingError(path, `session.json: ${key}: ${what}`);
  if (typeof h !== 'object' || h === null) throw bad('(top level)', 'must be an object');
  const o = h as Record<string, unknown>;
  if (o.format !== RECORDING_FORMAT) throw bad('format', `must be "${RECORDING_FORMAT}" (got ${JSON.stringify(o.format)})`);
  if (o.version !== RECORDING_VERSION) throw bad('version', `this sonomics reads version ${RECORDING_VERSION} (got ${JSON.stringify(o.version)})`);
  for (const k of ['width', 'height'] as const)
    if (!(Number.isInteger(o[k]) && (o[k] as number) > 0 && (o[k] as number) <= 16384)) throw bad(k, 'must be an integer in [1, 16384]');
  if (o.pixelFormat !== 'gray' && o.pixelFormat !== 'rgb24') throw bad('pixelFormat', 'must be "gray" or "rgb24"');
  if (!(typeof o.fps === 'number' && o.fps > 0 && o.fps <= 1000)) throw bad('fps', 'must be a number in (0, 1000]');
  const v = o.video as Record<string, unknown> | undefined;
  if (!v || v.file !== 'video.nut' || v.codec !== 'ffv1') throw bad('video', 'must be {"file": "video.nut", "codec": "ffv1"}');
  const s = o.source as Record<string, unknown> | undefined;
  if (!s || typeof s.id !== 'string') throw bad('source.id', 'must be a string');
  if (o.frames !== undefined && !(Number.isInteger(o.frames) && (o.frames as number) >= 0)) throw bad('frames', 'must be a non-negative integer');
  return h as RecordingHeader;
}

function parseIndex(path: string, text: string, notes: string[]): RecordedFrame[] {
  const lines = text.split('\n');
  // A line without its newline is one the process was writing when it stopped.
  const last = lines.pop() ?? '';
  if (last.trim() !== '') notes.push('frames.jsonl: the last line is incomplete (the recording process stopped while writing it); ignored');
  const frames: RecordedFrame[] = [];
  lines.forEach((line, n) => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line);
    } catch {
      throw new RecordingError(path, `frames.jsonl line ${n + 1}: not valid JSON`);
    }
    const num = (k: string) => typeof e[k] === 'number' && Number.isFinite(e[k]);
    if (!(e && num('i') && num('seq') && num('t') && (e.src === null || num('src')) && (e.dup === 0 || e.dup === 1)))
      throw new RecordingError(path, `frames.jsonl line ${n + 1}: needs numbers i, seq, t, src (or null) and dup 0|1`);
    if (e.i !== frames.length) throw new RecordingError(path, `frames.jsonl line ${n + 1}: frame number ${e.i}, expected ${frames.length}`);
    if (frames.length && (e.t as number) < frames[frames.length - 1].t) throw new RecordingError(path, `frames.jsonl line ${n + 1}: time goes backwards`);
    frames.push(e as unknown as RecordedFrame);
  });
  return frames;
}

/** Opens and checks a recording; counts the frames actually in its video. */
export async function openRecording(path: string, opts: { ffprobePath?: string } = {}): Promise<Recording> {
  const read = (f: string) => {
    try {
      return readFileSync(join(path, f), 'utf8');
    } catch (e) {
      throw new RecordingError(path, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (is this a sonomics recording?)' : (e as Error).message}`);
    }
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(read('session.json'));
  } catch (e) {
    if (e instanceof RecordingError) throw e;
    throw new RecordingError(path, `session.json is not valid JSON: ${(e as Error).message}`);
  }
  const header = checkHeader(path, parsed);
  const notes: string[] = [];
  const frames = parseIndex(path, read('frames.jsonl'), notes);
  const video = join(path, 'video.nut');
  if (!existsSync(video)) throw new RecordingError(path, 'video.nut is missing');
  let videoFrames = 0;
  if (frames.length > 0) {
    try {
      // Decoding a long recording to count its frames would take minutes;
      // a cleanly closed one says how many it holds, and counting packets confirms that.
      let info = header.frames === undefined ? undefined : await probeMedia({ input: video, ffprobePath: opts.ffprobePath, countPackets: true });
      if (info === undefined || info.frames !== header.frames) info = await probeMedia({ input: video, ffprobePath: opts.ffprobePath, countFrames: true });
      if (info.width !== header.width || info.height !== header.height)
        throw new RecordingError(path, `video.nut is ${info.width}x${info.height}, session.json says ${header.width}x${header.height}`);
      videoFrames = info.frames ?? 0;
    } catch (e) {
      if (e instanceof RecordingError) throw e;
      throw new RecordingError(path, `video.nut cannot be read: ${(e as Error).message}`);
    }
  }
  if (videoFrames < frames.length)
    notes.push(`video.nut holds ${videoFrames} of the ${frames.length} indexed frames (the recording was cut short); the rest is ignored`);
  let layout: Layout | undefined;
  if (header.layout) {
    try {
      layout = headerToLayout(header.layout);
    } catch (e) {
      throw new RecordingError(path, `session.json: layout: ${(e as Error).message}`);
    }
  }
  return { path, header, frames: frames.slice(0, Math.min(frames.length, videoFrames)), videoFrames, layout, notes };
}

export interface ReplayOptions {
  path: string;
  /** Pace frames by their recorded arrival times (default) or deliver them as fast as possible. */
  realtime?: boolean;
  /** Playback speed in realtime mode (default 1). */
  speed?: number;
  ffmpegPath?: string;
  ffprobePath?: string;
}

/**
 * A recording played back as a FrameSource: frames carry their recorded time as sourceTimeMs and
 * their recorded duplicate flag. Open with ReplaySource.open().
 * Events: 'frame', 'end', 'error' (RecordingError).
 */
export class ReplaySource extends EventEmitter implements FrameSource {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly layout?: Layout;
  readonly recording: Recording;
  private readonly o: ReplayOptions;
  private readonly stamper: FrameStamper;
  private child: ChildProcess | undefined;
  private queue: Uint8Array[] = [];
  private next = 0;
  private startMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private decoderDone = false;
  private running = false;

  static async open(o: ReplayOptions): Promise<ReplaySource> {
    return new ReplaySource(o, await openRecording(o.path, { ffprobePath: o.ffprobePath }));
  }

  constructor(o: ReplayOptions, rec: Recording) {
    super();
    if (o.speed !== undefined && !(o.speed > 0 && o.speed <= 100)) throw new RecordingError(o.path, `replay speed must be in (0, 100] (got ${o.speed})`);
    this.o = o;
    this.recording = rec;
    this.width = rec.header.width;
    this.height = rec.header.height;
    this.fps = rec.header.fps;
    this.layout = rec.layout;
    this.id = `replay:${basename(rec.path)}`;
    this.stamper = new FrameStamper({ sourceId: this.id, width: this.width, height: this.height, fps: this.fps, duplicates: false });
  }

  get stats(): SourceStats { return this.stamper.stats; }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startMs = performance.now();
    const rgb = this.recording.header.pixelFormat === 'rgb24';
    const child = spawn(this.o.ffmpegPath ?? 'ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-i', join(this.recording.path, 'video.nut'),
      '-map', '0:v:0', '-fps_mode', 'passthrough', '-frames:v', String(this.recording.frames.length),
      '-pix_fmt', rgb ? 'rgb24' : 'gray', '-f', 'rawvideo', 'pipe:1',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const stderr = stderrTail(child, 2000);
    const assembler = new RawFrameAssembler(this.width * this.height * (rgb ? 3 : 1), (px) => {
      this.queue.push(px);
      // Decode ahead by at most two frames.
      if (this.queue.length >= 2) child.stdout!.pause();
      this.pump();
    });
    child.stdout!.on('data', (c: Buffer) => assembler.push(c));
    child.on('error', (e) => this.fail(`cannot start ffmpeg: ${e.message}`));
    child.on('close', (code, signal) => {
      if (this.child !== child) return;
      this.decoderDone = true;
      if (code !== 0 && this.running) this.fail(`video.nut could not be decoded (${signal ?? `exit ${code}`}): ${lastLines(stderr(), 2)}`);
      else this.pump();
    });
    if (this.recording.frames.length === 0) { this.decoderDone = true; this.pump(); }
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.child;
    this.child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  private pump(): void {
    if (!this.running || this.timer) return;
    const frames = this.recording.frames;
    if (this.next >= frames.length || (this.decoderDone && this.queue.length === 0)) {
      this.stop();
      this.emit('end');
      return;
    }
    if (this.queue.length === 0) return;
    const entry = frames[this.next];
    const realtime = this.o.realtime ?? true;
    const due = realtime ? this.startMs + entry.t / (this.o.speed ?? 1) : 0;
    const wait = due - performance.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.running) return;
      const px = this.queue.shift()!;
      this.next++;
      const extras = { sourceTimeMs: entry.t, duplicate: entry.dup === 1 };
      const frame = this.recording.header.pixelFormat === 'rgb24' ? this.stamper.stampColour(px, extras) : this.stamper.stamp(px, extras);
      this.emit('frame', frame);
      if (this.queue.length < 2) this.child?.stdout?.resume();
      this.pump();
    }, Math.max(0, wait));
  }

  private fail(reason: string): void {
    this.stop();
    this.emit('error', new RecordingError(this.recording.path, reason));
  }
}

export interface ExportOptions {
  /** Seconds from the first frame (recorded arrival times); default the whole recording. */
  fromS?: number;
  toS?: number;
  ffmpegPath?: string;
}

/** The frame range [first, last] of a recording between two times (seconds). */
export function frameRange(rec: Recording, fromS = 0, toS = Infinity): { first: number; last: number } {
  if (!(fromS >= 0) || !(toS > fromS)) throw new RecordingError(rec.path, `the time range must have 0 <= from < to (got ${fromS}..${toS} s)`);
  const f = rec.frames;
  let first = f.findIndex((e) => e.t >= fromS * 1000);
  let last = -1;
  for (let k = f.length - 1; k >= 0; k--) if (f[k].t <= toS * 1000) { last = k; break; }
  const span = Number.isFinite(toS) ? `between ${fromS} s and ${toS} s` : `from ${fromS} s on`;
  if (first < 0 || last < first) throw new RecordingError(rec.path, `no frame ${span} (the recording lasts ${f.length ? (f[f.length - 1].t / 1000).toFixed(3) : 0} s)`);
  return { first, last };
}

async function runFfmpeg(cmd: string, args: string[], what: string, path: string): Promise<void> {
  let r;
  try {
    r = await run(cmd, args);
  } catch (e) {
    throw new RecordingError(path, `${what}: cannot start ffmpeg: ${(e as Error).message}`);
  }
  if (r.code !== 0) throw new RecordingError(path, `${what} failed (${r.signal ?? `exit ${r.code}`}): ${r.stderr.trim()}`);
}

/**
 * Writes part of a recording: to a new .sonrec folder (a lossless trimmed recording, times
 * rebased to its first frame) or to a video file (.mp4/.mkv/.mov/.avi: H.264 for viewing, at the
 * recording's nominal rate). Returns the frame range written.
 */
export async function exportRecording(rec: Recording, out: string, o: ExportOptions = {}): Promise<{ first: number; last: number; frames: number }> {
  const { first, last } = frameRange(rec, o.fromS, o.toS);
  const ffmpeg = o.ffmpegPath ?? 'ffmpeg';
  const select = ['-vf', `select='between(n\\,${first}\\,${last})'`, '-fps_mode', 'passthrough'];
  const input = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', join(rec.path, 'video.nut')];
  if (extname(out) === '.sonrec') {
    if (existsSync(out) && readdirSync(out).length > 0) throw new RecordingError(out, 'already exists and is not empty; choose a new name');
    mkdirSync(out, { recursive: true });
    await runFfmpeg(ffmpeg, [...input, ...select, '-c:v', 'ffv1', '-level', '3', '-g', '1', '-slices', '4', '-slicecrc', '1', '-f', 'nut', join(out, 'video.nut')], 'trim', rec.path);
    const t0 = rec.frames[first].t;
    const lines = rec.frames.slice(first, last + 1).map((e, k) => JSON.stringify({ ...e, i: k, t: Math.round((e.t - t0) * 1000) / 1000 }) + '\n');
    writeFileSync(join(out, 'frames.jsonl'), lines.join(''));
    writeHeader(out, {
      ...rec.header, createdAt: new Date().toISOString(), frames: last - first + 1,
      trimmedFrom: { recording: basename(rec.path), firstFrame: first, lastFrame: last },
    });
  } else {
    const ext = extname(out).toLowerCase();
    if (!['.mp4', '.mkv', '.mov', '.avi'].includes(ext)) throw new RecordingError(out, `unsupported export type "${ext}" (use .sonrec for a recording, or .mp4, .mkv, .mov, .avi for a video)`);
    // H.264 in 4:2:0 needs even sizes: an odd last row or column is dropped.
    const vf = `select='between(n\\,${first}\\,${last})',setpts=N/(${rec.header.fps}*TB),crop=trunc(iw/2)*2:trunc(ih/2)*2`;
    await runFfmpeg(ffmpeg, [...input, '-vf', vf, '-r', String(rec.header.fps), '-c:v', 'libx264', '-crf', '18', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
      ...(ext === '.mp4' || ext === '.mov' ? ['-movflags', '+faststart'] : []), '-y', out], 'export', rec.path);
  }
  return { first, last, frames: last - first + 1 };
}
