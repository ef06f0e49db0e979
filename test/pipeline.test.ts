import t from 'tap';
import { createLesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import type { DeepSpec } from '../core/modelcard.js';
import { testCard } from './cards.js';
import { Pipeline, type DisplayFrame, type ScoreUpdate } from '../core/pipeline.js';
import { RiskModel, type DeepFeatureSource, type RiskScore } from '../core/risk.js';
import { LatestSlot } from '../core/slot.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { sleep } from './helpers.js';

function nextEvent<T>(p: Pipeline, name: string, pred: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { p.off(name, on); reject(new Error(`no ${name} within ${timeoutMs} ms`)); }, timeoutMs);
    const on = (v: T) => { if (pred(v)) { clearTimeout(timer); p.off(name, on); resolve(v); } };
    p.on(name, on);
  });
}

t.test('latest-value slot drops instead of queueing', async (t) => {
  const dropped: number[] = [];
  const s = new LatestSlot<number>('x', (v) => dropped.push(v));
  s.put(1); s.put(2); s.put(3);
  t.equal(await s.take(), 3);
  t.equal(s.dropped, 2);
  t.same(dropped, [1, 2]);
  const waiting = s.take();
  s.put(4);
  t.equal(await waiting, 4, 'a waiting consumer gets the value directly');
  s.close();
  t.equal(await s.take(), undefined, 'closed');
});

t.test('the tracked centre stays within 2 px of the truth over 300 frames', async (t) => {
  const phantom = new PhantomScanner({ seed: 42 });
  const model = await loadRiskModel('busi-malignancy');
  const p = new Pipeline({ layout: phantom.layout, models: [model] }).start();
  const r = phantom.layout.panes.bmode.rect;
  let maxErr = 0, scores: ScoreUpdate | undefined;
  p.on('scores', (u: ScoreUpdate) => { scores = u; });
  for (let i = 0; i < 300; i++) {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) p.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    const shown = nextEvent<DisplayFrame>(p, 'display', (d) => d.frame.seq === i);
    p.push(frame, truth);
    const d = await shown;
    t.equal(d.track.state, 'tracking');
    const tr = d.truth as PhantomTruth;
    maxErr = Math.max(maxErr, Math.hypot(d.track.center.x - tr.center.x, d.track.center.y - tr.center.y));
  }
  await sleep(50);
  await p.stop();
  t.ok(maxErr < 2, `max centre error ${maxErr.toFixed(3)} px`);
  t.ok(scores, 'scores published');
  const s = scores!.scores[0] as RiskScore;
  t.equal(s.modelId, 'busi-malignancy');
  t.equal(s.cardSha256, model.card.sha256, 'the score names the card it comes from');
  t.equal(s.status, 'ok');
  t.ok(Number.isFinite(s.linearPredictor), 'the Rad-score (linear predictor) is published');
  t.ok(s.drivers.length > 0 && s.drivers.every((d) => model.terms.includes(d.feature)), 'drivers name the card\'s terms');
  t.ok(s.value >= 0 && s.value <= 1 && s.band[0] <= s.value && s.value <= s.band[1], 'probability inside its band');
  t.equal(s.maskBand?.radiusPx, 2, 'the mask\'s sensitivity is measured (shrunk and grown by 2 px)');
  t.ok(s.band[0] <= Math.min(s.frameBand![0], s.maskBand!.shrunk, s.maskBand!.grown) + 1e-12 && s.band[1] >= Math.max(s.frameBand![1], s.maskBand!.shrunk, s.maskBand!.grown) - 1e-12,
    `the band [${s.band.map((v) => v.toFixed(3))}] covers the frame band [${s.frameBand!.map((v) => v.toFixed(3))}] and the mask's [${[s.maskBand!.shrunk, s.maskBand!.grown].map((v) => v.toFixed(3))}]`);
  t.match(s.notice, /not for diagnosis/);
  t.ok(Object.keys(scores!.features ?? {}).some((k) => k === 'contrast.ring8mm.firstorder_Mean'), 'features for every pane and ring');
  const st = p.stats();
  t.equal(st.displayed, 300);
  t.equal(st.errors, 0);
  t.ok(st.stages.track.count === 300 && st.stages.track.p50 > 0, 'per-stage latency recorded');
});

t.test('a slow stage drops frames (counted) and never holds up the display path', async (t) => {
  const phantom = new PhantomScanner({ seed: 1, width: 640, height: 360 });
  // A card whose CNN takes 150 ms a frame: the risk stage is slow, the display path is not.
  let calls = 0;
  const spec: DeepSpec = {
    runtime: 'onnx', file: 'slow.onnx', sha256: { 'slow.onnx': '0'.repeat(64) }, embeddingSize: 1, pca: { mean: [0], components: [[1]] },
    input: { width: 8, height: 8, channels: 1, layout: 'nchw', pane: 'bmode', marginFraction: 0, scale: 1, mean: [0], std: [1] },
  };
  const slowCnn: DeepFeatureSource = {
    names: ['deep.pc1'],
    features: async () => { calls++; await sleep(150); return { 'deep.pc1': 0.5 }; },
    close: async () => undefined,
  };
  const model = new RiskModel(testCard({ inputs: { engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'], deep: spec } }, ['bmode.lesion.firstorder_Mean']), slowCnn);
  const p = new Pipeline({ layout: phantom.layout, models: [model] }).start();
  const r = phantom.layout.panes.bmode.rect;
  const frames = 30;
  let displayed = 0, scored = 0;
  p.on('display', () => displayed++);
  p.on('scores', () => scored++);
  for (let i = 0; i < frames; i++) {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) p.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    const shown = nextEvent<DisplayFrame>(p, 'display', (d) => d.frame.seq === i);
    p.push(frame, truth);
    await shown; // the display path answers every frame although scoring takes 150 ms a frame
    await sleep(5);
  }
  await sleep(500); // let the last frame in the slow path finish
  await p.stop();
  const st = p.stats();
  t.equal(displayed, frames, 'every frame displayed');
  t.ok(scored < frames / 2, `only ${scored} of ${frames} frames scored`);
  t.ok(st.dropped.features + st.dropped.risk > 0, `drops counted (features ${st.dropped.features}, risk ${st.dropped.risk})`);
  t.equal(scored + st.dropped.features + st.dropped.risk, frames, 'every frame is either scored or counted as dropped');
  t.equal(calls, scored);
});

t.test('bad frames and masks give clear errors and the pipeline carries on', async (t) => {
  const phantom = new PhantomScanner({ seed: 2, width: 640, height: 360 });
  const p = new Pipeline({ layout: phantom.layout }).start();
  await t.rejects(p.lockLesion(createLesionMask(new Uint8Array(100), 10, 10)), /mask is 10x10/);
  const errors: Error[] = [];
  p.on('frameError', (e: Error) => errors.push(e));
  const { frame } = new PhantomScanner({ seed: 2, width: 320, height: 240 }).frameAt(0);
  p.push(frame);
  await sleep(50);
  t.equal(errors.length, 1);
  t.match(errors[0].message, /frame 0 is 320x240, the calibrated screen is 640x360/);
  const ok = phantom.frameAt(1, 1);
  const shown = nextEvent<DisplayFrame>(p, 'display', () => true);
  p.push(ok.frame);
  t.equal((await shown).track.state, 'idle', 'still running; idle until a lesion is locked');
  // An outline too small to track is refused on the next frame; that frame is still shown.
  const r = phantom.layout.panes.bmode.rect;
  const dot = new Uint8Array(r.width * r.height);
  dot[50 * r.width + 50] = 255;
  const refused = t.rejects(p.lockLesion(createLesionMask(dot, r.width, r.height)), /too small to track/);
  const next = nextEvent<DisplayFrame>(p, 'display', () => true);
  p.push(phantom.frameAt(2, 2).frame);
  await refused;
  t.equal((await next).frame.seq, 2, 'the frame carrying the refused lock is displayed');
  await p.stop();
});

t.test('scores are not live while the lesion is out of view, and the update says why', async (t) => {
  const phantom = new PhantomScanner({ seed: 3, width: 640, height: 480, fps: 10, motion: { excursions: [{ startS: 1, durationS: 4, dxMm: 35, dyMm: 0 }] } });
  const p = new Pipeline({ layout: phantom.layout, models: [await loadRiskModel('busi-malignancy')] }).start();
  const r = phantom.layout.panes.bmode.rect;
  const updates: ScoreUpdate[] = [];
  p.on('scores', (u: ScoreUpdate) => updates.push(u));
  let lostShown: DisplayFrame | undefined;
  for (let i = 0; i < 45; i++) {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) void p.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    const shown = nextEvent<DisplayFrame>(p, 'display', (d) => d.frame.seq === i);
    p.push(frame, truth);
    const d = await shown;
    if (d.track.state === 'lost') lostShown ??= d;
    if (d.rings) await nextEvent<ScoreUpdate>(p, 'scores', (u) => u.seq === i, 5000).catch(() => undefined);
  }
  await p.stop();
  t.ok(lostShown, 'the lesion was lost while out of view');
  t.equal(lostShown!.rings, undefined, 'no lesion regions drawn while lost');
  t.ok(updates.some((u) => u.live), 'live scores while tracking');
  const notLive = updates.filter((u) => !u.live);
  t.ok(notLive.length > 0 && notLive.every((u) => u.scores.length === 0 && /no live score/.test(u.reason ?? '')), 'no scores published while not tracking, with a reason');
  t.ok(notLive.some((u) => /left the view/.test(u.reason ?? '')), 'the reason names the lesion leaving the view');
});

t.test('layout validation names the problem', async (t) => {
  const phantom = new PhantomScanner({ seed: 1, width: 640, height: 360 });
  const l = phantom.layout;
  t.throws(() => new Pipeline({ layout: { ...l, panes: { ...l.panes, contrast: { ...l.panes.contrast, spacingX: 0.2 } } } }), /same pixel spacing/);
  t.throws(() => new Pipeline({ layout: { ...l, panes: { ...l.panes, bmode: { ...l.panes.bmode, rect: { ...l.panes.bmode.rect, x: 600 } } } } }), /bmode.rect lies outside/);
  const zero = { ...l.panes.bmode.rect, width: 0, height: 0 };
  t.throws(() => new Pipeline({ layout: { ...l, panes: { bmode: { ...l.panes.bmode, rect: zero }, contrast: { ...l.panes.contrast, rect: zero } } } }), /layout\.panes\.bmode\.rect must be integers with x,y >= 0 and size >= 8/);
});

t.test('freeze holds the last frame: later frames are skipped and counted, a lock lands on the held frame at once', async (t) => {
  const phantom = new PhantomScanner({ seed: 9 });
  const p = new Pipeline({ layout: phantom.layout, models: [new RiskModel(testCard())] }).start();
  t.teardown(() => p.stop());
  t.equal(p.freeze(true), null, 'nothing to hold before a frame was shown');
  t.equal(p.frozen, false);
  const r = phantom.layout.panes.bmode.rect;
  const shown: DisplayFrame[] = [];
  p.on('display', (d: DisplayFrame) => shown.push(d));
  const freezes: Array<[boolean, number]> = [];
  p.on('freeze', (on: boolean, seq: number) => freezes.push([on, seq]));
  for (let i = 0; i < 5; i++) { p.push(phantom.frameAt(i).frame); await sleep(20); }
  const last = shown.at(-1)!.frame.seq;
  const n = shown.length;
  t.equal(p.freeze(true), last, 'holds the last frame shown');
  t.equal(p.freeze(true), last, 'freezing again changes nothing');
  t.equal(shown.length, n + 1, 'the held frame is shown again once ...');
  t.match(shown.at(-1), { frame: { seq: last }, frozen: true }, '... marked frozen');
  for (let i = 5; i < 10; i++) { p.push(phantom.frameAt(i).frame); await sleep(20); }
  t.equal(shown.length, n + 1, 'nothing new shown while frozen');
  t.equal(p.stats().frozen, 5, 'five frames skipped and counted');
  const truth = phantom.frameAt(last).truth;
  const scored = nextEvent<ScoreUpdate>(p, 'scores', (u) => u.seq === last && u.live);
  t.equal(await p.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height)), last, 'the lock is taken on the held frame, without waiting for a new one');
  t.match(shown.at(-1), { frame: { seq: last }, frozen: true, track: { state: 'tracking' } }, 'shown again with its outline');
  t.equal((await scored).scores.length, 1, 'and scored');
  t.equal(p.freeze(false), last, 'unfreeze names the frame it released');
  t.equal(p.freeze(false), null);
  p.push(phantom.frameAt(10).frame);
  await nextEvent<DisplayFrame>(p, 'display', (d) => d.frame.seq === 10);
  t.same(freezes, [[true, last], [false, last]]);
});

t.test('a lock still waiting for its frame when the picture is frozen is taken on the held frame', async (t) => {
  const phantom = new PhantomScanner({ seed: 9 });
  const p = new Pipeline({ layout: phantom.layout }).start();
  t.teardown(() => p.stop());
  for (let i = 0; i < 3; i++) { p.push(phantom.frameAt(i).frame); await sleep(20); }
  const r = phantom.layout.panes.bmode.rect;
  const held = p.lastShownSeq!;
  const locked = p.lockLesion(createLesionMask(phantom.frameAt(held).truth.lesionMask.slice(), r.width, r.height));
  p.freeze(true);
  t.equal(await locked, held, 'answered at once, on the held frame');
  t.equal(p.trackingState, 'tracking');
});

t.test('selectModels scores only the chosen cards; an unknown id changes nothing', async (t) => {
  const phantom = new PhantomScanner({ seed: 9 });
  const a = new RiskModel(testCard({ id: 'card-a' })), b = new RiskModel(testCard({ id: 'card-b' }));
  const p = new Pipeline({ layout: phantom.layout, models: [a, b] }).start();
  t.teardown(() => p.stop());
  t.same(p.enabledModels, ['card-a', 'card-b']);
  t.throws(() => p.selectModels(['card-b', 'card-x']), /no loaded model "card-x" \(loaded: card-a, card-b\)/);
  t.same(p.enabledModels, ['card-a', 'card-b'], 'unchanged');
  p.selectModels(['card-b']);
  t.same(p.enabledModels, ['card-b']);
  const r = phantom.layout.panes.bmode.rect;
  void p.lockLesion(createLesionMask(phantom.frameAt(0).truth.lesionMask.slice(), r.width, r.height));
  const got = nextEvent<ScoreUpdate>(p, 'scores', (u) => u.live);
  for (let i = 0; i < 10; i++) { p.push(phantom.frameAt(i).frame); await sleep(30); }
  t.same((await got).scores.map((s) => s.modelId), ['card-b']);
});
