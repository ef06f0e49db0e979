// Panel buttons to pipeline and overlay state, and that state back to the panel's LEDs and status
// line. A panel button makes the same change the overlay page's control makes, audited as
// {id: 'panel'}:
//   overlay-toggle  all overlay layers off, or all back on (overlay.setLayers)
//   freeze          Pipeline.freeze toggled
//   lock-lesion     the lesion segmented (Pipeline.proposeLesion, one-tap segmenter) inside the
//                   centre box and locked; "no lesion" locks nothing. The box: centred on the
//                   B-mode pane, half-width from the slider (mm, through the pane's spacing),
//                   half-height = that x layout.lockLesion.aspect (default 0.8: 5 mm x 4 mm).
//                   Without a segmenter: Pipeline.lockLesion(ellipseMask(...)) of that ellipse
//   next-model      Pipeline.selectModels: all models, then each alone, then all again
//   ring-distance   which of pipeline.ringsMm the overlay highlights: each ring in turn, then all
//                   (overlay.highlightRing when the overlay offers it; the rings the pipeline
//                   computes are fixed when it starts)
//   record          the recorder started or stopped
//   mark-event      a marked event (overlay.mark: audit, recording, every page)
// Buttons act on press; releases are ignored. LEDs: tracking (on while tracking, slow blink
// uncertain, fast blink lost, off idle), frozen, recording, overlay (any layer shown), link (the
// driver's). The status line says what the last button did; it never shows a score (the panel has
// no room for the decision-support notice).
import { EventEmitter } from 'node:events';
import type { AuditActor, AuditLog } from '../../core/audit.js';
import { ellipseMask, maskStats } from '../../core/mask.js';
import type { Pipeline } from '../../core/pipeline.js';
import type { TrackResult } from '../../core/tracking.js';
import type { LedMode } from './codec.js';
import type { PanelButtonEvent, PanelDriver, PanelSliderEvent } from './driver.js';
import type { PanelAction, PanelLayout } from './layout.js';

/** The actor every panel action is audited as. */
export const PANEL_ACTOR: AuditActor = { id: 'panel' };

/** What the binding needs of the overlay server (web-overlay/server.ts). Methods audit the change as `who` themselves. */
export interface PanelOverlay {
  state(): { layers: Record<string, boolean> };
  broadcastState(): void;
  /** The overlay's 'state' event (after every change of the shared state, e.g. layers set from a page). */
  on?(event: 'state', listener: () => void): unknown;
  off?(event: 'state', listener: () => void): unknown;
  /** Shows or hides layers on every page; returns the layers now. */
  setLayers(patch: Record<string, boolean>, who: AuditActor): Record<string, boolean>;
  /** Marks an event: the active recording's events, the audit log, an `event` message to every page. */
  mark?(label: string, who: AuditActor): { seq: number | null; at: string };
  /** Highlights one of the drawn rings on every page (null: all alike); audits it. */
  highlightRing?(mm: number | null, who: AuditActor): void;
}

/** Recording control (web-overlay/server.ts RecordingControl; device/recording.ts OnDemandRecorder). */
export interface PanelRecorder {
  state(): { active: boolean; name: string | null };
  start(): Promise<string>;
  stop(): Promise<{ name: string; frames: number; dropped: number }>;
  mark?(e: { kind: 'mark'; label: string; seq: number | null; at: string; by: string }): void;
  on?(event: 'change', listener: () => void): unknown;
  off?(event: 'change', listener: () => void): unknown;
}

export interface BindPanelOptions {
  pipeline: Pipeline;
  overlay?: PanelOverlay;
  recorder?: PanelRecorder;
  audit?: AuditLog;
  layout?: PanelLayout;
  /** Label of the events marked from the panel (default "panel"). */
  markLabel?: string;
}

/** One button's outcome, also emitted as 'action'. */
export interface PanelActionResult { action: PanelAction | 'slider'; ok: boolean; status: string; details?: Record<string, unknown> }

export interface PanelBinding extends EventEmitter {
  /** The lock size (mm) or ring the slider set, the highlighted ring, and the model cycle position. */
  readonly settings: { sliderValue: number; ringMm: number | null; modelStep: number; layersShown: boolean };
  /** Carries out an action as if its button was pressed (resolves when done). */
  act(action: PanelAction): Promise<PanelActionResult>;
  /** Stops listening to the driver, pipeline and recorder. */
  unbind(): void;
}

const TRACKING_LED: Record<TrackResult['state'], LedMode> = { idle: 'off', tracking: 'on', uncertain: 'blink', lost: 'fast' };

/**
 * Binds a panel driver to the pipeline (and overlay, recorder, audit log). Events of the
 * returned binding: 'action' (PanelActionResult) after each button, 'error' (Error) when an
 * action failed unexpectedly (refusals are results with ok false, not errors).
 */
export function bindPanel(driver: PanelDriver, o: BindPanelOptions): PanelBinding {
  const layout = o.layout ?? driver.layout;
  const { pipeline, overlay, recorder, audit } = o;
  const em = new EventEmitter() as PanelBinding;
  const settings = { sliderValue: layout.slider.default, ringMm: null as number | null, modelStep: 0, layersShown: true };
  (em as { settings: typeof settings }).settings = settings;
  const record = (what: string, details: Record<string, unknown>) => audit?.record(PANEL_ACTOR, what, { ...details, source: 'panel' });
  let busy: Promise<unknown> = Promise.resolve();

  const layersShown = () => (overlay ? Object.values(overlay.state().layers).some(Boolean) : settings.layersShown);
  const refreshLeds = () => {
    const want: Record<LedSource, LedMode> = {
      tracking: TRACKING_LED[pipeline.trackingState], frozen: pipeline.frozen ? 'on' : 'off',
      recording: recorder?.state().active ? 'on' : 'off', overlay: layersShown() ? 'on' : 'off', link: 'on',
    };
    driver.setLeds(Object.fromEntries(layout.leds.filter((l) => l.shows !== 'link').map((l) => [l.name, want[l.shows]])));
  };
  type LedSource = PanelLayout['leds'][number]['shows'];

  const mm = (v: number) => `${Number(v.toFixed(1))}MM`;

  async function act(action: PanelAction): Promise<PanelActionResult> {
    switch (action) {
      case 'overlay-toggle': {
        const show = !layersShown();
        const patch = { contour: show, rings: show, scores: show, tic: show };
        if (overlay) overlay.setLayers(patch, PANEL_ACTOR);
        else record('layers', { layers: patch });
        settings.layersShown = show;
        return { action, ok: true, status: show ? 'OVERLAY ON' : 'OVERLAY OFF', details: { layers: patch } };
      }
      case 'freeze': {
        const on = !pipeline.frozen;
        const seq = pipeline.freeze(on);
        if (on && seq === null) return { action, ok: false, status: 'FREEZE: NO FRAME YET' };
        record('freeze', { frozen: on, seq });
        return { action, ok: true, status: on ? `FROZEN #${seq}` : 'LIVE', details: { frozen: on, seq } };
      }
      case 'lock-lesion': {
        const pane = pipeline.layout.panes.bmode;
        const { width, height } = pane.rect;
        const radiusMm = layout.slider.controls === 'lock-size-mm' ? settings.sliderValue : layout.slider.default;
        const aspect = layout.lockLesion?.aspect ?? 0.8;
        const ellipse = { cx: (width - 1) / 2, cy: (height - 1) / 2, rx: radiusMm / pane.spacingX, ry: (radiusMm * aspect) / pane.spacingY };
        try {
          if (pipeline.canSegment) {
            // The lesion segmented inside the centre box (the ellipse's bounding box), not the ellipse itself.
            const box = { x0: ellipse.cx - ellipse.rx, y0: ellipse.cy - ellipse.ry, x1: ellipse.cx + ellipse.rx, y1: ellipse.cy + ellipse.ry };
            const p = await pipeline.proposeLesion({ box });
            if (!p.found) return { action, ok: false, status: 'LOCK: NO LESION IN BOX', details: { box, radiusMm, reason: p.reason, seq: p.seq } };
            const seq = await pipeline.lockLesion(p.mask);
            const details = { shape: 'segmented', box, radiusMm, area: p.area, confidence: Math.round(p.confidence * 1000) / 1000, proposedOn: p.seq, seq, frozen: pipeline.frozen };
            record('lock', details);
            return { action, ok: true, status: `LOCKED LESION #${seq}`, details };
          }
          const mask = ellipseMask(width, height, ellipse);
          const seq = await pipeline.lockLesion(mask);
          const details = { shape: 'ellipse', ellipse, radiusMm, area: maskStats(mask).area, seq, frozen: pipeline.frozen };
          record('lock', details);
          return { action, ok: true, status: `LOCKED ${mm(radiusMm)} #${seq}`, details };
        } catch (e) {
          return { action, ok: false, status: `LOCK REFUSED: ${(e as Error).message}`, details: { ellipse, radiusMm } };
        }
      }
      case 'next-model': {
        const ids = pipeline.models.map((m) => m.card.id);
        if (ids.length === 0) return { action, ok: false, status: 'NO MODELS LOADED' };
        // Step 0 is all models, step k the k-th alone; with one model there is nothing to cycle.
        if (ids.length === 1) return { action, ok: false, status: `ONLY ${ids[0]}` };
        settings.modelStep = (settings.modelStep + 1) % (ids.length + 1);
        const enabled = settings.modelStep === 0 ? ids : [ids[settings.modelStep - 1]];
        pipeline.selectModels(enabled);
        record('models', { enabled: pipeline.enabledModels });
        return { action, ok: true, status: settings.modelStep === 0 ? 'MODELS: ALL' : `MODEL ${enabled[0]}`, details: { enabled } };
      }
      case 'ring-distance': {
        const rings = [...pipeline.ringsMm];
        if (!rings.length) return { action, ok: false, status: 'NO RINGS' };
        const at = settings.ringMm === null ? -1 : rings.indexOf(settings.ringMm);
        settings.ringMm = at + 1 < rings.length ? rings[at + 1] : null;
        return ringChosen(action);
      }
      case 'record': {
        if (!recorder) return { action, ok: false, status: 'NO RECORDER' };
        const active = recorder.state().active;
        try {
          const result = active ? await recorder.stop() : { name: await recorder.start() };
          record('record', { action: active ? 'stop' : 'start', ...result });
          overlay?.broadcastState();
          return { action, ok: true, status: active ? 'REC STOPPED' : 'RECORDING', details: { action: active ? 'stop' : 'start', ...result } };
        } catch (e) {
          overlay?.broadcastState();
          return { action, ok: false, status: `REC FAILED: ${(e as Error).message}` };
        }
      }
      case 'mark-event': {
        const label = o.markLabel ?? 'panel';
        if (overlay?.mark) {
          const r = overlay.mark(label, PANEL_ACTOR);
          return { action, ok: true, status: `MARKED #${r.seq ?? '-'}`, details: { label, ...r } };
        }
        const event = { kind: 'mark' as const, label, seq: pipeline.lastShownSeq, at: new Date().toISOString(), by: PANEL_ACTOR.id };
        if (recorder?.state().active) recorder.mark?.(event);
        record('mark', { label, seq: event.seq });
        return { action, ok: true, status: `MARKED #${event.seq ?? '-'}`, details: { label, seq: event.seq, at: event.at } };
      }
    }
  }

  function ringChosen(action: PanelAction | 'slider'): PanelActionResult {
    // The overlay audits what it shows; without it the binding does.
    if (overlay?.highlightRing) overlay.highlightRing(settings.ringMm, PANEL_ACTOR);
    else record('ring', { highlight: settings.ringMm });
    return { action, ok: true, status: settings.ringMm === null ? 'RINGS: ALL' : `RING ${mm(settings.ringMm)}`, details: { ringMm: settings.ringMm } };
  }

  function finish(r: PanelActionResult): PanelActionResult {
    driver.setStatus(r.status);
    refreshLeds();
    em.emit('action', r);
    return r;
  }

  // One action at a time, in the order pressed (a lock waits for its frame).
  const run = (action: PanelAction): Promise<PanelActionResult> => {
    const p = busy.then(() => act(action)).then(finish, (e: Error) => {
      if (em.listenerCount('error') > 0) em.emit('error', e);
      return finish({ action, ok: false, status: `FAILED: ${e.message}` });
    });
    busy = p.catch(() => undefined);
    return p;
  };
  (em as { act: typeof run }).act = run;

  const onButton = (b: PanelButtonEvent) => { if (b.pressed) void run(b.action); };
  // In the same queue as the buttons, so the status line follows the order of the panel's messages.
  const onSlider = (s: PanelSliderEvent) => {
    busy = busy.then(() => slider(s));
  };
  const slider = (s: PanelSliderEvent) => {
    if (s.value === settings.sliderValue && s.controls === 'lock-size-mm') return;
    settings.sliderValue = s.value;
    if (s.controls === 'ring-mm') {
      const rings = [...pipeline.ringsMm];
      const nearest = rings.reduce((a, r) => (Math.abs(r - s.value) < Math.abs(a - s.value) ? r : a), rings[0]);
      if (nearest !== settings.ringMm) {
        settings.ringMm = nearest;
        finish(ringChosen('slider'));
      }
      return;
    }
    driver.setStatus(`LOCK SIZE ${mm(s.value)}`);
    em.emit('action', { action: 'slider', ok: true, status: `LOCK SIZE ${mm(s.value)}`, details: { value: s.value } } satisfies PanelActionResult);
  };
  const onConnected = (h: { firmware: string; layoutHash: string; path: string | null }) => {
    refreshLeds();
    audit?.record(PANEL_ACTOR, 'connect', { firmware: h.firmware, layoutHash: h.layoutHash, path: h.path, source: 'panel' });
  };
  const onDisconnected = (d: { reason: string }) => audit?.record(PANEL_ACTOR, 'disconnect', { reason: d.reason, source: 'panel' });
  let lastTracking: string | undefined;
  const onDisplay = (d: { track: TrackResult }) => {
    if (d.track.state === lastTracking) return;
    lastTracking = d.track.state;
    refreshLeds();
  };
  const onState = () => refreshLeds();

  // Every listener, added now and removed by unbind().
  // Each listener takes its own event's arguments.
  type Listener = (...a: any[]) => void;
  type Emitter = { on(event: string, listener: Listener): unknown; off(event: string, listener: Listener): unknown };
  const listeners: Array<[Emitter | undefined, string, Listener]> = [
    [driver, 'button', onButton], [driver, 'slider', onSlider], [driver, 'connected', onConnected], [driver, 'disconnected', onDisconnected],
    [pipeline, 'display', onDisplay], [pipeline, 'freeze', onState], [pipeline, 'lock', onState], [pipeline, 'models', onState],
    [recorder?.on ? (recorder as Emitter) : undefined, 'change', onState],
    // Layers changed from a page reach the overlay LED through the overlay's state event.
    [overlay?.on ? (overlay as Emitter) : undefined, 'state', onState],
  ];
  for (const [target, event, fn] of listeners) target?.on(event, fn);
  refreshLeds();

  (em as { unbind: () => void }).unbind = () => {
    for (const [target, event, fn] of listeners) target?.off(event, fn);
  };
  return em;
}
