// Arrival stamping: every source hands its decoded pixels to a FrameStamper, which makes the
// Frame (sequence number, monotonic arrival time), marks repeated frames (native, cheap) and
// counts duplicates, gaps and drops. Scanners refresh the ultrasound image slower than the video
// signal (15-30 Hz in 60 Hz), so a capture card repeats frames; tracking and perfusion must see
// each image once.
import { createFrame, type Frame } from './frame.js';
import { native, type PixelRect } from './native.js';

/**
 * Default repeated-frame threshold: the largest 16x16 block mean absolute difference (gray
 * levels) at or below which a frame repeats the previous one. Tuned on 200 real consecutive
 * frames (../shared/data/us_seq_liver1, 18 Hz, free breathing): real successive images never fall
 * below 9.8, while one image captured twice with independent Gaussian capture noise peaks at
 * about 4.8 (sigma 3) and 6.5 (sigma 4) over the sequence. 8 sits between with a margin of about
 * 1.5 on both sides. `npm run bench:capture` prints both distributions.
 */
export const DEFAULT_DUPLICATE_THRESHOLD = 8;
export const DEFAULT_DUPLICATE_BLOCK = 16;

export interface DuplicateOptions {
  /** Block MAD at or below which a frame is a repeat (default 8). */
  threshold?: number;
  /** Block size in pixels (default 16). */
  blockSize?: number;
  /** Where the image lives (the panes); default the whole frame, chrome and clock included. */
  rects?: PixelRect[];
}

export interface ArrivalOptions {
  sourceId: string;
  width: number;
  height: number;
  /** Nominal frame rate of the signal; needed to count gaps and drops. */
  fps?: number;
  /** Repeated-frame detection; false turns it off (every frame is unique). */
  duplicates?: DuplicateOptions | false;
}

export interface ArrivalStats {
  /** Frames stamped. */
  delivered: number;
  /** Frames whose pixels differ from the previous frame. */
  unique: number;
  /** Frames that repeat the previous frame. */
  duplicates: number;
  /** Intervals longer than 1.5 nominal frame periods (signal hiccups, lost frames). */
  gaps: number;
  /** Frames the signal should have carried but never arrived (from elapsed time and the rate). */
  dropped: number;
}

export class FrameStamper {
  readonly sourceId: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number | undefined;
  private readonly dup: Required<Omit<DuplicateOptions, 'rects'>> & { rects: PixelRect[] | null } | undefined;
  private prev: Uint8Array | undefined;
  private seq = 0;
  // The current unbroken run of frames (a signal loss ends it): its first and last time and size.
  private firstT: number | undefined;
  private lastT: number | undefined;
  private runFrames = 0;
  private droppedBefore = 0;
  private counts = { delivered: 0, duplicates: 0, gaps: 0 };

  constructor(o: ArrivalOptions) {
    if (!(Number.isInteger(o.width) && o.width > 0 && Number.isInteger(o.height) && o.height > 0))
      throw new RangeError(`arrival: width and height must be positive integers (got ${o.width}x${o.height})`);
    if (o.fps !== undefined && !(o.fps > 0 && o.fps <= 1000)) throw new RangeError(`arrival: fps must be in (0, 1000] (got ${o.fps})`);
    this.sourceId = o.sourceId;
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    if (o.duplicates !== false) {
      const d = o.duplicates ?? {};
      const threshold = d.threshold ?? DEFAULT_DUPLICATE_THRESHOLD, blockSize = d.blockSize ?? DEFAULT_DUPLICATE_BLOCK;
      if (!(threshold >= 0 && threshold < 255)) throw new RangeError(`arrival: duplicates.threshold must be in [0, 255) (got ${threshold})`);
      if (!(Number.isInteger(blockSize) && blockSize >= 2 && blockSize <= 256)) throw new RangeError(`arrival: duplicates.blockSize must be an integer in [2, 256] (got ${blockSize})`);
      for (const r of d.rects ?? [])
        if (r.x < 0 || r.y < 0 || r.width < 1 || r.height < 1 || r.x + r.width > o.width || r.y + r.height > o.height)
          throw new RangeError(`arrival: duplicates.rects: ${JSON.stringify(r)} lies outside the ${o.width}x${o.height} frame`);
      this.dup = { threshold, blockSize, rects: d.rects?.length ? d.rects : null };
    }
  }

  /**
   * Makes the Frame for freshly arrived pixels. `data` must not be reused by the caller.
   * Gaps are measured on the source's clock when it has one, else on arrival. `duplicate`, when
   * given, is taken as is instead of comparing pixels.
   */
  stamp(data: Uint8Array, extras: { sourceTimeMs?: number; rgb?: Uint8Array; arrivalMs?: number; duplicate?: boolean } = {}): Frame {
    const arrival = extras.arrivalMs ?? performance.now();
    // A source that already knows (a recording) says so; otherwise compare with the previous frame.
    let duplicate = extras.duplicate ?? false;
    if (extras.duplicate === undefined && this.dup && this.prev) {
      const d = native.frameDifference(this.prev, data, this.width, this.height, this.dup.rects,
        { blockSize: this.dup.blockSize, stopAbove: this.dup.threshold });
      duplicate = d <= this.dup.threshold;
    }
    const frame = createFrame(data, this.width, this.height, this.seq++, this.sourceId, arrival,
      { sourceTimeMs: extras.sourceTimeMs, rgb: extras.rgb, duplicate });
    this.prev = data;
    this.counts.delivered++;
    if (duplicate) this.counts.duplicates++;
    const t = extras.sourceTimeMs ?? arrival;
    if (this.fps !== undefined && this.lastT !== undefined && t - this.lastT > 1.5 * (1000 / this.fps)) this.counts.gaps++;
    this.firstT ??= t;
    this.lastT = t;
    this.runFrames++;
    return frame;
  }

  /** Makes the Frame for freshly arrived interleaved RGB: the gray plane is derived natively (BT.601). */
  stampColour(rgb: Uint8Array, extras: { sourceTimeMs?: number; arrivalMs?: number; duplicate?: boolean } = {}): Frame {
    const gray = new Uint8Array(this.width * this.height);
    native.rgbToGray(rgb, this.width, this.height, 'interleaved', gray);
    return this.stamp(gray, { ...extras, rgb });
  }

  /** Forget the previous frame (after a signal loss: the next frame starts afresh). Counters stay. */
  resetSignal(): void {
    this.droppedBefore += this.runDropped();
    this.prev = undefined;
    this.firstT = this.lastT = undefined;
    this.runFrames = 0;
  }

  private runDropped(): number {
    if (this.fps === undefined || this.firstT === undefined || this.lastT === undefined) return 0;
    const expected = Math.round(((this.lastT - this.firstT) * this.fps) / 1000) + 1;
    return Math.max(0, expected - this.runFrames);
  }

  get stats(): ArrivalStats {
    const c = this.counts;
    return { ...c, unique: c.delivered - c.duplicates, dropped: this.droppedBefore + this.runDropped() };
  }
}
