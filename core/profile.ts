// Screen layout profiles: for one scanner model and mode, where the B-mode and contrast panes sit
// on the captured screen, which part of a pane is imaged (the scan sector) and how many mm a pixel
// spans. Profiles are named in the config (`layouts.<name>`) and resolved once, at start-up, to the
// pipeline's Layout; the sector mask is rendered here, never per frame.
import { regionSpacingMm, type UltrasoundRegion } from './calibration.js';
import { validateLayout, type Layout, type PaneName } from './layout.js';
import type { PixelRect } from './native.js';

export type Point = [number, number];

/** Where the image is inside a pane (pane coordinates, the same for both panes). */
export type SectorSpec =
  /** Convex/phased probe: an annular sector around `apex`; angles from straight down (+y), positive towards +x. */
  | { type: 'fan'; apex: Point; innerRadius: number; outerRadius: number; fromDeg: number; toDeg: number }
  | { type: 'rect'; x: number; y: number; width: number; height: number }
  | { type: 'polygon'; points: Point[] };

export type CalibrationSpec =
  /** Two points on the scanner's depth ruler (screen coordinates) `mm` apart: isotropic spacing. */
  | { ruler: { from: Point; to: Point; mm: number } }
  | { mmPerPixel: number | { x: number; y: number } }
  /** From the DICOM Sequence of Ultrasound Regions, given when the profile is resolved. */
  | { dicom: true };

/** A layout profile as written in the config (JSON/YAML). */
export interface LayoutProfile {
  description?: string;
  screen: { width: number; height: number };
  panes: { bmode: PixelRect; contrast: PixelRect };
  sector?: SectorSpec;
  calibration: CalibrationSpec;
}

/** A profile problem; every entry of `problems` starts with the dotted key it is about. */
export class ProfileError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ProfileError';
  }
}

export const PROFILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const MAX_SCREEN = 8192;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isPoint = (v: unknown): v is Point => Array.isArray(v) && v.length === 2 && isNum(v[0]) && isNum(v[1]);
const fmt = (v: number) => String(+v.toPrecision(6));

/** Reports keys of `o` not in `known` (as `key.sub: unknown key`); true when `o` is an object. */
function objectAt(o: unknown, key: string, known: readonly string[], out: string[]): o is Obj {
  if (!isObj(o)) { out.push(`${key}: must be an object`); return false; }
  for (const k of Object.keys(o)) if (!known.includes(k)) out.push(`${key}.${k}: unknown key`);
  return true;
}

function rectProblems(r: unknown, key: string, out: string[], minSize: number, extraKeys: string[] = []): r is PixelRect {
  if (!objectAt(r, key, ['x', 'y', 'width', 'height', ...extraKeys], out)) return false;
  const before = out.length;
  for (const k of ['x', 'y'] as const) if (!isInt(r[k]) || (r[k] as number) < 0) out.push(`${key}.${k}: must be an integer >= 0`);
  for (const k of ['width', 'height'] as const)
    if (!isInt(r[k]) || (r[k] as number) < minSize) out.push(`${key}.${k}: must be an integer >= ${minSize}`);
  return out.length === before;
}

/**
 * Every problem of a profile that can be found without runtime data (DICOM regions), each naming
 * its key under `layouts.<name>`. Empty when the profile is usable.
 */
export function profileProblems(name: string, profile: unknown): string[] {
  const key = `layouts.${name}`, out: string[] = [];
  if (!new RegExp(PROFILE_NAME_PATTERN).test(name))
    out.push(`${key}: a profile name must start with a letter or digit and contain only letters, digits, ".", "_" and "-"`);
  if (!objectAt(profile, key, ['description', 'screen', 'panes', 'sector', 'calibration'], out)) return out;
  const p = profile;
  if (p.description !== undefined && typeof p.description !== 'string') out.push(`${key}.description: must be a string`);

  let screen: { width: number; height: number } | undefined;
  if (p.screen === undefined) out.push(`${key}.screen: missing (the captured screen's {width, height} in pixels)`);
  else if (objectAt(p.screen, `${key}.screen`, ['width', 'height'], out)) {
    const s = p.screen, before = out.length;
    for (const k of ['width', 'height'] as const)
      if (!isInt(s[k]) || (s[k] as number) < 16 || (s[k] as number) > MAX_SCREEN) out.push(`${key}.screen.${k}: must be an integer in [16, ${MAX_SCREEN}]`);
    if (out.length === before) screen = s as { width: number; height: number };
  }

  const panes: Partial<Record<PaneName, PixelRect>> = {};
  if (p.panes === undefined) out.push(`${key}.panes: missing (the bmode and contrast pane rectangles)`);
  else if (objectAt(p.panes, `${key}.panes`, ['bmode', 'contrast'], out)) {
    for (const pane of ['bmode', 'contrast'] as const) {
      const k = `${key}.panes.${pane}`, r = p.panes[pane];
      if (r === undefined) { out.push(`${k}: missing`); continue; }
      if (!rectProblems(r, k, out, 8)) continue;
      if (screen && (r.x + r.width > screen.width || r.y + r.height > screen.height))
        out.push(`${k}: x ${r.x}..${r.x + r.width - 1}, y ${r.y}..${r.y + r.height - 1} lies outside the ${screen.width}x${screen.height} screen`);
      else panes[pane] = r;
    }
    const b = panes.bmode, c = panes.contrast;
    if (b && c && (b.width !== c.width || b.height !== c.height))
      out.push(`${key}.panes: the B-mode (${b.width}x${b.height}) and contrast (${c.width}x${c.height}) panes must have the same size`);
    if (b && c && b.x < c.x + c.width && c.x < b.x + b.width && b.y < c.y + c.height && c.y < b.y + b.height)
      out.push(`${key}.panes: the B-mode and contrast panes overlap`);
  }

  if (p.sector !== undefined) sectorProblems(p.sector, `${key}.sector`, panes.bmode, out);
  if (p.calibration === undefined) out.push(`${key}.calibration: missing (one of ruler, mmPerPixel, dicom)`);
  else calibrationProblems(p.calibration, `${key}.calibration`, screen, out);
  return out;
}

function sectorProblems(s: unknown, key: string, pane: PixelRect | undefined, out: string[]): void {
  if (!isObj(s)) { out.push(`${key}: must be an object with a type (fan, rect or polygon)`); return; }
  switch (s.type) {
    case 'fan': {
      if (!objectAt(s, key, ['type', 'apex', 'innerRadius', 'outerRadius', 'fromDeg', 'toDeg'], out)) return;
      if (!isPoint(s.apex)) out.push(`${key}.apex: must be [x, y] (pane pixels)`);
      const ri = s.innerRadius, ro = s.outerRadius, a0 = s.fromDeg, a1 = s.toDeg;
      if (!isNum(ri) || ri < 0) out.push(`${key}.innerRadius: must be a number >= 0 (pixels)`);
      if (!isNum(ro) || ro <= 0) out.push(`${key}.outerRadius: must be a number > 0 (pixels)`);
      else if (isNum(ri) && ri >= ro) out.push(`${key}.outerRadius: must be greater than innerRadius (${fmt(ri)})`);
      for (const [k, v] of [['fromDeg', a0], ['toDeg', a1]] as const)
        if (!isNum(v) || v < -180 || v > 180) out.push(`${key}.${k}: must be a number in [-180, 180] (degrees from straight down, positive towards +x)`);
      if (isNum(a0) && isNum(a1) && a0 >= a1) out.push(`${key}.toDeg: must be greater than fromDeg (${fmt(a0)})`);
      return;
    }
    case 'rect': {
      if (!rectProblems(s, key, out, 1, ['type'])) return;
      const r = s;
      if (pane && (r.x + r.width > pane.width || r.y + r.height > pane.height))
        out.push(`${key}: x ${r.x}..${r.x + r.width - 1}, y ${r.y}..${r.y + r.height - 1} lies outside the ${pane.width}x${pane.height} pane`);
      return;
    }
    case 'polygon': {
      if (!objectAt(s, key, ['type', 'points'], out)) return;
      if (!Array.isArray(s.points) || s.points.length < 3) out.push(`${key}.points: must be a list of at least 3 [x, y] points (pane pixels)`);
      else for (let i = 0; i < s.points.length; i++) if (!isPoint(s.points[i])) out.push(`${key}.points.${i}: must be [x, y] (pane pixels)`);
      return;
    }
    default:
      out.push(`${key}.type: must be fan, rect or polygon (got ${JSON.stringify(s.type) ?? 'nothing'})`);
  }
}

function calibrationProblems(c: unknown, key: string, screen: { width: number; height: number } | undefined, out: string[]): void {
  if (!objectAt(c, key, ['ruler', 'mmPerPixel', 'dicom'], out)) return;
  const kinds = ['ruler', 'mmPerPixel', 'dicom'].filter((k) => c[k] !== undefined);
  if (kinds.length !== 1) {
    out.push(`${key}: give exactly one of ruler, mmPerPixel or dicom (${kinds.length ? `found ${kinds.join(' and ')}` : 'found none'})`);
    return;
  }
  if (c.ruler !== undefined) {
    const k = `${key}.ruler`;
    if (!objectAt(c.ruler, k, ['from', 'to', 'mm'], out)) return;
    const r = c.ruler;
    for (const end of ['from', 'to'] as const) {
      const q = r[end];
      if (!isPoint(q)) out.push(`${k}.${end}: must be [x, y] (screen pixels)`);
      else if (screen && (q[0] < 0 || q[1] < 0 || q[0] > screen.width - 1 || q[1] > screen.height - 1))
        out.push(`${k}.${end}: [${q.join(', ')}] lies outside the ${screen.width}x${screen.height} screen`);
    }
    if (!isNum(r.mm) || r.mm <= 0) out.push(`${k}.mm: must be a number > 0 (the distance between the two points in mm)`);
    if (isPoint(r.from) && isPoint(r.to) && Math.hypot(r.to[0] - r.from[0], r.to[1] - r.from[1]) < 1)
      out.push(r.from[0] === r.to[0] && r.from[1] === r.to[1] ? `${k}: the two points are the same` : `${k}: the two points must be at least 1 pixel apart`);
  } else if (c.mmPerPixel !== undefined) {
    const m = c.mmPerPixel, k = `${key}.mmPerPixel`;
    if (isObj(m)) {
      if (objectAt(m, k, ['x', 'y'], out))
        for (const a of ['x', 'y'] as const) if (!isNum(m[a]) || m[a] <= 0) out.push(`${k}.${a}: must be a number > 0`);
    } else if (!isNum(m) || m <= 0) out.push(`${k}: must be a number > 0 or {x, y} (mm per pixel)`);
  } else if (c.dicom !== true) out.push(`${key}.dicom: must be true (spacing from the DICOM ultrasound regions)`);
}

/** Throws a ProfileError listing every problem of the profile that needs no runtime data. */
export function checkProfile(name: string, profile: unknown): asserts profile is LayoutProfile {
  const problems = profileProblems(name, profile);
  if (problems.length) throw new ProfileError(problems);
}

/** A region's pixel size (inclusive bounds). */
const regionSize = (r: UltrasoundRegion) => ({ width: r.x1 - r.x0 + 1, height: r.y1 - r.y0 + 1 });
const regionText = (r: UltrasoundRegion) => `x ${r.x0}..${r.x1}, y ${r.y0}..${r.y1} (format ${r.spatialFormat}, data type ${r.dataType})`;
const UNITS: Record<number, string> = { 0: 'none', 1: 'percent', 2: 'dB', 3: 'cm', 4: 'seconds', 5: 'hertz', 6: 'dB/seconds', 7: 'cm/sec', 8: 'cm2', 9: 'cm2/sec', 10: 'cm3', 11: 'cm3/sec', 12: 'degrees' };
const unitName = (u: number) => UNITS[u] ?? `code ${u}`;

/** mm per pixel of the DICOM region(s) containing `rect`; throws naming `key`. */
function regionSpacing(regions: UltrasoundRegion[], rect: PixelRect, key: string): { x: number; y: number } {
  const where = `x ${rect.x}..${rect.x + rect.width - 1}, y ${rect.y}..${rect.y + rect.height - 1}`;
  const around = regions.filter((r) => r.x0 <= rect.x && r.y0 <= rect.y && r.x1 >= rect.x + rect.width - 1 && r.y1 >= rect.y + rect.height - 1);
  if (!around.length)
    throw new ProfileError([`${key}: no DICOM ultrasound region contains the B-mode pane (${where}); the regions are ${regions.map(regionText).join('; ')}`]);
  const spaced = around.map(regionSpacingMm).filter((s): s is { x: number; y: number } => s.x !== undefined && s.y !== undefined);
  if (!spaced.length)
    throw new ProfileError([`${key}: the DICOM region around the B-mode pane has physical units ${around.map((r) => `${unitName(r.unitsX)}/${unitName(r.unitsY)}`).join(', ')} (x/y), not cm, so it gives no pixel spacing`]);
  const [s] = spaced;
  if (spaced.some((o) => Math.abs(o.x - s.x) > 1e-9 * s.x || Math.abs(o.y - s.y) > 1e-9 * s.y))
    throw new ProfileError([`${key}: the DICOM regions around the B-mode pane disagree on the pixel spacing (${spaced.map((o) => `${fmt(o.x)}x${fmt(o.y)} mm`).join(' vs ')})`]);
  return s;
}

/**
 * Resolves a profile to the pipeline's Layout: panes, pixel spacing (ruler, mmPerPixel, or the
 * DICOM region containing the B-mode pane, from `opts.regions`) and the rendered sector mask.
 * Throws a ProfileError whose problems name keys under `layouts.<name>`.
 */
export function resolveProfile(name: string, profile: LayoutProfile, opts: { regions?: UltrasoundRegion[] } = {}): Layout {
  checkProfile(name, profile);
  const key = `layouts.${name}`;
  const { screen, panes, calibration: cal } = profile;
  let spacing: { x: number; y: number };
  if ('ruler' in cal) {
    const { from, to, mm } = cal.ruler;
    const s = mm / Math.hypot(to[0] - from[0], to[1] - from[1]);
    spacing = { x: s, y: s };
  } else if ('mmPerPixel' in cal) {
    const m = cal.mmPerPixel;
    spacing = typeof m === 'number' ? { x: m, y: m } : { x: m.x, y: m.y };
  } else {
    if (!opts.regions?.length)
      throw new ProfileError([`${key}.calibration.dicom: no DICOM ultrasound regions were given (the spacing comes from the Sequence of Ultrasound Regions of a DICOM file from this scanner)`]);
    spacing = regionSpacing(opts.regions, panes.bmode, `${key}.calibration.dicom`);
  }
  let sector: Uint8Array | undefined;
  if (profile.sector) {
    sector = renderSector(profile.sector, panes.bmode.width, panes.bmode.height);
    if (!sector.some((v) => v !== 0)) throw new ProfileError([`${key}.sector: covers no pixel of the ${panes.bmode.width}x${panes.bmode.height} pane`]);
  }
  const pane = (n: PaneName) => ({ name: n, rect: { ...panes[n] }, spacingX: spacing.x, spacingY: spacing.y });
  // checkProfile has put the panes on the screen, at one size, with spacing > 0 and a pane-sized sector.
  return validateLayout({ width: screen.width, height: screen.height, panes: { bmode: pane('bmode'), contrast: pane('contrast') }, sector });
}

/**
 * Renders a sector spec to a width x height mask (255 = imaged). A pixel is imaged when its centre
 * (integer coordinates) is inside the shape or on its border.
 */
export function renderSector(s: SectorSpec, width: number, height: number): Uint8Array {
  const m = new Uint8Array(width * height);
  const eps = 1e-9;
  switch (s.type) {
    case 'fan': {
      const [ax, ay] = s.apex, r0 = s.innerRadius - eps, r1 = s.outerRadius + eps;
      const a0 = (s.fromDeg * Math.PI) / 180 - eps, a1 = (s.toDeg * Math.PI) / 180 + eps;
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const dx = x - ax, dy = y - ay, r = Math.hypot(dx, dy);
          if (r < r0 || r > r1) continue;
          const a = r === 0 ? 0 : Math.atan2(dx, dy);
          if (a >= a0 && a <= a1) m[y * width + x] = 255;
        }
      return m;
    }
    case 'rect':
      for (let y = s.y; y < Math.min(height, s.y + s.height); y++) m.fill(255, y * width + s.x, y * width + Math.min(width, s.x + s.width));
      return m;
    case 'polygon': {
      const pts = s.points, n = pts.length;
      const ys = pts.map((q) => q[1]), xs = pts.map((q) => q[0]);
      const y0 = Math.max(0, Math.ceil(Math.min(...ys))), y1 = Math.min(height - 1, Math.floor(Math.max(...ys)));
      const x0 = Math.max(0, Math.ceil(Math.min(...xs))), x1 = Math.min(width - 1, Math.floor(Math.max(...xs)));
      for (let y = y0; y <= y1; y++)
        for (let x = x0; x <= x1; x++) {
          let inside = false, border = false;
          for (let i = 0, j = n - 1; i < n && !border; j = i++) {
            const [xi, yi] = pts[i], [xj, yj] = pts[j];
            if ((yi > y) !== (yj > y) && x < xi + ((y - yi) * (xj - xi)) / (yj - yi)) inside = !inside;
            border = onSegment(x, y, xi, yi, xj, yj);
          }
          if (inside || border) m[y * width + x] = 255;
        }
      return m;
    }
    default:
      throw new ProfileError([`sector.type: must be fan, rect or polygon (got ${JSON.stringify((s as { type?: unknown }).type)})`]);
  }
}

function onSegment(x: number, y: number, x1: number, y1: number, x2: number, y2: number): boolean {
  const cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1);
  const len = Math.hypot(x2 - x1, y2 - y1);
  if (Math.abs(cross) > 1e-9 * Math.max(1, len)) return false;
  return Math.min(x1, x2) - 1e-9 <= x && x <= Math.max(x1, x2) + 1e-9 && Math.min(y1, y2) - 1e-9 <= y && y <= Math.max(y1, y2) + 1e-9;
}

/**
 * A Layout straight from a DICOM file's ultrasound regions, for dual-view files: two 2D tissue
 * regions (spatial format 1, data type 1) of equal size side by side, the left one B-mode and the
 * right one contrast. Anything else throws a ProfileError asking for a named profile.
 */
export function layoutFromRegions(regions: UltrasoundRegion[], width: number, height: number): Layout {
  const key = 'dicom regions';
  const tissue = regions.filter((r) => r.spatialFormat === 1 && r.dataType === 1).sort((a, b) => a.x0 - b.x0 || a.y0 - b.y0);
  const need = 'the pipeline needs two panes of equal size (B-mode left, contrast right); name a layout profile for this scanner in the config (layouts.<name>) instead';
  if (tissue.length !== 2)
    throw new ProfileError([`${key}: found ${tissue.length} 2D tissue region(s)${tissue.length ? ` (${tissue.map(regionText).join('; ')})` : ''}; ${need}`]);
  const [left, right] = tissue, ls = regionSize(left), rs = regionSize(right);
  if (ls.width !== rs.width || ls.height !== rs.height)
    throw new ProfileError([`${key}: the two 2D tissue regions are ${ls.width}x${ls.height} and ${rs.width}x${rs.height}; ${need}`]);
  if (left.x1 >= right.x0) throw new ProfileError([`${key}: the two 2D tissue regions are not side by side (${regionText(left)}; ${regionText(right)}); ${need}`]);
  for (const r of [left, right])
    if (r.x1 >= width || r.y1 >= height) throw new ProfileError([`${key}: the tissue region ${regionText(r)} lies outside the ${width}x${height} image`]);
  const pane = (n: PaneName, r: UltrasoundRegion, k: string) => {
    const s = regionSpacingMm(r);
    if (s.x === undefined || s.y === undefined)
      throw new ProfileError([`${key}.${k}: physical units ${unitName(r.unitsX)}/${unitName(r.unitsY)} (x/y) are not cm, so the region gives no pixel spacing`]);
    return { name: n, rect: { x: r.x0, y: r.y0, ...regionSize(r) }, spacingX: s.x, spacingY: s.y };
  };
  return validateLayout({ width, height, panes: { bmode: pane('bmode', left, 'left'), contrast: pane('contrast', right, 'right') } });
}

export interface RenderedFrame { data: Uint8Array; width: number; height: number }

const COLOURS: Record<PaneName, string> = { bmode: '#00d8ff', contrast: '#ff9f1a' };
const LABELS: Record<PaneName, string> = { bmode: 'B-mode', contrast: 'contrast' };
const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Draws a resolved layout over a captured 8-bit gray frame and returns PNG bytes (RGB): each pane
 * outlined just outside its rectangle in its own colour with a label (name, size, spacing), the
 * non-imaged part of the sector tinted and its border outlined, and the calibration ruler (points,
 * line, mm and pixel length). Pane pixels inside the sector keep their gray values. Text needs a
 * font; without one the drawing still succeeds and only the text is lost (pango draws empty boxes).
 */
export async function renderProfilePng(frame: RenderedFrame, layout: Layout, opts: { name?: string; ruler?: { from: Point; to: Point; mm: number } } = {}): Promise<Buffer> {
  const { width, height } = frame;
  if (width !== layout.width || height !== layout.height || frame.data.length !== width * height)
    throw new RangeError(`renderProfilePng: the frame is ${width}x${height} (${frame.data.length} bytes), the layout's screen is ${layout.width}x${layout.height}`);
  const { default: sharp } = await import('sharp');
  const svg: string[] = [];
  const text = (x: number, y: number, s: string, colour: string, anchor = 'start') =>
    svg.push(`<text x="${x}" y="${y}" fill="${colour}" stroke="#000" stroke-width="3" paint-order="stroke" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="13" text-anchor="${anchor}">${escapeXml(s)}</text>`);
  for (const n of ['bmode', 'contrast'] as const) {
    const { rect: r, spacingX, spacingY } = layout.panes[n];
    svg.push(`<rect x="${r.x - 1}" y="${r.y - 1}" width="${r.width + 2}" height="${r.height + 2}" fill="none" stroke="${COLOURS[n]}" stroke-width="2" shape-rendering="crispEdges"/>`);
    const sp = spacingX === spacingY ? `${fmt(spacingX)} mm/px` : `${fmt(spacingX)} x ${fmt(spacingY)} mm/px`;
    // Below the pane when there is room (scanners put their own labels above), else above it.
    const below = r.y + r.height + 18 <= height - 4;
    text(r.x, below ? r.y + r.height + 18 : Math.max(13, r.y - 6), `${LABELS[n]} ${r.width}x${r.height} at (${r.x}, ${r.y})  ${sp}`, COLOURS[n]);
  }
  if (opts.ruler) {
    const { from: [x0, y0], to: [x1, y1], mm } = opts.ruler;
    const px = Math.hypot(x1 - x0, y1 - y0), c = '#ff3bd4', ring = 4;
    // Rings around the points and a dashed line from ring to ring: the pixels at the points stay visible.
    for (const [x, y] of [[x0, y0], [x1, y1]]) svg.push(`<circle cx="${x + 0.5}" cy="${y + 0.5}" r="${ring}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    if (px > 2 * ring) {
      const ux = ((x1 - x0) / px) * ring, uy = ((y1 - y0) / px) * ring;
      svg.push(`<line x1="${x0 + 0.5 + ux}" y1="${y0 + 0.5 + uy}" x2="${x1 + 0.5 - ux}" y2="${y1 + 0.5 - uy}" stroke="${c}" stroke-width="1" stroke-dasharray="4 3"/>`);
    }
    const mx = (x0 + x1) / 2, my = (y0 + y1) / 2, right = mx < width - 150, tx = right ? mx + 10 : mx - 10;
    text(tx, my, `${fmt(mm)} mm / ${px.toFixed(1)} px`, c, right ? 'start' : 'end');
    text(tx, my + 16, `= ${fmt(mm / px)} mm/px`, c, right ? 'start' : 'end');
  }
  const caption = [opts.name ? `layout profile ${opts.name}` : '', layout.sector ? 'red tint: outside the scan sector' : ''].filter(Boolean).join('  |  ');
  if (caption) text(width - 8, height - 8, caption, '#ffffff', 'end');
  const overlays: { input: Buffer; left: number; top: number; raw?: { width: number; height: number; channels: 4 } }[] = [
    { input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join('')}</svg>`), left: 0, top: 0 },
  ];
  if (layout.sector) {
    const { width: pw, height: ph } = layout.panes.bmode.rect;
    const tint = sectorOverlay(layout.sector, pw, ph);
    for (const n of ['bmode', 'contrast'] as const)
      overlays.push({ input: tint, raw: { width: pw, height: ph, channels: 4 }, left: layout.panes[n].rect.x, top: layout.panes[n].rect.y });
  }
  const gray = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
  return sharp(gray, { raw: { width, height, channels: 1 } }).toColourspace('srgb').composite(overlays).removeAlpha().png().toBuffer();
}

/** RGBA pane overlay: outside the sector a translucent red tint, its border pixels opaque green. */
function sectorOverlay(mask: Uint8Array, w: number, h: number): Buffer {
  const out = Buffer.alloc(w * h * 4);
  // Neighbours beyond the pane count as imaged: the pane outline already marks the pane's edge.
  const inside = (x: number, y: number) => x < 0 || y < 0 || x >= w || y >= h || mask[y * w + x] !== 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      if (mask[y * w + x] === 0) out.set([255, 40, 40, 70], o);
      else if (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1)) out.set([60, 255, 90, 255], o);
    }
  return out;
}
