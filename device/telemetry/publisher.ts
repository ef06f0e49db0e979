// MQTT telemetry to the hospital's broker (docs/telemetry.md). Under `<prefix>/<deviceId>/`:
//   status     retained: "online" (birth) on every connect, "offline" as the broker's last will
//              when the connection is lost, and "offline" published on a clean stop;
//   telemetry  every intervalMs: frame rates, latency percentiles, drops, duplicates, CPU, memory,
//              source and tracking state, the publisher's own counters;
//   events     session start/stop (a random session id), model loaded (id, version, sha256),
//              tracking lost/regained, the score summary at freeze, the source's signal.
// Payloads are versioned JSON (schema.ts) and carry no patient data: each one is checked against
// its schema and the no-patient-data rule before it goes anywhere, and refused (counted) if it fails.
// Telemetry and events go through the on-disk spool (spool.ts) with QoS 1: appended first, sent in
// order, removed on the broker's PUBACK. While the broker is unreachable they stay there (bounded)
// and go out in order on reconnect, also after a restart of the process.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { LatencySummary } from '../../core/latency.js';
import { packageVersion } from '../../core/paths.js';
import type { Pipeline, PipelineStats, ScoreUpdate } from '../../core/pipeline.js';
import type { RiskScore } from '../../core/risk.js';
import type { FrameSource, SignalState, SourceStats } from '../source.js';
import {
  DEVICE_ID_PATTERN, PREFIX_PATTERN, sourceKind, TELEMETRY_FORMAT, TRACKING_STATES, payloadProblems,
  type EventData, type EventName, type EventPayload, type LatencyFigure, type ModelRef, type ScoreSummary, type StatusPayload, type TelemetryPayload,
} from './schema.js';
import { Spool, type SpoolEntry, type SpoolStats } from './spool.js';

export const PASSWORD_ENV = 'SONOMICS_MQTT_PASSWORD';
export const USERNAME_ENV = 'SONOMICS_MQTT_USERNAME';

export class TelemetryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TelemetryConfigError';
  }
}

/** What the source looks like to telemetry: its kind comes from its id's prefix (`phantom:42` -> phantom); the rest of the id never leaves the box. */
export interface SourceInfo {
  id: string;
  state: SignalState | 'stopped';
  fps?: number;
  stats?: Partial<SourceStats>;
}

/** Where the telemetry figures come from; attachPipeline and attachSource fill in what is not given. */
export interface TelemetrySources {
  pipelineStats?: () => PipelineStats;
  sourceState?: () => SourceInfo;
  trackingState?: () => string;
}

export interface TelemetryOptions {
  /** mqtt://host:1883, mqtts://host:8883 (also ws:// and wss://). Never with credentials in it. */
  url: string;
  /** This box's id: one topic level (A-Z a-z 0-9 . _ -). */
  deviceId: string;
  /** Topic prefix, one or more levels (default "sonomics"). */
  prefix?: string;
  /** Telemetry interval (default 1000 ms). */
  intervalMs?: number;
  /** Always 1: at least once, each message removed from the spool on its PUBACK. */
  qos?: 1;
  /** PEM files: the CA that signed the broker's certificate, and this box's client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Broker user name (or SONOMICS_MQTT_USERNAME). */
  username?: string;
  /** A file (mode 600) holding the password; SONOMICS_MQTT_PASSWORD wins over it. Never in the config. */
  passwordFile?: string;
  /** Environment to read SONOMICS_MQTT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
  spool: { dir: string; maxBytes?: number; maxAgeMs?: number; fsync?: boolean };
  sources?: TelemetrySources;
  /** Delay between connection attempts (default 2000 ms). */
  reconnectMs?: number;
  /** Time allowed for the broker's CONNACK (default 10000 ms). */
  connectTimeoutMs?: number;
  /** MQTT keepalive (default 30 s): the broker sends the last will after 1.5 times this without a word. */
  keepaliveS?: number;
  /** Messages handed to the MQTT client at once, awaiting PUBACK (default 32). */
  inflight?: number;
  /** How long stop() waits for the spool to drain and the offline status to be acknowledged (default 3000 ms). */
  stopTimeoutMs?: number;
  /** MQTT client id (default sonomics-<deviceId>: a new connection of the box takes over a stale one at once). */
  clientId?: string;
}

export interface TelemetryStats {
  connected: boolean;
  /** Messages the broker acknowledged (PUBACK), telemetry and events; status messages not included. */
  published: number;
  /** Messages waiting in the spool for their PUBACK, and their bytes. */
  spooled: number;
  spoolBytes: number;
  /** Dropped by the spool's bounds, oldest first (kept across restarts). */
  dropped: number;
  droppedBy: { size: number; age: number };
  /** Payloads refused by the schema or the no-patient-data rule (not sent). */
  refused: number;
  /** Connections after the first. */
  reconnects: number;
  /** Messages handed to the MQTT client, awaiting PUBACK. */
  inflight: number;
  /** Status messages (birth, offline) acknowledged. */
  statusPublished: number;
  lastError: string | null;
  session: string | null;
  spool: SpoolStats;
}

const fin = (x: number | undefined, digits = 3): number | null => {
  if (x === undefined || !Number.isFinite(x)) return null;
  const k = 10 ** digits;
  return Math.round(x * k) / k;
};
const lat = (s: LatencySummary | undefined): LatencyFigure => ({ p50: fin(s?.p50), p99: fin(s?.p99), max: fin(s?.max) });
const int = (x: number | undefined) => (Number.isFinite(x) && x! > 0 ? Math.floor(x!) : 0);

/** The kind of a source from its id (`phantom:42` -> phantom); anything else is "other". */


/** The password: SONOMICS_MQTT_PASSWORD, else the secret file (one line; not readable by group or others). */
export function resolvePassword(o: { env?: NodeJS.ProcessEnv; passwordFile?: string }): string | undefined {
  const env = o.env ?? process.env;
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!o.passwordFile) return undefined;
  let mode: number, text: string;
  try {
    mode = statSync(o.passwordFile).mode;
    text = readFileSync(o.passwordFile, 'utf8');
  } catch (e) {
    throw new TelemetryConfigError(`telemetry password file ${o.passwordFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0)
    throw new TelemetryConfigError(`telemetry password file ${o.passwordFile}: readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  const pw = text.replace(/\r?\n$/, '');
  if (!pw) throw new TelemetryConfigError(`telemetry password file ${o.passwordFile}: empty`);
  return pw;
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new TelemetryConfigError(`telemetry.tls.${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function scoreSummary(s: RiskScore): ScoreSummary {
  return {
    modelId: s.modelId, version: s.version, sha256: s.cardSha256, value: fin(s.value, 4), band: [fin(s.band[0], 4), fin(s.band[1], 4)],
    category: s.category, status: s.status, frames: s.frames,
  };
}

/**
 * Events: 'connect' (connected: the birth status is on its way), 'disconnect', 'connectError'
 * (Error: a failed attempt; it retries), 'published' (spool id), 'refused' (problems: string[],
 * payload), 'drop' (SpoolEntry, 'size' | 'age'), 'warning' (message).
 * Never 'error': telemetry must not take the pipeline down.
 */
export class TelemetryPublisher extends EventEmitter {
  readonly deviceId: string;
  readonly prefix: string;
  readonly intervalMs: number;
  readonly topics: { status: string; telemetry: string; events: string };
  /** Random id of this run, in every payload. */
  readonly boot = randomUUID();
  readonly url: string;
  private readonly opts: TelemetryOptions;
  private readonly sources: TelemetrySources;
  private readonly spool: Spool;
  private readonly inflightMax: number;
  private readonly mqttOptions: IClientOptions;
  private client: MqttClient | undefined;
  private online = false;
  private everConnected = false;
  private stopping = false;
  private stopped = false;
  /** spool id -> MQTT message id of the messages handed to the client. */
  private readonly inflight = new Map<number, number>();
  /** The next spool id to hand over. */
  private sendFrom = 0;
  private timer: NodeJS.Timeout | undefined;
  private counters = { published: 0, refused: 0, reconnects: 0, statusPublished: 0 };
  private lastError: string | null = null;
  private session: { id: string; startMs: number; base: { received: number; displayed: number; scored: number } } | undefined;
  private last = { wall: process.hrtime.bigint(), cpu: process.cpuUsage(), received: 0, displayed: 0, scored: 0 };
  private tracking: string = 'unknown';
  private lostAtMs = 0;
  /** The latest live scores, summarised only when a freeze reports them (not on every frame). */
  private liveScores: readonly RiskScore[] | undefined;
  private sourceInfo: SourceInfo | undefined;
  private drainWaiters: Array<() => void> = [];
  private detachers: Array<() => void> = [];

  constructor(opts: TelemetryOptions) {
    super();
    this.opts = opts;
    this.deviceId = opts.deviceId;
    this.prefix = opts.prefix ?? 'sonomics';
    this.intervalMs = opts.intervalMs ?? 1000;
    this.inflightMax = opts.inflight ?? 32;
    if (!new RegExp(DEVICE_ID_PATTERN).test(this.deviceId)) throw new TelemetryConfigError(`telemetry.deviceId "${this.deviceId}": must be 1 to 64 characters of A-Z a-z 0-9 . _ - (one topic level)`);
    if (!new RegExp(PREFIX_PATTERN).test(this.prefix)) throw new TelemetryConfigError(`telemetry.prefix "${this.prefix}": must be topic levels of A-Z a-z 0-9 . _ - separated by /, no wildcards, no leading or trailing /`);
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 10 || this.intervalMs > 3_600_000) throw new TelemetryConfigError(`telemetry.intervalMs must be an integer in [10, 3600000] (got ${this.intervalMs})`);
    if (opts.qos !== undefined && opts.qos !== 1) throw new TelemetryConfigError('telemetry: QoS is 1 (at least once)');
    if (!Number.isInteger(this.inflightMax) || this.inflightMax < 1 || this.inflightMax > 1000) throw new TelemetryConfigError(`telemetry.inflight must be an integer in [1, 1000] (got ${this.inflightMax})`);
    const base = `${this.prefix}/${this.deviceId}`;
    this.topics = { status: `${base}/status`, telemetry: `${base}/telemetry`, events: `${base}/events` };
    this.sources = { ...opts.sources };

    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new TelemetryConfigError(`telemetry url "${opts.url}": not a URL (e.g. mqtts://broker.hospital.example:8883)`);
    }
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) throw new TelemetryConfigError(`telemetry url ${opts.url}: the scheme must be mqtt, mqtts, ws or wss`);
    if (url.username || url.password)
      throw new TelemetryConfigError(`telemetry url: credentials never go in the URL: give the user name as telemetry.username and the password in ${PASSWORD_ENV} or a file (mode 600) named by telemetry.passwordFile`);
    const secure = url.protocol === 'mqtts:' || url.protocol === 'wss:';
    if (opts.tls && (opts.tls.ca || opts.tls.cert || opts.tls.key) && !secure) throw new TelemetryConfigError(`telemetry.tls is set but the url ${opts.url} is not mqtts:// or wss://`);
    if (Boolean(opts.tls?.cert) !== Boolean(opts.tls?.key)) throw new TelemetryConfigError('telemetry.tls: give the client certificate (cert) and its key (key) together');
    this.url = url.toString();
    const env = opts.env ?? process.env;
    const username = opts.username ?? (env[USERNAME_ENV] || undefined);
    const password = resolvePassword({ env, passwordFile: opts.passwordFile });
    if (password !== undefined && username === undefined) throw new TelemetryConfigError(`telemetry: a password is set (${PASSWORD_ENV} or passwordFile) but no username`);
    const loopback = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname) || url.hostname.startsWith('127.');
    if (password !== undefined && !secure && !loopback)
      process.nextTick(() => this.emit('warning', `telemetry: the broker password crosses the network in clear (${url.protocol}//${url.host}); use mqtts://`));

    this.spool = new Spool({
      dir: opts.spool.dir, maxBytes: opts.spool.maxBytes, maxAgeMs: opts.spool.maxAgeMs, fsync: opts.spool.fsync,
      // Messages a connected client is sending are about to be acknowledged: they are not dropped.
      canDrop: (e) => !(this.online && this.inflight.has(e.id)),
    });
    this.spool.on('drop', (e: SpoolEntry, reason: string) => this.dropped(e, reason));
    this.spool.on('warning', (m: string) => this.emit('warning', m));
    this.sendFrom = 0;

    const will = this.statusPayload('offline', 'connection lost');
    this.mqttOptions = {
      clientId: opts.clientId ?? `sonomics-${this.deviceId}`,
      clean: true,
      protocolVersion: 4,
      keepalive: opts.keepaliveS ?? 30,
      reconnectPeriod: opts.reconnectMs ?? 2000,
      connectTimeout: opts.connectTimeoutMs ?? 10000,
      queueQoSZero: false,
      resubscribe: false,
      username,
      password,
      will: { topic: this.topics.status, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
      ...(opts.tls?.ca && { ca: readPem('ca', opts.tls.ca) }),
      ...(opts.tls?.cert && { cert: readPem('cert', opts.tls.cert) }),
      ...(opts.tls?.key && { key: readPem('key', opts.tls.key) }),
      rejectUnauthorized: true,
    };
    const problems = payloadProblems(will);
    if (problems.length) throw new TelemetryConfigError(`telemetry: the last-will payload is refused: ${problems.join('; ')}`);
  }

  /** Connects (retrying in the background) and starts the telemetry timer. */
  start(): this {
    if (this.client || this.stopped) return this;
    const client = connect(this.url, this.mqttOptions);
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => {
      if (this.online) {
        this.online = false;
        this.emit('disconnect');
      }
    });
    client.on('error', (e: Error) => {
      this.lastError = e.message;
      this.emit('connectError', e);
    });
    this.rebase();
    this.timer = setInterval(() => this.publishTelemetry(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  get connected(): boolean { return this.online; }

  stats(): TelemetryStats {
    const s = this.spool.stats();
    return {
      connected: this.online, published: this.counters.published, spooled: s.messages, spoolBytes: s.bytes,
      dropped: s.dropped.size + s.dropped.age, droppedBy: s.dropped, refused: this.counters.refused, reconnects: this.counters.reconnects,
      inflight: this.inflight.size, statusPublished: this.counters.statusPublished, lastError: this.lastError,
      session: this.session?.id ?? null, spool: s,
    };
  }

  /** What the overlay's status shows under `telemetry` (the page prints `state`). */
  overlayStatus(): { configured: true; state: string; broker: string; deviceId: string; published: number; spooled: number; dropped: number; refused: number; reconnects: number; lastError: string | null } {
    const s = this.stats();
    const u = new URL(this.url);
    return {
      configured: true, state: s.connected ? 'connected' : `not connected, ${s.spooled} spooled`, broker: `${u.protocol}//${u.host}`, deviceId: this.deviceId,
      published: s.published, spooled: s.spooled, dropped: s.dropped, refused: s.refused, reconnects: s.reconnects, lastError: s.lastError,
    };
  }

  /** The session id (a random UUID) while a session is open. */
  get sessionId(): string | null { return this.session?.id ?? null; }

  // ---- Figures and events -----------------------------------------------------------------------

  /**
   * Feeds telemetry from a pipeline (stats, tracking state) and derives events from it: session
   * start, model loaded (each card), tracking lost/regained, the score summary at freeze (the
   * live scores of that moment). Returns a function that detaches it (and stops the session).
   */
  attachPipeline(pipeline: Pipeline, o: { session?: boolean } = {}): () => void {
    this.sources.pipelineStats ??= () => pipeline.stats();
    this.sources.trackingState ??= () => pipeline.trackingState;
    this.rebase();
    const models = pipeline.models.map((m) => ({ id: m.card.id, version: m.card.version, sha256: m.card.sha256 }));
    if (o.session ?? true) this.startSession({ models });
    for (const m of models) this.modelLoaded(m);
    const onDisplay = (d: { frame: { seq: number }; track: { state: string } }) => this.trackingChanged(d.track.state, d.frame.seq);
    const onScores = (u: ScoreUpdate) => { this.liveScores = u.live ? u.scores : undefined; };
    const onLock = () => { this.liveScores = undefined; };
    const onFreeze = (frozen: boolean, seq: number) => {
      if (!frozen) return;
      this.event('score.freeze', { frameSeq: Number.isInteger(seq) && seq >= 0 ? seq : null, live: this.liveScores !== undefined, scores: (this.liveScores ?? []).map(scoreSummary) });
    };
    pipeline.on('display', onDisplay);
    pipeline.on('scores', onScores);
    pipeline.on('lock', onLock);
    pipeline.on('freeze', onFreeze);
    const detach = () => {
      pipeline.off('display', onDisplay);
      pipeline.off('scores', onScores);
      pipeline.off('lock', onLock);
      pipeline.off('freeze', onFreeze);
      if (this.session) this.stopSession();
      this.detachers = this.detachers.filter((d) => d !== detach);
    };
    this.detachers.push(detach);
    return detach;
  }

  /** Feeds the source's state (kind, signal, counters) and sends its signal changes as events. */
  attachSource(source: FrameSource): () => void {
    this.sourceInfo = { id: source.id, state: 'live', fps: source.fps, stats: source.stats };
    this.sources.sourceState ??= () => ({ ...this.sourceInfo!, stats: source.stats });
    const onSignal = (state: SignalState) => {
      if (this.sourceInfo) this.sourceInfo.state = state;
      this.event('source.signal', { state });
    };
    source.on('signal', onSignal);
    const detach = () => {
      source.off('signal', onSignal);
      this.detachers = this.detachers.filter((d) => d !== detach);
    };
    this.detachers.push(detach);
    return detach;
  }

  /** Opens a session (a random UUID; a session already open is stopped first). Returns its id. */
  startSession(info: { models?: ModelRef[] } = {}): string {
    if (this.session) this.stopSession();
    const st = this.sources.pipelineStats?.();
    this.session = { id: randomUUID(), startMs: performance.now(), base: { received: st?.received ?? 0, displayed: st?.displayed ?? 0, scored: st?.scored ?? 0 } };
    this.event('session.start', { models: info.models ?? [], source: sourceKind(this.sources.sourceState?.().id ?? this.sourceInfo?.id) });
    return this.session.id;
  }

  stopSession(): void {
    const s = this.session;
    if (!s) return;
    const st = this.sources.pipelineStats?.();
    this.event('session.stop', {
      durationS: fin((performance.now() - s.startMs) / 1000) ?? 0,
      frames: { received: int((st?.received ?? 0) - s.base.received), displayed: int((st?.displayed ?? 0) - s.base.displayed), scored: int((st?.scored ?? 0) - s.base.scored) },
    });
    this.session = undefined;
  }

  modelLoaded(model: ModelRef): void {
    this.event('model.loaded', { model: { id: model.id, version: model.version, sha256: model.sha256 } });
  }

  /** Publishes an event (through the spool). False when the payload was refused (schema or patient data). */
  event<E extends EventName>(name: E, data: EventData[E]): boolean {
    const payload: EventPayload<E> = { ...this.envelope('event'), seq: this.spool.nextId, event: name, session: this.session?.id ?? null, data };
    return this.enqueue(this.topics.events, payload);
  }

  /** Makes and publishes one telemetry message now (the timer does it every intervalMs). */
  publishTelemetry(): boolean {
    if (this.stopped) return false;
    return this.enqueue(this.topics.telemetry, this.telemetryPayload());
  }

  /** Resolves when every spooled message was acknowledged (true), or false after timeoutMs. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.spool.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(true); };
      const timer = setTimeout(() => { this.drainWaiters = this.drainWaiters.filter((w) => w !== done); resolve(false); }, timeoutMs);
      this.drainWaiters.push(done);
    });
  }

  /**
   * Stops: closes the session, waits (up to stopTimeoutMs) for the spool to drain, publishes the
   * retained "offline" status and disconnects. What was not acknowledged stays in the spool for
   * the next start.
   */
  async stop(): Promise<void> {
    if (this.stopped || this.stopping) return;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const d of [...this.detachers]) d();
    if (this.session) this.stopSession();
    const limit = this.opts.stopTimeoutMs ?? 3000;
    const t0 = performance.now();
    const client = this.client;
    if (client && this.online) {
      await this.flush(limit);
      const offline = this.statusPayload('offline', 'shutdown');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(100, limit - (performance.now() - t0)));
        client.publish(this.topics.status, JSON.stringify(offline), { qos: 1, retain: true }, (err) => {
          if (!err) this.counters.statusPublished++;
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.stopped = true;
    if (client) {
      // A clean DISCONNECT: the broker discards the last will (the offline status is already there).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { client.end(true, () => resolve()); }, 1000);
        client.end(false, () => { clearTimeout(timer); resolve(); });
      });
    }
    this.online = false;
    this.spool.close();
  }

  // ---- Internals -------------------------------------------------------------------------------

  private envelope<K extends 'status' | 'telemetry' | 'event'>(kind: K) {
    return { format: TELEMETRY_FORMAT, kind, deviceId: this.deviceId, boot: this.boot, at: new Date().toISOString() } as const;
  }

  /** Rates and CPU of the next telemetry are measured from now. */
  private rebase(): void {
    const st = this.sources.pipelineStats?.();
    this.last = { wall: process.hrtime.bigint(), cpu: process.cpuUsage(), received: st?.received ?? 0, displayed: st?.displayed ?? 0, scored: st?.scored ?? 0 };
  }

  private statusPayload(state: 'online' | 'offline', reason: StatusPayload['reason']): StatusPayload {
    return { ...this.envelope('status'), state, reason, software: { product: 'sonomics', version: packageVersion() }, intervalMs: this.intervalMs };
  }

  private trackingChanged(state: string, seq: number): void {
    const prev = this.tracking;
    this.tracking = state;
    if (state === prev) return;
    if (state === 'lost' && (prev === 'tracking' || prev === 'uncertain')) {
      this.lostAtMs = performance.now();
      this.event('tracking.lost', { frameSeq: seq, from: prev });
    } else if (prev === 'lost' && state === 'tracking') {
      this.event('tracking.regained', { frameSeq: seq, lostForS: fin((performance.now() - this.lostAtMs) / 1000) ?? 0 });
    }
  }

  private telemetryPayload(): TelemetryPayload {
    const now = process.hrtime.bigint();
    const wallS = Math.max(1e-6, Number(now - this.last.wall) / 1e9);
    const cpu = process.cpuUsage(this.last.cpu);
    const st = this.sources.pipelineStats?.();
    const mem = process.memoryUsage();
    const src = this.sources.sourceState?.() ?? this.sourceInfo;
    const tracking = this.sources.trackingState?.() ?? this.tracking;
    const ts = this.stats();
    const d = (a: number, b: number) => fin(Math.max(0, a - b) / wallS, 2) ?? 0;
    const received = st?.received ?? 0, displayed = st?.displayed ?? 0, scored = st?.scored ?? 0;
    const payload: TelemetryPayload = {
      ...this.envelope('telemetry'),
      seq: this.spool.nextId,
      intervalMs: this.intervalMs,
      session: this.session?.id ?? null,
      frames: {
        received, displayed, scored, duplicates: st?.duplicates ?? 0, frozen: st?.frozen ?? 0, errors: st?.errors ?? 0,
        dropped: { display: st?.dropped.display ?? 0, features: st?.dropped.features ?? 0, risk: st?.dropped.risk ?? 0 },
      },
      fps: { received: d(received, this.last.received), displayed: d(displayed, this.last.displayed), scored: d(scored, this.last.scored) },
      latencyMs: {
        display: lat(st?.endToEnd.display), scores: lat(st?.endToEnd.scores),
        stages: {
          layout: lat(st?.stages.layout), track: lat(st?.stages.track), regions: lat(st?.stages.regions),
          features: lat(st?.stages.features), risk: lat(st?.stages.risk), publish: lat(st?.stages.publish),
        },
      },
      cpu: {
        percent: fin(((cpu.user + cpu.system) / 1e6 / wallS) * 100, 2) ?? 0,
        userPercent: fin((cpu.user / 1e6 / wallS) * 100, 2) ?? 0,
        systemPercent: fin((cpu.system / 1e6 / wallS) * 100, 2) ?? 0,
        cores: os.availableParallelism(), loadavg1: fin(os.loadavg()[0], 2) ?? 0,
      },
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external, freeSystemBytes: os.freemem() },
      source: {
        kind: sourceKind(src?.id), state: src?.state ?? 'unknown', fps: fin(src?.fps, 2),
        delivered: int(src?.stats?.delivered), duplicates: int(src?.stats?.duplicates), gaps: int(src?.stats?.gaps),
        dropped: int(src?.stats?.dropped), restarts: int(src?.stats?.restarts),
      },
      tracking: { state: ((TRACKING_STATES as readonly string[]).includes(tracking) ? tracking : 'unknown') as TelemetryPayload['tracking']['state'] },
      telemetry: { published: ts.published, spooled: ts.spooled, spoolBytes: ts.spoolBytes, dropped: ts.dropped, refused: ts.refused, reconnects: ts.reconnects },
    };
    this.last = { wall: now, cpu: process.cpuUsage(), received, displayed, scored };
    return payload;
  }

  /** Checks a payload (schema, no patient data), spools it and sends what it can. */
  private enqueue(topic: string, payload: TelemetryPayload | EventPayload): boolean {
    if (this.stopped) return false;
    const problems = payloadProblems(payload);
    if (problems.length) {
      this.counters.refused++;
      this.emit('refused', problems, payload);
      return false;
    }
    const e = this.spool.append(topic, JSON.stringify(payload));
    if (!e) return false;
    this.pump();
    return true;
  }

  private onConnect(): void {
    const client = this.client!;
    if (this.everConnected) this.counters.reconnects++;
    this.everConnected = true;
    this.online = true;
    this.lastError = null;
    // Birth first, then whatever waited in the spool, in order.
    client.publish(this.topics.status, JSON.stringify(this.statusPayload('online', 'birth')), { qos: 1, retain: true }, (err) => {
      if (!err) this.counters.statusPublished++;
    });
    this.emit('connect');
    this.pump();
  }

  /** Hands spooled messages to the client, oldest first, up to `inflight` awaiting their PUBACK. */
  private pump(): void {
    const client = this.client;
    if (!client || !this.online || this.stopped) return;
    while (this.inflight.size < this.inflightMax) {
      const [e] = this.spool.pendingFrom(this.sendFrom, 1);
      if (!e) break;
      this.sendFrom = e.id + 1;
      if (this.inflight.has(e.id)) continue;
      this.inflight.set(e.id, 0);
      client.publish(e.topic, e.payload, { qos: 1, retain: e.retain }, (err) => this.settled(e.id, err));
      if (this.inflight.has(e.id)) this.inflight.set(e.id, client.getLastMessageId());
    }
  }

  private settled(id: number, err: Error | undefined): void {
    this.inflight.delete(id);
    if (!err) {
      this.spool.ack(id);
      this.counters.published++;
      this.emit('published', id);
    } else if (this.spool.get(id)) {
      // Not sent (the client was closing): it goes again, in order, after the next connect.
      this.sendFrom = Math.min(this.sendFrom, id);
    }
    if (this.spool.size === 0 && this.drainWaiters.length) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    this.pump();
  }

  /** The spool dropped a message: if a disconnected client still holds it, it must not go later. */
  private dropped(e: SpoolEntry, reason: string): void {
    const mid = this.inflight.get(e.id);
    if (mid !== undefined) {
      this.inflight.delete(e.id);
      if (mid > 0) this.client?.removeOutgoingMessage(mid);
    }
    this.emit('drop', e, reason);
  }
}
