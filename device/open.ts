// One way in for every kind of input: `phantom`, a recording (.sonrec folder), a folder of
// PGM/PNG frames, a DICOM file, or anything ffmpeg reads (capture card /dev/videoN, file, URL,
// lavfi pattern). Used by the commands (probe, frames, record, replay, run) and by the config's
// `source` section.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DuplicateOptions } from '../core/arrival.js';
import type { SonomicsConfig } from '../core/config.js';
import type { Layout } from '../core/layout.js';
import type { PixelRect } from '../core/native.js';
import { layoutFromRegions, resolveProfile, type LayoutProfile } from '../core/profile.js';
import { DicomSource } from './dicom.js';
import { FfmpegSource, type FfmpegSourceOptions } from './ffmpeg.js';
import { hasFrameFiles, ImageFolderSource } from './images.js';
import { PhantomScanner } from './phantom.js';
import { ReplaySource } from './recording.js';
import type { FrameSource } from './source.js';

export type InputKind = 'phantom' | 'recording' | 'images' | 'dicom' | 'media';

/** What kind of input a path or name is, by looking at it (not at its name alone). */
export function inputKind(input: string, format?: string): InputKind {
  if (format) return 'media';
  if (input === 'phantom' || /^phantom:\d+$/.test(input)) return 'phantom';
  // A folder: a recording when it holds session.json; else a folder of frames when it holds a
  // .pgm/.png file; any other folder is a recording too: ffmpeg reads none, and a damaged
  // recording (no session.json) then gets the recording's own error ("cannot read
  // session.json: missing") instead of ffprobe's.
  if (existsSync(input) && statSync(input).isDirectory()) {
    if (existsSync(join(input, 'session.json'))) return 'recording';
    return hasFrameFiles(input) ? 'images' : 'recording';
  }
  if (existsSync(input) && statSync(input).isFile()) {
    // DICOM Part 10: "DICM" after a 128-byte preamble.
    const fd = openSync(input, 'r');
    try {
      const b = Buffer.alloc(132);
      if (readSync(fd, b, 0, 132, 0) === 132 && b.toString('latin1', 128, 132) === 'DICM') return 'dicom';
    } finally {
      closeSync(fd);
    }
    if (/\.dcm$/i.test(input)) return 'dicom';
  }
  return 'media';
}

export interface OpenOptions {
  /** ffmpeg input options (format, pixel format, size, rate, colour, ...). */
  ffmpeg?: Partial<FfmpegSourceOptions>;
  /** Deliver file inputs at their own pace (true) or as fast as they decode (false). */
  realtime?: boolean;
  loop?: boolean;
  speed?: number;
  duplicates?: DuplicateOptions | false;
  phantom?: ConstructorParameters<typeof PhantomScanner>[0];
}

/** Opens any input as a FrameSource (not started). */
export async function openInput(input: string, o: OpenOptions = {}): Promise<FrameSource> {
  switch (inputKind(input, o.ffmpeg?.format)) {
    case 'phantom': {
      const seed = input.includes(':') ? Number(input.split(':')[1]) : undefined;
      return new PhantomScanner({ ...o.phantom, ...(seed !== undefined && { seed }) });
    }
    case 'recording':
      return ReplaySource.open({ path: input, realtime: o.realtime, speed: o.speed });
    case 'images':
      // --fps (an input option) sets the nominal rate of a bare frame sequence; default 30.
      return ImageFolderSource.open({ path: input, realtime: o.realtime, fps: o.ffmpeg?.fps, duplicates: o.duplicates });
    case 'dicom':
      return DicomSource.open({ path: input, realtime: o.realtime, loop: o.loop, duplicates: o.duplicates });
    case 'media':
      return FfmpegSource.open({ ...o.ffmpeg, input, realtime: o.realtime, duplicates: o.duplicates });
  }
}

/**
 * The source the config describes. With a layout profile, repeated-frame detection watches only
 * the panes: the scanner's clock and other chrome change without the image changing.
 */
export async function sourceFromConfig(cfg: SonomicsConfig, overrides: { frames?: number } = {}): Promise<FrameSource> {
  const s = cfg.source;
  // resolveConfig has checked the profile and its panes; the sector and spacing are not needed here.
  const profile = s.layout !== undefined ? cfg.layouts[s.layout] : undefined;
  const rects: PixelRect[] | undefined = profile && [profile.panes.bmode, profile.panes.contrast];
  const duplicates: DuplicateOptions | false = s.duplicates.enabled ? { threshold: s.duplicates.threshold, blockSize: s.duplicates.blockSize, rects } : false;
  switch (s.type) {
    case 'phantom':
      return new PhantomScanner({ ...s.phantom, frames: overrides.frames });
    case 'capture': {
      const c = s.capture;
      return FfmpegSource.open({
        input: c.input, format: c.format, pixelFormat: c.pixelFormat, width: c.width, height: c.height, fps: c.fps, inputOptions: c.inputOptions,
        colour: c.colour, ffmpegPath: c.ffmpegPath, restart: { initialMs: c.restartInitialMs, maxMs: c.restartMaxMs }, stallMs: c.stallMs, duplicates,
      });
    }
    case 'dicom':
      return DicomSource.open({ path: s.dicom.path!, loop: s.dicom.loop, duplicates });
    case 'replay':
      return ReplaySource.open({ path: s.replay.path!, speed: s.replay.speed });
  }
}

/**
 * The screen layout for a source: a named profile when given, else what the source knows
 * (phantom geometry, a recording's layout, a DICOM file's two tissue regions).
 */
export function layoutFor(source: FrameSource, profile?: { name: string; profile: LayoutProfile }): Layout {
  const dicom = source instanceof DicomSource ? source.info : undefined;
  if (profile) {
    const l = resolveProfile(profile.name, profile.profile, { regions: dicom?.regions });
    if (l.width !== source.width || l.height !== source.height)
      throw new RangeError(`layout profile "${profile.name}" is for a ${l.width}x${l.height} screen, ${source.id} delivers ${source.width}x${source.height}`);
    return l;
  }
  if (source.layout) return source.layout;
  if (dicom) return layoutFromRegions(dicom.regions, dicom.width, dicom.height);
  throw new RangeError(`${source.id} does not know its screen layout: name a layout profile (--layout NAME, or source.layout in the config)`);
}
