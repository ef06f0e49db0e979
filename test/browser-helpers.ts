// Helpers for the overlay page's browser tests (Debian chromium driven by playwright-core): a
// demo on a free port that writes nothing in the repository, pages that collect their errors,
// the page's state, screen <-> pane coordinates, and pixel checks on screenshots.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Test } from 'tap';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { runDemo } from '../cli/demo.js';
import { resolveConfig } from '../core/config.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { launchChromium, sleep } from './helpers.js';

/** Every wait in these tests is bounded by this (ms). */
export const WAIT = 30000;

export interface Rect { x: number; y: number; width: number; height: number }
export interface PaneInfo { rect: Rect; spacingX: number; spacingY: number }
export interface Header {
  seq: number; width: number; height: number; frozen: boolean;
  tracking: { state: string; reason: string | null; confidence: number; center: { x: number; y: number } | null; scale: number };
  lesion: number[] | null; rings: Array<{ mm: number; contour: number[] }>;
  /** The perfusion reference disc (B-mode pane coordinates, radius mm), when placed. */
  reference: { x: number; y: number; radiusMm: number } | null;
}
export type PerfusionState = 'too-few-frames' | 'no-wash-in' | 'rising' | 'saturated' | 'poor-fit' | 'fitted';
/** A perfusion message (protocol v3), as far as the tests read it. */
export interface PerfusionMessage {
  type: 'perfusion'; v: number; notice: string; state: PerfusionState; message: string; model: 'lognormal' | 'gammaVariate'; units: string; durationS: number;
  counts: { samples: number; uncertain: number; lost: number; idle: number; skippedAnalyses: number; analyses: number; decimations: number };
  curve: { t: number[]; series: Record<string, Array<number | null>> };
  fit: { t: number[]; series: Record<string, number[]> } | null;
  regions: Array<{
    name: string; state: PerfusionState; message: string; n: number; arrivalS: number | null;
    rSquared: { lognormal: number | null; gammaVariate: number | null };
    parameters: Record<'AT' | 'PE' | 'TTP' | 'RT' | 'WiR' | 'WiAUC' | 'MTT' | 'FT' | 'WoR' | 'AUC', number> | null;
    relative: Record<string, number | null> | null;
  }>;
  phases: Record<'pre' | 'early' | 'peak' | 'late', [number | null, number | null]> | null;
}
export interface OverlayState {
  frozen: boolean; frozenSeq: number | null; layers: Record<'contour' | 'rings' | 'scores' | 'tic', boolean>; models: string[];
  controller: string | null; clinical: Record<string, unknown>; recording: { available: boolean; active: boolean; name: string | null; since: string | null };
}
export interface Reply { type: 'ack' | 'error'; re: string | null; id?: string; result?: Record<string, unknown>; error?: string; code?: string }
/** window.__sonomics, as far as the tests read it. */
export interface PageState {
  connected: boolean;
  framesDrawn: number;
  lastHeader: Header | null;
  layout: { width: number; height: number; panes: { bmode: PaneInfo; contrast: PaneInfo } } | null;
  viewer: { id: string; role: string } | null;
  state: OverlayState | null;
  scores: { seq: number; live: boolean; scores: Array<{ modelId: string; status: string; value: number | null; maskBand?: { radiusPx: number; shrunk: number | null; grown: number | null } }> } | null;
  /** The last perfusion message (null before the first, and after New injection until the next). */
  perfusion: PerfusionMessage | null;
  /** Perfusion messages not shown: analyses of a curve restarted meanwhile (New injection). */
  perfusionStale: number;
  /** What the perfusion chart drew last. */
  chart: { drawn: boolean; points: number; x?: [number, number]; y?: [number, number]; series?: string[]; fits?: string[]; phases?: Array<{ phase: string; from: number; to: number }> } | null;
  /** The reference disc as drawn on each pane in the last redraw (canvas pixels). */
  referenceDrawn: Array<{ pane: 'bmode' | 'contrast'; cx: number; cy: number; rx: number; ry: number }>;
  referenceTool: boolean;
  referencePlaced: { pane: 'bmode' | 'contrast'; x: number; y: number; seq: number | null; center: { x: number; y: number } | null } | null;
  exports: Array<{ format: string; status: number; name?: string; bytes?: number }>;
  events: Array<{ kind: string; label: string; seq: number | null; by: string }>;
  errors: string[];
  replies: Reply[];
  proposal: { shape: 'polygon'; points: number[] } | { shape: 'ellipse'; cx: number; cy: number; rx: number; ry: number } | TapProposal | null;
  tool: string | null;
  trackingState: string;
  /**
   * Tap to outline: a tap or box being outlined, taps and boxes sent, where the last one was, the
   * box being dragged (corners as dragged), the last segment / proposal reply.
   */
  segment: { pending: boolean; sent: number; at: TapPoint | null; box: DraggedBox | null; last: Reply | null };
}
export interface Box { x0: number; y0: number; x1: number; y1: number }
/** A Tap tool press dragged into a box: the pane pressed, its corners as dragged (B-mode pane coordinates). */
export interface DraggedBox extends Box { pane: 'bmode' | 'contrast' }
/**
 * Where the lesion was tapped: the pane tapped, B-mode pane coordinates, the frame on screen; for
 * a box dragged around it, its centre and the box sent (x0 < x1, y0 < y1).
 */
export interface TapPoint { pane: 'bmode' | 'contrast'; x: number; y: number; seq: number | null; box?: Box }
/** An outline proposed by the server's segmenter from a tap (its contour in B-mode pane pixels). */
export interface TapProposal { shape: 'tap'; points: number[]; area: number; confidence: number; grownPx: number; seq: number; at: TapPoint }

export interface Demo {
  url: string;
  /** Temporary folder of the audit log and recordings (removed in teardown). */
  dir: string;
  recordings: string;
  phantom: PhantomScanner;
  /** The phantom's truth for a frame it delivered recently (by frame seq). */
  truthOf(seq: number): PhantomTruth | undefined;
  log: string[];
  browser: Browser;
  /**
   * Another chromium, for a second screen. (A second page of the same browser is a background
   * window here: headless chromium throttles it until input to it stalls. Two tablets are two
   * browsers anyway.) Closed in teardown.
   */
  otherBrowser(): Promise<Browser>;
}

/**
 * Chromium plus the demo (the phantom through the pipeline to the overlay) on a free port, with
 * its audit log and recordings in a temporary folder. Teardown closes the browser, stops the
 * demo and removes the folder. Undefined when chromium is missing (launchChromium failed or skipped).
 */
export async function startDemo(t: Test, config: Record<string, unknown> = {}): Promise<Demo | undefined> {
  const browser = await launchChromium(t);
  if (!browser) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-browser-'));
  const recordings = join(dir, 'recordings');
  const cfg = resolveConfig({ ...config, overlay: { port: 0, ...(config.overlay as object | undefined) }, audit: { path: join(dir, 'audit.jsonl') }, recording: { dir: recordings } });
  const phantom = new PhantomScanner({ ...cfg.source.phantom });
  // Frames are numbered as delivered (seq), which is not the phantom's frame index once a frame
  // has been dropped: keep the truth of the last few seconds by seq.
  const truths = new Map<number, PhantomTruth>();
  phantom.on('frame', (f: { seq: number }, truth: PhantomTruth) => {
    truths.set(f.seq, truth);
    for (const k of truths.keys()) { if (truths.size <= 150) break; truths.delete(k); }
  });
  const ac = new AbortController();
  const log: string[] = [];
  const others: Browser[] = [];
  let url = '';
  const demo = runDemo({ config: cfg, source: phantom, headless: true, log: (l) => { log.push(l); const m = /(https?:\/\/\S+)/.exec(l); if (m && !url) url = m[1]; } }, ac.signal)
    .catch((e: Error) => { log.push(`demo failed: ${e.message}`); });
  t.teardown(async () => {
    for (const b of others) await b.close();
    await browser.close();
    ac.abort();
    await demo;
    rmSync(dir, { recursive: true, force: true });
  });
  for (const end = Date.now() + 10000; !url && Date.now() < end;) await sleep(20);
  if (!url) throw new Error(`the demo did not start: ${log.join(' | ')}`);
  const otherBrowser = async () => {
    const b = await launchChromium(t);
    if (!b) throw new Error('chromium is missing');
    others.push(b);
    return b;
  };
  return { url, dir, recordings, phantom, truthOf: (seq) => truths.get(seq), log, browser, otherBrowser };
}

export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught exceptions and console errors of the page. */
  problems: string[];
}

/** A page in a new browser context (its own viewer), loaded, with its errors collected. */
export async function openPage(browser: Browser, url: string, options: BrowserContextOptions = {}, waitForFrames = true): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 }, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(url);
  if (waitForFrames) await waitPage(page, (s) => s.framesDrawn > 3 && s.state !== null, 'frames drawn after hello');
  return { page, context, problems };
}

/** Reads window.__sonomics (a JSON-safe copy of the fields the tests use). */
export function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    const s = (window as unknown as { __sonomics: PageState }).__sonomics;
    const { connected, framesDrawn, lastHeader, layout, viewer, state, scores, perfusion, perfusionStale, chart, referenceDrawn, referenceTool, referencePlaced, exports, events, errors, replies, proposal, tool, trackingState, segment } = s;
    return JSON.parse(JSON.stringify({ connected, framesDrawn, lastHeader, layout, viewer, state, scores, perfusion, perfusionStale, chart, referenceDrawn, referenceTool, referencePlaced, exports, events, errors, replies, proposal, tool, trackingState, segment })) as PageState;
  });
}

/** Polls the page's state (from Node) until `cond` holds; throws after `timeout` ms, naming what it waited for. */
export async function waitPage(page: Page, cond: (s: PageState) => boolean, what: string, timeout = WAIT): Promise<PageState> {
  const end = Date.now() + timeout;
  for (;;) {
    const s = await pageState(page);
    if (cond(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(40);
  }
}

/** The reply to the page's newest message of this type (waits for it). */
/**
 * The held frame is on screen: the state says frozen and the last frame drawn is the held one as
 * re-sent marked frozen (the same seq may arrive first unmarked, sent just before the freeze).
 */
export function heldOnScreen(s: PageState): boolean {
  return !!s.state?.frozen && !!s.lastHeader?.frozen && s.lastHeader.seq === s.state.frozenSeq;
}

export async function lastReply(page: Page, re: string, after = 0): Promise<Reply> {
  const s = await waitPage(page, (s) => s.replies.filter((r) => r.re === re).length > after, `a reply to "${re}"`);
  return s.replies.filter((r) => r.re === re).at(-1)!;
}
export const replyCount = async (page: Page, re: string) => (await pageState(page)).replies.filter((r) => r.re === re).length;

/** Pane (B-mode pane pixel) coordinates -> page CSS pixels, through the canvas's letterboxed scaling. */
export async function screenMapper(page: Page): Promise<{ toScreen: (px: number, py: number, pane?: 'bmode' | 'contrast') => { x: number; y: number }; scale: number; ox: number; oy: number }> {
  const st = await pageState(page);
  const layout = st.layout!;
  const box = (await page.locator('#view').boundingBox())!;
  // object-fit: contain: the picture is scaled by s and centred in the element's box.
  const s = Math.min(box.width / layout.width, box.height / layout.height);
  const ox = box.x + (box.width - layout.width * s) / 2, oy = box.y + (box.height - layout.height * s) / 2;
  return {
    scale: s, ox, oy,
    toScreen: (px, py, pane = 'bmode') => {
      const r = layout.panes[pane].rect;
      return { x: ox + (r.x + px + 0.5) * s, y: oy + (r.y + py + 0.5) * s };
    },
  };
}

export interface Rgb { data: Buffer; width: number; height: number; channels: number }

export async function screenshotRgb(page: Page, path?: string): Promise<Rgb> {
  const png = await page.screenshot(path ? { path } : {});
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Tracking-state contour colour (#ffd23f, antialiased over gray pictures). */
export const isContourColour = (r: number, g: number, b: number) => r > 170 && g > 140 && b < 110 && r - b > 90;
/** Ring colours (#39c0ff, #5b8cff, #a070ff): blue dominates. */
export const isRingColour = (r: number, g: number, b: number) => b > 190 && b - r > 50 && b - g > 15;
/** The perfusion reference colour (#a0e060, lime): green dominates, little blue. */
export const isReferenceColour = (r: number, g: number, b: number) => g > 170 && g - r > 20 && g - b > 80;
/** The proposed-outline colour (#ff4fd8, magenta): red and blue high, green low. */
export const isProposalColour = (r: number, g: number, b: number) => r > 190 && b > 150 && r - g > 100 && b - g > 70;

/** Is there a pixel of this colour within `radius` (screen px) of (x, y)? */
export function colourNear(img: Rgb, x: number, y: number, radius: number, test: (r: number, g: number, b: number) => boolean): boolean {
  for (let dy = -Math.ceil(radius); dy <= Math.ceil(radius); dy++) {
    for (let dx = -Math.ceil(radius); dx <= Math.ceil(radius); dx++) {
      if (dx * dx + dy * dy > radius * radius) continue;
      const px = Math.round(x + dx), py = Math.round(y + dy);
      if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
      const i = (py * img.width + px) * img.channels;
      if (test(img.data[i], img.data[i + 1], img.data[i + 2])) return true;
    }
  }
  return false;
}

/** Boundary pixels of a 0/255 mask (inside, with a 4-neighbour outside), every `step`-th in scan order. */
export function maskBoundary(mask: Uint8Array, width: number, height: number, step = 1): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let k = 0;
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!at(x, y) || (at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))) continue;
      if (k++ % step === 0) out.push([x, y]);
    }
  }
  return out;
}

/** Distance from (x, y) to a closed polygon's edges. */
export function distanceToPolygon(x: number, y: number, p: ArrayLike<number>): number {
  let best = Infinity;
  const n = p.length / 2;
  for (let i = 0; i < n; i++) {
    const ax = p[2 * i], ay = p[2 * i + 1], bx = p[2 * ((i + 1) % n)], by = p[2 * ((i + 1) % n) + 1];
    const dx = bx - ax, dy = by - ay;
    const l2 = dx * dx + dy * dy;
    const u = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / l2));
    best = Math.min(best, Math.hypot(x - (ax + u * dx), y - (ay + u * dy)));
  }
  return best;
}

/** Canvas pixels (RGBA) at contour points of the frame on screen, read in the page. */
export function canvasPixelsOn(page: Page, which: 'lesion' | 'rings', every = 10): Promise<number[][]> {
  return page.evaluate(({ which, every }) => {
    const s = (window as unknown as { __sonomics: PageState }).__sonomics;
    const h = s.lastHeader!;
    const ctx = (document.getElementById('view') as HTMLCanvasElement).getContext('2d')!;
    const { x, y } = s.layout!.panes.bmode.rect;
    const contours = which === 'lesion' ? [h.lesion ?? []] : h.rings.map((r) => r.contour);
    const out: number[][] = [];
    for (const c of contours) for (let i = 0; i < c.length; i += 2 * every) out.push(Array.from(ctx.getImageData(x + c[i], y + c[i + 1], 1, 1).data));
    return out;
  }, { which, every });
}

/** Fraction of pixels passing a colour test. */
export const fraction = (px: number[][], test: (r: number, g: number, b: number) => boolean) => px.filter(([r, g, b]) => test(r, g, b)).length / Math.max(1, px.length);

/** Points of a circle (pane coordinates), for drawing an outline. */
export function circle(cx: number, cy: number, r: number, n = 40): Array<[number, number]> {
  return Array.from({ length: n + 1 }, (_, k) => [cx + r * Math.cos((2 * Math.PI * k) / n), cy + r * Math.sin((2 * Math.PI * k) / n)] as [number, number]);
}
