// Panel buttons bound to a real pipeline (the phantom through core/pipeline.ts) and a fake overlay
// that offers the methods the overlay server is to provide: each button makes its change, audited
// as the panel; LEDs and the status line follow. Then the same through the C panel over a pty.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AuditLog, verifyAuditLog, type AuditActor, type AuditEntry } from '../core/audit.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline } from '../core/pipeline.js';
import { RiskModel } from '../core/risk.js';
import { PhantomScanner } from '../device/phantom.js';
import { bindPanel, type PanelActionResult, type PanelOverlay, type PanelRecorder } from '../device/panel/bind.js';
import { PanelDriver, type PanelButtonEvent } from '../device/panel/driver.js';
import { loadPanelLayout, sliderRaw, type PanelAction } from '../device/panel/layout.js';
import { testCard } from './cards.js';
import { sleep, until } from './helpers.js';
import { startPanel } from '../device/panel/start.js';
import { buildSim, CPanel, nextEvent, ptyPair, requireTool, testDriverOptions, tmp, TsPanel } from './panel-helpers.js';

/** The overlay server as the binding sees it; `pageSets` plays a page changing the layers (the server emits 'state'). */
class FakeOverlay extends EventEmitter implements PanelOverlay {
  layers: Record<string, boolean> = { contour: true, rings: true, scores: true, tic: true };
  calls: Array<[string, unknown, AuditActor]> = [];
  broadcasts = 0;
  constructor(private readonly audit?: AuditLog, private readonly seq: () => number | null = () => null) {
    super();
  }
  pageSets(layers: Record<string, boolean>) {
    this.layers = layers;
    this.emit('state');
  }
  state() { return { layers: { ...this.layers } }; }
  broadcastState() { this.broadcasts++; }
  setLayers(patch: Record<string, boolean>, who: AuditActor) {
    this.layers = { ...this.layers, ...patch };
    this.audit?.record(who, 'layers', { layers: patch });
    this.calls.push(['setLayers', patch, who]);
    return { ...this.layers };
  }
  mark(label: string, who: AuditActor) {
    const r = { seq: this.seq(), at: new Date().toISOString() };
    this.audit?.record(who, 'mark', { label, seq: r.seq });
    this.calls.push(['mark', label, who]);
    return r;
  }
  highlightRing(mm: number | null, who: AuditActor) {
    this.audit?.record(who, 'ring', { highlight: mm });
    this.calls.push(['highlightRing', mm, who]);
  }
}

class FakeRecorder extends EventEmitter implements PanelRecorder {
  active = false;
  marks: unknown[] = [];
  state() { return { active: this.active, name: this.active ? 'session-x.sonrec' : null }; }
  async start() { this.active = true; this.emit('change'); return 'session-x.sonrec'; }
  async stop() { this.active = false; this.emit('change'); return { name: 'session-x.sonrec', frames: 12, dropped: 0 }; }
  mark(e: unknown) { this.marks.push(e); }
}

const nomogram = () => new RiskModel(testCard({ id: 'test-two' }, ['bmode.lesion.firstorder_Mean']));

async function setup(t: Tap.Test) {
  const dir = tmp('panel-bind');
  const phantom = new PhantomScanner({ seed: 5 });
  const pipeline = new Pipeline({ layout: phantom.layout, models: [await loadRiskModel('busi-malignancy'), nomogram()] }).start();
  const auditPath = join(dir, 'audit.jsonl');
  const audit = new AuditLog(auditPath);
  let feeding = false, stopped = false, i = 0;
  // The phantom at about 30 fps while `feeding` (bounded: 60 s at most).
  const feeder = (async () => {
    const end = Date.now() + 60000;
    while (!stopped && Date.now() < end) {
      if (feeding) { const { frame, truth } = phantom.frameAt(i++); pipeline.push(frame, truth); }
      await sleep(33);
    }
  })();
  t.teardown(async () => {
    stopped = true;
    await feeder;
    await pipeline.stop();
    audit.close();
  });
  const entries = () => readFileSync(auditPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEntry);
  return { phantom, pipeline, audit, auditPath, entries, feed: (on: boolean) => { feeding = on; } };
}
namespace Tap { export type Test = import('tap').Test }

t.test('each button makes the overlay page\'s change, audited as the panel; LEDs and status follow', async (t) => {
  const { pipeline, audit, auditPath, entries, feed } = await setup(t);
  const layout = loadPanelLayout();
  const driver = new PanelDriver(testDriverOptions('/nonexistent/panel'));
  const overlay = new FakeOverlay(audit, () => pipeline.lastShownSeq);
  const recorder = new FakeRecorder();
  const binding = bindPanel(driver, { pipeline, overlay, recorder, audit });
  t.teardown(() => binding.unbind());
  const results: PanelActionResult[] = [];
  binding.on('action', (r: PanelActionResult) => results.push(r));
  const press = async (action: PanelAction) => {
    const b = layout.buttons.find((x) => x.action === action)!;
    const done = nextEvent<PanelActionResult>(binding, 'action', 8000, (r) => r.action === action);
    driver.emit('button', { id: b.id, name: b.name, action, pressed: true, seq: 0 } satisfies PanelButtonEvent);
    driver.emit('button', { id: b.id, name: b.name, action, pressed: false, seq: 1 } satisfies PanelButtonEvent);
    return done;
  };

  // Before any frame: freeze is refused, nothing audited.
  t.match(await press('freeze'), { ok: false, status: 'FREEZE: NO FRAME YET' });
  t.equal(driver.status(), 'FREEZE: NO FRAME YET', 'the status line says why');
  t.same(entries(), []);
  t.equal(driver.leds().tracking, 'off', 'idle: tracking LED off');

  feed(true);
  await until(() => pipeline.lastShownSeq !== null, 5000, 'frames');
  // Slider: the lock size in mm.
  const slid = nextEvent<PanelActionResult>(binding, 'action', 3000, (r) => r.action === 'slider');
  driver.emit('slider', { id: 0, raw: sliderRaw(layout.slider, 6), value: 6, controls: 'lock-size-mm' });
  t.match(await slid, { ok: true, details: { value: 6 } });
  t.equal(binding.settings.sliderValue, 6);
  t.equal(driver.status(), 'LOCK SIZE 6MM');
  // Lock lesion: a centred ellipse, 6 mm x 4.8 mm.
  const locked = nextEvent<number>(pipeline, 'lock', 5000);
  const lock = await press('lock-lesion');
  const seq = await locked;
  const pane = pipeline.layout.panes.bmode;
  t.match(lock, { ok: true, status: `LOCKED 6MM #${seq}`, details: { shape: 'ellipse', radiusMm: 6, seq } });
  const e = lock.details!.ellipse as { cx: number; cy: number; rx: number; ry: number };
  t.same([e.cx, e.cy], [(pane.rect.width - 1) / 2, (pane.rect.height - 1) / 2], 'centred on the B-mode pane');
  t.ok(Math.abs(e.rx - 6 / pane.spacingX) < 1e-9 && Math.abs(e.ry - 4.8 / pane.spacingY) < 1e-9, 'radii from the slider through the pane spacing');
  const area = lock.details!.area as number;
  t.ok(Math.abs(area - Math.PI * e.rx * e.ry) / area < 0.02, `mask area ${area} ~ pi rx ry`);
  await until(() => driver.leds().tracking !== 'off', 3000, 'tracking LED');
  t.ok(['on', 'blink'].includes(driver.leds().tracking), `tracking LED ${driver.leds().tracking}`);

  // Freeze and unfreeze.
  const frozen = await press('freeze');
  t.match(frozen, { ok: true, status: /^FROZEN #\d+$/, details: { frozen: true } });
  t.equal(pipeline.frozen, true);
  t.equal(driver.leds().frozen, 'on');
  t.match(await press('freeze'), { ok: true, status: 'LIVE' });
  t.equal(pipeline.frozen, false);
  t.equal(driver.leds().frozen, 'off');

  // Next model: all, each alone, all.
  t.same(pipeline.enabledModels, ['busi-malignancy', 'test-two']);
  t.match(await press('next-model'), { status: 'MODEL busi-malignancy' });
  t.same(pipeline.enabledModels, ['busi-malignancy']);
  t.match(await press('next-model'), { status: 'MODEL test-two' });
  t.same(pipeline.enabledModels, ['test-two']);
  t.match(await press('next-model'), { status: 'MODELS: ALL' });
  t.same(pipeline.enabledModels, ['busi-malignancy', 'test-two']);

  // Ring distance: each drawn ring, then all.
  const rings: Array<number | null> = [];
  for (let k = 0; k < 4; k++) rings.push((await press('ring-distance')).details!.ringMm as number | null);
  t.same(rings, [3, 5, 8, null]);
  t.same(overlay.calls.filter((c) => c[0] === 'highlightRing').map((c) => c[1]), [3, 5, 8, null], 'the overlay is asked to highlight them');
  t.equal(driver.status(), 'RINGS: ALL');

  // Overlay off and on.
  t.match(await press('overlay-toggle'), { status: 'OVERLAY OFF' });
  t.same(overlay.layers, { contour: false, rings: false, scores: false, tic: false });
  t.equal(driver.leds().overlay, 'off');
  t.match(await press('overlay-toggle'), { status: 'OVERLAY ON' });
  t.equal(driver.leds().overlay, 'on');
  // A page hiding a layer keeps the overlay LED on (some layer shows); hiding all turns it off.
  overlay.pageSets({ contour: false, rings: false, scores: false, tic: false });
  await until(() => driver.leds().overlay === 'off', 8000, 'overlay LED follows a page');
  overlay.layers = { contour: true, rings: true, scores: true, tic: true };

  // Record, mark, stop.
  t.match(await press('record'), { ok: true, status: 'RECORDING' });
  t.equal(driver.leds().recording, 'on');
  t.match(await press('mark-event'), { ok: true, status: /^MARKED #\d+$/ });
  t.match(overlay.calls.find((c) => c[0] === 'mark'), ['mark', 'panel', { id: 'panel' }]);
  t.match(await press('record'), { ok: true, status: 'REC STOPPED', details: { action: 'stop', frames: 12 } });
  t.equal(driver.leds().recording, 'off');
  t.ok(overlay.broadcasts >= 2, 'the overlay shares the recording state');

  // The audit log: every change by the panel, in order; the chain holds.
  const log = entries();
  t.ok(log.every((x) => x.who.id === 'panel'), 'all by the panel');
  t.same(log.map((x) => x.what), ['lock', 'freeze', 'freeze', 'models', 'models', 'models', 'ring', 'ring', 'ring', 'ring', 'layers', 'layers', 'record', 'mark', 'record']);
  t.match(log.find((x) => x.what === 'lock')!.details, { shape: 'ellipse', radiusMm: 6, seq, area, source: 'panel' });
  t.match(log.find((x) => x.what === 'record')!.details, { action: 'start', name: 'session-x.sonrec' });
  t.same(verifyAuditLog(auditPath).problems, []);
  t.equal(results.length, 17, 'one result per press (and the slider)');
});

t.test('without overlay methods or a recorder: the binding audits layers and marks itself and says what it cannot do', async (t) => {
  const { pipeline, audit, entries, feed } = await setup(t);
  feed(true);
  await until(() => pipeline.lastShownSeq !== null, 5000, 'frames');
  const driver = new PanelDriver(testDriverOptions('/nonexistent/panel'));
  const binding = bindPanel(driver, { pipeline, audit });
  t.teardown(() => binding.unbind());
  t.match(await binding.act('overlay-toggle'), { ok: true, status: 'OVERLAY OFF' });
  t.equal(driver.leds().overlay, 'off');
  t.match(await binding.act('mark-event'), { ok: true, status: /^MARKED #\d+$/ });
  t.match(await binding.act('record'), { ok: false, status: 'NO RECORDER' });
  t.match(entries().map((x) => [x.who.id, x.what]), [['panel', 'layers'], ['panel', 'mark']]);
  // A lock the tracker refuses (a tiny ellipse) is a result, not a crash.
  const one = new PanelDriver(testDriverOptions('/nonexistent/panel', { layout: { ...loadPanelLayout(), slider: { ...loadPanelLayout().slider, min: 0.01, default: 0.05 } } }));
  const tiny = bindPanel(one, { pipeline });
  t.teardown(() => tiny.unbind());
  t.match(await tiny.act('lock-lesion'), { ok: false, status: /^LOCK REFUSED: / });
});

t.test('through the C panel over a pty: freeze and lock lesion from its buttons; its LEDs and status line follow', async (t) => {
  if (!requireTool(t, 'gcc') || !requireTool(t, 'socat')) return;
  buildSim();
  const { pipeline, audit, entries, feed } = await setup(t);
  feed(true);
  await until(() => pipeline.lastShownSeq !== null, 5000, 'frames');
  const pair = await ptyPair(t, tmp('panel-bind-pty'));
  const driver = new PanelDriver(testDriverOptions(pair.a));
  driver.on('error', () => undefined);
  t.teardown(() => driver.stop());
  const binding = bindPanel(driver, { pipeline, overlay: new FakeOverlay(audit), audit });
  t.teardown(() => binding.unbind());
  const synced = nextEvent(driver, 'synced', 5000);
  driver.start();
  const panel = new CPanel(t, pair.b);
  await synced;
  const layout = loadPanelLayout();
  const id = (a: PanelAction) => layout.buttons.find((b) => b.action === a)!.id;
  // Slider to 7 mm, then lock: the pipeline locks on the next frame.
  let mark = panel.lines.length;
  panel.send(`slider ${sliderRaw(layout.slider, 7)}`);
  await panel.waitLine(/^rx STATUS .*LOCK SIZE 7MM/, 3000, mark);
  const locked = nextEvent<number>(pipeline, 'lock', 5000);
  panel.send(`click ${id('lock-lesion')}`);
  const seq = await locked;
  t.match(await panel.waitLine(/^rx STATUS .*LOCKED/, 3000, mark), new RegExp(`text="LOCKED 7MM #${seq}"$`));
  await panel.waitLine(/^rx LEDS seq=\d+ modes=[12],/, 5000, mark);
  // Freeze: the pipeline holds, the frozen LED lights on the panel.
  mark = panel.lines.length;
  const froze = nextEvent(pipeline, 'freeze', 3000);
  panel.send(`click ${id('freeze')}`);
  await froze;
  t.equal(pipeline.frozen, true);
  t.match(await panel.waitLine(/^rx LEDS /, 3000, mark), /modes=\d,1,0,1,1$/, 'frozen LED on (overlay and link on)');
  t.match(await panel.waitLine(/^rx STATUS /, 3000, mark), /text="FROZEN #\d+"$/);
  panel.send(`click ${id('freeze')}`);
  await until(() => !pipeline.frozen, 3000, 'unfrozen');
  await until(() => entries().filter((e) => e.what === 'freeze').length === 2, 3000, 'audited');
  t.match(entries().filter((e) => e.who.id === 'panel').map((e) => e.what), ['connect', 'lock', 'freeze', 'freeze']);
});

t.test('startPanel: from the config section, bound, with a status for the overlay; none without a port', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const { pipeline, audit, feed } = await setup(t);
  feed(true);
  t.equal(startPanel({ config: {}, pipeline, log: () => undefined }), undefined, 'no path, no USB ids: no panel');
  const pair = await ptyPair(t, tmp('panel-start'));
  const log: string[] = [];
  const session = startPanel({ config: { path: pair.a, heartbeatTimeoutMs: 30000 }, pipeline, audit, log: (l) => log.push(l) })!;
  t.teardown(() => session.stop());
  t.match(session.status(), { configured: true, state: 'stopped', firmware: null }, 'not started yet');
  session.start();
  await until(() => session.status().state !== 'stopped', 3000, 'started');
  t.match(session.status(), { configured: true, state: /no port|waiting for the panel/, firmware: null });
  const panel = await TsPanel.open(t, pair.b);
  const synced = nextEvent(session.driver, 'synced', 5000);
  panel.hello();
  await synced;
  t.match(session.status(), { configured: true, state: 'connected', path: pair.a, firmware: '9.9.9', layoutMatches: true, layout: /^sonomics-bedside-panel 1\.0\.0 \([0-9a-f]{8}\)$/, counters: { crcErrors: 0 } });
  t.match(log, [/^panel: connected on .* \(firmware 9\.9\.9, layout [0-9a-f]{8}\)$/]);
  await until(() => pipeline.lastShownSeq !== null, 5000, 'frames');
  const froze = nextEvent(pipeline, 'freeze', 3000);
  panel.press(1);
  await froze;
  await until(() => session.status().statusLine !== 'sonomics', 3000, 'status line');
  t.match(session.status(), { statusLine: /^FROZEN #\d+$/, leds: { frozen: 'on', link: 'on' } });
  await session.stop();
  t.match(session.status(), { state: 'stopped' });
});
