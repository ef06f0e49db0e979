// Perfusion in the live pipeline: a card reading perfusion parameters, phase and delta features
// scores 'incomplete' (naming what it waits for) until the session's curve is fitted, then 'ok';
// the reference region follows the lesion; cards with bad session terms are refused by name.
import t from 'tap';
import { createLesionMask } from '../core/mask.js';
import { parseModelCard } from '../core/modelcard.js';
import { Pipeline, type DisplayFrame, type ScoreUpdate } from '../core/pipeline.js';
import type { PerfusionUpdate } from '../core/perfusion/analyzer.js';
import { RiskModel } from '../core/risk.js';
import { PhantomScanner } from '../device/phantom.js';
import { testCard } from './cards.js';

const SESSION_TERMS = ['perfusion.lesion.PE', 'perfusion.lesion.rTTP', 'peak:contrast.lesion.firstorder_Mean', 'peak-pre:contrast.lesion.firstorder_Mean'];

t.test('a card with perfusion, phase and delta inputs waits for the fit, then scores', async (t) => {
  const phantom = new PhantomScanner({ seed: 5, width: 640, height: 360, fps: 10 });
  const c = phantom.contrastCompression;
  const card = testCard({ id: 'ceus-card' }, ['bmode.lesion.firstorder_Mean', ...SESSION_TERMS]);
  const p = new Pipeline({
    layout: phantom.layout, models: [new RiskModel(card)], ringsMm: [3, 5],
    perfusion: { linearisation: { dynamicRangeDb: c.dynamicRangeDb, offsetDb: c.dbMin }, refitIntervalS: 2 },
  }).start();
  t.teardown(() => p.stop());
  const statuses: Array<{ t: number; status: string; problem?: string }> = [];
  const analyses: PerfusionUpdate[] = [];
  let shown: DisplayFrame | undefined;
  p.on('scores', (u: ScoreUpdate) => { for (const s of u.scores) statuses.push({ t: (u.captureMs ?? 0) / 1000, status: s.status, problem: s.problem }); });
  p.on('perfusion', (u: PerfusionUpdate) => analyses.push(u));
  const pane = phantom.layout.panes.bmode.rect;
  let placed = false;
  for (let i = 0; i < 45 * phantom.fps; i++) {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) void p.lockLesion(createLesionMask(truth.lesionMask.slice(), pane.width, pane.height));
    const displayed = new Promise<DisplayFrame>((resolve) => p.once('display', resolve));
    p.push(frame, truth);
    shown = await Promise.race([displayed, new Promise<undefined>((r) => setTimeout(r, 2000))]);
    if (!placed && shown?.track.state === 'tracking') {
      p.setReference(phantom.suggestedReference(shown.track.center));
      placed = true;
    }
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));   // the scoring path and the worker get their turn
  }
  for (let k = 0; k < 200 && !statuses.some((s) => s.t > 40); k++) await new Promise((r) => setTimeout(r, 20));
  t.ok(placed, 'the reference was placed on a tracked frame');
  t.ok(shown?.reference && Number.isFinite(shown.reference.x), 'display frames carry the reference disc');
  const early = statuses.filter((s) => s.t < 6);
  t.ok(early.length > 0 && early.every((s) => s.status === 'incomplete'), 'before the bolus: incomplete');
  t.match(early[0].problem, /waiting for the perfusion analysis: perfusion\.lesion\.PE/);
  const late = statuses.filter((s) => s.t > 38);
  t.ok(late.length > 0 && late.some((s) => s.status === 'ok' || s.status === 'warming-up'), `after the fit: scored (${late.map((s) => s.status).join(',')})`);
  const last = analyses.at(-1)!;
  t.equal(last.analysis.state, 'fitted', last.analysis.message);
  t.ok(last.analysis.regions.some((r) => r.name === 'reference' && r.state === 'fitted'), 'the reference region is fitted too');
  const inputs = p.perfusion!.scoreInputs();
  for (const k of SESSION_TERMS) t.ok(Number.isFinite(inputs[k]), `${k} = ${inputs[k]}`);
  t.throws(() => p.setReference({ x: -5, y: 10, radiusMm: 3 }), /lies outside the 288x280 pane/);
  p.resetPerfusion();
  t.equal(p.perfusion!.analysis, undefined, 'reset: a new injection starts a new curve');
});

t.test('session terms in a card are checked like any feature', async (t) => {
  const ok = testCard({}, ['perfusion.reference.AUC', 'late-early:bmode.lesion.glcm_Contrast', 'perfusion.ring5mm.rWiR']);
  t.ok(parseModelCard(ok, 'ok.json'), 'valid names are accepted');
  for (const bad of ['perfusion.lesion.PeakEnhancement', 'peak:contrast.ring3mm.firstorder_Mean', 'middle:contrast.lesion.firstorder_Mean', 'peak-:bmode.lesion.firstorder_Mean']) {
    const card = testCard({}, [bad]);
    t.throws(() => parseModelCard(card, 'bad.json'), /bad\.json is invalid: \/inputs\/features\/0 must match pattern/, `${bad} is refused`);
  }
  const model = new RiskModel(testCard({}, ['perfusion.reference.AUC', 'bmode.ring5mm.firstorder_Mean']));
  t.same([...model.regions], ['ring5mm'], 'the reference region is not a ring to compute');
  t.same(model.sessionTerms, ['perfusion.reference.AUC']);
  const off = new Pipeline({ layout: new PhantomScanner({ width: 640, height: 360 }).layout, perfusion: false });
  t.equal(off.perfusion, undefined);
  t.throws(() => off.setReference({ x: 1, y: 1, radiusMm: 3 }), /perfusion analysis is switched off/);
  t.throws(() => off.resetPerfusion(), /switched off/);
});

t.test('a reference placed on a frame a viewer still shows is anchored to that frame\'s lesion', async (t) => {
  const phantom = new PhantomScanner({ seed: 9, width: 640, height: 360, fps: 10 });
  const p = new Pipeline({ layout: phantom.layout, models: [], ringsMm: [3] }).start();
  t.teardown(() => p.stop());
  const pane = phantom.layout.panes.bmode.rect;
  const shown: DisplayFrame[] = [];
  const show = async (i: number) => {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) void p.lockLesion(createLesionMask(truth.lesionMask.slice(), pane.width, pane.height));
    const displayed = new Promise<DisplayFrame>((resolve) => p.once('display', resolve));
    p.push(frame, truth);
    const d = await Promise.race([displayed, new Promise<undefined>((r) => setTimeout(r, 2000))]);
    if (d) shown.push(d);
    return d;
  };
  for (let i = 0; i < 60; i++) await show(i);
  const tracked = shown.filter((d) => d.track.state === 'tracking');
  t.ok(tracked.length >= 30, `${tracked.length} tracked frames`);
  // A frame well behind the last one, whose lesion centre differs from the last one's.
  const last = shown.at(-1)!;
  const dist = (d: DisplayFrame) => Math.hypot(d.track.center.x - last.track.center.x, d.track.center.y - last.track.center.y);
  const old = tracked.filter((d) => last.frame.seq - d.frame.seq <= 40).sort((a, b) => dist(b) - dist(a))[0];
  t.ok(dist(old) > 2, `the lesion moved ${dist(old).toFixed(1)} px between frame ${old.frame.seq} and ${last.frame.seq}`);
  const at = { x: old.track.center.x + 60, y: old.track.center.y - 30, radiusMm: 3 };
  t.same(p.setReference(at, old.frame.seq), { anchoredOn: old.frame.seq }, 'anchored on the frame the viewer showed');
  const next = (await show(60))!;
  const k = next.track.scale / old.track.scale;
  t.ok(Math.abs(next.reference!.x - next.track.center.x - 60 * k) < 1e-6 && Math.abs(next.reference!.y - next.track.center.y + 30 * k) < 1e-6,
    `it keeps its offset from that frame's lesion (${(next.reference!.x - next.track.center.x).toFixed(2)}, ${(next.reference!.y - next.track.center.y).toFixed(2)})`);
  // Without seq, or a frame it no longer holds: the frame shown last.
  t.same(p.setReference(at), { anchoredOn: next.frame.seq }, 'no seq: the frame shown last');
  t.same(p.setReference(at, next.frame.seq - 1000), { anchoredOn: next.frame.seq }, 'a frame it no longer holds: the frame shown last');
  t.same(p.setReference(null, old.frame.seq), { anchoredOn: null }, 'removed: anchored nowhere');
  // After a lock, frames before it showed another outline.
  const before = next.frame.seq;
  // (A lock is taken on the next frame pushed.)
  const locked = p.lockLesion(createLesionMask(phantom.frameAt(61).truth.lesionMask.slice(), pane.width, pane.height));
  const after = (await show(61))!;
  t.equal(await locked, after.frame.seq, 'locked on the next frame');
  t.same(p.setReference(at, before), { anchoredOn: after.frame.seq }, 'a frame before the last lock is not an anchor');
});
