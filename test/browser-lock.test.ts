// The sonographer outlines the lesion on the overlay page (Debian chromium driven by
// playwright-core); the server (re)starts tracking from that outline.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { createFrame } from '../core/frame.js';
import { maskStats, type LesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { OverlayServer } from '../web-overlay/server.js';
import { launchChromium, sleep, until } from './helpers.js';

interface PageState {
  framesDrawn: number;
  layout: { panes: { bmode: { rect: { x: number; y: number; width: number; height: number }; spacingX: number; spacingY: number } } } | null;
  outline: { points: number[] } | null;
  locks: Array<{ type: string; polygon?: number[]; ellipse?: unknown }>;
  trackingState: string;
}
const pageState = (page: Page) => page.evaluate(() => {
  const s = (window as unknown as { __sonomics: PageState }).__sonomics;
  return { framesDrawn: s.framesDrawn, layout: s.layout, outline: s.outline, locks: s.locks, trackingState: s.trackingState };
});

t.test('outline the lesion on the page: the server locks onto the clicked outline and the page shows the tracking state', async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  // A live phantom, not locked: tracking starts only when the page sends an outline.
  const phantom = new PhantomScanner({ seed: 5 });
  const pipeline = new Pipeline({ layout: phantom.layout, models: [await loadRiskModel('busi-malignancy')] }).start();
  const masks: LesionMask[] = [];
  const lockEvents: number[] = [];
  const lockLesion = pipeline.lockLesion.bind(pipeline);
  pipeline.lockLesion = (m: LesionMask) => { masks.push(m); return lockLesion(m); };
  pipeline.on('lock', (seq: number) => lockEvents.push(seq));
  pipeline.on('frameError', (e: Error) => t.comment(`pipeline frame error: ${e.message}`));
  const server = new OverlayServer({ pipeline, port: 0 });
  const url = await server.listen();
  let lastTruth: PhantomTruth | undefined;
  phantom.on('frame', (frame, truth: PhantomTruth) => { lastTruth = truth; pipeline.push(frame, truth); });
  phantom.start();
  let serverOpen = true;
  t.teardown(async () => { await browser.close(); phantom.stop(); if (serverOpen) await server.close(); await pipeline.stop(); });

  // A wide, short window: the canvas is scaled down and letterboxed (object-fit: contain), so the
  // page's screen-to-pane conversion is exercised, not an identity.
  const page = await browser.newPage({ viewport: { width: 1800, height: 760 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __sonomics: { framesDrawn: number } }).__sonomics.framesDrawn > 5, undefined, { timeout: 20000 });
  t.match(await page.textContent('#notice'), /not for diagnosis/);

  // Before any lock: idle, and the page says why there is no live score.
  t.equal(await page.textContent('#tracking'), 'idle');
  t.match(await page.textContent('#score-state') ?? '', /Not tracking: outline the lesion to start\. No live score\./, 'idle: the reason for no score is shown');
  t.equal((await page.$$('#scores .model')).length, 0, 'no score shown while idle');

  const st = await pageState(page);
  const rect = st.layout!.panes.bmode.rect;
  const W = phantom.layout.width, H = phantom.layout.height;
  const box = (await page.locator('#view').boundingBox())!;
  // object-fit: contain: the picture is scaled by s and centred in the element's box.
  const s = Math.min(box.width / W, box.height / H);
  const ox = box.x + (box.width - W * s) / 2, oy = box.y + (box.height - H * s) / 2;
  t.ok(s < 0.95, `canvas drawn at scale ${s.toFixed(3)}, offset (${(ox - box.x).toFixed(1)}, ${(oy - box.y).toFixed(1)}) in its box`);
  /** Pane coordinates -> page (CSS pixel) coordinates for the mouse. */
  const toScreen = (px: number, py: number) => ({ x: ox + (rect.x + px + 0.5) * s, y: oy + (rect.y + py + 0.5) * s });

  // Escape cancels: nothing is sent.
  await page.click('#outline');
  for (const [px, py] of [[100, 100], [150, 100]]) { const p = toScreen(px, py); await page.mouse.click(p.x, p.y); }
  t.equal((await pageState(page)).outline?.points.length, 4, 'two points while outlining');
  await page.keyboard.press('Escape');
  t.equal((await pageState(page)).outline, null, 'Escape cancels the outline');
  t.same((await pageState(page)).locks, [], 'nothing sent');

  // Outline: an octagon on the phantom's lesion where it is now, clicked on the B-mode pane,
  // closed with Enter. (Where tracking goes from there is the tracker's business, not tested here.)
  const c = lastTruth!.center, R = 45;
  const target = { x: Math.round(c.x), y: Math.round(c.y) };
  await page.click('#outline');
  const clicked: number[] = [];
  for (let k = 0; k < 8; k++) {
    const px = target.x + R * Math.cos((k * Math.PI) / 4), py = target.y + R * Math.sin((k * Math.PI) / 4);
    clicked.push(px, py);
    const p = toScreen(px, py);
    await page.mouse.click(p.x, p.y);
  }
  const drawn = await pageState(page);
  t.equal(drawn.outline?.points.length, 16, '8 points in the outline in progress');
  // The browser reports whole CSS pixels: a point may land up to one CSS pixel (1/s pane pixels) off.
  const off = Math.max(...clicked.map((v, i) => Math.abs(v - drawn.outline!.points[i])));
  t.ok(off <= 1 / s + 0.01, `page's pane coordinates within ${off.toFixed(2)} px of the clicked ones`);
  t.equal(await page.isVisible('#outline-lock'), true, 'Lock button shown while outlining');
  await page.screenshot({ path: join(tmpdir(), 'sonomics-outline.png') });
  await page.keyboard.press('Enter');
  await until(() => lockEvents.length >= 1, 10000, "the pipeline's 'lock' event");
  t.equal(masks.length, 1, 'one mask reached pipeline.lockLesion');
  t.same([masks[0].width, masks[0].height], [rect.width, rect.height], 'B-mode pane sized');
  const ms = maskStats(masks[0]);
  const err = Math.hypot(ms.cx - target.x, ms.cy - target.y);
  t.ok(err < 3, `mask centroid (${ms.cx.toFixed(2)}, ${ms.cy.toFixed(2)}) vs clicked centre (${target.x}, ${target.y}): ${err.toFixed(2)} px`);
  const octagonArea = 2 * Math.SQRT2 * R * R;
  t.ok(Math.abs(ms.area - octagonArea) < 0.1 * octagonArea, `mask area ${ms.area} px vs octagon ${octagonArea.toFixed(0)} px`);
  await page.waitForFunction(() => /Locked: outline of 8 points/.test(document.getElementById('lock-msg')!.textContent ?? ''), undefined, { timeout: 5000 });
  t.pass('the page shows the locked reply');

  // Tracking has (re)started: the page shows a state other than idle, and whenever it is not
  // 'tracking' it says why there is no live score.
  await page.waitForFunction(() => document.getElementById('tracking')!.textContent !== 'idle', undefined, { timeout: 10000 });
  const shown = await page.evaluate(() => ({
    state: (window as unknown as { __sonomics: PageState }).__sonomics.trackingState,
    tracking: document.getElementById('tracking')!.textContent,
    line: document.getElementById('score-state')!.textContent ?? '',
  }));
  t.match(shown.tracking, /^(tracking|uncertain|lost)$/, `page shows tracking state "${shown.tracking}"`);
  if (shown.state === 'tracking') t.notMatch(shown.line, /No live score/, `tracking: "${shown.line}"`);
  else t.match(shown.line, new RegExp(`^Tracking ${shown.state}: .*No live score\\.`), `${shown.state}: "${shown.line}"`);

  // Double-click closes an outline too; the double-click's second click adds no point.
  await page.click('#outline');
  const tri = [[200, 200], [260, 200], [260, 260]];
  for (const [px, py] of tri) { const p = toScreen(px, py); await page.mouse.click(p.x, p.y); }
  const last = toScreen(200, 260);
  await page.mouse.dblclick(last.x, last.y);
  await until(() => lockEvents.length >= 2, 10000, "the second 'lock' event");
  const sent = (await pageState(page)).locks.at(-1)!;
  t.equal(sent.polygon?.length, 8, 'double-click closed a 4-point outline');
  const sq = maskStats(masks[1]);
  t.ok(Math.hypot(sq.cx - 230, sq.cy - 230) < 3, `square outline centroid (${sq.cx.toFixed(1)}, ${sq.cy.toFixed(1)}) vs (230, 230)`);

  // Lock ellipse: a centred 5 mm x 4 mm ellipse.
  await page.click('#lock-ellipse');
  await until(() => lockEvents.length >= 3, 10000, "the third 'lock' event");
  const el = maskStats(masks[2]);
  const pane = phantom.layout.panes.bmode;
  t.ok(Math.hypot(el.cx - (rect.width - 1) / 2, el.cy - (rect.height - 1) / 2) < 1, 'ellipse centred on the pane');
  t.ok(Math.abs((el.x1 - el.x0 + 1) / 2 - 5 / pane.spacingX) < 2, `ellipse x radius ${((el.x1 - el.x0 + 1) / 2).toFixed(1)} px = 5 mm`);
  t.ok(Math.abs((el.y1 - el.y0 + 1) / 2 - 4 / pane.spacingY) < 2, `ellipse y radius ${((el.y1 - el.y0 + 1) / 2).toFixed(1)} px = 4 mm`);
  await page.waitForFunction(() => /Locked: ellipse/.test(document.getElementById('lock-msg')!.textContent ?? ''), undefined, { timeout: 5000 });

  // Take the lesion away (noise frames from here on): neither template matches noise, so the
  // tracker goes lost after a few frames, and the page says why and shows no score.
  phantom.stop();
  const noise = new Uint8Array(W * H);
  let seq = 1_000_000, x = 12345;
  let shownState: string | null = null;
  for (const end = Date.now() + 8000; Date.now() < end;) {
    for (let i = 0; i < noise.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; noise[i] = x >>> 24; }
    pipeline.push(createFrame(noise.slice(), W, H, seq++, 'noise'));
    await sleep(40);
    shownState = await page.textContent('#tracking');
    if (shownState === 'lost') break;
  }
  t.equal(shownState, 'lost', 'lost on noise frames');
  const line = await page.textContent('#score-state') ?? '';
  t.match(line, /^Tracking lost: searching for the lesion\. No live score\./, `lost: "${line}"`);
  t.match(line, /reason: (the lesion (was not found|left the view)|lost: )/, 'with the tracker\'s reason');
  t.equal((await page.$$('#scores .model')).length, 0, 'no score shown while lost');
  await page.screenshot({ path: join(tmpdir(), 'sonomics-not-tracking.png') });

  t.match(await page.textContent('#notice'), /not for diagnosis/, 'still decision support, not a diagnosis');
  t.same(pageErrors, [], 'no page errors (nor CSP violations)');

  // The server goes away: nothing on the page may pass for live.
  serverOpen = false;
  await server.close();
  await page.waitForFunction(() => /^Disconnected from the server: no live score\./.test(document.getElementById('score-state')!.textContent ?? ''), undefined, { timeout: 5000 });
  t.equal((await page.$$('#scores .model')).length, 0, 'disconnected: no score shown');
});
