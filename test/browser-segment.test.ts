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
  type Demo, type PageState, type Reply, type TapProposal } from './browser-helpers.js';

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

/** Selects the Tap tool (by click, or by touch); it freezes the picture like the drawing tools. Resolves with the held frame on screen. */
async function selectTap(t: Test, page: Page, how: 'mouse' | 'touch' = 'mouse'): Promise<PageState> {
  if (how === 'touch') await page.tap('#tool-tap'); else await page.click('#tool-tap');
  t.equal(await page.getAttribute('#tool-tap', 'aria-pressed'), 'true', 'Tap tool selected');
  return waitPage(page, heldOnScreen, 'the picture frozen by selecting the Tap tool');
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
  const st = await selectTap(t, page);
  const seq = st.state!.frozenSeq!;
  const truth = demo.truthOf(seq);
  t.ok(truth, `the phantom's truth for the held frame ${seq}`);
  if (!truth) return;
  const { width, height } = st.layout!.panes.bmode.rect;
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

t.test('by touch: a tap on the contrast pane, then far from the lesion: "no lesion found" replaces the proposal, nothing drawn', async (t) => {
  const demo = await demoWithSegmenter(t);
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url, { viewport: { width: 1280, height: 800 }, hasTouch: true });
  await waitPage(page, (s) => s.trackingState === 'tracking', 'tracking');
  // Which kind of pointer the canvas saw.
  await page.evaluate(() => {
    const w = window as unknown as { pointerTypes: string[] };
    w.pointerTypes = [];
    document.getElementById('view')!.addEventListener('pointerdown', (e) => w.pointerTypes.push(e.pointerType));
  });
  const st = await selectTap(t, page, 'touch');
  const seq = st.state!.frozenSeq!;
  const truth = demo.truthOf(seq);
  t.ok(truth, `the phantom's truth for the held frame ${seq}`);
  if (!truth) return;
  const { width, height } = st.layout!.panes.bmode.rect;

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
  const types = await page.evaluate(() => (window as unknown as { pointerTypes: string[] }).pointerTypes);
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
