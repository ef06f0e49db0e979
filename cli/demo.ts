// `sonomics demo`, `run` and `replay`: a frame source through the whole pipeline to the browser
// overlay. The demo is the phantom scanner; run takes the configured source (capture card,
// DICOM cine, recording); replay a recording.
import { spawn } from 'node:child_process';
import type { SonomicsConfig } from '../core/config.js';
import type { Layout } from '../core/layout.js';
import { createLesionMask, type LesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline, type DisplayFrame, type PipelineStats, type ScoreUpdate } from '../core/pipeline.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import type { FrameSource, SignalState, SourceStats } from '../device/source.js';
import { OverlayServer, type OverlayStats } from '../web-overlay/server.js';

export interface DemoOptions {
  config: SonomicsConfig;
  frames?: number;
  headless: boolean;
  log: (line: string) => void;
  /** The source (default: the phantom of the config). Started and stopped here. */
  source?: FrameSource;
  /** Its screen layout (default: the source's own). */
  layout?: Layout;
  /** Lesion outline (B-mode pane coordinates) to lock on the first frame; the phantom's truth by default. */
  lesion?: LesionMask;
}

export interface DemoSummary {
  url: string;
  notice: string;
  source: { id: string; fps: number; width: number; height: number } & SourceStats;
  frames: number;
  tracking: { frames: number; meanErrorPx: number; maxErrorPx: number; states: Record<string, number> };
  lastScores: unknown;
  pipeline: PipelineStats;
  overlay: OverlayStats;
}

export async function runDemo(o: DemoOptions, signal?: AbortSignal): Promise<DemoSummary> {
  const cfg = o.config;
  const models = await Promise.all(cfg.models.map((m) => loadRiskModel(m)));
  const source = o.source ?? new PhantomScanner({ ...cfg.source.phantom, frames: o.frames });
  const layout = o.layout ?? source.layout;
  if (!layout) throw new RangeError(`${source.id} does not know its screen layout: name a layout profile`);
  let signalState: SignalState = 'live';
  let signalReason: string | undefined;
  source.on('signal', (s: SignalState, reason?: string) => {
    signalState = s;
    signalReason = reason;
    o.log(`${source.id}: ${s}${reason ? ` (${reason})` : ''}`);
  });
  const sourceError = new Promise<Error>((resolve) => source.once('error', resolve));
  const pipeline = new Pipeline({
    layout, ringsMm: cfg.pipeline.ringsMm, binWidth: cfg.pipeline.binWidth, featureThreads: cfg.pipeline.featureThreads,
    tracker: cfg.pipeline.tracker, models, scoreWindow: cfg.pipeline.scoreWindow,
  });
  const server = new OverlayServer({
    pipeline, host: cfg.overlay.host, port: cfg.overlay.port, jpegQuality: cfg.overlay.jpegQuality, maxBufferedBytes: cfg.overlay.maxBufferedBytes,
    status: () => ({ source: { id: source.id, fps: source.fps, signal: signalState, reason: signalReason, ...source.stats } }),
  });
  server.on('clientError', (e: Error) => o.log(`overlay: ${e.message}`));
  pipeline.on('frameError', (e: Error, f: { seq: number }) => o.log(`frame ${f.seq}: ${e.message}`));

  // The demo plays the sonographer: it outlines the lesion on the first frame (the phantom's
  // true outline, or the outline given), and tracking follows it from there.
  let locked = false;
  let delivered = 0;
  const errors: number[] = [];
  const states: Record<string, number> = {};
  let lastScores: unknown = null;
  let reachedLimit: () => void = () => {};
  const limit = new Promise<void>((resolve) => { reachedLimit = resolve; });
  source.on('frame', (frame, truth?: PhantomTruth) => {
    if (!locked) {
      const r = layout.panes.bmode.rect;
      const mask = o.lesion ?? (truth?.lesionMask && createLesionMask(truth.lesionMask.slice(), r.width, r.height));
      if (mask) pipeline.lockLesion(mask).catch((e: Error) => o.log(`lesion outline refused: ${e.message}`));
      locked = true;
    }
    pipeline.push(frame, truth);
    if (o.frames !== undefined && ++delivered >= o.frames) reachedLimit();
  });
  pipeline.on('display', (d: DisplayFrame) => {
    states[d.track.state] = (states[d.track.state] ?? 0) + 1;
    const t = d.truth as PhantomTruth | undefined;
    if (t && d.track.state !== 'idle') errors.push(Math.hypot(d.track.center.x - t.center.x, d.track.center.y - t.center.y));
  });
  pipeline.on('scores', (u: ScoreUpdate) => { if (u.live) lastScores = u.scores.map((s) => ({ modelId: s.modelId, version: s.version, value: s.value, band: s.band, category: s.category, status: s.status })); });

  const url = await server.listen();
  o.log(`sonomics overlay: ${url}  (${DECISION_SUPPORT_NOTICE})`);
  pipeline.start();
  const ended = new Promise<void>((resolve) => {
    source.once('end', () => resolve());
    void limit.then(resolve);
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  source.start();
  if (!o.headless) openBrowser(url, o.log);
  const failed = await Promise.race([ended.then(() => undefined), sourceError]);
  source.stop();
  await pipeline.stop();
  if (failed) {
    await server.close();
    throw failed;
  }
  const summary: DemoSummary = {
    url, notice: DECISION_SUPPORT_NOTICE,
    source: { id: source.id, fps: source.fps, width: source.width, height: source.height, ...source.stats },
    frames: source.stats.delivered,
    tracking: {
      frames: errors.length,
      meanErrorPx: errors.length ? errors.reduce((a, b) => a + b, 0) / errors.length : NaN,
      maxErrorPx: errors.length ? Math.max(...errors) : NaN,
      states,
    },
    lastScores,
    pipeline: pipeline.stats(),
    overlay: server.stats(),
  };
  await server.close();
  return summary;
}

function openBrowser(url: string, log: (l: string) => void): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => log(`could not open a browser (${cmd}); open ${url} yourself`));
    child.unref();
  } catch {
    log(`could not open a browser; open ${url} yourself`);
  }
}
