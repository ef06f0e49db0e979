// Drawing the lesion on the overlay page (Debian chromium driven by playwright-core): freeze,
// outline or ellipse by mouse and by touch (Pointer Events), adjust, accept; the server locks
// the tracker onto it and the held frame comes back with the new contour.
import t, { type Test } from 'tap';
import type { CDPSession, Page } from 'playwright-core';
import {
  canvasPixelsOn, circle, distanceToPolygon, fraction, isContourColour, lastReply, openPage, pageState, replyCount, screenMapper, startDemo, waitPage,
  type PageState, heldOnScreen } from './browser-helpers.js';

type Polygon = { shape: 'polygon'; points: number[] };
type Ellipse = { shape: 'ellipse'; cx: number; cy: number; rx: number; ry: number };

function polygonArea(p: number[]): number {
  let a = 0;
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) a += p[j] * p[i + 1] - p[i] * p[j + 1];
  return Math.abs(a) / 2;
}
const mean = (p: number[], o: number) => p.filter((_, i) => i % 2 === o).reduce((a, b) => a + b, 0) / (p.length / 2);
const ellipsePolygon = (e: Ellipse, n = 360) => Array.from({ length: n }, (_, k) => [e.cx + e.rx * Math.cos((2 * Math.PI * k) / n), e.cy + e.ry * Math.sin((2 * Math.PI * k) / n)]).flat();

/** Freezes by `press` (click or tap) and waits until the held frame is the one on screen. */
async function freeze(page: Page, press: (sel: string) => Promise<void>): Promise<PageState> {
  await press('#freeze');
  return waitPage(page, heldOnScreen, 'the frozen frame on screen');
}

/** Accepts the proposal; checks the ack and that the held frame comes back with the new contour near `outline`. */
async function acceptAndCheck(t: Test, page: Page, press: (sel: string) => Promise<void>, outline: number[], shape: string, frozenSeq: number): Promise<void> {
  const before = await replyCount(page, 'lock');
  const redrawn = (await pageState(page)).framesDrawn;
  await press('#accept');
  const r = await lastReply(page, 'lock', before);
  t.equal(r.type, 'ack', `lock acknowledged${r.error ? ` (${r.error})` : ''}`);
  t.equal(r.result?.shape, shape, `as ${shape}`);
  t.equal(r.result?.seq, frozenSeq, 'on the held frame');
  t.match(await page.textContent('#msg'), /^Locked: /, 'the reply is shown');
  const s = await waitPage(page, (s) => s.framesDrawn > redrawn && !!s.lastHeader?.frozen && s.lastHeader.seq === frozenSeq, 'the held frame re-sent with its new contour');
  const contour = s.lastHeader!.lesion!;
  let worst = 0;
  for (let i = 0; i < contour.length; i += 2) worst = Math.max(worst, distanceToPolygon(contour[i], contour[i + 1], outline));
  t.ok(worst < 2.5, `every point of the new contour within ${worst.toFixed(2)} px of the outline drawn`);
  t.equal(s.proposal, null, 'the proposal is gone');
}

t.test('freeze, outline by mouse, grow / shrink / move, accept: the held frame shows the new contour; unfreeze resumes', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  // A wide, short window: the canvas is scaled down and letterboxed (object-fit: contain), so the
  // page's screen-to-pane conversion is exercised, not an identity.
  const { page, problems } = await openPage(demo.browser, demo.url, { viewport: { width: 1800, height: 760 } });
  await waitPage(page, (s) => s.trackingState === 'tracking', 'tracking');
  const click = (sel: string) => page.click(sel);
  const st = await freeze(page, click);
  const seq = st.state!.frozenSeq!;
  const { toScreen, scale } = await screenMapper(page);
  t.ok(scale < 0.95, `canvas drawn at scale ${scale.toFixed(3)}`);
  const c = st.lastHeader!.tracking.center!;

  // Escape discards a proposal: nothing is sent.
  await page.click('#tool-freehand');
  t.equal(await page.getAttribute('#tool-freehand', 'aria-pressed'), 'true', 'Outline tool selected');
  const small = circle(c.x, c.y, 30, 12);
  let p = toScreen(...small[0]);
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  for (const q of small.slice(1)) { p = toScreen(...q); await page.mouse.move(p.x, p.y, { steps: 2 }); }
  await page.mouse.up();
  t.equal((await pageState(page)).proposal?.shape, 'polygon', 'a proposal after the stroke');
  await page.keyboard.press('Escape');
  t.equal((await pageState(page)).proposal, null, 'Escape discards it');
  t.equal(await replyCount(page, 'lock'), 0, 'nothing sent');

  // Outline: press, trace a circle around the lesion, release.
  await page.click('#tool-freehand');
  const R = 45;
  const ring = circle(c.x, c.y, R, 48);
  p = toScreen(...ring[0]);
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  for (const q of ring.slice(1)) { p = toScreen(...q); await page.mouse.move(p.x, p.y, { steps: 3 }); }
  await page.mouse.up();
  let s = await pageState(page);
  const drawn = s.proposal as Polygon;
  t.equal(drawn?.shape, 'polygon', 'proposed outline');
  t.ok(drawn.points.length / 2 >= 40 && drawn.points.length / 2 <= 1024, `${drawn.points.length / 2} points (at most 1024)`);
  // The browser reports whole CSS pixels: a point may land up to one CSS pixel (1/scale pane pixels) off.
  const off = Math.max(...drawn.points.map((_, i) => (i % 2 ? 0 : Math.abs(Math.hypot(drawn.points[i] - c.x, drawn.points[i + 1] - c.y) - R))));
  t.ok(off <= 1 / scale + 0.6, `traced points within ${off.toFixed(2)} px of the circle`);
  t.equal(await page.isVisible('#proposal-tools'), true, 'Accept / Grow / Shrink / Cancel shown');

  // Grow and shrink: 5 % about the centroid.
  const a0 = polygonArea(drawn.points);
  await page.click('#grow');
  s = await pageState(page);
  const grown = polygonArea((s.proposal as Polygon).points);
  t.ok(Math.abs(grown / a0 - 1.05 ** 2) < 0.01, `Grow: area x ${(grown / a0).toFixed(4)}`);
  await page.click('#shrink');
  await page.click('#shrink');
  s = await pageState(page);
  t.ok(Math.abs(polygonArea((s.proposal as Polygon).points) / a0 - 1 / 1.05 ** 2) < 0.01, 'Shrink twice: area / 1.05²');
  await page.keyboard.press('+');
  s = await pageState(page);
  t.ok(Math.abs(polygonArea((s.proposal as Polygon).points) / a0 - 1) < 0.01, '+ key grows back');

  // Move: drag inside the outline.
  const cx0 = mean((s.proposal as Polygon).points, 0), cy0 = mean((s.proposal as Polygon).points, 1);
  const from = toScreen(c.x + 10, c.y - 5);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(from.x + 12, from.y + 6, { steps: 4 });
  await page.mouse.move(from.x + 24, from.y + 12, { steps: 4 });
  await page.mouse.up();
  s = await pageState(page);
  const moved = s.proposal as Polygon;
  const dx = mean(moved.points, 0) - cx0, dy = mean(moved.points, 1) - cy0;
  t.ok(Math.abs(dx - 24 / scale) < 1.5 && Math.abs(dy - 12 / scale) < 1.5, `moved by (${dx.toFixed(1)}, ${dy.toFixed(1)}) px for (${(24 / scale).toFixed(1)}, ${(12 / scale).toFixed(1)})`);
  t.equal(moved.points.length, drawn.points.length, 'same points, moved');

  await acceptAndCheck(t, page, click, moved.points, 'polygon', seq);
  t.equal(await page.getAttribute('#tool-freehand', 'aria-pressed'), 'false', 'the tool is released after Accept');

  // Ellipse by mouse: press on the centre, drag outwards.
  await page.click('#tool-ellipse');
  const e0 = toScreen(c.x, c.y), e1 = toScreen(c.x + 50, c.y + 35);
  await page.mouse.move(e0.x, e0.y);
  await page.mouse.down();
  await page.mouse.move(e1.x, e1.y, { steps: 8 });
  await page.mouse.up();
  const el = (await pageState(page)).proposal as Ellipse;
  t.equal(el?.shape, 'ellipse', 'ellipse proposed');
  t.ok(Math.abs(el.rx - 50) < 1 / scale + 0.6 && Math.abs(el.ry - 35) < 1 / scale + 0.6, `radii ${el.rx} x ${el.ry} for 50 x 35`);
  await page.keyboard.press('Enter');
  const r = await lastReply(page, 'lock', 1);
  t.equal(r.type, 'ack', 'Enter accepts: the ellipse is locked');
  t.equal(r.result?.shape, 'ellipse');
  const held = await waitPage(page, (s) => !!s.lastHeader?.frozen && (s.lastHeader.lesion?.length ?? 0) > 0 && Math.abs(s.lastHeader.tracking.center!.y - c.y) < 3 && s.replies.filter((x) => x.re === 'lock').length === 2, 'the held frame with the ellipse');
  const contour = held.lastHeader!.lesion!;
  const worst = Math.max(...contour.map((_, i) => (i % 2 ? 0 : distanceToPolygon(contour[i], contour[i + 1], ellipsePolygon(el)))));
  t.ok(worst < 2.5, `ellipse contour within ${worst.toFixed(2)} px of the ellipse drawn`);

  // A too small outline: the server refuses it and the page says why.
  await page.click('#tool-ellipse');
  const z1 = toScreen(c.x + 4, c.y + 4);
  await page.mouse.move(e0.x, e0.y);
  await page.mouse.down();
  await page.mouse.move(z1.x, z1.y, { steps: 2 });
  await page.mouse.up();
  const tiny = (await pageState(page)).proposal;
  if (tiny) {
    await page.click('#accept');
    const refused = await lastReply(page, 'lock', 2);
    t.equal(refused.type, 'error', `a ${JSON.stringify(tiny)} outline is refused`);
    t.match(await page.textContent('#msg'), /^Not locked: lock: .*too small/, 'the server\'s reason is shown');
  } else {
    t.match(await page.textContent('#msg'), /too small/, 'the page refuses a tiny ellipse itself');
  }

  // Unfreeze: frames again, newer than the held one.
  const frames = (await pageState(page)).framesDrawn;
  await page.click('#freeze');
  await waitPage(page, (s) => s.state?.frozen === false && s.framesDrawn > frames + 3 && s.lastHeader!.seq > seq && !s.lastHeader!.frozen, 'live frames after Unfreeze');
  t.equal(await page.isVisible('#badge-frozen'), false, 'FROZEN badge gone');
  t.same(problems, [], 'no page errors, no console errors');
});

/** Touch through the browser's input pipeline (CDP), so the page gets Pointer Events of type 'touch'. */
async function touchStroke(cdp: CDPSession, points: Array<{ x: number; y: number }>): Promise<void> {
  const at = (p: { x: number; y: number }) => [{ x: p.x, y: p.y, id: 1, radiusX: 4, radiusY: 4, force: 1 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(points[0]) });
  for (const p of points.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(p) });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}

/** n + 1 points from a to b. */
const line = (a: { x: number; y: number }, b: { x: number; y: number }, n = 8) => Array.from({ length: n + 1 }, (_, k) => ({ x: a.x + ((b.x - a.x) * k) / n, y: a.y + ((b.y - a.y) * k) / n }));

t.test('by touch on a tablet: layer toggles, freeze, outline and ellipse drawn with the finger, move, accept', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  const { page, context, problems } = await openPage(demo.browser, demo.url, { viewport: { width: 1280, height: 800 }, hasTouch: true });
  await waitPage(page, (s) => s.trackingState === 'tracking' && !!s.lastHeader?.lesion, 'tracking');
  const tap = (sel: string) => page.tap(sel);
  // Which kind of pointer the canvas saw.
  await page.evaluate(() => {
    const w = window as unknown as { pointerTypes: string[] };
    w.pointerTypes = [];
    document.getElementById('view')!.addEventListener('pointerdown', (e) => w.pointerTypes.push(e.pointerType));
  });

  // Layers by touch.
  await tap('#layer-contour');
  await waitPage(page, (s) => s.state?.layers.contour === false, 'contour off by tap');
  let n = (await pageState(page)).framesDrawn;
  await waitPage(page, (s) => s.framesDrawn > n + 1, 'frames');
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) < 0.05, 'tap: contour gone from the canvas');
  await tap('#layer-contour');
  await waitPage(page, (s) => !!s.state?.layers.contour, 'contour on by tap');
  n = (await pageState(page)).framesDrawn;
  await waitPage(page, (s) => s.framesDrawn > n + 1, 'frames');
  t.ok(fraction(await canvasPixelsOn(page, 'lesion'), isContourColour) > 0.8, 'tap: contour back');
  await tap('#layer-rings');
  await waitPage(page, (s) => s.state?.layers.rings === false, 'rings off by tap');
  await tap('#layer-rings');
  await waitPage(page, (s) => !!s.state?.layers.rings, 'rings on by tap');
  t.pass('rings toggled by tap');

  // Selecting a tool freezes the picture (drawing is done on a held frame).
  await tap('#tool-freehand');
  const st = await waitPage(page, heldOnScreen, 'frozen by selecting the tool');
  const seq = st.state!.frozenSeq!;
  t.equal(await page.evaluate(() => getComputedStyle(document.getElementById('view')!).touchAction), 'none', 'touch-action: none on the canvas while drawing');
  const { toScreen, scale } = await screenMapper(page);
  const c = st.lastHeader!.tracking.center!;
  const cdp = await context.newCDPSession(page);
  await touchStroke(cdp, circle(c.x - 5, c.y + 3, 40, 60).map(([x, y]) => toScreen(x, y)));
  let s = await pageState(page);
  const drawn = s.proposal as Polygon;
  t.equal(drawn?.shape, 'polygon', 'outline traced with the finger');
  const off = Math.max(...drawn.points.map((_, i) => (i % 2 ? 0 : Math.abs(Math.hypot(drawn.points[i] - (c.x - 5), drawn.points[i + 1] - (c.y + 3)) - 40))));
  t.ok(off <= 1 / scale + 0.6, `touch points within ${off.toFixed(2)} px of the circle`);

  // Move it with the finger: press inside, drag.
  await touchStroke(cdp, line(toScreen(c.x - 5, c.y + 3), toScreen(c.x + 5, c.y - 2)));
  s = await pageState(page);
  const moved = s.proposal as Polygon;
  t.ok(Math.abs(mean(moved.points, 0) - mean(drawn.points, 0) - 10) < 1 / scale + 0.6, 'moved 10 px right by touch');
  await tap('#grow');
  s = await pageState(page);
  const grown = s.proposal as Polygon;
  t.ok(Math.abs(polygonArea(grown.points) / polygonArea(moved.points) - 1.05 ** 2) < 0.01, 'Grow by tap');
  await acceptAndCheck(t, page, tap, grown.points, 'polygon', seq);

  // Ellipse with the finger: press on the centre, drag outwards.
  await tap('#tool-ellipse');
  await touchStroke(cdp, line(toScreen(c.x, c.y), toScreen(c.x + 40, c.y + 30), 10));
  const el = (await pageState(page)).proposal as Ellipse;
  t.equal(el?.shape, 'ellipse', 'ellipse drawn with the finger');
  t.ok(Math.abs(el.rx - 40) < 1 / scale + 0.6 && Math.abs(el.ry - 30) < 1 / scale + 0.6, `radii ${el.rx} x ${el.ry} for 40 x 30`);
  await acceptAndCheck(t, page, tap, ellipsePolygon(el), 'ellipse', seq);

  const types = await page.evaluate(() => (window as unknown as { pointerTypes: string[] }).pointerTypes);
  t.ok(types.length >= 3 && types.every((x) => x === 'touch'), `the canvas saw touch pointers only (${types.join(', ')})`);

  await tap('#freeze');
  await waitPage(page, (s) => s.state?.frozen === false && !!s.lastHeader && s.lastHeader.seq > seq, 'live frames after Unfreeze by tap');
  t.same(problems, [], 'no page errors, no console errors');
});
