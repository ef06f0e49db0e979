// What every frame source (phantom, capture card, DICOM, replay) looks like to the pipeline.
import type { EventEmitter } from 'node:events';
import type { Frame } from '../core/frame.js';
import type { Layout } from '../core/layout.js';

export interface SourceStats {
  /** Frames handed to listeners. */
  delivered: number;
  /** Frames the source produced but could not deliver in time (e.g. the process was busy). */
  dropped: number;
}

/**
 * Events: 'frame' (frame: Frame, truth?: unknown), 'end' (), 'error' (err: Error).
 */
export interface FrameSource extends EventEmitter {
  readonly id: string;
  readonly layout: Layout;
  readonly fps: number;
  readonly stats: SourceStats;
  start(): void;
  stop(): void;
}
