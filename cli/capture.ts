// The capture commands: probe, frames, record, export, layout (render a profile over a frame).
// Each opens its input through device/open.ts, so every kind of input works with every command.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Frame } from '../core/frame.js';
import { readGrayImage } from '../core/imageio.js';
import { cropRows, type Layout } from '../core/layout.js';
import { createLesionMask, type LesionMask } from '../core/mask.js';
import { renderProfilePng, type LayoutProfile } from '../core/profile.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { DicomFile } from '../device/dicom.js';
import { probeMedia, type FfmpegSourceOptions } from '../device/ffmpeg.js';
import { ImageFolderSource } from '../device/images.js';
import { inputKind, layoutFor, openInput } from '../device/open.js';
import { PhantomScanner } from '../device/phantom.js';
import { exportRecording, openRecording, SessionRecorder } from '../device/recording.js';
import type { FrameSource } from '../device/source.js';
import { UsageError } from './errors.js';

export interface InputOptions {
  input: string;
  ffmpeg: Partial<FfmpegSourceOptions>;
}

function spacingOf(l: Layout | undefined): { x: number; y: number } | null {
  return l ? { x: l.panes.bmode.spacingX, y: l.panes.bmode.spacingY } : null;
}

function panesOf(l: Layout | undefined) {
  return l ? { bmode: l.panes.bmode.rect, contrast: l.panes.contrast.rect, sector: Boolean(l.sector) } : null;
}

/** `sonomics probe INPUT`: what a source holds, as one JSON object. */
export async function probe(o: InputOptions): Promise<Record<string, unknown>> {
  const kind = inputKind(o.input, o.ffmpeg.format);
  if (kind === 'dicom') {
    const f = await DicomFile.open(o.input);
    const i = f.info;
    return {
      kind, input: o.input, width: i.width, height: i.height, frames: i.frames, fps: i.fps ?? null, frameTimeMs: i.frameTimeMs ?? null,
      pixelSpacingMm: i.pixelSpacingMm ?? null, colourModel: i.colourModel, photometric: i.photometric,
      transferSyntax: { uid: i.transferSyntaxUid, name: i.transferSyntaxName }, bitsStored: i.bitsStored,
      regions: i.regions, manufacturer: i.manufacturer ?? null, model: i.model ?? null,
    };
  }
  if (kind === 'recording') {
    const r = await openRecording(o.input);
    const last = r.frames[r.frames.length - 1];
    return {
      kind, input: o.input, width: r.header.width, height: r.header.height, frames: r.frames.length, fps: r.header.fps,
      durationS: last ? last.t / 1000 : 0, pixelSpacingMm: spacingOf(r.layout), colourModel: r.header.pixelFormat === 'rgb24' ? 'rgb' : 'gray',
      duplicates: r.frames.filter((e) => e.dup).length, source: r.header.source, createdAt: r.header.createdAt, panes: panesOf(r.layout),
      ...(r.header.trimmedFrom && { trimmedFrom: r.header.trimmedFrom }), notes: r.notes,
    };
  }
  if (kind === 'images') {
    // The size is the first frame's; the other files are counted, not decoded (frames does that).
    const s = await ImageFolderSource.open({ path: o.input, fps: o.ffmpeg.fps });
    const files = s.files;
    return {
      kind, input: o.input, width: s.width, height: s.height, frames: files.length, fps: s.fps, durationS: files.length / s.fps,
      pixelSpacingMm: null, colourModel: 'gray', firstFile: files[0], lastFile: files[files.length - 1],
    };
  }
  if (kind === 'phantom') {
    const p = (await openInput(o.input)) as PhantomScanner;
    return {
      kind, input: o.input, width: p.width, height: p.height, frames: null, fps: p.fps, pixelSpacingMm: spacingOf(p.layout),
      colourModel: 'gray', panes: panesOf(p.layout), seed: p.seed,
    };
  }
  const m = await probeMedia({ ...o.ffmpeg, input: o.input, countFrames: isRegularFile(o.input, o.ffmpeg.format) });
  return {
    kind, input: o.input, width: m.width, height: m.height, frames: m.frames ?? null, fps: m.fps ?? null, durationS: m.durationS ?? null,
    pixelSpacingMm: null, colourModel: m.colourModel, codec: m.codec, pixelFormat: m.pixelFormat, container: m.format,
  };
}

/** A media file on disk (not a device, stream or lavfi graph): it ends, and its frames can be counted. */
function isRegularFile(input: string, format?: string): boolean {
  if (format) return false;
  try {
    return statSync(input).isFile() && inputKind(input) === 'media';
  } catch {
    return false;
  }
}

/** Runs a source until it ends, `max` frames arrived, or `signal` aborts; calls onFrame for each. */
export async function drive(source: FrameSource, onFrame: (f: Frame) => void, o: { max?: number; seconds?: number; signal?: AbortSignal }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let count = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      source.on('frame', (f: Frame) => {
        if (o.max !== undefined && count >= o.max) return;
        count++;
        try {
          onFrame(f);
        } catch (e) {
          reject(e);
          return;
        }
        if (o.max !== undefined && count >= o.max) resolve();
      });
      source.once('end', () => resolve());
      source.once('error', reject);
      if (o.seconds !== undefined) timer = setTimeout(resolve, o.seconds * 1000);
      o.signal?.addEventListener('abort', () => resolve(), { once: true });
      source.start();
    });
  } finally {
    if (timer) clearTimeout(timer);
    source.stop();
  }
}

export function endless(o: InputOptions): boolean {
  const k = inputKind(o.input, o.ffmpeg.format);
  return k === 'phantom' || (k === 'media' && !isRegularFile(o.input, o.ffmpeg.format));
}

/** `sonomics frames INPUT --out DIR [--every N] [--max N]`: decoded frames as 8-bit PGM (gray) or PNG (colour). */
export async function writeFrames(o: InputOptions & { out: string; every: number; max?: number }, signal?: AbortSignal): Promise<Record<string, unknown>> {
  if (o.max === undefined && endless(o)) throw new UsageError(`frames: ${o.input} never ends: give --max N`);
  const source = await openInput(o.input, { ffmpeg: o.ffmpeg, realtime: false, loop: false });
  mkdirSync(o.out, { recursive: true });
  const pending: Promise<unknown>[] = [];
  const files: string[] = [];
  let seen = 0;
  await drive(source, (f) => {
    const k = seen++;
    if (k % o.every !== 0) return;
    const name = `frame-${String(k).padStart(6, '0')}`;
    if (f.rgb) {
      const file = join(o.out, `${name}.png`);
      pending.push(sharp(f.rgb, { raw: { width: f.width, height: f.height, channels: 3 } }).png().toFile(file));
      files.push(file);
    } else {
      const file = join(o.out, `${name}.pgm`);
      writeFileSync(file, Buffer.concat([Buffer.from(`P5\n${f.width} ${f.height}\n255\n`, 'latin1'), f.data]));
      files.push(file);
    }
  }, { max: o.max === undefined ? undefined : o.max * o.every, signal });
  await Promise.all(pending);
  return { input: o.input, out: o.out, frames: seen, written: files.length, every: o.every, width: source.width, height: source.height, source: source.stats };
}

/** `sonomics record --input SRC --out FILE`: a session recording from any source. */
export async function record(o: InputOptions & { out: string; seconds?: number; max?: number; colour?: boolean; layout?: { name: string; profile: LayoutProfile } },
  log: (l: string) => void, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const source = await openInput(o.input, { ffmpeg: { ...o.ffmpeg, ...(o.colour && { colour: true }) }, realtime: true, loop: false });
  let layout: Layout | undefined;
  try {
    layout = layoutFor(source, o.layout);
  } catch (e) {
    // A profile named on the command line must fit; without one, a recording without a layout
    // is still a recording (replay then needs a profile).
    if (o.layout) throw e;
    layout = undefined;
  }
  const rec = new SessionRecorder({
    path: o.out, width: source.width, height: source.height, fps: source.fps, sourceId: source.id, colour: Boolean(o.colour), layout,
  });
  let recError: Error | undefined;
  rec.on('error', (e: Error) => { recError = e; log(`record: ${e.message}`); });
  source.on('signal', (s: string, reason?: string) => log(`${source.id}: ${s}${reason ? ` (${reason})` : ''}`));
  log(`recording ${source.id} (${source.width}x${source.height} @ ${source.fps} fps) to ${o.out}; Ctrl-C stops. ${DECISION_SUPPORT_NOTICE}`);
  const ac = new AbortController();
  signal?.addEventListener('abort', () => ac.abort(), { once: true });
  let sourceError: unknown;
  try {
    await drive(source, (f) => { rec.write(f); if (recError) ac.abort(); }, { max: o.max, seconds: o.seconds, signal: ac.signal });
  } catch (e) {
    sourceError = e;
  }
  // Always end the encoder, also when the source failed: ffmpeg then closes the file (what was
  // recorded stays readable) and exits; left running it would keep this process alive.
  const stats = await rec.close().catch((e: unknown) => { if (sourceError === undefined) throw e; return rec.stats; });
  if (sourceError !== undefined) throw sourceError;
  if (recError) throw recError;
  return { out: o.out, input: o.input, width: source.width, height: source.height, fps: source.fps, layout: Boolean(layout), recorded: stats, source: source.stats };
}

/** `sonomics export REC --out FILE [--from S] [--to S]`. */
export async function exportCommand(o: { input: string; out: string; fromS?: number; toS?: number }): Promise<Record<string, unknown>> {
  const rec = await openRecording(o.input);
  const r = await exportRecording(rec, o.out, { fromS: o.fromS, toS: o.toS });
  return { input: o.input, out: o.out, ...r, notes: rec.notes };
}

/** `sonomics layout INPUT --out PNG [--layout NAME] [--frame N]`: the profile drawn over a captured frame. */
export async function renderLayout(o: InputOptions & { out: string; frame: number; layout?: { name: string; profile: LayoutProfile } }): Promise<Record<string, unknown>> {
  const source = await openInput(o.input, { ffmpeg: o.ffmpeg, realtime: false, loop: false });
  const layout = layoutFor(source, o.layout);
  let picked: Frame | undefined;
  await drive(source, (f) => { picked = f; }, { max: o.frame + 1 });
  if (!picked) throw new Error(`${o.input}: no frame ${o.frame} (it holds ${source.stats.delivered})`);
  const ruler = o.layout && 'ruler' in o.layout.profile.calibration ? o.layout.profile.calibration.ruler : undefined;
  const png = await renderProfilePng(picked, layout, { name: o.layout?.name ?? source.id, ruler });
  writeFileSync(o.out, png);
  return { input: o.input, out: o.out, frame: picked.seq, layout: o.layout?.name ?? `(from ${source.id})`, panes: panesOf(layout), pixelSpacingMm: spacingOf(layout) };
}

/** A lesion outline for --lesion: a mask image the size of the screen (cropped to the B-mode pane) or of the pane. */
export async function readLesion(path: string, layout: Layout): Promise<LesionMask> {
  const img = await readGrayImage(path);
  const r = layout.panes.bmode.rect;
  if (img.width === r.width && img.height === r.height) return createLesionMask(img.data, r.width, r.height);
  if (img.width !== layout.width || img.height !== layout.height)
    throw new Error(`--lesion ${path}: ${img.width}x${img.height} is neither the screen (${layout.width}x${layout.height}) nor the B-mode pane (${r.width}x${r.height})`);
  const out = cropRows(img.data, img.width, r);
  if (!out.some((v) => v !== 0)) throw new Error(`--lesion ${path}: no lesion pixel inside the B-mode pane`);
  return createLesionMask(out, r.width, r.height);
}
