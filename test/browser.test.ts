// The overlay page in a real browser (Debian chromium driven by playwright-core).
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runDemo } from '../cli/demo.js';
import { resolveConfig } from '../core/config.js';
import { launchChromium } from './helpers.js';

t.test('the page draws the video with the lesion contour on it and shows the live score', async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const ac = new AbortController();
  let url = '';
  const demo = runDemo({ config: resolveConfig({ overlay: { port: 0 } }), headless: true, frames: 3000, log: (l) => { const m = /(http:\/\/\S+)/.exec(l); if (m) url = m[1]; } }, ac.signal);
  const end = Date.now() + 10000;
  while (!url && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.ok(url, 'demo serving');
  t.teardown(async () => { await browser.close(); ac.abort(); await demo; });
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => {
    const s = (window as unknown as { __sonomics: { framesDrawn: number; scores: { live: boolean; scores: Array<{ status: string }> } | null } }).__sonomics;
    return s.framesDrawn > 20 && s.scores?.live && s.scores.scores[0]?.status === 'ok';
  }, undefined, { timeout: 20000 });
  t.match(await page.textContent('#notice'), /not for diagnosis/);
  t.equal(await page.textContent('#tracking'), 'tracking');
  t.match(await page.textContent('#scores') ?? '', /busi-malignancy v1\.0\.0/);
  t.match(await page.textContent('#scores') ?? '', /\d+%/);
  // Read the canvas where the lesion contour of the frame just drawn runs: it must be the contour colour.
  const px = await page.evaluate(() => {
    const s = (window as unknown as { __sonomics: { lastHeader: { lesion: number[] }; layout: { panes: { bmode: { rect: { x: number; y: number } } } } } }).__sonomics;
    const ctx = (document.getElementById('view') as HTMLCanvasElement).getContext('2d')!;
    const { x, y } = s.layout.panes.bmode.rect;
    const out: number[][] = [];
    for (let i = 0; i < s.lastHeader.lesion.length; i += 40) out.push(Array.from(ctx.getImageData(x + s.lastHeader.lesion[i], y + s.lastHeader.lesion[i + 1], 1, 1).data));
    return out;
  });
  const yellow = px.filter(([r, g, b]) => r > 180 && g > 140 && b < 140).length;
  t.ok(yellow >= 0.8 * px.length, `${yellow} of ${px.length} contour points drawn in the contour colour`);
  await page.screenshot({ path: join(tmpdir(), 'sonomics-overlay.png') });
  t.same(pageErrors, [], 'no page errors');
});
