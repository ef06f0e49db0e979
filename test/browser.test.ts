// The overlay page in a real browser (Debian chromium driven by playwright-core), against the
// demo: the phantom scanner through the pipeline to the overlay server.
import { mkdirSync } from 'node:fs';
import t from 'tap';
import { fromRoot } from './helpers.js';
import {
  canvasPixelsOn, colourNear, fraction, isContourColour, isRingColour, maskBoundary, openPage, pageState, screenMapper, screenshotRgb, startDemo, waitPage, heldOnScreen } from './browser-helpers.js';

t.test('the contour is drawn where the phantom\'s ground truth says the lesion is; the page shows score, perfusion curve, status and the notice', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url);

  // A nice state for the picture: tracking, a live score, and some seconds of the time-intensity curve.
  await waitPage(page, (s) => s.trackingState === 'tracking' && !!s.scores?.live && s.scores.scores[0]?.status === 'ok', 'a live score');
  await waitPage(page, (s) => { const t = s.perfusion?.curve.t ?? []; return t.length > 20 && t.at(-1)! - t[0] > 9; }, 'a perfusion curve spanning nine seconds');
  t.match(await page.textContent('#notice'), /not for diagnosis/, 'the notice in the header');
  t.match(await page.textContent('#scores-notice'), /not for diagnosis/, 'and under the scores');
  t.match(await page.textContent('#perfusion-notice'), /not for diagnosis/, 'and on the perfusion card');
  t.match(await page.textContent('#model-versions'), /busi-malignancy v1\.0\.0/, 'model version in the header');
  const scores = (await page.textContent('#scores')) ?? '';
  t.match(scores, /busi-malignancy v1\.0\.0/, 'model id and version on the gauge');
  t.match(scores, /\d+%(lower|higher) risk/, 'value and category');
  t.match(scores, /band \d+%–\d+% over \d+ frames/, 'band');
  // The band's parts arrive with the first mask-sensitivity measurement (every 4th tracked frame).
  await waitPage(page, (s) => !!s.scores?.scores?.[0]?.maskBand, 'a score with the mask band');
  t.match(await page.textContent('#scores'), /frames \d+%–\d+%; outline ±2 px \d+% \(shrunk\) \/ \d+% \(grown\)/, 'the band\'s parts: frames and outline');
  t.match(scores, /top drivers/, 'drivers');
  t.equal(await page.locator('#scores .gauge').count(), 1, 'one gauge for the one model');
  t.match(await page.textContent('#scores .drivers') ?? '', /^(lesion|ring \d+ px|CEUS)/, 'driver names shortened');
  const status = (await page.textContent('#status')) ?? '';
  for (const re of [/source\s*phantom:42/, /signal\s*live/, /latency display\s*\d+ \/ \d+ ms/, /latency scores\s*\d+ \/ \d+ ms/, /capture → sent\s*\d+ \/ \d+ ms/,
    /viewers\s*1/, /controller\s*v1 \(this screen\)/, /panel\s*not configured/, /telemetry\s*not configured/, /recording\s*off/])
    t.match(status, re, `status: ${re.source}`);
  t.match(await page.textContent('#role'), /In control \(v1\)/, 'the first page has control');
  t.equal(await page.isVisible('#perfusion-chart'), true, 'perfusion chart shown');
  t.equal(await page.textContent('#clinical-none'), 'The loaded models read no clinical inputs.', 'the shipped model reads no clinical inputs');
  t.equal(await page.locator('#clinical-fields [data-name]').count(), 0, 'so no clinical field');

  // Freeze, so that the picture and its header hold still while they are compared.
  await page.click('#freeze');
  const st = await waitPage(page, heldOnScreen, 'the frozen frame on screen');
  t.equal(await page.getAttribute('#freeze', 'aria-pressed'), 'true', 'Freeze shows pressed');
  t.match(await page.textContent('#badge-frozen'), new RegExp(`FROZEN · frame ${st.state!.frozenSeq}`), 'FROZEN badge with the frame');
  const header = st.lastHeader!;
  t.equal(header.tracking.state, 'tracking', 'the held frame is tracked');
  const truth = demo.truthOf(header.seq);
  t.ok(truth, `the phantom's truth for frame ${header.seq}`);
  if (!truth) return;

  const frames = st.framesDrawn;
  await new Promise((r) => setTimeout(r, 400));
  t.equal((await pageState(page)).framesDrawn, frames, 'no frame drawn while frozen');

  mkdirSync(fromRoot('test', 'artifacts'), { recursive: true });
  const shot = fromRoot('test', 'artifacts', 'overlay.png');
  const img = await screenshotRgb(page, shot);
  t.comment(`screenshot: ${shot}`);
  const { toScreen, scale } = await screenMapper(page);
  const { width, height } = st.layout!.panes.bmode.rect;
  const pointsOf = (c: number[], step: number): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < c.length; i += 2 * step) out.push([c[i], c[i + 1]]);
    return out;
  };
  // 1. The page draws the contour that came with the frame, where the frame says it is.
  const sent = pointsOf(header.lesion!, 6);
  const drawn = sent.filter(([x, y]) => { const p = toScreen(x, y); return colourNear(img, p.x, p.y, 2, isContourColour); }).length;
  t.ok(drawn >= 0.9 * sent.length, `the header's contour drawn at ${drawn} of ${sent.length} of its points (scale ${scale.toFixed(3)})`);

  // 2. Where the phantom's truth says the lesion is. The tracked outline carries the tracker's
  // error (small, but larger when a loaded machine drops most frames), so the truth's own outline
  // is locked on the held frame: the server fills it, traces its contour and sends the frame
  // again; the page must draw it on the true boundary, on both panes.
  const c = truth.center;
  const outline: number[] = [];
  for (let k = 0; k < 90; k++) {
    const a = (2 * Math.PI * k) / 90;
    let r = 0;
    while (r < 400 && truth.lesionMask[Math.round(c.y + (r + 0.5) * Math.sin(a)) * width + Math.round(c.x + (r + 0.5) * Math.cos(a))]) r += 0.5;
    outline.push(c.x + r * Math.cos(a), c.y + r * Math.sin(a));
  }
  await page.evaluate((polygon) => (window as unknown as { __sonomics: { send(m: object): boolean } }).__sonomics.send({ type: 'lock', polygon }), outline);
  await waitPage(page, (s) => s.replies.some((r) => r.re === 'lock') && s.framesDrawn > frames, 'the held frame drawn again with the locked outline');
  const reply = (await pageState(page)).replies.find((r) => r.re === 'lock')!;
  t.equal(reply.type, 'ack', `lock: ${JSON.stringify(reply).slice(0, 200)}`);
  const img2 = await screenshotRgb(page, fromRoot('test', 'artifacts', 'overlay-truth.png'));
  const boundary = maskBoundary(truth.lesionMask, width, height, 7);
  t.ok(boundary.length > 40, `${boundary.length} true boundary points sampled`);
  // Near: the contour colour within 3 screen px of the true boundary.
  const near = boundary.filter(([x, y]) => { const p = toScreen(x, y); return colourNear(img2, p.x, p.y, 3, isContourColour); }).length;
  t.ok(near >= 0.9 * boundary.length, `contour colour within 3 px of ${near} of ${boundary.length} true boundary points`);
  // Far: 15 screen px outwards from the true centre, no contour colour.
  let far = 0, checked = 0;
  for (const [x, y] of boundary) {
    const d = Math.hypot(x - c.x, y - c.y);
    const k = 15 / scale;
    const qx = Math.round(x + ((x - c.x) / d) * k), qy = Math.round(y + ((y - c.y) / d) * k);
    if (qx < 0 || qy < 0 || qx >= width || qy >= height || truth.lesionMask[qy * width + qx]) continue;
    checked++;
    const q = toScreen(qx, qy);
    if (colourNear(img2, q.x, q.y, 2, isContourColour)) far++;
  }
  t.ok(checked > 0.8 * boundary.length, `${checked} points checked 15 px outside`);
  t.ok(far <= 0.03 * checked, `contour colour 15 px outside the true boundary at ${far} of ${checked} points`);
  // The same outline on the contrast pane.
  const nearContrast = boundary.filter(([x, y]) => { const p = toScreen(x, y, 'contrast'); return colourNear(img2, p.x, p.y, 3, isContourColour); }).length;
  t.ok(nearContrast >= 0.9 * boundary.length, `and on the contrast pane: ${nearContrast} of ${boundary.length}`);

  await page.click('#freeze');
  await waitPage(page, (s) => s.state?.frozen === false && s.framesDrawn > frames + 3, 'frames again after Unfreeze');
  t.same(problems, [], 'no page errors, no console errors');
});

t.test('layer toggles by click: contour, rings, scores and TIC follow the shared state', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url);
  await waitPage(page, (s) => s.trackingState === 'tracking' && !!s.lastHeader?.lesion, 'tracking');
  const frames = async () => (await pageState(page)).framesDrawn;

  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) > 0.8, 'contour drawn');
  t.ok(fraction(await canvasPixelsOn(page, 'rings', 5), isRingColour) > 0.3, 'rings drawn (dashed)');

  await page.click('#layer-contour');
  await waitPage(page, (s) => s.state?.layers.contour === false, 'state.layers.contour false');
  let n = await frames();
  await waitPage(page, (s) => s.framesDrawn > n + 1, 'frames');
  t.equal(await page.getAttribute('#layer-contour', 'aria-pressed'), 'false', 'Contour shows off');
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) < 0.05, 'no contour colour on the contour');
  t.ok(fraction(await canvasPixelsOn(page, 'rings', 5), isRingColour) > 0.3, 'rings still drawn');

  await page.click('#layer-rings');
  await waitPage(page, (s) => s.state?.layers.rings === false, 'state.layers.rings false');
  n = await frames();
  await waitPage(page, (s) => s.framesDrawn > n + 1, 'frames');
  t.ok(fraction(await canvasPixelsOn(page, 'rings', 5), isRingColour) < 0.05, 'no ring colour on the rings');

  await page.click('#layer-contour');
  await page.click('#layer-rings');
  await waitPage(page, (s) => !!s.state?.layers.contour && !!s.state.layers.rings, 'both layers back on');
  n = await frames();
  await waitPage(page, (s) => s.framesDrawn > n + 1, 'frames');
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) > 0.8, 'contour drawn again');
  t.ok(fraction(await canvasPixelsOn(page, 'rings', 5), isRingColour) > 0.3, 'rings drawn again');

  // Scores and TIC hide their panels.
  await page.click('#layer-scores');
  await waitPage(page, (s) => s.state?.layers.scores === false, 'state.layers.scores false');
  t.equal(await page.isVisible('#risk-card'), false, 'scores panel hidden');
  await page.click('#layer-tic');
  await waitPage(page, (s) => s.state?.layers.tic === false, 'state.layers.tic false');
  t.equal(await page.isVisible('#perfusion-card'), false, 'perfusion card hidden');
  await page.click('#layer-scores');
  await page.click('#layer-tic');
  await waitPage(page, (s) => !!s.state?.layers.scores && !!s.state.layers.tic, 'scores and TIC back on');
  t.equal(await page.isVisible('#risk-card'), true, 'scores panel shown');
  t.equal(await page.isVisible('#perfusion-card'), true, 'perfusion card shown');

  // While frozen no new frame comes: the toggle redraws the held frame itself.
  await page.click('#freeze');
  await waitPage(page, heldOnScreen, 'frozen');
  await page.click('#layer-contour');
  await waitPage(page, (s) => s.state?.layers.contour === false, 'contour off while frozen');
  await new Promise((r) => setTimeout(r, 100));
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) < 0.05, 'the held frame redrawn without the contour');
  await page.click('#layer-contour');
  await waitPage(page, (s) => !!s.state?.layers.contour, 'contour on while frozen');
  await new Promise((r) => setTimeout(r, 100));
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) > 0.8, 'and with it again');

  // Models: the one loaded model can be switched off (no score) and on.
  await page.click('#freeze');
  await page.click('#model-toggles [data-model="busi-malignancy"]');
  await waitPage(page, (s) => s.state?.models.length === 0, 'no model enabled');
  t.equal(await page.getAttribute('#model-toggles [data-model="busi-malignancy"]', 'aria-pressed'), 'false', 'model toggle off');
  await page.click('#model-toggles [data-model="busi-malignancy"]');
  await waitPage(page, (s) => s.state?.models[0] === 'busi-malignancy' && !!s.scores?.live && s.scores.scores.length === 1, 'the model scored again');
  t.same(problems, [], 'no page errors, no console errors');
});
