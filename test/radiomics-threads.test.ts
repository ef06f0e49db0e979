import t from 'tap';
import { native } from '../core/native.js';
import { extractRegions, extractRegionsAsync, RadiomicsError } from '../core/radiomics.js';
import { seededRandom } from '../core/random.js';

// Two panes of speckle with a lesion and two rings: one thread or two must give the same numbers.
function frame() {
  const w = 96, h = 80, rnd = seededRandom(3);
  const img = new Uint8Array(2 * w * h);
  for (let i = 0; i < img.length; i++) img[i] = Math.floor(rnd() * 200);
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x - 48) ** 2 / 400 + (y - 40) ** 2 / 225 <= 1) mask[y * w + x] = 1;
  const codes = new Uint8Array(w * h);
  native.ringCodes(mask, w, h, { spacingX: 1, spacingY: 1, radiiMm: [4, 9] }, codes, null);
  const panes = [{ x: 0, y: 0, width: w, height: h }, { x: w, y: 0, width: w, height: h }];
  // the image is 2w wide: rows of both panes side by side
  const full = new Uint8Array(2 * w * h);
  for (let y = 0; y < h; y++) { full.set(img.subarray(y * w, y * w + w), y * 2 * w); full.set(img.subarray(w * h + y * w, w * h + y * w + w), y * 2 * w + w); }
  return { full, width: 2 * w, height: h, panes, codes };
}

t.test('one thread and two threads give identical features, sync and async', async (t) => {
  const f = frame();
  const one = extractRegions(f.full, f.width, f.height, f.panes, f.codes, 2, { threads: 1 });
  const two = extractRegions(f.full, f.width, f.height, f.panes, f.codes, 2, { threads: 2 });
  const asyncTwo = await extractRegionsAsync(f.full, f.width, f.height, f.panes, f.codes, 2, { threads: 2 });
  t.equal(one.length, 6);
  t.same(two, one, 'two threads: same values, same order');
  t.same(asyncTwo, one, 'async: same values');
  t.not(one[0].features!.firstorder_Mean, one[3].features!.firstorder_Mean, 'the two panes differ (the test can tell them apart)');
});

t.test('threads must be 1 or 2', async (t) => {
  const f = frame();
  for (const bad of [0, 3, 1.5, NaN]) {
    let err: unknown;
    try { extractRegions(f.full, f.width, f.height, f.panes, f.codes, 2, { threads: bad }); } catch (e) { err = e; }
    t.ok(err instanceof RadiomicsError && err.key === 'threads' && /threads/.test(err.message), `threads ${bad} refused by name`);
  }
  t.throws(() => native.radiomics(f.full, f.width, f.height, f.panes, f.codes, 2, { threads: 4 }), /settings\.threads must be 1 or 2/);
});

t.test('classes must be a non-empty array of known classes; duplicates count once', async (t) => {
  const f = frame();
  for (const bad of [[], 'glcm', 3, ['glcm', 'shape']] as unknown[]) {
    let err: unknown;
    try { extractRegions(f.full, f.width, f.height, f.panes, f.codes, 0, { classes: bad as never }); } catch (e) { err = e; }
    t.ok(err instanceof RadiomicsError && err.key === 'classes', `classes ${JSON.stringify(bad)} refused by name`);
  }
  const [r] = extractRegions(f.full, f.width, f.height, f.panes, f.codes, 0, { classes: ['glcm', 'glcm'] });
  t.equal(Object.keys(r.features!).length, 24, 'glcm twice: the 24 GLCM features once');
});
