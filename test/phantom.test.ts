import t from 'tap';
import { native } from '../core/native.js';
import { extractRegions } from '../core/radiomics.js';
import { lognormalBolus, PhantomScanner } from '../device/phantom.js';
import { sha } from './helpers.js';


// Mean of pane pixels for region codes (1 = lesion, 2 = ring) through the native first-order kernel.
function regionMeans(p: PhantomScanner, data: Uint8Array, mask: Uint8Array, ringMm: number) {
  const { bmode, contrast } = p.layout.panes;
  const codes = new Uint8Array(mask.length);
  native.ringCodes(mask, bmode.rect.width, bmode.rect.height, { spacingX: bmode.spacingX, spacingY: bmode.spacingY, radiiMm: [ringMm] }, codes);
  const [bl, br, cl, cr] = extractRegions(data, p.layout.width, p.layout.height, [bmode.rect, contrast.rect], codes, 1, { classes: ['firstorder'] })
    .map((r) => r.features!.firstorder_Mean);
  return { bLesion: bl, bRing: br, cLesion: cl, cRing: cr };
}

t.test('same seed gives the same bytes; another seed does not', async (t) => {
  const a = new PhantomScanner({ seed: 7 }), b = new PhantomScanner({ seed: 7 }), c = new PhantomScanner({ seed: 8 });
  for (const i of [0, 37, 600]) {
    const ra = a.render(i), rb = b.render(i);
    t.equal(sha(ra.data), sha(rb.data), `frame ${i} identical`);
    t.equal(sha(ra.truth.lesionMask), sha(rb.truth.lesionMask), `truth mask ${i} identical`);
  }
  t.not(sha(a.render(5).data), sha(c.render(5).data), 'different seed, different frame');
  t.not(sha(a.render(5).data), sha(a.render(6).data), 'consecutive frames differ (speckle noise, motion)');
});

t.test('default screen: 1280x720, two equal panes, spacing from depth', async (t) => {
  const p = new PhantomScanner();
  t.equal(p.layout.width, 1280);
  t.equal(p.layout.height, 720);
  t.equal(p.fps, 30);
  const { bmode, contrast } = p.layout.panes;
  t.same([bmode.rect.width, bmode.rect.height], [contrast.rect.width, contrast.rect.height]);
  t.ok(bmode.rect.x + bmode.rect.width < contrast.rect.x, 'side by side');
  t.ok(Math.abs(bmode.spacingY * bmode.rect.height - 40) < 1e-9, '40 mm depth');
});

t.test('ground truth matches what is drawn', async (t) => {
  const p = new PhantomScanner({ seed: 3 });
  const { bmode } = p.layout.panes;
  for (const i of [0, 200, 900]) {
    const { data, truth } = p.render(i);
    // Centre: centroid of the true mask.
    let n = 0, sx = 0, sy = 0;
    for (let y = 0; y < bmode.rect.height; y++) for (let x = 0; x < bmode.rect.width; x++) if (truth.lesionMask[y * bmode.rect.width + x]) { n++; sx += x; sy += y; }
    t.ok(Math.hypot(sx / n - truth.center.x, sy / n - truth.center.y) < 0.5, `frame ${i}: truth centre is the mask centroid`);
    const area = Math.PI * (7 / bmode.spacingX) ** 2 * truth.motion.scale ** 2;
    t.ok(Math.abs(n / area - 1) < 0.15, `frame ${i}: lesion area ${n} px near a 7 mm lesion (${area.toFixed(0)} px)`);
    // B-mode: the lesion is hypoechoic against its surroundings.
    const m = regionMeans(p, data, truth.lesionMask, 3);
    t.ok(m.bLesion < 0.7 * m.bRing, `frame ${i}: lesion (${m.bLesion.toFixed(1)}) darker than the 3 mm ring (${m.bRing.toFixed(1)})`);
  }
  // Contrast: dark before arrival, lesion enhances above the tissue at its peak.
  const pre = p.render(30), peakT = p.lesionBolus.arrivalS + Math.exp(p.lesionBolus.mu - p.lesionBolus.sigma ** 2);
  const peak = p.render(Math.round(peakT * p.fps));
  const mPre = regionMeans(p, pre.data, pre.truth.lesionMask, 3), mPeak = regionMeans(p, peak.data, peak.truth.lesionMask, 3);
  t.equal(pre.truth.tic.lesion, 0, 'no contrast before arrival');
  t.ok(mPre.cLesion < 30, `contrast pane dark before arrival (${mPre.cLesion.toFixed(1)})`);
  t.ok(mPeak.cLesion > mPre.cLesion + 80, `lesion enhances at peak (${mPeak.cLesion.toFixed(1)})`);
  t.ok(mPeak.cLesion > mPeak.cRing, 'lesion brighter than the surrounding tissue at peak');
  t.ok(Math.abs(peak.truth.tic.lesion - 1) < 1e-3, 'truth TIC peaks at 1 at the lognormal mode');
});

t.test('moves along the known trajectory', async (t) => {
  const p = new PhantomScanner();
  const c0 = p.render(0).truth.center, c1 = p.render(63).truth.center;
  t.ok(Math.hypot(c1.x - c0.x, c1.y - c0.y) > 5, 'the lesion moves within ~2 s');
  const m = p.motionAt(10);
  t.same(p.render(300).truth.motion, m, 'truth motion is the trajectory at t = index / fps');
});

t.test('lognormal bolus', async (t) => {
  const b = { arrivalS: 5, mu: 2, sigma: 0.5, peak: 2 };
  t.equal(lognormalBolus(b, 4), 0);
  t.ok(Math.abs(lognormalBolus(b, 5 + Math.exp(2 - 0.25)) - 2) < 1e-12, 'peak value at the mode');
  t.ok(lognormalBolus(b, 60) < 0.1, 'washes out');
});

t.test('bad options are refused by name', async (t) => {
  t.throws(() => new PhantomScanner({ width: 100 }), /width/);
  t.throws(() => new PhantomScanner({ fps: 0 }), /fps/);
  t.throws(() => new PhantomScanner({ seed: -1 }), /seed/);
  t.throws(() => new PhantomScanner({ lesion: { radiusMm: 0.5 } }), /radiusMm/);
  t.throws(() => new PhantomScanner({ contrast: { lesion: { sigma: 0 } } }), /contrast\.lesion/);
  t.throws(() => new PhantomScanner().render(-1), /index/);
});

t.test('live mode emits frames with increasing seq and stops after N', async (t) => {
  const p = new PhantomScanner({ fps: 60, frames: 12, width: 640, height: 360 });
  const seqs: number[] = [];
  p.on('frame', (f) => seqs.push(f.seq));
  await new Promise<void>((resolve) => { p.once('end', () => resolve()); p.start(); });
  t.same(seqs, [...Array(p.stats.delivered).keys()], 'seq 0..n-1');
  t.equal(p.stats.delivered + p.stats.dropped, 12, 'every frame index delivered or counted as dropped');
});
