// The overlay server: serves the page and feeds it over one WebSocket (protocol v2,
// web-overlay/protocol.ts). Each display frame is JPEG-encoded once (sharp, off the main thread)
// and sent with its overlay in one binary message. Every viewer has a latest-value slot: a slow
// viewer gets the newest frame when its socket is ready and skips the rest (counted); it never
// delays the pipeline or other viewers. Viewers watch; one controller at a time changes state,
// and every change goes to the audit log.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AuditActor, AuditLog } from '../core/audit.js';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { ellipseMask, maskStats, polygonMask, type LesionMask } from '../core/mask.js';
import { native } from '../core/native.js';
import { packageRoot } from '../core/paths.js';
import type { DisplayFrame, Pipeline, ScoreUpdate } from '../core/pipeline.js';
import { perfusionCsv, perfusionJson } from '../core/perfusion/export.js';
import type { PerfusionUpdate } from '../core/perfusion/analyzer.js';
import { serveMetrics, type TelemetryMetrics } from '../device/telemetry/metrics.js';
import { checkBinding, originAllowed, presentedToken, RateLimiter, tokenMatches } from './auth.js';
import {
  encodeFrameMessage, helloMessage, LAYERS, overlayHeader, parsePageMessage, perfusionMessage, PROTOCOL_VERSION, scoresMessage, serverMessageProblems, SUBPROTOCOL,
  type Layers, type OverlayState, type PageMessage, type RecordingState, type RefusalCode,
} from './protocol.js';

// One libvips thread: the other core stays free for the pipeline's main thread and the
// features worker (the edge box has two cores).
sharp.concurrency(1);

/** A marked event: the sonographer flags a moment of the exam. */
export interface MarkEvent { kind: 'mark'; label: string; seq: number | null; at: string; by: string }

/** Recording on demand, provided by the command that serves the overlay (cli/demo.ts). */
export interface RecordingControl {
  state(): RecordingState;
  /** Starts a recording; resolves with its name. */
  start(): Promise<string>;
  /** Ends it; resolves with its name and counts. */
  stop(): Promise<{ name: string; frames: number; dropped: number }>;
  /** Notes a marked event in the active recording. */
  mark(e: MarkEvent): void;
}

export interface OverlayServerOptions {
  pipeline: Pipeline;
  host?: string;
  port?: number;
  jpegQuality?: number;
  /** A viewer whose socket holds more than this many unsent bytes is skipped. */
  maxBufferedBytes?: number;
  /** Extra status (source, recording, ...) merged into the periodic status message. */
  status?: () => Record<string, unknown>;
  statusIntervalMs?: number;
  /** Access token (web-overlay/auth.ts resolveToken). Required to bind a non-loopback address. */
  token?: string;
  /** PEM certificate chain and key: serve https/wss. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Origins besides the server's own whose pages may open the socket. */
  allowedOrigins?: string[];
  /** Messages per page: a bucket of `burst` refilled at `perSecond`. */
  controlRate?: { perSecond: number; burst: number };
  /** Where every state change is recorded. */
  audit?: AuditLog;
  recording?: RecordingControl;
  /** Prometheus metrics served at /metrics (device/telemetry/metrics.ts), behind the token like /api/status. */
  metrics?: TelemetryMetrics;
}

interface Viewer {
  id: string;
  address: string;
  ws: WebSocket;
  sending: boolean;
  pending: { msg: Buffer; captureMs?: number } | undefined;
  limiter: RateLimiter;
  /** performance.now() of the last rate-limit error sent: at most one per second. */
  limitedAt: number;
  sent: number;
  skipped: number;
  /** The outline proposed from this viewer's last tap, until accepted or discarded. */
  proposal?: { mask: LesionMask; seq: number; confidence: number; grownPx: number; heldSeq: number | null };
}

/** A page message refused, nothing changed; `code` (REFUSAL_CODES) when the page acts on the kind of refusal. */
class Refusal extends Error {
  constructor(message: string, readonly code?: RefusalCode) {
    super(message);
  }
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const NO_RECORDING: RecordingState = { available: false, active: false, name: null, since: null };

export interface OverlayStats {
  viewers: number;
  controller: string | null;
  encoded: number;
  encodeDropped: number;
  sent: number;
  skipped: number;
  /** Messages from pages refused by the rate limit. */
  rateLimited: number;
  /** Connections refused (token, origin). */
  refused: number;
  /** Outgoing messages that failed their schema (a bug): not sent. */
  invalidOutgoing: number;
  encode: LatencySummary;
  /** Frame capture (frame.timestampMs) to the WebSocket send completing, per viewer and frame. */
  captureToSend: LatencySummary;
  /** Each connected page: frames sent to it and skipped for it. */
  clients: Array<{ id: string; address: string; role: 'controller' | 'viewer'; sent: number; skipped: number }>;
}

/**
 * Events: 'listening' (url), 'viewer' (count), 'clientError' (Error), 'warning' (string),
 * 'state' (OverlayState) after every change of the shared state,
 * 'audit' (AuditEntry-like {who, what, details}) for every state change made through the socket.
 */
export class OverlayServer extends EventEmitter {
  private readonly opts: Required<Omit<OverlayServerOptions, 'status' | 'token' | 'tls' | 'audit' | 'recording' | 'metrics'>>
    & Pick<OverlayServerOptions, 'status' | 'token' | 'tls' | 'audit' | 'recording' | 'metrics'>;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly viewers = new Set<Viewer>();
  private readonly files = new Map<string, Buffer>();
  private nextViewer = 1;
  private controller: Viewer | undefined;
  private layers: Layers = Object.fromEntries(LAYERS.map((l) => [l, true])) as Layers;
  /** The ring the touch panel highlights (mm), or null. */
  private ring: number | null = null;
  private encoding = false;
  private pendingDisplay: DisplayFrame | undefined;
  /** The newest frame message: a viewer that connects gets it at once (the held frame while frozen). */
  private lastFrame: Buffer | undefined;
  private readonly encodeLatency = new LatencyRecorder();
  private readonly sendLatency = new LatencyRecorder();
  private counters = { encoded: 0, encodeDropped: 0, sent: 0, skipped: 0, rateLimited: 0, refused: 0, invalidOutgoing: 0 };
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly onDisplay = (d: DisplayFrame) => this.display(d);
  private readonly onScores = (u: ScoreUpdate) => this.broadcast(scoresMessage(u));
  /** The newest perfusion message: a page that connects gets it at once. */
  private lastPerfusion: ReturnType<typeof perfusionMessage> | undefined;
  private readonly onPerfusion = (u: PerfusionUpdate) => {
    this.lastPerfusion = perfusionMessage(u, this.opts.pipeline.perfusion!);
    this.broadcast(this.lastPerfusion);
  };
  private readonly onStateChange = () => this.broadcastState();

  constructor(opts: OverlayServerOptions) {
    super();
    this.opts = {
      host: '127.0.0.1', port: 8080, jpegQuality: 70, maxBufferedBytes: 4 * 1024 * 1024, statusIntervalMs: 1000,
      allowedOrigins: [], controlRate: { perSecond: 10, burst: 20 },
      // An option given as undefined keeps its default.
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as OverlayServerOptions),
    };
    checkBinding(this.opts.host, this.opts.token);
    const dir = join(packageRoot(), 'web-overlay', 'public');
    for (const { file } of Object.values(STATIC)) if (!this.files.has(file)) this.files.set(file, readFileSync(join(dir, file)));
    const handler = (req: IncomingMessage, res: ServerResponse) => this.serve(req, res);
    this.http = this.opts.tls ? createHttpsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler) : createServer(handler);
    this.wss = new WebSocketServer({
      server: this.http, path: '/ws', maxPayload: 64 * 1024,
      verifyClient: (info: { origin?: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        const problem = this.refusal(info.req, info.origin);
        if (problem) {
          this.counters.refused++;
          this.audit({ id: 'unauthenticated', address: info.req.socket.remoteAddress ?? '?' }, 'refused', { reason: problem.reason });
          done(false, problem.code, problem.reason);
        } else {
          done(true);
        }
      },
      // The page asks for the protocol (and may carry its token as a second, never echoed).
      handleProtocols: (protocols: Set<string>) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.wss.on('connection', (ws, req) => this.connect(ws, req));
    if (!this.opts.tls && this.opts.token !== undefined && !['127.0.0.1', '::1', 'localhost'].includes(this.opts.host))
      process.nextTick(() => this.emit('warning', `overlay on ${this.opts.host} without TLS: the token and the pictures cross the network in clear; configure overlay.tls`));
  }

  /** Why a WebSocket upgrade is refused (origin, token), or undefined when it may connect. */
  private refusal(req: IncomingMessage, origin: string | undefined): { code: number; reason: string } | undefined {
    if (!originAllowed(origin, req.headers.host, this.opts.allowedOrigins)) return { code: 403, reason: `origin ${String(origin).slice(0, 100)} is not allowed` };
    const given = presentedToken(req);
    if (this.opts.token !== undefined && !tokenMatches(given, this.opts.token))
      return { code: 401, reason: given === undefined ? 'an access token is required' : 'wrong access token' };
    return undefined;
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(new Error(`overlay: cannot listen on ${this.opts.host}:${this.opts.port}: ${e.message}`));
      this.http.once('error', onError);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', onError);
        const p = this.opts.pipeline;
        p.on('display', this.onDisplay);
        p.on('scores', this.onScores);
        p.on('perfusion', this.onPerfusion);
        for (const e of ['freeze', 'models', 'clinical']) p.on(e, this.onStateChange);
        this.statusTimer = setInterval(() => this.broadcast({ type: 'status', v: PROTOCOL_VERSION, stats: this.statusPayload() }), this.opts.statusIntervalMs);
        this.statusTimer.unref();
        const url = this.url;
        this.emit('listening', url);
        resolve(url);
      });
    });
  }

  get url(): string {
    const a = this.http.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.opts.tls ? 'https' : 'http'}://${host}:${a.port}/`;
  }

  async close(): Promise<void> {
    const p = this.opts.pipeline;
    p.off('display', this.onDisplay);
    p.off('scores', this.onScores);
    p.off('perfusion', this.onPerfusion);
    for (const e of ['freeze', 'models', 'clinical']) p.off(e, this.onStateChange);
    if (this.statusTimer) clearInterval(this.statusTimer);
    // Stop accepting first: a page that reconnects while the socket server is closing would
    // otherwise leave an upgrade request that nobody answers, and close() would never end.
    const httpClosed = new Promise<void>((r) => this.http.close(() => r()));
    for (const v of this.viewers) v.ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    // Whatever is still open (idle keep-alive, a request caught mid-close) goes too.
    this.http.closeAllConnections();
    await httpClosed;
  }

  stats(): OverlayStats {
    return {
      viewers: this.viewers.size, controller: this.controller?.id ?? null, ...this.counters,
      encode: this.encodeLatency.summary(), captureToSend: this.sendLatency.summary(),
      clients: [...this.viewers].map((v) => ({ id: v.id, address: v.address, role: this.controller === v ? 'controller' : 'viewer', sent: v.sent, skipped: v.skipped })),
    };
  }

  /** Starts the latency figures afresh (a bench's measuring window); the counters keep counting. */
  resetStats(): void {
    this.encodeLatency.reset();
    this.sendLatency.reset();
  }

  /** What every viewer sees the same way. */
  state(): OverlayState {
    const p = this.opts.pipeline;
    return {
      frozen: p.frozen, frozenSeq: p.frozenSeq, layers: { ...this.layers }, models: p.enabledModels, controller: this.controller?.id ?? null,
      clinical: p.clinicalValues, recording: this.opts.recording?.state() ?? NO_RECORDING, ring: this.ring,
    };
  }

  /** Sends the state to every viewer (after any change, wherever it came from). */
  broadcastState(): void {
    const state = this.state();
    this.broadcast({ type: 'state', v: PROTOCOL_VERSION, state });
    this.emit('state', state);
  }

  /**
   * Shows or hides overlay layers on every page, as `who` (a page's controller, or the touch
   * panel: {id: 'panel'}); audited. Returns the layers now.
   */
  setLayers(patch: Partial<Layers>, who: AuditActor): Layers {
    this.layers = { ...this.layers, ...patch };
    this.audit(who, 'layers', { layers: patch });
    this.broadcastState();
    return { ...this.layers };
  }

  /** Highlights one drawn ring (mm, one of pipeline.ringsMm) on every page, or none (null), as `who` (the touch panel); audited. */
  highlightRing(mm: number | null, who: AuditActor): void {
    if (mm !== null && !this.opts.pipeline.ringsMm.includes(mm)) throw new RangeError(`ring ${mm} mm is not drawn (rings: ${this.opts.pipeline.ringsMm.join(', ')} mm)`);
    this.ring = mm;
    this.audit(who, 'ring', { highlight: mm });
    this.broadcastState();
  }

  /** Marks an event as `who`: the active recording's events, the audit log, an `event` message to every page. */
  mark(label: string, who: AuditActor): MarkEvent {
    const event: MarkEvent = { kind: 'mark', label, seq: this.opts.pipeline.lastShownSeq, at: new Date().toISOString(), by: who.id };
    if (this.opts.recording?.state().active) this.opts.recording.mark(event);
    this.audit(who, 'mark', { label: event.label, seq: event.seq });
    this.broadcast({ type: 'event', v: PROTOCOL_VERSION, event });
    return event;
  }

  private statusPayload() {
    return { pipeline: this.opts.pipeline.stats(), overlay: this.stats(), recording: this.opts.recording?.state() ?? NO_RECORDING, ...(this.opts.status?.() ?? {}) };
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    if (this.opts.tls) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET, HEAD' }).end('method not allowed\n'); return; }
    const data = url.pathname === '/api/status' || url.pathname.startsWith('/api/perfusion') || (url.pathname === '/metrics' && this.opts.metrics !== undefined);
    // The figures need the token when one is set; the page itself holds no data.
    if (data && this.opts.token !== undefined && !tokenMatches(presentedToken(req), this.opts.token)) {
      res.writeHead(401, { 'Content-Type': 'text/plain', 'WWW-Authenticate': 'Bearer' }).end('an access token is required (Authorization: Bearer <token>)\n');
      return;
    }
    if (url.pathname === '/api/status') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.statusPayload()));
      return;
    }
    // The session's perfusion export: the curve (CSV) or the whole analysis (JSON).
    const perfusion = this.opts.pipeline.perfusion;
    if (url.pathname === '/api/perfusion.csv' || url.pathname === '/api/perfusion.json') {
      if (!perfusion) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('the perfusion analysis is switched off\n'); return; }
      const csv = url.pathname.endsWith('.csv');
      const name = `sonomics-perfusion-${new Date().toISOString().replace(/[:.]/g, '-')}.${csv ? 'csv' : 'json'}`;
      res.writeHead(200, { 'Content-Type': csv ? 'text/csv' : 'application/json', 'Content-Disposition': `attachment; filename="${name}"` })
        .end(csv ? perfusionCsv(perfusion) : JSON.stringify(perfusionJson(perfusion)));
      return;
    }
    if (url.pathname === '/metrics' && this.opts.metrics) {
      void serveMetrics(req, res, this.opts.metrics);
      return;
    }
    const entry = STATIC[url.pathname];
    if (!entry) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n'); return; }
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; style-src 'self'; script-src 'self'");
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.writeHead(200, { 'Content-Type': entry.type }).end(req.method === 'HEAD' ? undefined : this.files.get(entry.file));
  }

  private actor(v: Viewer): AuditActor {
    return { id: v.id, address: v.address, role: this.controller === v ? 'controller' : 'viewer' };
  }

  private audit(who: AuditActor, what: string, details: Record<string, unknown>): void {
    this.opts.audit?.record(who, what, details);
    this.emit('audit', { who, what, details });
  }

  private connect(ws: WebSocket, req: IncomingMessage): void {
    const { perSecond, burst } = this.opts.controlRate;
    const v: Viewer = {
      id: `v${this.nextViewer++}`, address: req.socket.remoteAddress ?? '?', ws, sending: false, pending: undefined,
      limiter: new RateLimiter(perSecond, burst), limitedAt: -Infinity, sent: 0, skipped: 0,
    };
    this.viewers.add(v);
    this.audit(this.actor(v), 'connect', { viewers: this.viewers.size });
    // The first page to arrive while nobody has control gets it: a lone tablet needs no ceremony.
    const auto = !this.controller;
    if (auto) {
      this.controller = v;
      this.audit(this.actor(v), 'control', { action: 'take', auto: true });
    }
    this.emit('viewer', this.viewers.size);
    const p = this.opts.pipeline;
    this.send(v, helloMessage(p.layout, p.ringsMm, p.models, { id: v.id, role: this.controller === v ? 'controller' : 'viewer' }, this.state(), p.segmenterInfo));
    if (this.lastFrame) this.offer(v, this.lastFrame);
    if (this.lastPerfusion) this.send(v, this.lastPerfusion);
    if (auto) this.broadcastState();
    ws.on('message', (data, isBinary) => this.message(v, data as Buffer, isBinary));
    ws.on('error', (e) => this.emit('clientError', e));
    ws.on('close', () => {
      this.viewers.delete(v);
      this.audit(this.actor(v), 'disconnect', { viewers: this.viewers.size });
      if (this.controller === v) {
        this.controller = undefined;
        this.audit({ id: v.id, address: v.address }, 'control', { action: 'release', reason: 'disconnected' });
        this.broadcastState();
      }
      this.emit('viewer', this.viewers.size);
    });
  }

  private message(v: Viewer, data: Buffer, isBinary: boolean): void {
    if (!v.limiter.take()) {
      this.counters.rateLimited++;
      const now = performance.now();
      if (now - v.limitedAt >= 1000) {
        v.limitedAt = now;
        const { perSecond, burst } = this.opts.controlRate;
        this.send(v, { type: 'error', v: PROTOCOL_VERSION, re: null, error: `rate limited: at most ${perSecond} messages a second (bursts of ${burst}); this message and any more in the next second are dropped` });
      }
      return;
    }
    if (isBinary) { this.send(v, { type: 'error', v: PROTOCOL_VERSION, re: null, error: 'binary messages are not accepted from the page' }); return; }
    const parsed = parsePageMessage(data.toString('utf8'));
    if (!parsed.ok) {
      this.send(v, { type: 'error', v: PROTOCOL_VERSION, re: parsed.re, ...(parsed.id !== undefined && { id: parsed.id }), error: parsed.error });
      return;
    }
    const msg = parsed.msg;
    const id = msg.id !== undefined ? { id: msg.id } : {};
    this.handle(v, msg).then(
      (result) => this.send(v, { type: 'ack', v: PROTOCOL_VERSION, re: msg.type, ...id, result }),
      (e: Error) => this.send(v, { type: 'error', v: PROTOCOL_VERSION, re: msg.type, ...id, error: e instanceof Refusal ? e.message : `${msg.type}: ${e.message}`, ...(e instanceof Refusal && e.code && { code: e.code }) }),
    );
  }

  /** Carries out one checked page message; throws a Refusal (nothing changed) or resolves with the ack's result. */
  private async handle(v: Viewer, msg: PageMessage): Promise<Record<string, unknown>> {
    if (msg.type === 'ping') return {};
    if (msg.type === 'control') return this.control(v, msg.action, msg.force === true);
    if (this.controller !== v)
      throw new Refusal(`${msg.type}: only the controller may change state (${this.controller ? `viewer ${this.controller.id} has control` : 'nobody has control'}): send {"type":"control","action":"take"} first`);
    const p = this.opts.pipeline;
    const who = this.actor(v);
    switch (msg.type) {
      case 'layers': return { layers: this.setLayers(msg.layers, who) };
      case 'models': {
        try {
          p.selectModels(msg.enabled);
        } catch (e) {
          throw new Refusal(`models.enabled: ${(e as Error).message}`);
        }
        this.audit(who, 'models', { enabled: p.enabledModels });
        return { enabled: p.enabledModels };
      }
      case 'freeze': {
        const seq = p.freeze(msg.frozen);
        if (msg.frozen && seq === null) throw new Refusal('freeze: no frame has been shown yet');
        this.audit(who, 'freeze', { frozen: msg.frozen, seq });
        return { frozen: p.frozen, seq };
      }
      case 'lock': return this.lock(who, msg);
      case 'clinical': {
        try {
          p.setClinical(msg.values);
        } catch (e) {
          throw new Refusal(`clinical: ${(e as Error).message}`);
        }
        this.audit(who, 'clinical', { values: msg.values });
        return { clinical: p.clinicalValues };
      }
      case 'record': {
        const r = this.opts.recording;
        if (!r) throw new Refusal('record: recording is not available here (the command serving the overlay has no recorder)');
        const active = r.state().active;
        if (msg.action === 'start' && active) throw new Refusal(`record: already recording (${r.state().name})`);
        if (msg.action === 'stop' && !active) throw new Refusal('record: not recording');
        let result: Record<string, unknown>;
        try {
          result = msg.action === 'start' ? { name: await r.start() } : await r.stop();
        } catch (e) {
          throw new Refusal(`record: ${(e as Error).message}`);
        } finally {
          this.broadcastState();
        }
        this.audit(who, 'record', { action: msg.action, ...result });
        return { action: msg.action, ...result };
      }
      case 'mark': {
        const event = this.mark(msg.label ?? '', who);
        return { seq: event.seq, at: event.at };
      }
      case 'reference': {
        const ref = msg.clear ? null : { x: msg.x!, y: msg.y!, radiusMm: msg.radiusMm! };
        let anchoredOn: number | null;
        try {
          ({ anchoredOn } = p.setReference(ref, msg.seq));
        } catch (e) {
          throw new Refusal(`reference: ${(e as Error).message}`);
        }
        this.audit(who, 'reference', { reference: ref, anchoredOn });
        return { reference: ref, anchoredOn };
      }
      case 'perfusion': {
        try {
          p.resetPerfusion();
        } catch (e) {
          throw new Refusal(`perfusion: ${(e as Error).message}`);
        }
        this.audit(who, 'perfusion', { action: 'reset' });
        return { action: 'reset' };
      }
      case 'segment': return this.segment(v, who, msg);
      case 'proposal': return this.proposal(v, who, msg.action);
    }
  }

  /** The reply for a proposed outline: its contour (pane pixels) and size. */
  private proposalReply(pr: NonNullable<Viewer['proposal']>): Record<string, unknown> {
    const { width, height } = pr.mask;
    const contour = Array.from(native.contour(pr.mask.data, width, height, 1, 255));
    return { found: true, seq: pr.seq, contour, area: maskStats(pr.mask).area, confidence: Math.round(pr.confidence * 1000) / 1000, grownPx: pr.grownPx };
  }

  /** 'segment': the lesion proposed from a tap or box on the frame shown; not locked until accepted. */
  private async segment(v: Viewer, who: AuditActor, msg: Extract<PageMessage, { type: 'segment' }>): Promise<Record<string, unknown>> {
    const prompt = msg.box ? { box: msg.box } : { seed: { x: msg.x!, y: msg.y! } };
    let r;
    try {
      r = await this.opts.pipeline.proposeLesion(prompt);
    } catch (e) {
      throw new Refusal(`segment: ${(e as Error).message}`);
    }
    v.proposal = undefined;
    this.audit(who, 'segment', { prompt, found: r.found, seq: r.seq, ...(r.found ? { area: r.area } : { reason: r.reason }), confidence: r.confidence, ms: Math.round(r.ms) });
    if (!r.found) return { found: false, seq: r.seq, reason: r.reason, confidence: Math.round(r.confidence * 1000) / 1000 };
    v.proposal = { mask: r.mask, seq: r.seq, confidence: r.confidence, grownPx: 0, heldSeq: this.opts.pipeline.frozenSeq };
    return { ...this.proposalReply(v.proposal), ms: Math.round(r.ms) };
  }

  /**
   * 'proposal': grow or shrink the proposed outline by half a millimetre (a Euclidean disc, in
   * the pane's pixels), accept it (tracking starts from it, as a lock) or discard it.
   */
  private async proposal(v: Viewer, who: AuditActor, action: 'grow' | 'shrink' | 'accept' | 'discard'): Promise<Record<string, unknown>> {
    const pr = v.proposal;
    if (!pr) throw new Refusal(`proposal: nothing proposed to ${action}: tap the lesion first`, 'no-proposal');
    if (action === 'discard') {
      v.proposal = undefined;
      return { discarded: true };
    }
    // A proposal made on a held frame belongs to that picture: unfrozen (or another frame held) since, it is gone.
    if (pr.heldSeq !== null && pr.heldSeq !== this.opts.pipeline.frozenSeq) {
      v.proposal = undefined;
      throw new Refusal(`proposal: it was made on held frame ${pr.heldSeq}, which is no longer held: tap again`, 'no-proposal');
    }
    if (action === 'accept') {
      const seq = await this.opts.pipeline.lockLesion(pr.mask);
      v.proposal = undefined;
      const result = { shape: 'tap', area: maskStats(pr.mask).area, proposedOn: pr.seq, grownPx: pr.grownPx, seq };
      this.audit(who, 'lock', { ...result, frozen: this.opts.pipeline.frozen });
      return result;
    }
    const pane = this.opts.pipeline.layout.panes.bmode;
    const stepPx = 0.5 / ((pane.spacingX + pane.spacingY) / 2);
    const { width, height } = pr.mask;
    const out = new Uint8Array(width * height);
    const area = native.morphMask(pr.mask.data, width, height, action === 'grow' ? stepPx : -stepPx, out);
    if (area === 0) throw new Refusal('proposal: shrinking further leaves nothing: discard it and tap again');
    pr.mask = { width, height, data: out };
    pr.grownPx = Math.round((pr.grownPx + (action === 'grow' ? stepPx : -stepPx)) * 100) / 100;
    return this.proposalReply(pr);
  }

  private control(v: Viewer, action: 'take' | 'release', force: boolean): Record<string, unknown> {
    if (action === 'take') {
      if (this.controller && this.controller !== v && !force)
        throw new Refusal(`control: viewer ${this.controller.id} has control; send "force": true to take it over`);
      if (this.controller !== v) {
        const from = this.controller?.id ?? null;
        this.controller = v;
        this.audit(this.actor(v), 'control', { action: 'take', from });
        this.broadcastState();
      }
    } else {
      if (this.controller !== v) throw new Refusal('control: you do not have control');
      this.controller = undefined;
      this.audit({ id: v.id, address: v.address }, 'control', { action: 'release' });
      this.broadcastState();
    }
    return { controller: this.controller?.id ?? null };
  }

  /**
   * 'lock': builds the mask and hands it to the pipeline; resolves once the tracker has taken it
   * (on the next frame, or at once on the held frame while frozen) or refused it.
   */
  private async lock(who: AuditActor, msg: Extract<PageMessage, { type: 'lock' }>): Promise<Record<string, unknown>> {
    const { width, height } = this.opts.pipeline.layout.panes.bmode.rect;
    let mask: LesionMask;
    try {
      mask = msg.polygon ? polygonMask(width, height, msg.polygon) : ellipseMask(width, height, msg.ellipse!);
    } catch (e) {
      const field = msg.polygon ? 'polygon' : 'ellipse';
      throw new Refusal(`lock.${field}: ${(e as Error).message.replace(/^(polygon|ellipse)Mask: /, '')}`);
    }
    const seq = await this.opts.pipeline.lockLesion(mask);
    const area = maskStats(mask).area;
    const result = msg.polygon ? { shape: 'polygon', points: msg.polygon.length / 2, area, seq } : { shape: 'ellipse', area, seq };
    this.audit(who, 'lock', { ...result, frozen: this.opts.pipeline.frozen });
    return result;
  }

  /** Sends a text message after checking it against the protocol schema (a failure is a bug: counted, reported, not sent). */
  private send(v: Viewer, msg: object): void {
    if (!this.valid(msg)) return;
    if (v.ws.readyState === v.ws.OPEN) v.ws.send(JSON.stringify(msg));
  }

  private valid(msg: object): boolean {
    const problems = serverMessageProblems(msg);
    if (problems.length === 0) return true;
    this.counters.invalidOutgoing++;
    this.emit('clientError', new Error(`overlay: not sending an invalid ${String((msg as { type?: unknown }).type)} message: ${problems.join('; ')}`));
    return false;
  }

  private display(d: DisplayFrame): void {
    if (this.viewers.size === 0) return;
    if (this.encoding) {
      if (this.pendingDisplay) this.counters.encodeDropped++;
      this.pendingDisplay = d;
      return;
    }
    this.encode(d);
  }

  private encode(d: DisplayFrame): void {
    this.encoding = true;
    const t0 = performance.now();
    const f = d.frame;
    const header = overlayHeader(d, d.frozen === true);
    sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 1 } })
      .jpeg({ quality: this.opts.jpegQuality, optimiseCoding: false })
      .toBuffer()
      .then((jpeg) => {
        this.encodeLatency.record(performance.now() - t0);
        this.counters.encoded++;
        if (!this.valid(header)) return;
        const msg = encodeFrameMessage(header, jpeg);
        this.lastFrame = msg;
        for (const v of this.viewers) this.offer(v, msg, f.timestampMs);
      })
      .catch((e: Error) => this.emit('clientError', new Error(`overlay: JPEG encoding failed for frame ${f.seq}: ${e.message}`)))
      .finally(() => {
        this.encoding = false;
        const next = this.pendingDisplay;
        this.pendingDisplay = undefined;
        if (next && this.viewers.size > 0) this.encode(next);
      });
  }

  /** Per-viewer latest-value slot: send now if the socket is free, else keep only the newest. */
  private offer(v: Viewer, msg: Buffer, captureMs?: number): void {
    if (v.ws.readyState !== v.ws.OPEN) return;
    if (v.sending || v.ws.bufferedAmount > this.opts.maxBufferedBytes) {
      if (v.pending) {
        this.counters.skipped++;
        v.skipped++;
      }
      v.pending = { msg, captureMs };
      return;
    }
    v.sending = true;
    v.ws.send(msg, { binary: true }, () => {
      v.sending = false;
      this.counters.sent++;
      v.sent++;
      if (captureMs !== undefined) this.sendLatency.record(performance.now() - captureMs);
      const next = v.pending;
      v.pending = undefined;
      if (next) this.offer(v, next.msg, next.captureMs);
    });
  }

  /**
   * Sends a text message to every viewer. Scores and status are skipped for a viewer whose socket
   * is full (newer ones follow); state and events are always queued, or a slow page would show a
   * state that no longer holds (they are small, and come only from rate-limited human actions).
   */
  private broadcast(msg: { type: string; [k: string]: unknown }): void {
    if (!this.valid(msg)) return;
    const text = JSON.stringify(msg);
    // Each of these replaces the last one of its kind: a viewer behind on reading may miss one.
    const droppable = msg.type === 'scores' || msg.type === 'status' || msg.type === 'perfusion';
    for (const v of this.viewers)
      if (v.ws.readyState === v.ws.OPEN && (!droppable || v.ws.bufferedAmount <= this.opts.maxBufferedBytes)) v.ws.send(text);
  }
}
