// What every frame source (phantom, capture card through ffmpeg, DICOM, replay) looks like to
// the pipeline: an event emitter of stamped Frames with counters, in the style of ws/mqtt.js.
import type { EventEmitter } from 'node:events';
import type { ArrivalStats } from '../core/arrival.js';
import type { Layout } from '../core/layout.js';

export interface SourceStats extends ArrivalStats {
  /** Times the source lost its signal (input ended or failed) and started again. */
  restarts?: number;
}

/** 'live': frames are coming; 'no signal': the input is gone and the source is retrying. */
export type SignalState = 'live' | 'no signal';

/**
 * Events:
 * - 'frame' (frame: Frame, truth?: unknown): a stamped frame (frame.duplicate marks repeats);
 * - 'signal' (state: SignalState, reason?: string): the input came or went;
 * - 'end' (): a finite source (file, recording) has delivered everything;
 * - 'error' (err: Error): a fault that stops the source (bad file, bad options).
 */
export interface FrameSource extends EventEmitter {
  readonly id: string;
  /** Screen size of the frames it delivers. */
  readonly width: number;
  readonly height: number;
  /** Nominal frame rate of the signal (frames per second). */
  readonly fps: number;
  /** The screen layout when the source knows it (phantom, recording, DICOM regions); else from a profile. */
  readonly layout?: Layout;
  readonly stats: SourceStats;
  start(): void;
  stop(): void;
}
