// Screen layout and calibration: where the panes sit on the captured screen and how many mm a
// pixel spans. The layout stage attaches this to each frame; no pixels are copied (kernels take
// the whole frame and a pane rect).
import type { Frame } from './frame.js';
import type { PixelRect } from './native.js';

export type PaneName = 'bmode' | 'contrast';

export interface Pane {
  readonly name: PaneName;
  /** Where the pane sits in the frame (pixels). */
  readonly rect: PixelRect;
  /** Pixel spacing in mm (x: lateral, y: axial/depth). */
  readonly spacingX: number;
  readonly spacingY: number;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly panes: { readonly bmode: Pane; readonly contrast: Pane };
  /** Optional scan-sector mask in pane coordinates (non-zero = imaged). Linear probes: none. */
  readonly sector?: Uint8Array;
}

export interface LaidOutFrame {
  readonly frame: Frame;
  readonly layout: Layout;
}

export function validateLayout(l: Layout): Layout {
  const problems: string[] = [];
  for (const name of ['bmode', 'contrast'] as const) {
    const p = l.panes[name];
    const r = p.rect;
    if (![r.x, r.y, r.width, r.height].every(Number.isInteger) || r.x < 0 || r.y < 0 || r.width < 8 || r.height < 8)
      problems.push(`layout.panes.${name}.rect must be integers with x,y >= 0 and size >= 8`);
    else if (r.x + r.width > l.width || r.y + r.height > l.height)
      problems.push(`layout.panes.${name}.rect lies outside the ${l.width}x${l.height} screen`);
    if (!(p.spacingX > 0) || !(p.spacingY > 0)) problems.push(`layout.panes.${name}: spacing must be > 0 mm/pixel`);
  }
  const b = l.panes.bmode.rect, c = l.panes.contrast.rect;
  if (b.width !== c.width || b.height !== c.height) problems.push('layout.panes: the B-mode and contrast panes must have the same size');
  const pb = l.panes.bmode, pc = l.panes.contrast;
  if (pb.spacingX !== pc.spacingX || pb.spacingY !== pc.spacingY) problems.push('layout.panes: dual view shows one image plane twice, so both panes must have the same pixel spacing');
  if (l.sector && l.sector.length !== b.width * b.height) problems.push('layout.sector must be pane-sized');
  if (problems.length) throw new RangeError(problems.join('; '));
  return l;
}

/**
 * A point in one pane's coordinates (pixel indices) shown in another pane of the same image
 * plane: through millimetres from the pane origin, so panes of different spacing map too.
 */
export function paneToPane(p: { x: number; y: number }, from: Pane, to: Pane): { x: number; y: number } {
  return { x: (p.x * from.spacingX) / to.spacingX, y: (p.y * from.spacingY) / to.spacingY };
}

/** A copy of a rectangle of a row-major 8-bit image (a pane of a screen), one row at a time. */
export function cropRows(data: Uint8Array, width: number, r: PixelRect): Uint8Array {
  const out = new Uint8Array(r.width * r.height);
  for (let y = 0; y < r.height; y++) out.set(data.subarray((r.y + y) * width + r.x, (r.y + y) * width + r.x + r.width), y * r.width);
  return out;
}

/** The layout stage: check the frame fits the calibrated screen and attach the layout. */
export function applyLayout(frame: Frame, layout: Layout): LaidOutFrame {
  if (frame.width !== layout.width || frame.height !== layout.height)
    throw new RangeError(`layout: frame ${frame.seq} is ${frame.width}x${frame.height}, the calibrated screen is ${layout.width}x${layout.height}`);
  return { frame, layout };
}
