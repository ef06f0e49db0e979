// `sonomics demo`, `run` and `replay`: a frame source through the whole pipeline to the browser
// overlay. The demo is the phantom scanner; run takes the configured source (capture card,
// DICOM cine, recording); replay a recording.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AuditLog } from '../core/audit.js';
import { ConfigError, type SonomicsConfig } from '../core/config.js';
import type { Layout } from '../core/layout.js';
import { createLesionMask, type LesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Segmenter } from '../core/segment/segmenter.js';
import type { PerfusionOptions } from '../core/perfusion/analyzer.js';
import type { Linearisation } from '../core/perfusion/tic.js';
import { Pipeline, type DisplayFrame, type PipelineStats, type ScoreUpdate } from '../core/pipeline.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import type { PanelSession } from '../device/panel/start.js';
import { OnDemandRecorder } from '../device/recording.js';
import type { FrameSource, SignalState, SourceStats } from '../device/source.js';
import { createMetrics } from '../device/telemetry/metrics.js';
import type { TelemetryStats } from '../device/telemetry/index.js';
import { resolveToken } from '../web-overlay/auth.js';
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
  /** The bedside panel's serial port (--panel PATH); overrides config.panel.path and .usb. */
  panel?: string;
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
  /** The MQTT telemetry publisher's counters; null when no broker is configured. */
  telemetry: TelemetryStats | null;
}

/** The pipeline's perfusion options from the config; the phantom knows its own display compression. */
function perfusionOptions(cfg: SonomicsConfig, source: FrameSource): PerfusionOptions | false {
  const p = cfg.perfusion;
  if (!p.enabled) return false;
  let linearisation: Linearisation | null = null;
  if (p.linearisation) linearisation = p.linearisation;
  else if (p.linearisation === undefined && source instanceof PhantomScanner) {
    const c = source.contrastCompression;
    linearisation = { dynamicRangeDb: c.dynamicRangeDb, offsetDb: c.dbMin };
  }
  return { linearisation, model: p.model, refitIntervalS: p.refitIntervalS, saturationLimit: p.saturationLimit };
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
  // The one-tap segmenter: without it (switched off, or its files missing or altered) the overlay
  // still locks on drawn outlines and the panel on its centre ellipse; the reason is logged.
  const segmenter = cfg.segmenter.enabled
    ? await Segmenter.load({ dir: cfg.segmenter.dir }).catch((e: Error) => { o.log(`segmenter: ${e.message}; tap-to-outline is off`); return undefined; })
    : undefined;
  const pipeline = new Pipeline({
    layout, ringsMm: cfg.pipeline.ringsMm, binWidth: cfg.pipeline.binWidth, featureThreads: cfg.pipeline.featureThreads,
    tracker: cfg.pipeline.tracker, models, scoreWindow: cfg.pipeline.scoreWindow, perfusion: perfusionOptions(cfg, source), segmenter,
  });
  // MQTT telemetry (docs/telemetry.md): undefined without telemetry.url / --mqtt. Made before the
  // audit log and the server, so a bad set-up (password file, certificates) stops the command cleanly.
  // The MQTT client and the serial port library load only when configured.
  const telemetry = cfg.telemetry.url ? (await import('../device/telemetry/index.js')).telemetryFromConfig(cfg.telemetry) : undefined;
  const panelConfig = o.panel !== undefined ? { ...cfg.panel, path: o.panel, usb: undefined } : cfg.panel;
  const ov = cfg.overlay;
  const token = resolveToken({ tokenFile: ov.tokenFile });
  const tls = ov.tls && { cert: readSecret('overlay.tls.cert', ov.tls.cert), key: readSecret('overlay.tls.key', ov.tls.key) };
  const audit = new AuditLog(cfg.audit.path, () => pipeline.models.filter((m) => pipeline.enabledModels.includes(m.card.id))
    .map(({ card: c }) => ({ id: c.id, version: c.version, sha256: c.sha256 })));
  const recorder = new OnDemandRecorder({ dir: cfg.recording.dir, width: layout.width, height: layout.height, fps: source.fps, sourceId: source.id, layout });
  let server: OverlayServer;
  let panel: PanelSession | undefined;
  // /metrics: the same figures in the Prometheus text format (read when scraped, after the server exists).
  const metrics = createMetrics({
    pipeline: () => pipeline.stats(), overlay: () => server.stats(), tracking: () => pipeline.trackingState,
    source: () => ({ id: source.id, state: signalState, fps: source.fps, stats: source.stats }),
    ...(telemetry && { telemetry: () => telemetry.stats() }),
  });
  try {
    server = new OverlayServer({
      pipeline, host: ov.host, port: ov.port, jpegQuality: ov.jpegQuality, maxBufferedBytes: ov.maxBufferedBytes,
      token, tls, allowedOrigins: ov.allowedOrigins, controlRate: ov.controlRate, audit, recording: recorder, metrics,
      status: () => ({
        source: { id: source.id, fps: source.fps, signal: signalState, reason: signalReason, ...source.stats },
        panel: panel?.status() ?? { configured: false },
        telemetry: telemetry ? telemetry.overlayStatus() : { configured: false },
      }),
    });
    // A bad panel layout stops the command here, before anything runs; the port opens after listen().
    if (panelConfig.path || panelConfig.usb)
      panel = (await import('../device/panel/start.js')).startPanel({ config: panelConfig, pipeline, overlay: server, recorder, audit, log: o.log });
  } catch (e) {
    audit.close();
    await telemetry?.stop();
    throw e;
  }
  if (telemetry) {
    let lastError = '';
    telemetry.on('warning', (w: string) => o.log(`telemetry: ${w}`));
    telemetry.on('connect', () => { lastError = ''; o.log(`telemetry: connected to ${telemetry.url} as ${telemetry.deviceId}`); });
    // One line per new error, not one per retry.
    telemetry.on('connectError', (e: Error) => { if (e.message !== lastError) o.log(`telemetry: ${e.message} (retrying; telemetry is spooled meanwhile)`); lastError = e.message; });
    telemetry.on('refused', (problems: string[]) => o.log(`telemetry: a payload was refused and not sent: ${problems.join('; ')}`));
    // The source first: the session's start event names its kind.
    telemetry.attachSource(source);
    telemetry.attachPipeline(pipeline);
  }
  server.on('warning', (w: string) => o.log(`overlay: ${w}`));
  recorder.on('change', () => server.broadcastState());
  recorder.on('error', (e: Error) => o.log(`recording: ${e.message}`));
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
  // The reference region for the perfusion analysis: the configured one, or on the phantom the
  // tissue it suggests, placed on the first tracked frame (the sonographer places it on the page).
  let referencePlaced = !pipeline.perfusion;
  pipeline.on('display', (d: DisplayFrame) => {
    if (referencePlaced || d.track.state !== 'tracking') return;
    referencePlaced = true;
    const ref = cfg.perfusion.reference ?? (source instanceof PhantomScanner ? source.suggestedReference(d.track.center) : undefined);
    if (ref) {
      try {
        pipeline.setReference(ref);
      } catch (e) {
        o.log(`perfusion.reference refused: ${(e as Error).message}`);
      }
    }
  });
  source.on('frame', (frame, truth?: PhantomTruth) => {
    if (!locked) {
      const r = layout.panes.bmode.rect;
      const mask = o.lesion ?? (truth?.lesionMask && createLesionMask(truth.lesionMask.slice(), r.width, r.height));
      if (mask) pipeline.lockLesion(mask).catch((e: Error) => o.log(`lesion outline refused: ${e.message}`));
      locked = true;
    }
    pipeline.push(frame, truth);
    recorder.write(frame);
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
  panel?.start();
  pipeline.start();
  telemetry?.start();
  const ended = new Promise<void>((resolve) => {
    source.once('end', () => resolve());
    void limit.then(resolve);
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  source.start();
  if (!o.headless) openBrowser(url, o.log);
  const failed = await Promise.race([ended.then(() => undefined), sourceError]);
  source.stop();
  await panel?.stop();
  await pipeline.stop();
  await segmenter?.close();
  // Session stop, the spool drained (bounded), the retained offline status, disconnect.
  await telemetry?.stop();
  if (recorder.state().active) await recorder.stop().catch((e: Error) => o.log(`recording: ${e.message}`));
  if (failed) {
    await server.close();
    audit.close();
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
    telemetry: telemetry?.stats() ?? null,
  };
  await server.close();
  audit.close();
  return summary;
}

function readSecret(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError([`${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`], 'config');
  }
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
