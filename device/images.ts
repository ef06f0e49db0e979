// A folder of still frames (8-bit gray PGM, or PNG in gray or colour) replayed in name order as a
// frame source: what an exported cine or a research data set often is. Files are ordered by
// natural name order (numeric runs compare as numbers, so frame-2 comes before frame-10) and
// decoded one at a time when due, by core/imageio.ts (binary PGM by its own decoder, PNG through
// sharp, colour turned to gray). The first frame fixes the size; every failure is an
// ImageFolderError that names the folder or the file and the problem.
//
// Bad input:
// - folder-level problems (the folder is missing or not a folder, cannot be listed, holds no
//   .pgm/.png file) and a first frame that cannot be decoded (the size is then unknown) make
//   open() reject; with `new` + start() they arrive as an 'error' event instead.
// - a later frame that cannot be decoded, or whose size differs from the first frame's, is
//   handled the way DicomSource handles a bad frame in a cine: the frames before it are
//   delivered, then one 'error' event names the file and the frame, and the source stops (no
//   'end'). It is not skipped: a silent hole would shift every later frame in time and hide a
//   damaged export. Without an 'error' listener the error becomes a process warning, never an
//   exception, so the process keeps running.
import { FileSequenceSource } from './file-source.js';
import { opendirSync, statSync, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { FrameStamper, type DuplicateOptions } from '../core/arrival.js';
import { readGrayImage } from '../core/imageio.js';
import type { FrameSource, SourceStats } from './source.js';

/** A folder of frames that cannot be used, or a frame in it that cannot be. */
export class ImageFolderError extends Error {
  /** The folder or file concerned (as given, joined with the file name). */
  readonly path: string;
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`${path}: ${problem}`, options);
    this.name = 'ImageFolderError';
    this.path = path;
  }
}

/** Frame files: .pgm or .png in any case; hidden files (".name", e.g. macOS "._frame1.png") are not frames. */
export const isFrameFileName = (name: string): boolean => !name.startsWith('.') && /\.(pgm|png)$/i.test(name);

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Natural name order (frame-2 before frame-10); names equal to the collator fall back to code-unit order. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

function isFileEntry(dir: string, d: Dirent): boolean {
  if (d.isFile()) return true;
  if (!d.isSymbolicLink()) return false;
  try {
    return statSync(join(dir, d.name)).isFile();
  } catch {
    return false;
  }
}

/** Does `dir` hold at least one frame file? Stops at the first; false when it cannot be read. */
export function hasFrameFiles(dir: string): boolean {
  let h;
  try {
    h = opendirSync(dir);
  } catch {
    return false;
  }
  try {
    for (let d = h.readSync(); d !== null; d = h.readSync()) if (isFrameFileName(d.name) && isFileEntry(dir, d)) return true;
    return false;
  } catch {
    return false;
  } finally {
    h.closeSync();
  }
}

/** The frame files of a folder in natural name order; throws an ImageFolderError for folder-level problems. */
export async function listFrameFiles(dir: string): Promise<string[]> {
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageFolderError(dir, code === 'ENOENT' ? 'no such folder' : `cannot read the folder: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isDirectory()) throw new ImageFolderError(dir, 'not a folder (a folder of .pgm/.png frames was expected)');
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new ImageFolderError(dir, `cannot list the folder: ${(e as Error).message}`, { cause: e });
  }
  const names = entries.filter((d) => isFrameFileName(d.name) && isFileEntry(dir, d)).map((d) => d.name).sort(naturalCompare);
  if (names.length === 0) {
    const others = entries.map((d) => d.name).sort(naturalCompare);
    const shown = others.slice(0, 5).join(', ') + (others.length > 5 ? `, ... (${others.length} in all)` : '');
    throw new ImageFolderError(dir, `no .pgm or .png frame file in the folder (${others.length ? `it holds ${shown}` : 'it is empty'})`);
  }
  return names;
}

export interface ImageFolderSourceOptions {
  /** The folder of frames. */
  path: string;
  /** Pace frames at fps (true), or deliver them as fast as they decode (false, the default). */
  realtime?: boolean;
  /** Nominal frame rate: the pace in realtime mode, and what the stamper counts gaps against. Default 30. */
  fps?: number;
  /** Repeated-frame detection (see FrameStamper); false turns it off. */
  duplicates?: DuplicateOptions | false;
}

/**
 * A folder of PGM/PNG frames replayed as a frame source. Width, height and the file list are
 * known once the folder is open (ImageFolderSource.open, or after start() has opened it); before
 * that width and height are 0. Frames are delivered in order, none skipped; only the frame being
 * delivered is in memory. A bare frame sequence has no clock of its own: frames carry the
 * nominal one (index * 1000 / fps) as sourceTimeMs.
 */
export class ImageFolderSource extends FileSequenceSource implements FrameSource {
  readonly id: string;
  readonly path: string;
  readonly fps: number;
  private readonly realtime: boolean;
  private readonly duplicates: DuplicateOptions | false | undefined;
  private names: string[] | undefined;
  private size: { width: number; height: number } | undefined;
  /** The first frame, decoded by open() to learn the size; handed over once, then dropped. */
  private firstGray: Uint8Array | undefined;
  private stamper: FrameStamper | undefined;

  constructor(opts: ImageFolderSourceOptions) {
    super();
    if (!opts || typeof opts.path !== 'string' || opts.path === '') throw new RangeError('images: options.path must be a folder path');
    const fps = opts.fps ?? 30;
    if (!(fps > 0 && fps <= 1000)) throw new RangeError(`images: fps must be in (0, 1000] (got ${opts.fps})`);
    this.path = opts.path;
    this.id = `images:${basename(resolve(opts.path))}`;
    this.fps = fps;
    this.realtime = opts.realtime ?? false;
    this.duplicates = opts.duplicates;
  }

  /** Lists the folder and decodes the first frame, so width, height and files are known before start(). */
  static async open(opts: ImageFolderSourceOptions): Promise<ImageFolderSource> {
    const s = new ImageFolderSource(opts);
    await s.ensureOpen();
    return s;
  }

  get width(): number { return this.size?.width ?? 0; }
  get height(): number { return this.size?.height ?? 0; }
  /** The frame files in delivery order (names inside the folder); empty before the folder is open. */
  get files(): readonly string[] { return this.names ?? []; }
  get stats(): SourceStats {
    return this.stamper?.stats ?? { delivered: 0, unique: 0, duplicates: 0, gaps: 0, dropped: 0 };
  }

  private async ensureOpen(): Promise<void> {
    if (this.names && this.size) return;
    const names = await listFrameFiles(this.path);
    const first = await this.decode(names, 0);
    if (this.names && this.size) return; // opened meanwhile by a concurrent call
    this.names = names;
    this.size = { width: first.width, height: first.height };
    this.firstGray = first.data;
    this.stamper = new FrameStamper({ sourceId: this.id, width: first.width, height: first.height, fps: this.fps, duplicates: this.duplicates });
  }

  /** Decodes frame `index` of `names`; an ImageFolderError naming the file and the frame when it cannot. */
  private async decode(names: string[], index: number): Promise<{ data: Uint8Array; width: number; height: number }> {
    const file = join(this.path, names[index]);
    try {
      return await readGrayImage(file);
    } catch (e) {
      // readGrayImage names the file itself ("cannot read image PATH: why"): keep only the why.
      const msg = (e as Error).message;
      const prefix = `cannot read image ${file}: `;
      const why = msg.startsWith(prefix) ? msg.slice(prefix.length) : msg;
      throw new ImageFolderError(file, `frame ${index + 1} of ${names.length} could not be decoded: ${why}`, { cause: e });
    }
  }

  protected wrapError(e: unknown): Error {
    return new ImageFolderError(this.path, String(e), { cause: e });
  }

  protected async play(gen: number): Promise<void> {
    await this.ensureOpen();
    if (!this.current(gen)) return;
    const names = this.names!, { width, height } = this.size!, stamper = this.stamper!;
    const period = 1000 / this.fps;
    const t0 = performance.now();
    stamper.resetSignal();
    for (let index = 0; index < names.length; index++) {
      await this.pace(this.realtime, t0 + index * period);
      if (!this.current(gen)) return;
      let data: Uint8Array;
      if (index === 0 && this.firstGray) {
        data = this.firstGray;
        this.firstGray = undefined;
      } else {
        const img = await this.decode(names, index);
        if (!this.current(gen)) return;
        if (img.width !== width || img.height !== height)
          throw new ImageFolderError(join(this.path, names[index]),
            `frame ${index + 1} of ${names.length} is ${img.width}x${img.height}, the first frame (${names[0]}) is ${width}x${height}: every frame must have the first frame's size`);
        data = img.data;
      }
      // The folder's nominal clock (frame index at fps): what the tracker's motion model uses.
      this.emit('frame', stamper.stamp(data, { sourceTimeMs: index * period }));
    }
    if (this.current(gen)) this.finish();
  }
}
