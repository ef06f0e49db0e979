// The overlay server: serves the page and feeds it over one WebSocket. Each display frame is
// JPEG-encoded once (sharp, off the main thread) and sent with its overlay in one binary
// message. Every viewer has a latest-value slot: a slow viewer gets the newest frame when its
// socket is ready and skips the rest (counted); it never delays the pipeline or other viewers.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import { LatencyRecorder, type LatencySummary } from '../core/latency.js';
import { ellipseMask, maskStats, polygonMask, type EllipseSpec, type LesionMask } from '../core/mask.js';
import { packageRoot } from '../core/paths.js';
import type { DisplayFrame, Pipeline, ScoreUpdate } from '../core/pipeline.js';
import { encodeFrameMessage, helloMessage, overlayHeader, PROTOCOL_VERSION, scoresMessage } from './protocol.js';

// One libvips thread: the other core stays free for the pipeline's main thread and the
// features worker (the edge box has two cores).
sharp.concurrency(1);

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
}

interface Viewer { ws: WebSocket; sending: boolean; pending: Buffer | undefined }

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** A page's request to (re)start tracking from an outline in B-mode pane pixel coordinates. */
export type LockRequest = { polygon: number[] } | { ellipse: EllipseSpec };

function jsonKind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * Checks the JSON shape of a 'lock' message: exactly one of `polygon` (an array of numbers) or
 * `ellipse` (an object with numeric cx, cy, rx, ry). Returns the request, or the problem naming
 * the field. Counts, finiteness, radii and the pane are checked by the mask builders. (A JSON
 * schema for the whole protocol will replace this function.)
 */
export function checkLockMessage(msg: Record<string, unknown>): LockRequest | string {
  const hasPolygon = msg.polygon !== undefined, hasEllipse = msg.ellipse !== undefined;
  if (hasPolygon === hasEllipse) return hasPolygon ? 'lock takes "polygon" or "ellipse", not both' : 'lock needs a "polygon" or an "ellipse"';
  if (hasPolygon) {
    const p = msg.polygon;
    if (!Array.isArray(p)) return `lock.polygon must be an array [x0, y0, x1, y1, ...] (got ${jsonKind(p)})`;
    const bad = p.findIndex((v) => typeof v !== 'number');
    if (bad >= 0) return `lock.polygon[${bad}] must be a number (got ${jsonKind(p[bad])})`;
    return { polygon: p as number[] };
  }
  const e = msg.ellipse;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return `lock.ellipse must be an object {cx, cy, rx, ry} (got ${jsonKind(e)})`;
  const o = e as Record<string, unknown>;
  for (const k of ['cx', 'cy', 'rx', 'ry']) if (typeof o[k] !== 'number') return `lock.ellipse.${k} must be a number (got ${jsonKind(o[k])})`;
  return { ellipse: { cx: o.cx as number, cy: o.cy as number, rx: o.rx as number, ry: o.ry as number } };
}

export interface OverlayStats {
  viewers: number;
  encoded: number;
  encodeDropped: number;
  sent: number;
  skipped: number;
  encode: LatencySummary;
}

/** Events: 'listening' (url), 'viewer' (count), 'clientError' (Error). */
export class OverlayServer extends EventEmitter {
  private readonly opts: Required<Omit<OverlayServerOptions, 'status'>> & Pick<OverlayServerOptions, 'status'>;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly viewers = new Set<Viewer>();
  private readonly files = new Map<string, Buffer>();
  private encoding = false;
  private pendingDisplay: DisplayFrame | undefined;
  private readonly encodeLatency = new LatencyRecorder();
  private counters = { encoded: 0, encodeDropped: 0, sent: 0, skipped: 0 };
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly onDisplay = (d: DisplayFrame) => this.display(d);
  private readonly onScores = (u: ScoreUpdate) => this.broadcast(JSON.stringify(scoresMessage(u)));

  constructor(opts: OverlayServerOptions) {
    super();
    this.opts = {
      host: '127.0.0.1', port: 8080, jpegQuality: 70, maxBufferedBytes: 4 * 1024 * 1024, statusIntervalMs: 1000, ...opts,
    };
    const dir = join(packageRoot(), 'web-overlay', 'public');
    for (const { file } of Object.values(STATIC)) if (!this.files.has(file)) this.files.set(file, readFileSync(join(dir, file)));
    if (!isLoopback(this.opts.host))
      throw new Error(`overlay.host ${this.opts.host}: only loopback addresses are served until token authentication is configured`);
    this.http = createServer((req, res) => this.serve(req, res));
    // Browsers send Origin: only the page this server serves may open the socket.
    this.wss = new WebSocketServer({
      server: this.http, path: '/ws', maxPayload: 64 * 1024,
      verifyClient: ({ origin, req }: { origin?: string; req: IncomingMessage }) => !origin || sameHost(origin, req.headers.host),
    });
    this.wss.on('connection', (ws) => this.connect(ws));
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(new Error(`overlay: cannot listen on ${this.opts.host}:${this.opts.port}: ${e.message}`));
      this.http.once('error', onError);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', onError);
        this.opts.pipeline.on('display', this.onDisplay);
        this.opts.pipeline.on('scores', this.onScores);
        this.statusTimer = setInterval(() => this.broadcast(JSON.stringify({ type: 'status', v: PROTOCOL_VERSION, stats: this.statusPayload() })), this.opts.statusIntervalMs);
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
    return `http://${host}:${a.port}/`;
  }

  async close(): Promise<void> {
    this.opts.pipeline.off('display', this.onDisplay);
    this.opts.pipeline.off('scores', this.onScores);
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
    return { viewers: this.viewers.size, ...this.counters, encode: this.encodeLatency.summary() };
  }

  private statusPayload() {
    return { pipeline: this.opts.pipeline.stats(), overlay: this.stats(), ...(this.opts.status?.() ?? {}) };
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET, HEAD' }).end('method not allowed\n'); return; }
    if (url.pathname === '/api/status') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.statusPayload()));
      return;
    }
    const entry = STATIC[url.pathname];
    if (!entry) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n'); return; }
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; style-src 'self'; script-src 'self'");
    res.writeHead(200, { 'Content-Type': entry.type }).end(req.method === 'HEAD' ? undefined : this.files.get(entry.file));
  }

  private connect(ws: WebSocket): void {
    const viewer: Viewer = { ws, sending: false, pending: undefined };
    this.viewers.add(viewer);
    this.emit('viewer', this.viewers.size);
    const p = this.opts.pipeline;
    ws.send(JSON.stringify(helloMessage(p.layout, p.ringsMm, p.models)));
    ws.on('message', (data, isBinary) => this.message(viewer, data as Buffer, isBinary));
    ws.on('error', (e) => this.emit('clientError', e));
    ws.on('close', () => { this.viewers.delete(viewer); this.emit('viewer', this.viewers.size); });
  }

  private message(v: Viewer, data: Buffer, isBinary: boolean): void {
    const reply = (o: object) => { if (v.ws.readyState === v.ws.OPEN) v.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...o })); };
    if (isBinary) { reply({ type: 'error', error: 'binary messages are not accepted from the page' }); return; }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      reply({ type: 'error', error: 'message is not valid JSON' });
      return;
    }
    if (typeof msg !== 'object' || msg === null || typeof (msg as { type?: unknown }).type !== 'string') {
      reply({ type: 'error', error: 'message must be an object with a string "type"' });
      return;
    }
    const type = (msg as { type: string }).type;
    if (type === 'ping') reply({ type: 'pong' });
    else if (type === 'lock') void this.lock(msg as Record<string, unknown>).then(reply);
    else reply({ type: 'error', error: `unknown message type "${type.slice(0, 40)}"` });
  }

  /**
   * 'lock': builds the mask and hands it to the pipeline; replies once the tracker has taken it
   * (on the next frame) or refused it (too small, no texture). On any problem nothing changes.
   */
  private async lock(msg: Record<string, unknown>): Promise<object> {
    const req = checkLockMessage(msg);
    if (typeof req === 'string') return { type: 'error', error: req };
    const { width, height } = this.opts.pipeline.layout.panes.bmode.rect;
    let mask: LesionMask;
    try {
      mask = 'polygon' in req ? polygonMask(width, height, req.polygon) : ellipseMask(width, height, req.ellipse);
    } catch (e) {
      const field = 'polygon' in req ? 'polygon' : 'ellipse';
      return { type: 'error', error: `lock.${field}: ${(e as Error).message.replace(/^(polygon|ellipse)Mask: /, '')}` };
    }
    let seq: number;
    try {
      seq = await this.opts.pipeline.lockLesion(mask);
    } catch (e) {
      return { type: 'error', error: `lock: ${(e as Error).message}` };
    }
    const area = maskStats(mask).area;
    return 'polygon' in req ? { type: 'locked', shape: 'polygon', points: req.polygon.length / 2, area, seq } : { type: 'locked', shape: 'ellipse', area, seq };
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
    sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 1 } })
      .jpeg({ quality: this.opts.jpegQuality, optimiseCoding: false })
      .toBuffer()
      .then((jpeg) => {
        this.encodeLatency.record(performance.now() - t0);
        this.counters.encoded++;
        const msg = encodeFrameMessage(overlayHeader(d), jpeg);
        for (const v of this.viewers) this.offer(v, msg);
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
  private offer(v: Viewer, msg: Buffer): void {
    if (v.ws.readyState !== v.ws.OPEN) return;
    if (v.sending || v.ws.bufferedAmount > this.opts.maxBufferedBytes) {
      if (v.pending) this.counters.skipped++;
      v.pending = msg;
      return;
    }
    v.sending = true;
    v.ws.send(msg, { binary: true }, () => {
      v.sending = false;
      this.counters.sent++;
      const next = v.pending;
      v.pending = undefined;
      if (next) this.offer(v, next);
    });
  }

  private broadcast(text: string): void {
    for (const v of this.viewers) if (v.ws.readyState === v.ws.OPEN && v.ws.bufferedAmount <= this.opts.maxBufferedBytes) v.ws.send(text);
  }
}
