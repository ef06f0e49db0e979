// A Frame is one picture as the capture card delivered it: 8-bit gray, whole screen.
export interface Frame {
  /** 8-bit gray pixels, row-major, width*height bytes. Never mutated once created. */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** Monotonic capture time in milliseconds (performance.now() clock of this process). */
  readonly timestampMs: number;
  /** Sequence number assigned by the source, increasing by one per delivered frame. */
  readonly seq: number;
  /** Which source produced it, e.g. "phantom:42" or "ffmpeg:/dev/video0". */
  readonly sourceId: string;
}

export function createFrame(data: Uint8Array, width: number, height: number, seq: number, sourceId: string,
  timestampMs = performance.now()): Frame {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new RangeError(`frame: width and height must be positive integers (got ${width}x${height})`);
  if (data.length !== width * height)
    throw new RangeError(`frame: ${data.length} bytes do not make a ${width}x${height} 8-bit frame (${width * height} bytes)`);
  if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`frame: seq must be a non-negative integer (got ${seq})`);
  return Object.freeze({ data, width, height, timestampMs, seq, sourceId });
}
