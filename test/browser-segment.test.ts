// Tap to outline on the overlay page (Debian chromium driven by playwright-core), against the demo
// with the shipped segmenter (models/segmenter): the Tap tool sends `segment`, the server's
// proposal is drawn on both panes, Grow / Shrink / Accept / Discard go to the server as
// `proposal` messages, and Accept locks tracking on it. The phantom's truth says where the lesion is.
import { existsSync, mkdirSync } from 'node:fs';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { dice, fillPolygon, fromRoot } from './helpers.js';
import {
  colourNear, heldOnScreen, isProposalColour, lastReply, openPage, pageState, replyCount, screenMapper, screenshotRgb, startDemo, waitPage,
  type Box, type Demo, type OpenedPage, type PageState, type Reply, type Rgb, type TapProposal } from './browser-helpers.js';

/** The shipped model: these tests are about it, so a missing one is a failure, not a skip. */
const MODEL = fromRoot('models', 'segmenter', 'segmenter.json');
/** A tap is outlined in well under a second on an idle machine; this bounds it on a loaded one. */
const TAP_MS = 10000;

function polygonArea(p: number[]): number {
  let a = 0;
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) a += p[j] * p[i + 1] - p[i] * p[j + 1];
  return Math.abs(a) / 2;
}

/** The demo with the shipped segmenter loaded, or undefined (after failing the test) when it is not. */
async function demoWithSegmenter(t: Test): Promise<Demo | undefined> {
  if (!existsSync(MODEL)) {
    t.fail(`${MODEL} is missing: the overlay's tap-to-outline needs the shipped segmenter (sonomics train-segmenter)`);
    return undefined;
  }
  const demo = await startDemo(t);
  if (!demo) return undefined;
  const off = demo.log.find((l) => /tap-to-outline is off/.test(l));
  if (off) { t.fail(`the demo did not load the segmenter: ${off}`); return undefined; }
  return demo;
}

/** Records every text shown on the message line and the tool badge (a reply may come too fast to poll). */
async function recordMessages(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { shown: string[] };
    w.shown = [];
    for (const id of ['msg', 'badge-tool']) {
      const e = document.getElementById(id)!;
      new MutationObserver(() => { if (e.textContent) w.shown.push(e.textContent); }).observe(e, { childList: true, characterData: true, subtree: true });
    }
  });
}
const shown = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown);

/** Records the kind of pointer (mouse, touch, pen) of every press on the canvas. */
async function recordPointerTypes(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { pointerTypes: string[] };
    w.pointerTypes = [];
    document.getElementById('view')!.addEventListener('pointerdown', (e) => w.pointerTypes.push(e.pointerType));
  });
}
const pointerTypes = (page: Page) => page.evaluate(() => (window as unknown as { pointerTypes: string[] }).pointerTypes);

/** A page on the demo on a 1280x800 touch screen, once the lesion is tracked, recording its pointer kinds. */
async function trackingTouchPage(demo: Demo): Promise<OpenedPage> {
  const opened = await openPage(demo.browser, demo.url, { viewport: { width: 1280, height: 800 }, hasTouch: true });
  await waitPage(opened.page, (s) => s.trackingState === 'tracking', 'tracking');
  await recordPointerTypes(opened.page);
  return opened;
}

/** Selects the Tap tool (by click, or by touch); it freezes the picture like the drawing tools. Resolves with the held frame on screen. */
async function selectTap(t: Test, page: Page, how: 'mouse' | 'touch' = 'mouse'): Promise<PageState> {
  if (how === 'touch') await page.tap('#tool-tap'); else await page.click('#tool-tap');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'true', 'Tap tool selected');
  return waitPage(page, heldOnScreen, 'the picture frozen by selecting the Tap tool');
}

/** Selects the Tap tool (freezing the picture): the held frame, its phantom truth and the pane's size; undefined (after failing) without a truth. */
async function selectTapOnHeld(t: Test, demo: Demo, page: Page, how: 'mouse' | 'touch' = 'mouse') {
  const st = await selectTap(t, page, how);
  const seq = st.state!.frozenSeq!;
  const truth = demo.truthOf(seq);
  t.ok(truth, `the phantom's truth for the held frame ${seq}`);
  if (!truth) return undefined;
  const { width, height } = st.layout!.panes.bmode.rect;
  return { st, seq, truth, width, height };
}

/**
 * Clicks (or taps with a finger: a page with hasTouch) at pane coordinates and waits for the reply
 * to the `segment` it sends; returns it, with the time it took.
 */
async function tapAt(page: Page, x: number, y: number, pane: 'bmode' | 'contrast' = 'bmode', how: 'mouse' | 'touch' = 'mouse'): Promise<{ reply: Reply; ms: number; state: PageState }> {
  const { toScreen } = await screenMapper(page);
  const before = await replyCount(page, 'segment');
  const p = toScreen(x, y, pane);
  const t0 = Date.now();
  if (how === 'touch') await page.touchscreen.tap(p.x, p.y); else await page.mouse.click(p.x, p.y);
  const state = await waitPage(page, (s) => s.replies.filter((r) => r.re === 'segment').length > before && !s.segment.pending, 'the reply to the tap', TAP_MS);
  return { reply: state.replies.filter((r) => r.re === 'segment').at(-1)!, ms: Date.now() - t0, state };
}

/** Fraction of a contour's points (every `step`-th) with the proposal colour within 2 screen px, on a pane. */
async function proposalDrawnAt(page: Page, contour: number[], pane: 'bmode' | 'contrast', step = 4, shot?: string): Promise<number> {
  const img = await screenshotRgb(page, shot);
  const { toScreen } = await screenMapper(page);
  let n = 0, hit = 0;
  for (let i = 0; i < contour.length; i += 2 * step) {
    n++;
    const p = toScreen(contour[i], contour[i + 1], pane);
    if (colourNear(img, p.x, p.y, 2, isProposalColour)) hit++;
  }
  return hit / Math.max(1, n);
}

/** The bounding box of a 0/1 mask (inclusive pixel corners). */
function maskBox(mask: Uint8Array, width: number): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const x = i % width, y = (i - x) / width;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return { x0, y0, x1, y1 };
}

/**
 * Presses at one pane point, drags to another in steps and releases there, by mouse or by finger
 * (Chromium's touch events, as a tablet sends them); `midway` runs before the release.
 */
async function dragOn(page: Page, from: { x: number; y: number }, to: { x: number; y: number }, pane: 'bmode' | 'contrast', how: 'mouse' | 'touch', midway?: () => Promise<void>): Promise<void> {
  const { toScreen } = await screenMapper(page);
  const a = toScreen(from.x, from.y, pane), b = toScreen(to.x, to.y, pane);
  const STEPS = 8;
  if (how === 'mouse') {
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: STEPS });
    await midway?.();
    await page.mouse.up();
    return;
  }
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: a.x, y: a.y }] });
    for (let k = 1; k <= STEPS; k++) {
      const f = k / STEPS;
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: a.x + f * (b.x - a.x), y: a.y + f * (b.y - a.y) }] });
    }
    await midway?.();
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  } finally {
    await cdp.detach();
  }
}

/** Fraction of 48 points along a box's edges (pane coordinates) with the proposal colour within 2 screen px, on a pane. */
async function boxDrawnAt(page: Page, img: Rgb, b: Box, pane: 'bmode' | 'contrast'): Promise<number> {
  const { toScreen } = await screenMapper(page);
  let hit = 0;
  const N = 12;
  for (let k = 0; k < N; k++) {
    const f = (k + 0.5) / N, x = b.x0 + f * (b.x1 - b.x0), y = b.y0 + f * (b.y1 - b.y0);
    for (const [px, py] of [[x, b.y0], [x, b.y1], [b.x0, y], [b.x1, y]]) {
      const p = toScreen(px, py, pane);
      if (colourNear(img, p.x, p.y, 2, isProposalColour)) hit++;
    }
  }
  return hit / (4 * N);
}

/** Whether two boxes' corners agree within `tol` pane px. */
const sameBox = (a: Box | undefined | null, b: Box, tol: number) =>
  !!a && Math.abs(a.x0 - b.x0) <= tol && Math.abs(a.y0 - b.y0) <= tol && Math.abs(a.x1 - b.x1) <= tol && Math.abs(a.y1 - b.y1) <= tol;

/** Reply to the page's next `proposal` message, sent by pressing `sel`. */
async function press(page: Page, sel: string): Promise<Reply> {
  const before = await replyCount(page, 'proposal');
  await page.click(sel);
  return lastReply(page, 'proposal', before);
}

t.test('tap at the lesion\'s centre: the proposal matches the phantom\'s truth, Grow / Shrink change it, Accept starts tracking on it', async (t) => {
  const demo = await demoWithSegmenter(t);
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url);
  await waitPage(page, (s) => s.trackingState === 'tracking', 'tracking');
  await recordMessages(page);
  const held = await selectTapOnHeld(t, demo, page);
  if (!held) return;
  const { st, seq, truth, width, height } = held;
  const { scale } = await screenMapper(page);
  t.equal(await page.isVisible('#proposal-tools'), false, 'no proposal tools before a tap');

  // Tap at the true centre.
  const c = truth.center;
  const { reply, ms, state } = await tapAt(page, c.x, c.y);
  t.equal(reply.type, 'ack', `segment acknowledged${reply.error ? ` (${reply.error})` : ''}`);
  t.equal(reply.result?.found, true, `a lesion found at the tap (${JSON.stringify(reply.result).slice(0, 160)})`);
  t.ok(ms < TAP_MS, `the proposal came ${ms} ms after the tap (the server's segmenter took ${reply.result?.ms} ms)`);
  t.comment(`tap -> proposal: ${ms} ms in the page, ${reply.result?.ms} ms in the segmenter`);
  const at = state.segment.at!;
  t.equal(at.pane, 'bmode', 'tapped on the B-mode pane');
  t.ok(Math.hypot(at.x - c.x, at.y - c.y) <= 1 / scale + 0.6, `sent at (${at.x}, ${at.y}) for the centre (${c.x.toFixed(2)}, ${c.y.toFixed(2)})`);
  t.ok((await shown(page)).includes('Outlining…'), '"Outlining…" shown while waiting');
  const pr = state.proposal as TapProposal;
  t.equal(pr?.shape, 'tap', 'a tapped proposal');
  if (pr?.shape !== 'tap') return;
  t.equal(pr.seq, seq, 'made on the held frame');
  t.same(pr.points, reply.result!.contour, 'the server\'s contour, as sent');
  t.equal(pr.grownPx, 0, 'not grown yet');
  const d = dice(fillPolygon(pr.points, width, height), truth.lesionMask);
  t.ok(d >= 0.8, `Dice of the proposed outline vs the true lesion mask: ${d.toFixed(3)} (at least 0.8)`);
  t.comment(`Dice(tap proposal, truth) = ${d.toFixed(4)}; area ${pr.area} px, true area ${truth.lesionMask.reduce((a, v) => a + (v ? 1 : 0), 0)} px, confidence ${pr.confidence}`);
  t.match(await page.textContent('#msg'), /^Proposed outline: \d+ px/, 'the message line says so');
  t.equal(await page.isVisible('#proposal-tools'), true, 'Accept / Grow / Shrink / Discard shown');
  t.equal(await page.textContent('#cancel'), 'Discard', 'Cancel reads Discard for a tapped outline');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'true', 'the Tap tool stays selected');

  // Drawn on both panes, in the proposal colour (the tracked contour is yellow).
  mkdirSync(fromRoot('test', 'artifacts'), { recursive: true });
  const shot = fromRoot('test', 'artifacts', 'overlay-tap.png');
  const onB = await proposalDrawnAt(page, pr.points, 'bmode', 4, shot);
  t.comment(`screenshot: ${shot}`);
  const onC = await proposalDrawnAt(page, pr.points, 'contrast');
  t.ok(onB >= 0.9, `proposal colour on ${(100 * onB).toFixed(0)} % of its outline on the B-mode pane`);
  t.ok(onC >= 0.9, `and on ${(100 * onC).toFixed(0)} % on the contrast pane`);

  // Grow and Shrink: the server moves the outline by 0.5 mm; the page draws what it returns.
  let r = await press(page, '#grow');
  t.equal(r.type, 'ack', `grow acknowledged${r.error ? ` (${r.error})` : ''}`);
  let s = await waitPage(page, (s) => s.proposal?.shape === 'tap' && s.proposal.grownPx !== 0, 'the grown outline');
  const grown = s.proposal as TapProposal;
  t.ok(grown.area > pr.area && polygonArea(grown.points) > polygonArea(pr.points), `Grow: ${pr.area} -> ${grown.area} px (grownPx ${grown.grownPx})`);
  t.ok(grown.grownPx > 0, 'grownPx positive');
  t.match(await page.textContent('#msg'), /^Grown: \d+ px \(\+0\.5 mm/, 'the message line says by how much');
  r = await press(page, '#shrink');
  t.equal(r.type, 'ack', 'shrink acknowledged');
  r = await press(page, '#shrink');
  t.equal(r.type, 'ack', 'shrink again acknowledged');
  s = await waitPage(page, (s) => s.proposal?.shape === 'tap' && s.proposal.grownPx < 0, 'the shrunk outline');
  const shrunk = s.proposal as TapProposal;
  t.ok(shrunk.area < pr.area && polygonArea(shrunk.points) < polygonArea(pr.points), `Shrink twice: ${grown.area} -> ${shrunk.area} px, below the proposal's ${pr.area}`);
  // Back to the tap's own outline for the lock.
  r = await press(page, '#grow');
  t.equal(r.type, 'ack', 'grow acknowledged');
  s = await waitPage(page, (s) => s.proposal?.shape === 'tap' && s.proposal.grownPx === 0, 'the outline grown back');
  const back = s.proposal as TapProposal;
  t.ok(Math.abs(back.area - pr.area) <= 0.05 * pr.area, `grown back: ${back.area} px for ${pr.area}`);

  // Accept: the server locks tracking on it, on the held frame, which comes back with the new contour.
  const redrawn = (await pageState(page)).framesDrawn;
  r = await press(page, '#accept');
  t.equal(r.type, 'ack', `accept acknowledged${r.error ? ` (${r.error})` : ''}`);
  t.equal(r.result?.shape, 'tap', 'locked as a tapped outline');
  t.equal(r.result?.seq, seq, 'on the held frame');
  t.equal(r.result?.proposedOn, seq, 'proposed on it too');
  t.match(await page.textContent('#msg'), /^Locked: tapped outline/, 'the reply is shown');
  s = await waitPage(page, (s) => s.framesDrawn > redrawn && !!s.lastHeader?.frozen && s.lastHeader.seq === seq, 'the held frame re-sent with its new contour');
  t.equal(s.proposal, null, 'the proposal is gone');
  t.equal(await page.isVisible('#proposal-tools'), false, 'and its tools');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'false', 'the tool is released after Accept');
  t.equal(s.lastHeader!.tracking.state, 'tracking', 'the held frame is tracked');
  const locked = fillPolygon(s.lastHeader!.lesion!, width, height);
  const dLocked = dice(locked, truth.lesionMask);
  t.ok(dLocked >= 0.8, `Dice of the tracked contour (held frame) vs the truth: ${dLocked.toFixed(3)}`);
  t.ok(dice(locked, fillPolygon(back.points, width, height)) >= 0.95, 'the tracked contour is the accepted outline');

  // Unfreeze: the pipeline tracks on from the tapped outline, near the truth on live frames.
  await page.click('#freeze');
  s = await waitPage(page, (s) => s.state?.frozen === false && !!s.lastHeader && s.lastHeader.seq > seq + 20 && !s.lastHeader.frozen, 'twenty live frames after Unfreeze');
  const dl: number[] = [];
  for (let k = 0; k < 5; k++) {
    const prev = s.lastHeader!.seq;
    s = await waitPage(page, (x) => !!x.lastHeader && x.lastHeader.seq > prev, 'a newer frame');
    const h = s.lastHeader!;
    const tr = demo.truthOf(h.seq);
    t.equal(h.tracking.state, 'tracking', `frame ${h.seq} tracked`);
    if (tr && h.lesion) dl.push(dice(fillPolygon(h.lesion, width, height), tr.lesionMask));
  }
  t.ok(dl.length >= 3 && Math.min(...dl) >= 0.7, `Dice of the live tracked contours vs the truth: ${dl.map((v) => v.toFixed(3)).join(', ')}`);
  t.same(problems, [], 'no page errors, no console errors');
});

t.test('drag a box around the lesion: drawn while dragged, its outline replaces the press\'s tap and stays near the box, Accept locks it; by finger on the contrast pane, corners either way; a box too small is not sent', async (t) => {
  const demo = await demoWithSegmenter(t);
  if (!demo) return;
  const { page, problems } = await trackingTouchPage(demo);
  await recordMessages(page);
  const held = await selectTapOnHeld(t, demo, page);
  if (!held) return;
  const { st, seq, truth, width, height } = held;
  const { scale } = await screenMapper(page);
  const tol = 1 / scale + 0.6;
  // A rough box: the true lesion's bounding box with 6 px to spare on each side.
  const tb = maskBox(truth.lesionMask, width);
  const box = { x0: Math.max(0, tb.x0 - 6), y0: Math.max(0, tb.y0 - 6), x1: Math.min(width - 1, tb.x1 + 6), y1: Math.min(height - 1, tb.y1 + 6) };
  const margin = 0.15 * Math.max(box.x1 - box.x0 + 1, box.y1 - box.y0 + 1);
  const sent0 = st.segment.sent;

  // By mouse on the B-mode pane, top-left corner to bottom-right.
  let mid: PageState | undefined;
  const drawn = { bmode: 0, contrast: 0 };
  await dragOn(page, { x: box.x0, y: box.y0 }, { x: box.x1, y: box.y1 }, 'bmode', 'mouse', async () => {
    mid = await pageState(page);
    mkdirSync(fromRoot('test', 'artifacts'), { recursive: true });
    const img = await screenshotRgb(page, fromRoot('test', 'artifacts', 'overlay-box.png'));
    drawn.bmode = await boxDrawnAt(page, img, box, 'bmode');
    drawn.contrast = await boxDrawnAt(page, img, box, 'contrast');
  });
  t.ok(sameBox(mid?.segment.box, box, tol), `while dragging, the page holds the box ${JSON.stringify(mid?.segment.box)} (dragged ${JSON.stringify(box)})`);
  t.equal(mid?.proposal ?? null, null, 'and no outline: the press\'s tap was dropped once the press became a box');
  t.ok(drawn.bmode >= 0.8 && drawn.contrast >= 0.8, `the box is drawn while dragged, on both panes (${(100 * drawn.bmode).toFixed(0)} % / ${(100 * drawn.contrast).toFixed(0)} % of its edges in the proposal colour)`);
  t.ok((await shown(page)).includes('Box: release when it holds the whole lesion'), 'the badge says what the drag does');
  let s = await waitPage(page, (s) => !!s.segment.at?.box && !s.segment.pending, 'the reply to the box', TAP_MS);
  t.equal(s.segment.sent, sent0 + 2, 'two segment messages: the tap on the press, then the box on release');
  let reply = s.segment.last!;
  t.equal(reply.type, 'ack', `segment acknowledged${reply.error ? ` (${reply.error})` : ''}`);
  t.equal(reply.result?.found, true, `a lesion found in the box (${JSON.stringify(reply.result).slice(0, 160)})`);
  let at = s.segment.at!;
  t.equal(at.pane, 'bmode', 'boxed on the B-mode pane');
  t.ok(sameBox(at.box, box, tol), `sent the box ${JSON.stringify(at.box)} for ${JSON.stringify(box)}`);
  let pr = s.proposal as TapProposal | null;
  t.equal(pr?.shape, 'tap', 'a proposal from the server');
  if (pr?.shape !== 'tap') return;
  t.same(pr.points, reply.result!.contour, 'the box\'s contour, as the server sent it');
  t.same(pr.at.box, at.box, 'made from the box');
  let d = dice(fillPolygon(pr.points, width, height), truth.lesionMask);
  t.ok(d >= 0.8, `Dice of the outline proposed from the box vs the true lesion: ${d.toFixed(3)}`);
  t.comment(`Dice(box proposal, truth) = ${d.toFixed(4)}`);
  const pb = maskBox(fillPolygon(pr.points, width, height), width);
  t.ok(pb.x0 >= box.x0 - margin - 1 && pb.y0 >= box.y0 - margin - 1 && pb.x1 <= box.x1 + margin + 1 && pb.y1 <= box.y1 + margin + 1,
    `the outline (${JSON.stringify(pb)}) stays inside the box grown by ${margin.toFixed(1)} px`);
  t.match(await page.textContent('#msg'), /^Proposed outline from the box: \d+ px/, 'the message line says it came from the box');
  t.equal(await page.textContent('#badge-tool'), 'Proposed outline (box): Grow or Shrink, then Accept', 'and the badge');
  // The server holds the box's outline, not the tap's from the press: Accept locks exactly it.
  const r = await press(page, '#accept');
  t.equal(r.type, 'ack', `accept acknowledged${r.error ? ` (${r.error})` : ''}`);
  t.equal(r.result?.area, pr.area, `the server locked the box's outline (${r.result?.area} px, proposed ${pr.area} px)`);
  s = await waitPage(page, (s) => !!s.lastHeader?.frozen && s.lastHeader.seq === seq && s.lastHeader.tracking.state === 'tracking' && !!s.lastHeader.lesion, 'the held frame tracked from the box\'s outline');
  d = dice(fillPolygon(s.lastHeader!.lesion!, width, height), fillPolygon(pr.points, width, height));
  t.ok(d >= 0.95, `the tracked contour is the accepted outline (Dice ${d.toFixed(3)})`);

  // By finger on the contrast pane, bottom-right corner to top-left: the same tissue, the same box.
  await selectTap(t, page, 'touch');
  await dragOn(page, { x: box.x1, y: box.y1 }, { x: box.x0, y: box.y0 }, 'contrast', 'touch');
  s = await waitPage(page, (s) => s.segment.sent === sent0 + 4 && !s.segment.pending, 'the reply to the finger\'s box', TAP_MS);
  reply = s.segment.last!;
  at = s.segment.at!;
  t.equal(at.pane, 'contrast', 'boxed on the contrast pane');
  t.ok(sameBox(at.box, box, tol), `sent with its corners in order: ${JSON.stringify(at.box)}`);
  t.equal(reply.result?.found, true, `a lesion found in the finger's box (${JSON.stringify(reply.result ?? reply.error).slice(0, 160)})`);
  pr = s.proposal as TapProposal | null;
  if (pr?.shape === 'tap') {
    d = dice(fillPolygon(pr.points, width, height), truth.lesionMask);
    t.ok(d >= 0.8, `Dice vs the truth: ${d.toFixed(3)}`);
  } else t.fail('no outline proposed from the finger\'s box');
  const types = await pointerTypes(page);
  t.same(types.slice(-1), ['touch'], `the canvas saw the finger as a touch pointer (${types.join(', ')})`);

  // A drag along a line is no box: refused on the page, nothing sent but the press's tap, whose
  // outline is dropped on the page and on the server.
  await dragOn(page, { x: truth.center.x, y: truth.center.y }, { x: truth.center.x + 40, y: truth.center.y }, 'bmode', 'mouse');
  t.match(await page.textContent('#msg'), /^Box too small: /, 'the page says the box is too small');
  // Segment replies: tap and box, tap and box, then the line's tap. The page drops that tap's
  // outline on the server as its reply comes, before anything the test sends after it.
  s = await waitPage(page, (s) => s.replies.filter((r) => r.re === 'segment').length >= 5, 'the reply to the line\'s tap', TAP_MS);
  t.equal(s.segment.sent, sent0 + 5, 'one more segment message: the tap on the press');
  t.equal(s.proposal, null, 'no outline on the page');
  // The reply to this very message (a discard's reply may still be on its way).
  const refused = await page.evaluate(() => new Promise<Reply>((resolve) => {
    (window as unknown as { __sonomics: { send(m: object, done: (r: Reply) => void): boolean } }).__sonomics.send({ type: 'proposal', action: 'accept' }, resolve);
  }));
  t.equal(refused.code, 'no-proposal', `nor on the server: accept refused (${refused.error})`);
  t.same(problems, [], 'no page errors, no console errors');
});

t.test('by touch: a tap on the contrast pane, then far from the lesion: "no lesion found" replaces the proposal, nothing drawn', async (t) => {
  const demo = await demoWithSegmenter(t);
  if (!demo) return;
  const { page, problems } = await trackingTouchPage(demo);
  const held = await selectTapOnHeld(t, demo, page, 'touch');
  if (!held) return;
  const { st, seq, truth, width, height } = held;

  // The contrast pane shows the same geometry: a tap there is a tap at the same pane coordinates.
  const c = truth.center;
  let { reply, state } = await tapAt(page, c.x, c.y, 'contrast', 'touch');
  t.equal(state.segment.at?.pane, 'contrast', 'tapped on the contrast pane');
  t.equal(reply.result?.found, true, `a lesion found at a contrast-pane tap (${JSON.stringify(reply.result ?? reply.error).slice(0, 160)})`);
  const pr = state.proposal as TapProposal | null;
  t.equal(pr?.shape, 'tap', 'proposed');
  if (pr?.shape === 'tap') {
    const d = dice(fillPolygon(pr.points, width, height), truth.lesionMask);
    t.ok(d >= 0.8, `Dice vs the truth: ${d.toFixed(3)}`);
  }

  // Far from the lesion: the pane's top-left 10 % corner, where the truth has no lesion.
  const fx = Math.round(0.05 * width), fy = Math.round(0.05 * height);
  let inCorner = 0;
  for (let y = 0; y < Math.ceil(0.1 * height); y++) for (let x = 0; x < Math.ceil(0.1 * width); x++) if (truth.lesionMask[y * width + x]) inCorner++;
  t.equal(inCorner, 0, 'no lesion in the top-left 10 % corner (truth)');
  ({ reply, state } = await tapAt(page, fx, fy, 'bmode', 'touch'));
  t.equal(reply.type, 'ack', `segment acknowledged${reply.error ? ` (${reply.error})` : ''}`);
  // A proposal out there would be a real fault of the segmenter, not something to tolerate.
  t.equal(reply.result?.found, false, `nothing proposed at (${fx}, ${fy}) (${JSON.stringify(reply.result).slice(0, 200)})`);
  t.equal(state.proposal, null, 'the earlier proposal is replaced by nothing');
  const msg = (await page.textContent('#msg')) ?? '';
  t.match(msg, /^No lesion found at the tap: /, `shown: "${msg}"`);
  t.equal(await page.isVisible('#proposal-tools'), false, 'no proposal tools');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'true', 'the Tap tool stays selected for another tap');
  if (pr?.shape === 'tap') {
    const left = await proposalDrawnAt(page, pr.points, 'bmode');
    t.ok(left <= 0.05, `the old proposal is no longer drawn (${(100 * left).toFixed(0)} % of its outline in the proposal colour)`);
  }
  // The server holds nothing either.
  await page.evaluate(() => (window as unknown as { __sonomics: { send(m: object): boolean } }).__sonomics.send({ type: 'proposal', action: 'accept' }));
  const refused = await lastReply(page, 'proposal');
  t.equal(refused.type, 'error', 'accept refused: the server dropped its proposal too');
  const types = await pointerTypes(page);
  t.ok(types.length === 2 && types.every((x) => x === 'touch'), `the canvas saw two touch pointers (${types.join(', ')})`);
  t.same(problems, [], 'no page errors, no console errors');
});

t.test('proposal actions without a proposal are refused and shown; a viewer without control cannot tap', async (t) => {
  const demo = await demoWithSegmenter(t);
  if (!demo) return;
  const a = await openPage(demo.browser, demo.url);
  const page = a.page;
  await waitPage(page, (s) => s.trackingState === 'tracking', 'tracking');

  // Sent through the page's own socket with nothing proposed: each is refused, and the page shows why.
  for (const action of ['grow', 'shrink', 'accept', 'discard']) {
    const before = await replyCount(page, 'proposal');
    await page.evaluate((action) => (window as unknown as { __sonomics: { send(m: object): boolean } }).__sonomics.send({ type: 'proposal', action }), action);
    const r = await lastReply(page, 'proposal', before);
    const want = `proposal: nothing proposed to ${action}: tap the lesion first`;
    t.equal(r.type, 'error', `${action} without a proposal refused`);
    t.equal(r.error, want, `"${r.error}"`);
    t.equal(r.code, 'no-proposal', 'with its code');
    t.equal(await page.textContent('#msg'), want, 'shown on the message line');
  }

  // The page shows a proposal the server no longer holds (dropped behind its back): Grow is refused,
  // the page says why and drops it too.
  const st = await selectTap(t, page);
  const truth = demo.truthOf(st.state!.frozenSeq!);
  t.ok(truth, 'the truth of the held frame');
  if (!truth) return;
  const { reply } = await tapAt(page, truth.center.x, truth.center.y);
  t.equal(reply.result?.found, true, 'proposed at the lesion');
  let before = await replyCount(page, 'proposal');
  await page.evaluate(() => (window as unknown as { __sonomics: { send(m: object): boolean } }).__sonomics.send({ type: 'proposal', action: 'discard' }));
  t.equal((await lastReply(page, 'proposal', before)).type, 'ack', 'discarded on the server');
  t.equal((await pageState(page)).proposal?.shape, 'tap', 'the page still shows it');
  const r = await press(page, '#grow');
  t.equal(r.type, 'error', 'Grow refused');
  t.equal(await page.textContent('#msg'), 'Not grown: proposal: nothing proposed to grow: tap the lesion first', 'the refusal is shown');
  t.equal((await pageState(page)).proposal, null, 'and the page drops the proposal');
  t.equal(await page.isVisible('#proposal-tools'), false, 'with its tools');

  // Discard by the button: the page and the server drop it; the tool stays.
  await tapAt(page, truth.center.x, truth.center.y);
  t.equal((await pageState(page)).proposal?.shape, 'tap', 'proposed again');
  before = await replyCount(page, 'proposal');
  await page.click('#cancel');
  const dr = await lastReply(page, 'proposal', before);
  t.equal(dr.type, 'ack', 'Discard sends discard');
  t.same(dr.result, { discarded: true }, 'and the server dropped it');
  t.equal((await pageState(page)).proposal, null, 'nothing proposed on the page');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'true', 'the Tap tool stays selected');
  await page.keyboard.press('Escape');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'false', 'Escape releases it');
  // Live again, so that the second screen gets frames.
  await page.click('#freeze');
  await waitPage(page, (s) => s.state?.frozen === false, 'unfrozen');

  // A second screen is a viewer: the Tap tool is read-only, a click on the picture sends nothing.
  const b = await openPage(await demo.otherBrowser(), demo.url);
  const sb = await pageState(b.page);
  t.equal(sb.viewer?.role, 'viewer', 'the second page is a viewer');
  t.equal(await b.page.isDisabled('#tool-tap'), true, 'viewer: Tap disabled');
  t.equal(await b.page.isDisabled('#tool-freehand'), true, 'like Outline');
  await b.page.click('#tool-tap', { force: true });
  await b.page.keyboard.press('t');
  const { toScreen } = await screenMapper(b.page);
  const p = toScreen(truth.center.x, truth.center.y);
  await b.page.mouse.click(p.x, p.y);
  await new Promise((r) => setTimeout(r, 300));
  const vb = await pageState(b.page);
  t.equal(vb.tool, null, 'no tool selected on the viewer');
  t.equal(await b.page.getAttribute('#tool-tap', 'aria-pressed'), 'false', 'Tap not pressed');
  t.equal(vb.segment.sent, 0, 'no tap sent');
  t.same(vb.replies, [], 'the viewer sent nothing');
  t.same([...a.problems, ...b.problems], [], 'no page errors, no console errors');
});

t.test('without a segmenter the Tap tool is off, a tap sent anyway is refused, and the page says so', async (t) => {
  const demo = await startDemo(t, { segmenter: { enabled: false } });
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url);
  await waitPage(page, (s) => s.trackingState === 'tracking', 'tracking');
  const off = 'Tap is off: the server has no segmenter loaded. Outline the lesion or draw an ellipse.';
  t.equal(await page.isDisabled('#tool-tap'), true, 'the controller\'s Tap button is disabled');
  t.equal(await page.getAttribute('#tool-tap', 'title'), off, 'its title says why');
  t.equal(await page.isDisabled('#tool-freehand'), false, 'Outline stays available');
  await page.keyboard.press('t');
  t.equal((await pageState(page)).tool, null, 'T selects nothing');
  t.equal(await page.textContent('#msg'), off, 'and the page says why');
  // Sent through the page's own socket anyway: the server refuses it by name, the page shows it.
  const before = await replyCount(page, 'segment');
  await page.evaluate(() => (window as unknown as { __sonomics: { send(m: object): boolean } }).__sonomics.send({ type: 'segment', x: 100, y: 100 }));
  const reply = await lastReply(page, 'segment', before);
  t.equal(reply.type, 'error', 'segment refused');
  t.equal(reply.error, 'segment: no segmenter is loaded: outline the lesion instead', `"${reply.error}"`);
  const state = await pageState(page);
  t.equal(state.proposal, null, 'nothing proposed');
  t.equal(await page.isVisible('#proposal-tools'), false, 'no proposal tools');
  t.same(problems, [], 'no page errors, no console errors');
});
