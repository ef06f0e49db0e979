// The telemetry figures for local monitoring: a prom-client registry served at /metrics by the
// overlay server, in the Prometheus text format (docs/telemetry.md#prometheus-metrics). Every
// value is read when scraped, from one snapshot of the stats per scrape (pipeline.stats() sorts
// its latency windows, so it is taken once, not once per metric). Labels are fixed sets (stage,
// slot, quantile, state, ...): nothing about a patient, a viewer's address or a file name.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { LatencySummary } from '../../core/latency.js';
import { packageVersion } from '../../core/paths.js';
import type { PipelineStats } from '../../core/pipeline.js';
import type { OverlayStats } from '../../web-overlay/server.js';
import type { SourceInfo, TelemetryStats } from './publisher.js';
import { sourceKind, TRACKING_STATES } from './schema.js';

export interface MetricsSources {
  pipeline?: () => PipelineStats;
  overlay?: () => OverlayStats;
  telemetry?: () => TelemetryStats;
  source?: () => SourceInfo;
  tracking?: () => string;
}

export interface MetricsOptions {
  /** Node.js process metrics (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_*); default true. */
  defaultMetrics?: boolean;
  /** A snapshot of the stats serves every metric of a scrape, and scrapes this close together (default 100 ms). */
  snapshotMs?: number;
}

export interface TelemetryMetrics {
  readonly registry: Registry;
  /** The Content-Type of metricsText(). */
  readonly contentType: string;
  /** The Prometheus text exposition of every metric. */
  metricsText(): Promise<string>;
}

const QUANTILES: Array<[string, keyof LatencySummary]> = [['0.5', 'p50'], ['0.99', 'p99'], ['1', 'max']];
const STAGES = ['layout', 'track', 'regions', 'features', 'risk', 'publish'] as const;

interface Snapshot {
  at: number;
  pipeline?: PipelineStats;
  overlay?: OverlayStats;
  telemetry?: TelemetryStats;
  source?: SourceInfo;
  tracking?: string;
}


/**
 * A registry with the pipeline's, the source's, the overlay's and the telemetry publisher's
 * figures (each group only when its source is given), and Node.js process metrics.
 */
export function createMetrics(sources: MetricsSources, o: MetricsOptions = {}): TelemetryMetrics {
  const registry = new Registry();
  const snapshotMs = o.snapshotMs ?? 100;
  let cache: Snapshot | undefined;
  const snap = (): Snapshot => {
    const now = performance.now();
    if (cache && now - cache.at < snapshotMs) return cache;
    cache = {
      at: now, pipeline: sources.pipeline?.(), overlay: sources.overlay?.(), telemetry: sources.telemetry?.(),
      source: sources.source?.(), tracking: sources.tracking?.(),
    };
    return cache;
  };
  const registers = [registry];

  /** A counter whose value is read at scrape time (a cumulative count kept elsewhere). */
  const counter = (name: string, help: string, read: (s: Snapshot) => number | undefined) =>
    new Counter({
      name, help, registers,
      collect() {
        const v = read(snap());
        this.reset();
        if (v !== undefined && Number.isFinite(v) && v >= 0) this.inc(v);
      },
    });
  const labelledCounter = <L extends string>(name: string, help: string, label: L, values: readonly string[], read: (s: Snapshot, v: string) => number | undefined) =>
    new Counter<L>({
      name, help, labelNames: [label], registers,
      collect() {
        const s = snap();
        this.reset();
        for (const value of values) {
          const v = read(s, value);
          if (v !== undefined && Number.isFinite(v) && v >= 0) this.inc({ [label]: value } as Record<L, string>, v);
        }
      },
    });
  const gauge = (name: string, help: string, read: (s: Snapshot) => number | undefined) =>
    new Gauge({
      name, help, registers,
      collect() {
        const v = read(snap());
        this.reset();
        if (v !== undefined) this.set(v);
      },
    });
  /** Latency windows as quantile gauges in seconds: 0.5, 0.99 and 1 (the maximum) of the recent samples. */
  const quantiles = <L extends string>(name: string, help: string, label: L | undefined, values: readonly string[], read: (s: Snapshot, v: string) => LatencySummary | undefined) =>
    new Gauge<string>({
      name, help, labelNames: label ? [label, 'quantile'] : ['quantile'], registers,
      collect() {
        const s = snap();
        this.reset();
        for (const value of label ? values : ['']) {
          const sum = read(s, value);
          // No samples yet: no sample exposed (absent, rather than NaN).
          if (!sum || !(sum.count > 0)) continue;
          for (const [q, k] of QUANTILES) if (Number.isFinite(sum[k])) this.set(label ? { [label]: value, quantile: q } : { quantile: q }, sum[k] / 1000);
        }
      },
    });

  new Gauge({
    name: 'sonomics_info', help: 'sonomics software version (always 1)', labelNames: ['version'], registers,
    collect() { this.reset(); this.set({ version: packageVersion() }, 1); },
  });

  if (sources.pipeline) {
    counter('sonomics_pipeline_frames_received_total', 'Frames offered to the pipeline', (s) => s.pipeline?.received);
    counter('sonomics_pipeline_frames_displayed_total', 'Frames tracked and published to the overlay', (s) => s.pipeline?.displayed);
    counter('sonomics_pipeline_frames_scored_total', 'Frames that finished the risk stage', (s) => s.pipeline?.scored);
    counter('sonomics_pipeline_frames_duplicate_total', 'Frames that repeated the previous image (not tracked or scored again)', (s) => s.pipeline?.duplicates);
    counter('sonomics_pipeline_frames_frozen_total', 'Frames skipped while the picture was frozen', (s) => s.pipeline?.frozen);
    counter('sonomics_pipeline_frame_errors_total', 'Frames that failed in a stage', (s) => s.pipeline?.errors);
    labelledCounter('sonomics_pipeline_frames_dropped_total', 'Frames dropped at a latest-value slot (display, features, risk)', 'slot', ['display', 'features', 'risk'],
      (s, v) => s.pipeline?.dropped[v as 'display' | 'features' | 'risk']);
    quantiles('sonomics_pipeline_stage_latency_seconds', 'Per-stage latency over the recent frames (quantile 1 = maximum)', 'stage', STAGES,
      (s, v) => s.pipeline?.stages[v as (typeof STAGES)[number]]);
    quantiles('sonomics_pipeline_latency_seconds', 'Arrival to display and to scores over the recent frames (quantile 1 = maximum)', 'path', ['display', 'scores'],
      (s, v) => s.pipeline?.endToEnd[v as 'display' | 'scores']);
  }

  if (sources.source) {
    gauge('sonomics_source_up', '1 while the frame source has a signal, else 0', (s) => (s.source ? (s.source.state === 'live' ? 1 : 0) : undefined));
    new Gauge({
      name: 'sonomics_source_info', help: 'The kind of frame source (always 1)', labelNames: ['kind'], registers,
      collect() { this.reset(); this.set({ kind: sourceKind(snap().source?.id) }, 1); },
    });
    gauge('sonomics_source_fps', 'Nominal frame rate of the source', (s) => s.source?.fps);
    counter('sonomics_source_frames_delivered_total', 'Frames the source delivered', (s) => s.source?.stats?.delivered);
    counter('sonomics_source_frames_dropped_total', 'Frames the signal should have carried but never arrived', (s) => s.source?.stats?.dropped);
    counter('sonomics_source_frames_duplicate_total', 'Frames that repeated the previous image', (s) => s.source?.stats?.duplicates);
    counter('sonomics_source_gaps_total', 'Intervals longer than 1.5 frame periods', (s) => s.source?.stats?.gaps);
    counter('sonomics_source_restarts_total', 'Times the source lost its signal and started again', (s) => s.source?.stats?.restarts ?? 0);
  }

  if (sources.tracking) {
    new Gauge({
      name: 'sonomics_tracking_state', help: 'Lesion tracking state: 1 for the current one', labelNames: ['state'], registers,
      collect() {
        this.reset();
        const cur = snap().tracking;
        for (const st of TRACKING_STATES) if (st !== 'unknown') this.set({ state: st }, st === cur ? 1 : 0);
      },
    });
  }

  if (sources.overlay) {
    gauge('sonomics_overlay_viewers', 'Pages connected to the overlay', (s) => s.overlay?.viewers);
    counter('sonomics_overlay_frames_encoded_total', 'Display frames encoded to JPEG', (s) => s.overlay?.encoded);
    counter('sonomics_overlay_encode_dropped_total', 'Display frames not encoded (the encoder was busy)', (s) => s.overlay?.encodeDropped);
    counter('sonomics_overlay_frames_sent_total', 'Frame messages sent to pages', (s) => s.overlay?.sent);
    counter('sonomics_overlay_frames_skipped_total', 'Frame messages skipped for a slow page', (s) => s.overlay?.skipped);
    counter('sonomics_overlay_rate_limited_total', 'Page messages refused by the rate limit', (s) => s.overlay?.rateLimited);
    counter('sonomics_overlay_connections_refused_total', 'Connections refused (token, origin)', (s) => s.overlay?.refused);
    counter('sonomics_overlay_invalid_outgoing_total', 'Outgoing messages that failed their schema (not sent)', (s) => s.overlay?.invalidOutgoing);
    quantiles('sonomics_overlay_encode_latency_seconds', 'JPEG encode time over the recent frames (quantile 1 = maximum)', undefined, [], (s) => s.overlay?.encode);
    quantiles('sonomics_overlay_capture_to_send_seconds', 'Frame capture to WebSocket send, per page, over the recent frames (quantile 1 = maximum)', undefined, [], (s) => s.overlay?.captureToSend);
  }

  if (sources.telemetry) {
    gauge('sonomics_telemetry_connected', '1 while connected to the MQTT broker', (s) => (s.telemetry ? Number(s.telemetry.connected) : undefined));
    counter('sonomics_telemetry_published_total', 'Telemetry and event messages acknowledged by the broker', (s) => s.telemetry?.published);
    gauge('sonomics_telemetry_spooled_messages', 'Messages waiting in the spool for the broker', (s) => s.telemetry?.spooled);
    gauge('sonomics_telemetry_spool_bytes', 'Bytes waiting in the spool', (s) => s.telemetry?.spoolBytes);
    labelledCounter('sonomics_telemetry_dropped_total', 'Messages dropped by the spool bounds, oldest first', 'reason', ['size', 'age'],
      (s, v) => s.telemetry?.droppedBy[v as 'size' | 'age']);
    counter('sonomics_telemetry_refused_total', 'Payloads refused by the schema or the no-patient-data rule', (s) => s.telemetry?.refused);
    counter('sonomics_telemetry_reconnects_total', 'Connections to the broker after the first', (s) => s.telemetry?.reconnects);
  }

  // The event-loop delay monitor samples every 50 ms (prom-client's default, 10 ms, wakes the loop 100 times a second).
  if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 50 });

  return {
    registry,
    contentType: registry.contentType,
    metricsText: async () => {
      cache = undefined;
      snap();
      return registry.metrics();
    },
  };
}

/** Answers GET /metrics with the metrics text (web-overlay/server.ts checks the token first, as for /api/status). */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: TelemetryMetrics): Promise<void> {
  try {
    const text = await metrics.metricsText();
    res.writeHead(200, { 'Content-Type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text);
  } catch (e) {
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`);
  }
}
