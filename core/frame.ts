// A Frame is one picture as a source delivered it: 8-bit gray, whole screen, stamped on arrival.
export interface Frame {
  /** 8-bit gray pixels, row-major, width*height bytes. Never mutated once created. */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** Arrival time in milliseconds on this process's monotonic clock (performance.now()). */
  readonly timestampMs: number;
  /** Sequence number assigned by the source, increasing by one per delivered frame. */
  readonly seq: number;
  /** Which source produced it, e.g. "phantom:42" or "ffmpeg:/dev/video0". */
  readonly sourceId: string;
  /**
   * Time of the frame on the source's own clock, ms from the source's first frame, when the
   * source knows it (DICOM frame time, a recording's stamps); undefined for live capture.
   */
  readonly sourceTimeMs?: number;
  /** True when the pixels repeat the previous frame: the scanner had not refreshed its image. */
  readonly duplicate?: boolean;
  /** Interleaved RGB (width*height*3 bytes) when the source delivers colour (e.g. Doppler). */
  readonly rgb?: Uint8Array;
}

export interface FrameExtras {
  sourceTimeMs?: number;
  duplicate?: boolean;
  rgb?: Uint8Array;
}

export function createFrame(data: Uint8Array, width: number, height: number, seq: number, sourceId: string,
  timestampMs = performance.now(), extras: FrameExtras = {}): Frame {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new RangeError(`frame: width and height must be positive integers (got ${width}x${height})`);
  if (data.length !== width * height)
    throw new RangeError(`frame: ${data.length} bytes do not make a ${width}x${height} 8-bit frame (${width * height} bytes)`);
  if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`frame: seq must be a non-negative integer (got ${seq})`);
  if (extras.rgb && extras.rgb.length !== width * height * 3)
    throw new RangeError(`frame: rgb has ${extras.rgb.length} bytes, a ${width}x${height} RGB frame has ${width * height * 3}`);
  const f: Frame = { data, width, height, timestampMs, seq, sourceId };
  if (extras.sourceTimeMs !== undefined) Object.assign(f, { sourceTimeMs: extras.sourceTimeMs });
  if (extras.duplicate) Object.assign(f, { duplicate: true });
  if (extras.rgb) Object.assign(f, { rgb: extras.rgb });
  return Object.freeze(f);
}
