// `sonomics demo`: the phantom scanner through the whole pipeline to the browser overlay.
import { spawn } from 'node:child_process';
import type { SonomicsConfig } from '../core/config.js';
import { createLesionMask } from '../core/mask.js';
import { loadModelCard } from '../core/models.js';
import { Pipeline, type DisplayFrame, type PipelineStats, type ScoreUpdate } from '../core/pipeline.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { OverlayServer, type OverlayStats } from '../web-overlay/server.js';

export interface DemoOptions {
  config: SonomicsConfig;
  frames?: number;
  headless: boolean;
  log: (line: string) => void;
}

export interface DemoSummary {
  url: string;
  notice: string;
  source: { id: string; fps: number; width: number; height: number; delivered: number; dropped: number };
  frames: number;
  tracking: { frames: number; meanErrorPx: number; maxErrorPx: number; states: Record<string, number> };
  lastScores: unknown;
  pipeline: PipelineStats;
  overlay: OverlayStats;
}

export async function runDemo(o: DemoOptions, signal?: AbortSignal): Promise<DemoSummary> {
  const cfg = o.config;
  const models = cfg.models.map((m) => loadModelCard(m));
  const phantom = new PhantomScanner({ ...cfg.source.phantom, frames: o.frames });
  const pipeline = new Pipeline({
    layout: phantom.layout, ringsMm: cfg.pipeline.ringsMm, binWidth: cfg.pipeline.binWidth, featureThreads: cfg.pipeline.featureThreads,
    tracker: cfg.pipeline.tracker, models, scoreWindow: cfg.pipeline.scoreWindow,
  });
  const server = new OverlayServer({
    pipeline, host: cfg.overlay.host, port: cfg.overlay.port, jpegQuality: cfg.overlay.jpegQuality, maxBufferedBytes: cfg.overlay.maxBufferedBytes,
    status: () => ({ source: { id: phantom.id, fps: phantom.fps, ...phantom.stats } }),
  });
  server.on('clientError', (e: Error) => o.log(`overlay: ${e.message}`));
  pipeline.on('frameError', (e: Error, f: { seq: number }) => o.log(`frame ${f.seq}: ${e.message}`));

  // The demo plays the sonographer: it outlines the lesion on the first frame (the phantom's
  // true outline), and tracking follows it from there.
  let locked = false;
  const errors: number[] = [];
  const states: Record<string, number> = {};
  let lastScores: unknown = null;
  phantom.on('frame', (frame, truth: PhantomTruth) => {
    if (!locked) {
      const r = phantom.layout.panes.bmode.rect;
      pipeline.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
      locked = true;
    }
    pipeline.push(frame, truth);
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
    phantom.once('end', () => resolve());
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  phantom.start();
  if (!o.headless) openBrowser(url, o.log);
  await ended;
  phantom.stop();
  await pipeline.stop();
  const summary: DemoSummary = {
    url, notice: DECISION_SUPPORT_NOTICE,
    source: { id: phantom.id, fps: phantom.fps, width: phantom.layout.width, height: phantom.layout.height, ...phantom.stats },
    frames: phantom.stats.delivered,
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
