// The time-intensity measurement: linearisation, the native region means against a plain
// computation, the bounded curve store, and the live analyzer over the phantom (states, excluded
// frames, worker, score inputs, phase features).
import t from 'tap';
import { applyLayout } from '../core/layout.js';
import { createLesionMask } from '../core/mask.js';
import { native } from '../core/native.js';
import { PerfusionAnalyzer, type PerfusionUpdate } from '../core/perfusion/analyzer.js';
import { CurveStore, linearisationLut, measureRegions } from '../core/perfusion/tic.js';
import { computeRings } from '../core/regions.js';
import { LesionTracker, type TrackResult } from '../core/tracking.js';
import { PhantomScanner, type PhantomOptions } from '../device/phantom.js';
import { createFrame } from '../core/frame.js';

t.test('linearisation undoes a log display: gray g -> 10^((offset + DR g / 255) / 10)', async (t) => {
  const lut = linearisationLut({ dynamicRangeDb: 40, offsetDb: -34 });
  t.equal(lut.length, 256);
  t.ok(Math.abs(lut[0] - 10 ** -3.4) < 1e-9, 'gray 0 sits at the offset');
  t.ok(Math.abs(lut[255] / 10 ** 0.6 - 1) < 1e-6, 'gray 255 = offset + dynamic range');
  t.ok(Math.abs(lut[128] / lut[0] - 10 ** ((40 * 128) / 255 / 10)) < 1e-3, 'equal gray steps are equal dB steps');
  const id = linearisationLut(null);
  t.same([id[0], id[17], id[255]], [0, 17, 255], 'off: the gray level itself');
  t.throws(() => linearisationLut({ dynamicRangeDb: 0 }), /dynamicRangeDb must be in \(0, 120\]/);
  t.throws(() => linearisationLut({ dynamicRangeDb: 40, offsetDb: NaN }), /offsetDb/);
});

t.test('regionIntensity: per code sums, counts and saturation match a plain computation; the reference disc too', async (t) => {
  const W = 64, H = 48, pane = { x: 8, y: 4, width: 40, height: 30 };
  const frame = new Uint8Array(W * H);
  for (let i = 0; i < frame.length; i++) frame[i] = (i * 37 + (i >> 5) * 11) % 256;
  const codes = new Uint8Array(pane.width * pane.height);
  for (let y = 0; y < pane.height; y++) for (let x = 0; x < pane.width; x++) codes[y * pane.width + x] = (x + y) % 4;   // 0..3
  const lut = linearisationLut({ dynamicRangeDb: 30 });
  const ref = { cx: 30.5, cy: 10, rx: 5, ry: 3.5 };
  const raw = native.regionIntensity(frame, W, H, pane, codes, 3, lut, ref);
  t.equal(raw.length, 12, '[sum, count, saturated] for codes 1..3, then the disc');
  const want = new Float64Array(12);
  for (let y = 0; y < pane.height; y++)
    for (let x = 0; x < pane.width; x++) {
      const v = frame[(pane.y + y) * W + pane.x + x], c = codes[y * pane.width + x];
      if (c) { want[3 * (c - 1)] += lut[v]; want[3 * (c - 1) + 1]++; want[3 * (c - 1) + 2] += v === 255 ? 1 : 0; }
      if (((x - ref.cx) / ref.rx) ** 2 + ((y - ref.cy) / ref.ry) ** 2 <= 1) { want[9] += lut[v]; want[10]++; want[11] += v === 255 ? 1 : 0; }
    }
  for (let i = 0; i < 12; i++) t.ok(Math.abs(raw[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `entry ${i}: ${raw[i]} vs ${want[i]}`);
  t.ok(want[2] + want[5] + want[8] > 0, 'the frame has saturated pixels to count');
  t.throws(() => native.regionIntensity(frame, W, H, pane, codes, 3, new Float32Array(10)), /lut must hold 256 values/);
  t.throws(() => native.regionIntensity(frame, W, H, pane, new Uint8Array(5), 3, lut), /codes \(pane-sized\)/);
  t.throws(() => native.regionIntensity(frame, W, H, { ...pane, x: 40 }, codes, 3, lut), /outside the 64x48 frame/);
  t.throws(() => native.regionIntensity(frame, W, H, pane, codes, 3, lut, { cx: 1, cy: 1, rx: 0, ry: 2 }), /rx and ry must be > 0/);
});

t.test('measureRegions: rings are cumulative, the disc is separate, an empty region is NaN', async (t) => {
  const phantom = new PhantomScanner({ seed: 3, width: 640, height: 360 });
  const { frame, truth } = phantom.frameAt(300);   // contrast is in (10 s)
  const lf = applyLayout(frame, phantom.layout);
  const pane = phantom.layout.panes.bmode;
  const rings = computeRings(createLesionMask(truth.lesionMask, pane.rect.width, pane.rect.height), pane, [3, 5]);
  const lut = linearisationLut(null);
  const m = measureRegions(lf, rings, lut, { x: truth.center.x + 60, y: truth.center.y - 20, radiusMm: 2 });
  t.equal(m.means.length, 4, 'lesion, two rings, reference');
  t.equal(m.counts[0], rings.counts[0], 'lesion pixel count');
  t.equal(m.counts[1], rings.counts[1], 'ring 3 mm count');
  t.equal(m.counts[2], rings.counts[2], 'ring 5 mm holds ring 3 mm too');
  t.ok(m.counts[3] > 100, 'the disc has pixels');
  t.ok(m.means.every((v) => Number.isFinite(v) && v >= 0 && v <= 255), 'gray-level means');
  const none = measureRegions(lf, rings, lut, null);
  t.ok(Number.isNaN(none.means[3]) && none.counts[3] === 0, 'no reference: NaN, no pixel');
});

t.test('CurveStore keeps a bounded session: halved in time resolution when full', async (t) => {
  const s = new CurveStore(['lesion', 'reference'], 64);
  for (let i = 0; i < 200; i++) s.add(i / 10, [i, -i], 0);
  t.ok(s.length <= 64 && s.length > 32, `bounded (${s.length})`);
  t.ok(s.decimations >= 2, 'halved when full');
  const tt = s.times();
  t.equal(tt[0], 0, 'the start is kept');
  t.ok(tt[tt.length - 1] >= 19.9 - 1e-9, 'and the newest sample');
  t.same(Array.from(s.values('reference')).slice(0, 3), Array.from(s.values('lesion')).slice(0, 3).map((v) => -v), 'regions stay aligned');
  t.throws(() => s.add(1, [0, 0], 0), /older than the last one/);
  t.throws(() => s.values('ring9mm'), /no region ring9mm/);
  t.throws(() => new CurveStore(['lesion'], 10), /capacity must be an integer >= 64/);
});

/** Tracks a phantom offline and feeds every frame to the analyzer (as the pipeline does). */
async function runPhantom(opts: PhantomOptions, seconds: number, analyzer: PerfusionAnalyzer, every = 1): Promise<{ states: Record<string, number> }> {
  const phantom = new PhantomScanner({ width: 640, height: 360, fps: 10, ...opts });
  const tracker = new LesionTracker();
  const pane = phantom.layout.panes.bmode;
  const states: Record<string, number> = {};
  for (let i = 0; i < seconds * phantom.fps; i += every) {
    const { data, truth } = phantom.render(i);
    const lf = applyLayout(createFrame(data, phantom.layout.width, phantom.layout.height, i, phantom.id, (i * 1000) / phantom.fps), phantom.layout);
    if (i === 0) {
      tracker.lock(lf, createLesionMask(truth.lesionMask.slice(), pane.rect.width, pane.rect.height));
    }
    const r: TrackResult = tracker.track(lf);
    if (i === 0) analyzer.setReference(phantom.suggestedReference(truth.center), r.center);
    states[r.state] = (states[r.state] ?? 0) + 1;
    const rings = r.mask ? computeRings(r.mask, pane, [3, 5]) : undefined;
    analyzer.sample(lf, rings, r);
    // Let the worker's answers in, as the live event loop would.
    if (i % 20 === 0) await new Promise((res) => setTimeout(res, 5));
  }
  return { states };
}

t.test('the analyzer: a phantom bolus is fitted in the worker; parameters, relative parameters and phase features become score inputs', async (t) => {
  const c = new PhantomScanner().contrastCompression;
  const a = new PerfusionAnalyzer({ linearisation: { dynamicRangeDb: c.dynamicRangeDb, offsetDb: c.dbMin }, refitIntervalS: 5 });
  t.teardown(() => a.close());
  const updates: PerfusionUpdate[] = [];
  a.on('analysis', (u: PerfusionUpdate) => updates.push(u));
  await runPhantom({ seed: 7 }, 45, a);
  t.equal(a.regions.join(','), 'lesion,ring3mm,ring5mm,reference', 'regions of the curve');
  // Features of "scored frames" across the session, so every phase has some.
  for (let s = 0; s < 45; s += 0.5) a.addFeatures(s * 1000, { 'contrast.lesion.firstorder_Mean': 10 + s, 'bmode.ring3mm.firstorder_Mean': 1 });
  let final = await a.analyseNow();
  // One may still be running in the worker: try again, a little later, a bounded number of times.
  for (let k = 0; k < 100 && !final; k++) { await new Promise((r) => setTimeout(r, 50)); final = await a.analyseNow(); }
  t.ok(final, 'an analysis ran');
  t.ok(updates.length >= 2, `analyses ran in the worker as the curve grew (${updates.length})`);
  t.equal(final!.state, 'fitted', final!.message);
  const lesion = final!.regions.find((r) => r.name === 'lesion')!;
  t.ok(lesion.parameters && Math.abs(lesion.parameters.AT - 8) < 1, `arrival near 8 s (${lesion.parameters?.AT})`);
  t.ok(lesion.relative && lesion.relative.rPE! > 1, 'the lesion enhances more than the reference');
  const inputs = a.scoreInputs();
  t.equal(inputs['perfusion.lesion.PE'], lesion.parameters!.PE, 'perfusion.lesion.PE');
  t.equal(inputs['perfusion.lesion.rPE'], lesion.relative!.rPE, 'perfusion.lesion.rPE');
  t.ok(Number.isFinite(inputs['perfusion.reference.TTP']), 'the reference has its own');
  for (const phase of ['pre', 'early', 'peak', 'late'])
    t.ok(Number.isFinite(inputs[`${phase}:contrast.lesion.firstorder_Mean`]), `${phase}: phase feature`);
  t.equal(inputs['bmode.ring3mm.firstorder_Mean'], undefined, 'only lesion features become phase features');
  t.equal(inputs['peak:bmode.ring3mm.firstorder_Mean'], undefined);
  const delta = inputs['peak-pre:contrast.lesion.firstorder_Mean'];
  t.ok(Math.abs(delta - (inputs['peak:contrast.lesion.firstorder_Mean'] - inputs['pre:contrast.lesion.firstorder_Mean'])) < 1e-9, 'delta = peak - pre');
  t.ok(delta > 5, 'the feature grew between pre-contrast and peak (it grows with time here)');
  // A reference moved: its series starts afresh (one series, one place).
  t.ok(a.curves().series.reference.some((v) => v !== null), 'the reference has a curve');
  a.setReference({ x: 10, y: 10, radiusMm: 3 }, { x: 0, y: 0 });
  t.ok(a.curves().series.reference.every((v) => v === null), 'moved: the old place\'s values are gone');
  t.ok(a.curves().series.lesion.every((v) => v !== null), 'the other regions keep theirs');
  // An analysis still running when a new injection starts is dropped: it belongs to the old curve.
  const running = a.analyseNow();
  a.reset();
  t.equal(await running, undefined, 'the running analysis is dropped');
  t.equal(a.analysis, undefined, 'reset forgets the analysis');
  t.same(a.scoreInputs(), {}, 'and the score inputs');
  t.equal(a.stats.samples, 0);
});

t.test('bad curves get a state, never a fit: too few frames, no wash-in, a saturated pane', async (t) => {
  const few = new PerfusionAnalyzer({ worker: false, refitIntervalS: 1e9 });
  await runPhantom({ seed: 8 }, 1, few);
  t.equal(few.analyseSync()!.state, 'too-few-frames');
  const none = new PerfusionAnalyzer({ worker: false, refitIntervalS: 1e9 });
  await runPhantom({ seed: 8, contrast: { lesion: { peak: 0 }, tissue: { peak: 0 } } }, 30, none, 2);
  const n = none.analyseSync()!;
  t.equal(n.state, 'no-wash-in', n.message);
  t.match(n.message, /no wash-in detected/);
  t.ok(n.regions.every((r) => r.parameters === null), 'no region has parameters');
  t.same(none.scoreInputs(), {}, 'nothing for the models');
  const hot = new PerfusionAnalyzer({ worker: false, refitIntervalS: 1e9 });
  await runPhantom({ seed: 8, contrast: { lesion: { peak: 30 } } }, 30, hot, 2);
  const h = hot.analyseSync()!;
  t.equal(h.state, 'saturated', h.message);
  t.match(h.message, /saturated/);
  t.ok(h.saturatedFrames > 5, `saturated frames counted (${h.saturatedFrames})`);
  t.equal(h.regions.find((r) => r.name === 'lesion')!.parameters, null);
});

t.test('frames tracked as uncertain or lost are counted and left out of the curve', async (t) => {
  const a = new PerfusionAnalyzer({ worker: false, refitIntervalS: 1e9 });
  const { states } = await runPhantom({ seed: 9, motion: { excursions: [{ startS: 3, durationS: 4, dxMm: 30, dyMm: 0 }] } }, 10, a);
  const s = a.stats;
  t.ok(s.lost + s.uncertain > 0, `the excursion lost the lesion (lost ${s.lost}, uncertain ${s.uncertain})`);
  t.equal(s.samples, states.tracking, 'one sample per frame tracked with confidence');
  t.equal(s.samples + s.lost + s.uncertain, 100, 'every frame accounted for');
  const tt = a.curves().t;
  const gap = Math.max(...tt.slice(1).map((v, i) => v - tt[i]));
  t.ok(gap > 1, `the curve has the gap (${gap.toFixed(1)} s), not made-up samples`);
});

t.test('bad options and reference placements are refused with the reason', async (t) => {
  t.throws(() => new PerfusionAnalyzer({ model: 'spline' as never }), /perfusion.model must be lognormal or gammaVariate/);
  t.throws(() => new PerfusionAnalyzer({ refitIntervalS: 0 }), /refitIntervalS must be > 0/);
  t.throws(() => new PerfusionAnalyzer({ saturationLimit: 1 }), /saturationLimit must be in \(0, 1\)/);
  const a = new PerfusionAnalyzer({ worker: false });
  t.throws(() => a.setReference({ x: NaN, y: 1, radiusMm: 3 }, { x: 0, y: 0 }), /finite pane coordinates/);
  t.throws(() => a.setReference({ x: 1, y: 1, radiusMm: 50 }, { x: 0, y: 0 }), /radiusMm must be in \[0.5, 20\]/);
  a.setReference({ x: 10, y: 20, radiusMm: 3 }, { x: 100, y: 100 });
  t.same(a.referenceOn({ x: 105, y: 98 }), { x: 15, y: 18, radiusMm: 3 }, 'the reference follows the lesion');
  a.setReference(null, { x: 0, y: 0 });
  t.equal(a.referenceOn({ x: 0, y: 0 }), null, 'removed');
});
