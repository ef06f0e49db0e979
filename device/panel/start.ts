// The panel as a command that runs the pipeline uses it (`sonomics demo`, `run`, `replay` with
// --panel PATH or the config's `panel` section): the driver, bound to the pipeline, overlay,
// recorder and audit log, its problems logged, its state for the overlay's status message.
import type { SonomicsConfig } from '../../core/config.js';
import type { AuditLog } from '../../core/audit.js';
import type { Pipeline } from '../../core/pipeline.js';
import { bindPanel, PANEL_ACTOR, type PanelActionResult, type PanelBinding, type PanelOverlay, type PanelRecorder } from './bind.js';
import { PanelDriver, type PanelError, type PanelHello } from './driver.js';
import { hex32, loadPanelLayout } from './layout.js';

/** The config's `panel` section (core/config.ts); defaults in PANEL_CONFIG_DEFAULTS. */
export type PanelConfig = SonomicsConfig['panel'];

export const PANEL_CONFIG_DEFAULTS: PanelConfig = { reconnect: { initialMs: 250, maxMs: 8000 } };

export interface PanelSession {
  driver: PanelDriver;
  binding: PanelBinding;
  /** Opens the port (and keeps re-opening it until stop()). */
  start(): void;
  /** The `panel` entry of the overlay's status message. */
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * The panel when the config names a port (path or USB ids), bound but not started (start() opens
 * the port); undefined otherwise. A bad layout file throws here (a set-up error, before anything
 * runs); everything on the line is logged and retried.
 */
export function startPanel(o: {
  config: Partial<PanelConfig>;
  pipeline: Pipeline;
  overlay?: PanelOverlay;
  recorder?: PanelRecorder;
  audit?: AuditLog;
  log: (line: string) => void;
}): PanelSession | undefined {
  const c = { ...PANEL_CONFIG_DEFAULTS, ...o.config };
  if (!c.path && !c.usb) return undefined;
  const layout = loadPanelLayout(c.layout);
  const driver = new PanelDriver({
    path: c.path, usb: c.path ? undefined : c.usb, baudRate: c.baudRate ?? layout.protocol.baudRate, reconnect: c.reconnect,
    heartbeatTimeoutMs: c.heartbeatTimeoutMs ?? layout.protocol.heartbeatTimeoutMs, layout,
  });
  let hello: PanelHello | undefined;
  let lastError: string | null = null;
  driver.on('error', (e: PanelError) => {
    lastError = e.message;
    o.log(e.message);
  });
  driver.on('hello', (h: PanelHello) => { hello = h; });
  driver.on('connected', (h: PanelHello & { path: string | null }) => o.log(`panel: connected on ${h.path} (firmware ${h.firmware}, layout ${h.layoutHash})`));
  driver.on('disconnected', (d: { reason: string }) => o.log(`panel: disconnected: ${d.reason}`));
  const binding = bindPanel(driver, { pipeline: o.pipeline, overlay: o.overlay, recorder: o.recorder, audit: o.audit, layout });
  binding.on('action', (r: PanelActionResult) => { if (!r.ok) o.log(`panel: ${r.action}: ${r.status}`); });
  binding.on('error', (e: Error) => o.log(`panel: ${e.message}`));
  return {
    driver, binding,
    start: () => { driver.start(); },
    status: () => {
      const s = driver.stats();
      return {
        configured: true, state: s.connected ? 'connected' : s.state === 'open' ? 'waiting for the panel' : s.state === 'stopped' ? 'stopped' : 'no port',
        path: s.path ?? c.path ?? (c.usb ? `usb ${c.usb.vendorId}:${c.usb.productId}` : null),
        firmware: hello?.firmware ?? null, layout: `${layout.name} ${layout.version} (${hex32(driver.layoutHash)})`, layoutMatches: hello?.layoutMatches ?? null,
        leds: driver.leds(), statusLine: driver.status(), lastError,
        counters: {
          framesIn: s.framesIn, framesOut: s.framesOut, garbageBytes: s.garbageBytes, crcErrors: s.crcErrors, partialFrames: s.partialFrames,
          oversized: s.oversized, naksSent: s.naksSent, reconnects: s.reconnects, heartbeatTimeouts: s.heartbeatTimeouts,
        },
      };
    },
    stop: async () => {
      binding.unbind();
      await driver.stop();
    },
  };
}

export { PANEL_ACTOR };
