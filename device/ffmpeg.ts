// The capture card, through ffmpeg as a child process. ffmpeg reads the card (V4L2 /dev/videoN
// with pixel format, size and rate) or anything else it can open (file, stream URL, lavfi test
// pattern) and writes raw 8-bit gray (or RGB24 when colour is wanted) frames on a pipe. Each
// complete frame is stamped on arrival. When ffmpeg exits, crashes, stalls or the device is gone,
// the source reports 'no signal' and starts ffmpeg again with exponential backoff; whoever
// consumes frames simply sees none meanwhile.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { FrameStamper, type DuplicateOptions } from '../core/arrival.js';
import type { FrameSource, SignalState, SourceStats } from './source.js';

export class FfmpegError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FfmpegError';
  }
}

/** What ffmpeg should read. */
export interface FfmpegInput {
  /** A V4L2 device (/dev/video0), a file, a URL, or a lavfi graph (with format 'lavfi'). */
  input: string;
  /** ffmpeg's input format (-f): 'v4l2' (the default for /dev/video*), 'lavfi', 'rawvideo', ... */
  format?: string;
  /** Capture pixel format (-input_format for V4L2, -pixel_format for rawvideo), e.g. 'yuyv422', 'uyvy422', 'mjpeg'. */
  pixelFormat?: string;
  /** Frame size and rate; passed to ffmpeg as -video_size and -framerate for V4L2 devices and raw streams. */
  width?: number;
  height?: number;
  fps?: number;
  /** More input options, placed before -i (e.g. ['-thread_queue_size', '64']). */
  inputOptions?: string[];
}

export interface FfmpegSourceOptions extends FfmpegInput {
  /** The ffmpeg executable (default 'ffmpeg' on PATH). */
  ffmpegPath?: string;
  ffprobePath?: string;
  /** Also deliver interleaved RGB (frame.rgb), e.g. for Doppler panes; gray is derived natively. */
  colour?: boolean;
  /** Files: read at the file's own rate (-re) rather than as fast as possible. Default true. */
  realtime?: boolean;
  /**
   * When ffmpeg ends normally: 'end' (files: the source is done) or 'restart' (devices, streams
   * and test patterns: the signal went away). Default: 'end' for regular files, else 'restart'.
   */
  onInputEnd?: 'end' | 'restart';
  /** Backoff between restarts: first delay, cap, growth. Default 250 ms, 8 s, x2. */
  restart?: { initialMs?: number; maxMs?: number; factor?: number };
  /** No bytes for this long while running counts as a lost signal (default max(2 s, 10 frame periods)). */
  stallMs?: number;
  duplicates?: DuplicateOptions | false;
  /** Size and rate of the delivered frames when the capture options do not fix them (open() probes them). */
  frame?: { width: number; height: number; fps: number };
}

export interface MediaInfo {
  kind: 'media';
  input: string;
  format: string;
  codec: string;
  pixelFormat: string;
  width: number;
  height: number;
  fps: number | undefined;
  /** Frames in the stream when ffprobe can tell (files), else undefined. */
  frames: number | undefined;
  durationS: number | undefined;
  colourModel: 'gray' | 'rgb';
}

/** Cuts a raw video byte stream (ffmpeg's pipe) into whole frames, one fresh buffer per frame. */
export class RawFrameAssembler {
  private buf: Buffer | undefined;
  private filled = 0;
  constructor(readonly frameBytes: number, private readonly onFrame: (pixels: Uint8Array) => void) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      this.buf ??= Buffer.allocUnsafeSlow(this.frameBytes);
      const n = Math.min(this.frameBytes - this.filled, chunk.length - off);
      chunk.copy(this.buf, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.frameBytes) {
        const pixels = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.frameBytes);
        this.buf = undefined;
        this.filled = 0;
        this.onFrame(pixels);
      }
    }
  }

  /** Bytes of an incomplete frame held back (lost if the stream ends now). */
  get pending(): number { return this.filled; }

  reset(): void {
    this.buf = undefined;
    this.filled = 0;
  }
}

const isDevice = (input: string) => input.startsWith('/dev/video');

function inputArgs(i: FfmpegInput, realtime: boolean, forProbe: boolean): string[] {
  const a: string[] = [];
  const format = i.format ?? (isDevice(i.input) ? 'v4l2' : undefined);
  if (format) a.push('-f', format);
  if (i.pixelFormat) a.push(format === 'v4l2' ? '-input_format' : '-pixel_format', i.pixelFormat);
  // Size and rate are capture options of devices and raw streams; other inputs carry their own
  // (the delivered frames are scaled to width x height either way).
  const raw = format === 'v4l2' || format === 'rawvideo';
  if (raw && i.width !== undefined && i.height !== undefined) a.push('-video_size', `${i.width}x${i.height}`);
  if (raw && i.fps !== undefined) a.push('-framerate', String(i.fps));
  if (i.inputOptions) a.push(...i.inputOptions);
  if (realtime && !forProbe) a.push('-re');
  a.push('-i', i.input);
  return a;
}

function ratio(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const [n, d] = s.split('/').map(Number);
  const v = d ? n / d : n;
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Runs a command to its end and collects its output, bounded in size (and in time, when given). */
export function run(cmd: string, args: string[], timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(e);
      return;
    }
    let stdout = '';
    child.stdout!.on('data', (d) => { if (stdout.length < 4e6) stdout += d; });
    const stderr = stderrTail(child, 64e3);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr: stderr() }); });
  });
}

/** Keeps the last `max` characters a child writes on stderr (the reason when it fails); onText sees all of it. */
export function stderrTail(child: ChildProcess, max = 4000, onText?: (s: string) => void): () => string {
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    tail = (tail + s).slice(-max);
    onText?.(s);
  });
  return () => tail;
}

/** The last lines of a child's stderr, on one line. */
export function lastLines(s: string, n = 3): string {
  return s.trim().split('\n').slice(-n).join(' | ');
}

/** What an input holds (ffprobe): size, rate, pixel format, frame count when known. */
/**
 * countFrames decodes the whole stream to count what decodes (exact, slow); countPackets only
 * demuxes (fast, but a packet cut short by a crash still counts).
 */
export async function probeMedia(i: FfmpegInput & { ffprobePath?: string; countFrames?: boolean; countPackets?: boolean }): Promise<MediaInfo> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_streams', '-show_format', '-of', 'json'];
  if (i.countFrames) args.push('-count_frames');
  else if (i.countPackets) args.push('-count_packets');
  args.push(...inputArgs(i, false, true).filter((x) => x !== '-i'));
  let r;
  try {
    r = await run(i.ffprobePath ?? 'ffprobe', args, 30000);
  } catch (e) {
    throw new FfmpegError(`cannot run ffprobe: ${(e as Error).message}`);
  }
  if (r.code !== 0) throw new FfmpegError(`${i.input}: ffprobe cannot read it: ${lastLines(r.stderr) || `exit ${r.code ?? r.signal}`}`);
  let j: { streams?: Array<Record<string, string | number | undefined>>; format?: Record<string, string | undefined> };
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new FfmpegError(`${i.input}: ffprobe printed no JSON`);
  }
  const s = j.streams?.[0];
  if (!s) throw new FfmpegError(`${i.input}: holds no video stream`);
  const width = Number(s.width), height = Number(s.height);
  if (!(width > 0 && height > 0)) throw new FfmpegError(`${i.input}: the video stream has no size`);
  const pix = String(s.pix_fmt ?? 'unknown');
  const nb = Number(s.nb_read_frames ?? s.nb_read_packets ?? s.nb_frames);
  const dur = Number(s.duration ?? j.format?.duration);
  return {
    kind: 'media', input: i.input, format: String(j.format?.format_name ?? i.format ?? 'unknown'), codec: String(s.codec_name ?? 'unknown'),
    pixelFormat: pix, width, height,
    fps: ratio(String(s.avg_frame_rate ?? '')) ?? ratio(String(s.r_frame_rate ?? '')),
    frames: Number.isInteger(nb) && nb > 0 ? nb : undefined,
    durationS: Number.isFinite(dur) && dur > 0 ? dur : undefined,
    colourModel: /^(gray|ya|mono|y4|y8|y16|p0)/.test(pix) ? 'gray' : 'rgb',
  };
}

/**
 * Events: 'frame' (Frame), 'signal' (SignalState, reason), 'end' (a regular file is done), and
 * 'stderr' (line) for ffmpeg's own diagnostics. It never emits 'error': every fault is a lost
 * signal, retried; bad options throw FfmpegError from the constructor.
 */
export class FfmpegSource extends EventEmitter implements FrameSource {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  private readonly o: FfmpegSourceOptions;
  private readonly stamper: FrameStamper;
  private readonly frameBytes: number;
  private readonly onEnd: 'end' | 'restart';
  private readonly backoff: { initialMs: number; maxMs: number; factor: number };
  private readonly stallMs: number;
  private child: ChildProcess | undefined;
  private readonly assembler: RawFrameAssembler;
  private running = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastDataMs = 0;
  private delayMs: number;
  private restarts = 0;
  private stderrTail: () => string = () => '';
  private state: SignalState = 'no signal';

  /** Probes the input (ffprobe) when its size or rate is not given, then builds the source. */
  static async open(o: FfmpegSourceOptions): Promise<FfmpegSource> {
    if (o.frame || (o.width !== undefined && o.height !== undefined && o.fps !== undefined)) return new FfmpegSource(o);
    const info = await probeMedia(o);
    return new FfmpegSource({ ...o, frame: { width: o.width ?? info.width, height: o.height ?? info.height, fps: o.fps ?? info.fps ?? 30 } });
  }

  constructor(o: FfmpegSourceOptions) {
    super();
    const { width, height, fps } = o.frame ?? o;
    if (!(Number.isInteger(width) && width! > 0 && Number.isInteger(height) && height! > 0 && width! <= 8192 && height! <= 8192))
      throw new FfmpegError(`ffmpeg source: width and height must be integers in [1, 8192] (got ${width}x${height}); use FfmpegSource.open() to probe them`);
    if (!(fps! > 0 && fps! <= 1000)) throw new FfmpegError(`ffmpeg source: fps must be in (0, 1000] (got ${fps})`);
    if (typeof o.input !== 'string' || o.input.length === 0) throw new FfmpegError('ffmpeg source: input must be a non-empty string');
    this.o = o;
    this.width = width!;
    this.height = height!;
    this.fps = fps!;
    this.id = `ffmpeg:${o.format === 'lavfi' ? 'lavfi' : o.input}`;
    this.frameBytes = this.width * this.height * (o.colour ? 3 : 1);
    this.assembler = new RawFrameAssembler(this.frameBytes, (pixels) => this.deliver(pixels));
    this.stamper = new FrameStamper({ sourceId: this.id, width: this.width, height: this.height, fps: this.fps, duplicates: o.duplicates });
    let regularFile = false;
    try { regularFile = !isDevice(o.input) && o.format !== 'lavfi' && existsSync(o.input) && statSync(o.input).isFile(); } catch { /* a URL */ }
    this.onEnd = o.onInputEnd ?? (regularFile ? 'end' : 'restart');
    const r = o.restart ?? {};
    this.backoff = { initialMs: r.initialMs ?? 250, maxMs: r.maxMs ?? 8000, factor: r.factor ?? 2 };
    if (!(this.backoff.initialMs > 0 && this.backoff.maxMs >= this.backoff.initialMs && this.backoff.factor >= 1))
      throw new FfmpegError('ffmpeg source: restart needs initialMs > 0, maxMs >= initialMs and factor >= 1');
    this.delayMs = this.backoff.initialMs;
    this.stallMs = o.stallMs ?? Math.max(2000, 10000 / this.fps);
  }

  get stats(): SourceStats {
    return { ...this.stamper.stats, restarts: this.restarts };
  }

  get signal(): SignalState { return this.state; }

  /** PID of the running ffmpeg, if any (tests and benches read its CPU time). */
  get pid(): number | undefined { return this.child?.pid; }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.spawnFfmpeg();
  }

  stop(): void {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.retryTimer = this.stallTimer = undefined;
    const c = this.child;
    this.child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  private args(): string[] {
    const o = this.o;
    const realtime = (o.realtime ?? true) && !isDevice(o.input) && o.format !== 'lavfi' && o.format !== 'rawvideo';
    return [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      ...inputArgs(o, realtime, false),
      '-map', '0:v:0', '-an', '-sn', '-dn',
      // Every frame as it comes: no duplication or dropping by ffmpeg; scaled to the agreed size
      // if the input changes size mid-stream.
      '-fps_mode', 'passthrough', '-vf', this.filter(),
      '-pix_fmt', o.colour ? 'rgb24' : 'gray',
      // ffmpeg 5.1's rawvideo encoder is frame-threaded and holds one or two frames back with
      // automatic threads: one thread takes capture-to-frame latency from ~25-40 ms to ~5-10 ms
      // (npm run bench:capture, table 5).
      '-threads', '1', '-f', 'rawvideo', 'pipe:1',
    ];
  }

  /**
   * The video filter. Gray from a packed 4:2:2 card (UYVY, YUYV: what most HDMI/SDI cards
   * deliver) takes the Y plane and expands its limited range with a table: the same bytes as
   * swscale's conversion for every Y level at about 60 % of its CPU (bench:capture, table 5).
   */
  private filter(): string {
    const packed422 = !this.o.colour && (this.o.pixelFormat === 'uyvy422' || this.o.pixelFormat === 'yuyv422');
    const y = packed422 ? 'format=yuv422p,extractplanes=y,lut=y=clip(round((val-16)*255/219)\\,0\\,255),' : '';
    return `${y}scale=${this.width}:${this.height}`;
  }

  private spawnFfmpeg(): void {
    this.assembler.reset();
    let child: ChildProcess;
    try {
      child = spawn(this.o.ffmpegPath ?? 'ffmpeg', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      this.lost(`cannot start ffmpeg: ${(e as Error).message}`);
      return;
    }
    this.child = child;
    this.lastDataMs = performance.now();
    child.stdout!.on('data', (chunk: Buffer) => { if (this.child === child) this.onData(chunk); });
    this.stderrTail = stderrTail(child, 4000, (s) => {
      for (const line of s.split('\n')) if (line.trim()) this.emit('stderr', line.trim());
    });
    child.on('error', (e) => {
      if (this.child !== child) return;
      // A failed spawn also emits 'close' (code -2, no stderr): forget the child so that the
      // attempt is reported once, with this reason, and the backoff grows once.
      this.child = undefined;
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
      this.lost(`cannot start ffmpeg (${this.o.ffmpegPath ?? 'ffmpeg'}): ${e.message}`);
    });
    child.on('close', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (!this.running) return;
      if (code === 0 && this.onEnd === 'end') {
        this.running = false;
        if (this.stallTimer) clearInterval(this.stallTimer);
        this.stallTimer = undefined; // a later start() sets up a new watchdog
        this.setState('no signal', 'end of input');
        this.emit('end');
        return;
      }
      const how = signal ? `was killed (${signal})` : code === 0 ? 'ended (end of input)' : `exited with code ${code}`;
      const why = lastLines(this.stderrTail());
      this.lost(`ffmpeg ${how}${why ? `: ${why}` : ''}`);
    });
    if (!this.stallTimer) {
      this.stallTimer = setInterval(() => {
        if (this.child && performance.now() - this.lastDataMs > this.stallMs) {
          const c = this.child;
          this.child = undefined;
          c.kill('SIGKILL');
          this.lost(`no data from ffmpeg for ${Math.round(this.stallMs)} ms (stalled input)`);
        }
      }, Math.min(500, this.stallMs / 2));
      this.stallTimer.unref();
    }
  }

  private onData(chunk: Buffer): void {
    this.lastDataMs = performance.now();
    this.assembler.push(chunk);
  }

  private deliver(pixels: Uint8Array): void {
    const arrivalMs = performance.now();
    const frame = this.o.colour ? this.stamper.stampColour(pixels, { arrivalMs }) : this.stamper.stamp(pixels, { arrivalMs });
    if (this.state !== 'live') {
      this.delayMs = this.backoff.initialMs;
      this.setState('live');
    }
    this.emit('frame', frame);
  }

  private setState(s: SignalState, reason?: string): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('signal', s, reason);
  }

  /** The signal is gone: report it, forget the partial frame, try again after the backoff delay. */
  private lost(reason: string): void {
    this.stamper.resetSignal();
    this.assembler.reset();
    // Reported even when already without signal, so each failed attempt is visible.
    this.state = 'no signal';
    this.emit('signal', 'no signal', reason);
    if (!this.running) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.backoff.maxMs, this.delayMs * this.backoff.factor);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.running) return;
      this.restarts++;
      this.spawnFfmpeg();
    }, delay);
  }
}
