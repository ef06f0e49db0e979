// Thin typed wrapper over the C++ addon (native/src). Every call crosses once with whole
// buffers; the kernels validate their arguments and throw errors that name the problem.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

export interface PixelRect { x: number; y: number; width: number; height: number }

/** A square crop of side `side` pixels centred at (cx, cy), pixel-index coordinates (pixel k's centre is at k). */
export interface SquareCrop { cx: number; cy: number; side: number }

export interface NativePhantomRenderer {
  /** Renders a screen; returns the number of lesion pixels in the pane (0 without maskOut). */
  render(frameIndex: number, motion: { dx: number; dy: number; scale: number; elevation?: number; gainDb?: number }, tic: { lesion: number; tissue: number },
    texts: Array<{ x: number; y: number; text: string; scale?: number; gray?: number }>, out: Uint8Array, maskOut?: Uint8Array): number;
  readonly lesionPerfusionMean: number;
  /** Per code 1..nCodes of a pane-sized code map under a motion: [lesion weight sum, tissue weight sum, pixels]. */
  perfusionWeights(motion: { dx: number; dy: number; scale: number }, codes: Uint8Array, nCodes: number): Float64Array;
  readonly contrastDynamicRangeDb: number;
  readonly contrastDbMin: number;
}

/** A template pose: centre (pixel indices, frame coordinates) and scale relative to the lock. */
export interface TemplatePose { x: number; y: number; scale: number }

export interface NativeTrackOptions {
  /** Search radius around the prediction (frame pixels, default 16). */
  searchRadius?: number;
  /** Drift control: the initial template is matched within anchorRadius working samples of the
   * frame-to-frame result and wins when within anchorTolerance and scoring minAnchorScore. */
  anchorRadius?: number;
  anchorTolerance?: number;
  minAnchorScore?: number;
  /** Refresh the previous-frame template from this frame when the initial template scores at
   * least updateMinScore, or the frame-to-frame match at least updateMinPrevious. */
  update?: boolean;
  updateMinScore?: number;
  updateMinPrevious?: number;
}

export interface NativeTrackStep extends TemplatePose {
  /** NCC of the initial template at the result. */
  score: number;
  /** NCC of the previous-frame template at its best match. */
  scorePrevious: number;
  /** Peak-to-sidelobe ratio of the coarse correlation map. */
  psr: number;
  /** True when the initial template confirmed the frame-to-frame result (drift corrected). */
  anchored: boolean;
}

export interface NativeTemplateTracker {
  track(frame: Uint8Array, width: number, height: number, bounds: PixelRect, prediction: TemplatePose, options?: NativeTrackOptions): NativeTrackStep;
  /**
   * Lost-lesion search: the initial template over +-radius frame pixels at the given scale;
   * candidates within +-excludeRadius of `around` are skipped.
   */
  search(frame: Uint8Array, width: number, height: number, bounds: PixelRect, around: TemplatePose, options?: { radius?: number; excludeRadius?: number }):
    TemplatePose & { score: number; psr: number };
  score(frame: Uint8Array, width: number, height: number, bounds: PixelRect, pose: TemplatePose): number;
  /** The previous-frame template becomes the initial one again. */
  resetPrevious(): void;
  readonly centerX: number;
  readonly centerY: number;
  /** Frame pixels per template sample at scale 1. */
  readonly step: number;
  readonly templateWidth: number;
  readonly templateHeight: number;
}

export interface NativeRadiomicsSettings {
  binWidth?: number; binCount?: number; distances?: number[]; symmetricalGLCM?: boolean; gldm_a?: number; voxelArrayShift?: number;
  minimumROIDimensions?: number; minimumROISize?: number; spacingX?: number; spacingY?: number; ibsi?: boolean; classes?: number[]; threads?: number;
}

export interface NativeRadiomicsResult { values: Float64Array; errors: Array<string | null> }

export interface NativeAddon {
  version: string;
  PhantomRenderer: new (opts: {
    seed: number; width: number; height: number; bmode: PixelRect; contrast: PixelRect; mmPerPixel: number; margin: number; marginX?: number;
    lesion: { cx: number; cy: number; radii: Float64Array };
  }) => NativePhantomRenderer;
  TemplateTracker: new (frame: Uint8Array, width: number, height: number, templateRect: PixelRect, options?: { maxSide?: number }) => NativeTemplateTracker;
  warpMask(src: Uint8Array, width: number, height: number,
    t: { fromX: number; fromY: number; toX: number; toY: number; scale: number }, dst: Uint8Array): number;
  ringCodes(mask: Uint8Array, width: number, height: number, opts: { spacingX: number; spacingY: number; radiiMm: number[] },
    out: Uint8Array, sector?: Uint8Array | null): number[];
  contour(codes: Uint8Array, width: number, height: number, minCode: number, maxCode: number): Int32Array;
  /**
   * Per region code 1..nCodes of a pane-sized code map, then for the reference ellipse (pane
   * pixels): [sum of lut[value], pixel count, pixels at 255], flattened.
   */
  regionIntensity(frame: Uint8Array, width: number, height: number, paneRect: PixelRect, codes: Uint8Array, nCodes: number,
    lut: Float32Array, reference?: { cx: number; cy: number; rx: number; ry: number } | null): Float64Array;
  radiomicsFeatureNames: string[];
  radiomicsDeprecatedFeatures: string[];
  radiomics(image: Uint8Array, width: number, height: number, panes: PixelRect[], codes: Uint8Array, nRings: number,
    settings: NativeRadiomicsSettings): NativeRadiomicsResult;
  /**
   * Largest block mean absolute difference (gray levels) between two frames over the rects
   * (default: the whole frame), in blockSize blocks (default 16). Stops at the first block above
   * stopAbove and returns that block's value.
   */
  frameDifference(prev: Uint8Array, cur: Uint8Array, width: number, height: number, rects?: PixelRect[] | null,
    options?: { blockSize?: number; stopAbove?: number }): number;
  /** RGB (interleaved, planar or YBR_FULL) to the 8-bit gray plane, and to interleaved RGB when rgb is given. */
  rgbToGray(src: Uint8Array, width: number, height: number, layout: 'interleaved' | 'planar' | 'ybr_full', gray: Uint8Array, rgb?: Uint8Array | null): void;
  /** Palette colour (DICOM LUTs as Uint16 entries) to gray and interleaved RGB. */
  applyPalette(indices: Uint8Array | Uint16Array, width: number, height: number,
    lut: { red: Uint16Array; green: Uint16Array; blue: Uint16Array; firstMapped: number; bits: number }, gray: Uint8Array, rgb?: Uint8Array | null): void;
  /** Monochrome samples (up to 16 bits stored) to 8-bit gray; invert for MONOCHROME1. */
  monochromeTo8(src: Uint8Array | Uint16Array, width: number, height: number, options: { bitsStored: number; invert: boolean }, gray: Uint8Array): void;
  radiomicsAsync(image: Uint8Array, width: number, height: number, panes: PixelRect[], codes: Uint8Array, nRings: number,
    settings: NativeRadiomicsSettings): Promise<NativeRadiomicsResult>;
  /**
   * Resamples a rect of an 8-bit gray image (fractional pixel-edge coordinates, inside the image)
   * to options.width x options.height and writes (pixel * scale - mean[c]) / std[c] per channel
   * (gray replicated) into out (channels * width * height floats, nchw or nhwc). Bilinear with
   * pixel-centre alignment (OpenCV INTER_LINEAR, PyTorch align_corners=False), source pixels
   * clamped to those the rect touches; with filter 'auto' (default) an axis downscaled by more
   * than 2x averages exact pixel areas instead (OpenCV INTER_AREA). Returns the filter per axis.
   */
  cropResize(src: Uint8Array, width: number, height: number, rect: PixelRect, out: Float32Array, options: NativeCropResizeOptions):
    { x: 'bilinear' | 'area'; y: 'bilinear' | 'area' };
  /** Bilinear samples (0 outside the image) of a square crop on size x size points, optionally mirrored left-right. */
  cropSample(src: Uint8Array, width: number, height: number, crop: SquareCrop, out: Float32Array, options: { size: number; flip?: boolean }): void;
  /**
   * The one-tap network's input: channel 0 the crop ((v/255)^gamma * gain, standardised over the
   * crop), channel 1 the tap as a Gaussian of sigma samples; nchw or nhwc.
   */
  tapInput(src: Uint8Array, width: number, height: number, crop: SquareCrop, tap: { x: number; y: number }, out: Float32Array,
    options: { size: number; sigma: number; layout?: 'nchw' | 'nhwc'; flip?: boolean; gain?: number; gamma?: number }): void;
  /**
   * The network's logits mapped back over the crop's pixels (above threshold, and inside `within`
   * when given: image pixels, inclusive), the 4-connected component at the tap (or the nearest
   * such pixel within snapRadius), holes filled, into out (255 inside). `flipped`: a mirrored pass
   * averaged in. Area 0 when nothing lies at the tap.
   */
  tapMask(logits: Float32Array, crop: SquareCrop, width: number, height: number, tap: { x: number; y: number }, out: Uint8Array,
    options: { size: number; threshold?: number; snapRadius?: number; flipped?: Float32Array | null; within?: { x0: number; y0: number; x1: number; y1: number } | null }):
    { area: number; x0: number; y0: number; x1: number; y1: number; tapLogit: number; atX?: number; atY?: number };
  /** Distance of every lesion pixel to the nearest outside pixel (the image's outside counts); returns the deepest pixel. */
  maskDistance(mask: Uint8Array, width: number, height: number, out: Float32Array): { x: number; y: number; distance: number };
  /** Grows (radius > 0) or shrinks (radius < 0) a mask by a Euclidean disc; out 255 inside; returns the area. */
  morphMask(mask: Uint8Array, width: number, height: number, radius: number, out: Uint8Array): number;
  /** Distances from every boundary pixel of a to the nearest boundary pixel of b. */
  surfaceDistances(a: Uint8Array, b: Uint8Array, width: number, height: number): Float64Array;
}

export interface NativeCropResizeOptions {
  width: number; height: number; channels: 1 | 3; layout: 'nchw' | 'nhwc';
  /** Default 1. */
  scale?: number;
  /** One per channel; defaults 0 and 1. */
  mean?: number[]; std?: number[];
  /** Default 'auto'. */
  filter?: 'auto' | 'bilinear';
}

function load(): NativeAddon {
  const root = packageRoot();
  const candidates = [join(root, 'build', 'Release', 'sonomics.node'), join(root, 'build', 'Debug', 'sonomics.node')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`sonomics: the native addon is not built (looked for ${candidates.join(', ')}); run npm install`);
  return createRequire(import.meta.url)(found) as NativeAddon;
}

export const native: NativeAddon = load();
