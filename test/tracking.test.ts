// The lesion tracker on the phantom: accuracy against its ground truth, the state machine
// (lost when the lesion leaves the view, found again when it returns, never lost otherwise),
// duplicates, gain steps, scale, the contrast-pane mapping, and errors for bad outlines.
import t from 'tap';
import { createFrame } from '../core/frame.js';
import type { Layout } from '../core/layout.js';
import { createLesionMask } from '../core/mask.js';
import { LesionTracker, TRACKER_DEFAULTS, TrackingError, type TrackResult, type TrackerOptions } from '../core/tracking.js';
import { PhantomScanner, type PhantomOptions, type PhantomTruth } from '../device/phantom.js';

// A small screen keeps the test quick (pane 288x374, 0.107 mm per pixel).
const SMALL = { width: 640, height: 480 };

interface Run { results: TrackResult[]; truths: PhantomTruth[]; phantom: PhantomScanner }

function run(frames: number, phantomOpts: PhantomOptions = {}, trackerOpts: TrackerOptions = {}, every = 1): Run {
  const phantom = new PhantomScanner({ ...SMALL, ...phantomOpts });
  const layout = phantom.layout;
  const r = layout.panes.bmode.rect;
  const tracker = new LesionTracker(trackerOpts);
  const results: TrackResult[] = [], truths: PhantomTruth[] = [];
  for (let i = 0; i < frames; i += every) {
    const { frame, truth } = phantom.frameAt(i);
    const lf = { frame, layout };
    if (i === 0) tracker.lock(lf, createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    results.push(tracker.track(lf));
    truths.push(truth);
  }
  return { results, truths, phantom };
}

const errorMm = (r: TrackResult, truth: PhantomTruth, mm: number) => Math.hypot(r.center.x - truth.center.x, r.center.y - truth.center.y) * mm;

t.test('follows the phantom lesion through breathing, drift, sway, speckle decorrelation and wash-in', async (t) => {
  // 20 s at 10 frames per second: three times the motion per frame of 30 fps, and the wash-in.
  const { results, truths, phantom } = run(600, {}, {}, 3);
  const errs = results.map((r, k) => errorMm(r, truths[k], phantom.mmPerPixel));
  const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
  t.ok(mean < 0.2, `mean error ${mean.toFixed(3)} mm`);
  t.ok(Math.max(...errs) < 0.6, `max error ${Math.max(...errs).toFixed(3)} mm`);
  t.same([...new Set(results.map((r) => r.state))], ['tracking'], 'tracking on every frame');
  t.ok(truths.some((x) => x.tic.lesion > 0.5), 'the run includes the contrast wash-in');
  t.ok(results.every((r) => r.confidence > 0.5 && r.inView > 0.97 && r.mask), 'confident, in view, with a mask');
  // The mask moved with the lesion: its overlap with the true mask stays high.
  const last = results.at(-1)!, truth = truths.at(-1)!;
  let inter = 0, a = 0, b = 0;
  for (let i = 0; i < truth.lesionMask.length; i++) {
    const p = last.mask!.data[i] > 0, q = truth.lesionMask[i] > 0;
    if (p) a++; if (q) b++; if (p && q) inter++;
  }
  t.ok((2 * inter) / (a + b) > 0.95, `Dice ${((2 * inter) / (a + b)).toFixed(3)} on the last frame`);
});

t.test('the contrast pane gets the same lesion through the layout geometry', async (t) => {
  const { results, truths } = run(30, {}, {}, 3);
  const errs = results.map((r, k) => Math.hypot(r.frameCenters!.contrast.x - truths[k].frameCenters.contrast.x, r.frameCenters!.contrast.y - truths[k].frameCenters.contrast.y));
  t.ok(Math.max(...errs) < 2, `contrast-pane centres within 2 px of the truth (max ${Math.max(...errs).toFixed(2)})`);
});

t.test('scale follows compression', async (t) => {
  const { results, truths } = run(300, { motion: { scaleAmplitude: 0.12, scalePeriodS: 8 } }, {}, 2);
  const errs = results.map((r, k) => Math.abs(r.scale - truths[k].motion.scale));
  t.ok(Math.max(...errs) < 0.03, `scale error max ${Math.max(...errs).toFixed(4)} (truth spans ${Math.min(...truths.map((x) => x.motion.scale)).toFixed(2)}..${Math.max(...truths.map((x) => x.motion.scale)).toFixed(2)})`);
});

t.test('a gain step does not throw the tracker off', async (t) => {
  const { results, truths, phantom } = run(90, { motion: { gainSteps: [[1, 9], [2, -14]] } });
  const errs = results.map((r, k) => errorMm(r, truths[k], phantom.mmPerPixel));
  t.ok(Math.max(...errs) < 0.3, `max error ${Math.max(...errs).toFixed(3)} mm across +9 dB and -5 dB steps`);
  t.ok(results.every((r) => r.state === 'tracking'), 'tracking throughout');
});

t.test('lost when the lesion leaves the pane, found again when it comes back, and only then', async (t) => {
  // The view slides 35 mm sideways from 2 s to 8 s: the lesion leaves the 31 mm wide pane.
  const excursion = { startS: 2, durationS: 6, dxMm: 35, dyMm: 0 };
  const { results, truths, phantom } = run(330, { motion: { excursions: [excursion] } }, {}, 2);
  const firstLost = results.findIndex((r) => r.state === 'lost');
  t.ok(firstLost > 0, 'goes lost');
  t.ok(truths[firstLost].inView < 0.6, `lost when ${Math.round(truths[firstLost].inView * 100)} % of the lesion was still in view`);
  t.ok(results.slice(0, firstLost).every((r) => r.state === 'tracking'), 'tracking until then');
  t.match(results[firstLost].reason, /left the view/);
  t.equal(results[firstLost].mask, undefined, 'no mask while lost');
  const outOfView = truths.map((x, k) => [x, k] as const).filter(([x]) => x.inView === 0).map(([, k]) => k);
  t.ok(outOfView.length > 20 && outOfView.every((k) => results[k].state === 'lost'), 'lost all the time it is out of view');
  t.ok(outOfView.every((k) => /searching|found again/.test(results[k].reason ?? '')), 'says it is searching');
  const back = results.findIndex((r, k) => k > firstLost && r.state === 'tracking');
  t.ok(back > 0, 'tracking again');
  t.ok(truths[back].inView > 0.5, 'found again once back in view');
  const after = results.slice(back).map((r, k) => errorMm(r, truths[back + k], phantom.mmPerPixel));
  t.ok(after.every((e) => e < 1.5), `after the return, error max ${Math.max(...after).toFixed(2)} mm`);
  t.ok(after.slice(10).every((e) => e < 0.3), 'and settles on the lesion');
  t.ok(results.slice(back).every((r) => r.state !== 'lost'), 'not lost again');
});

t.test('a repeated frame gets the previous answer and teaches no motion', async (t) => {
  const phantom = new PhantomScanner(SMALL);
  const layout = phantom.layout, r = layout.panes.bmode.rect;
  const tracker = new LesionTracker();
  const a = phantom.frameAt(0), b = phantom.frameAt(3), c = phantom.frameAt(6);
  tracker.lock({ frame: a.frame, layout }, createLesionMask(a.truth.lesionMask.slice(), r.width, r.height));
  tracker.track({ frame: a.frame, layout });
  const rb = tracker.track({ frame: b.frame, layout });
  const dup = createFrame(b.frame.data, b.frame.width, b.frame.height, 99, 'test', b.frame.timestampMs + 100, { duplicate: true });
  const rd = tracker.track({ frame: dup, layout });
  t.equal(rd.seq, 99);
  t.same(rd.center, rb.center, 'same centre');
  t.equal(rd.confidence, rb.confidence);
  const rc = tracker.track({ frame: c.frame, layout });
  t.ok(Math.hypot(rc.center.x - c.truth.center.x, rc.center.y - c.truth.center.y) < 1.5, 'the next real frame is tracked');
});

t.test('locked on a held frame, tracked on from a live frame seconds later: found again, not stuck at its edge', async (t) => {
  // The overlay's Accept locks on the held frame; the next frame tracked is live, after the hold.
  const phantom = new PhantomScanner(SMALL);
  const layout = phantom.layout, r = layout.panes.bmode.rect;
  const gaps = (opts: TrackerOptions) => {
    const out: Array<{ moved: number; err: number; state: string }> = [];
    for (const lockAt of [150, 300, 600]) for (const gapS of [1, 3, 10, 20]) {
      const tracker = new LesionTracker(opts);
      const held = phantom.frameAt(lockAt);
      tracker.lock({ frame: held.frame, layout }, createLesionMask(held.truth.lesionMask.slice(), r.width, r.height));
      let last: TrackResult | undefined, truth: PhantomTruth | undefined;
      for (let k = 0; k < 5; k++) {
        const live = phantom.frameAt(lockAt + gapS * 30 + 3 * k);
        last = tracker.track({ frame: live.frame, layout });
        truth = live.truth;
      }
      out.push({ moved: Math.hypot(truth!.center.x - held.truth.center.x, truth!.center.y - held.truth.center.y), err: Math.hypot(last!.center.x - truth!.center.x, last!.center.y - truth!.center.y), state: last!.state });
    }
    return out;
  };
  const refound = gaps({});
  t.ok(Math.max(...refound.map((g) => g.moved)) > 3 * TRACKER_DEFAULTS.searchRadiusPx / 2, `the lesion moved up to ${Math.max(...refound.map((g) => g.moved)).toFixed(0)} px during the holds`);
  const mm = (g: { err: number }) => g.err * phantom.mmPerPixel;
  t.ok(refound.every((g) => g.state === 'tracking' && mm(g) < 0.5), `tracking, within 0.5 mm of the truth (max ${Math.max(...refound.map(mm)).toFixed(2)} mm)`);
  // Without the search after a gap, the per-frame search settles at the lesion's edge.
  const followed = gaps({ refindAfterMs: 60000 });
  t.ok(followed.some((g) => mm(g) > 0.8), `without it: up to ${Math.max(...followed.map(mm)).toFixed(2)} mm off`);
});

t.test('re-lock at any time; bad outlines are refused by name and the tracker keeps its lock', async (t) => {
  const phantom = new PhantomScanner(SMALL);
  const layout: Layout = phantom.layout, r = layout.panes.bmode.rect;
  const tracker = new LesionTracker();
  const { frame, truth } = phantom.frameAt(0);
  const lf = { frame, layout };
  t.equal(tracker.track(lf).state, 'idle', 'idle before a lock');
  tracker.lock(lf, createLesionMask(truth.lesionMask.slice(), r.width, r.height));
  const locked = tracker.track(lf);
  t.throws(() => tracker.lock(lf, createLesionMask(new Uint8Array(100), 10, 10)), new TrackingError('the lesion mask is 10x10, the B-mode pane is 288x374'));
  t.throws(() => tracker.lock(lf, createLesionMask(new Uint8Array(r.width * r.height), r.width, r.height)), /empty/);
  const tiny = new Uint8Array(r.width * r.height);
  tiny[100 * r.width + 100] = 255;
  t.throws(() => tracker.lock(lf, createLesionMask(tiny, r.width, r.height)), /too small to track: 1x1 pixels/);
  // A flat outline: black frame.
  const black = { frame: createFrame(new Uint8Array(frame.data.length), frame.width, frame.height, 1, 'test', 0), layout };
  t.throws(() => tracker.lock(black, createLesionMask(truth.lesionMask.slice(), r.width, r.height)), /flat/);
  t.equal(tracker.state, 'tracking', 'the earlier lock stands');
  const still = tracker.track(lf);
  t.ok(Math.hypot(still.center.x - locked.center.x, still.center.y - locked.center.y) < 0.05, 'and still gives the same answer');
  // Re-lock elsewhere: a box in the upper tissue.
  const box = new Uint8Array(r.width * r.height);
  for (let y = 60; y < 110; y++) box.fill(255, y * r.width + 40, y * r.width + 110);
  tracker.lock(lf, createLesionMask(box, r.width, r.height));
  const again = tracker.track(lf);
  t.ok(Math.abs(again.center.x - 74.5) < 0.6 && Math.abs(again.center.y - 84.5) < 0.6, `re-locked centre (${again.center.x.toFixed(1)}, ${again.center.y.toFixed(1)})`);
  t.throws(() => new LesionTracker({ lostBelow: 0.8, uncertainBelow: 0.5 }), /lostBelow/);
  t.throws(() => new LesionTracker({ minInView: 0 }), /minInView/);
  t.throws(() => new LesionTracker({ resumeFrames: 0 }), /resumeFrames/);
});
