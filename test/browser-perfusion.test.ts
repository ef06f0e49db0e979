// The overlay page's perfusion card in a real browser (Debian chromium driven by playwright-core),
// against the demo: the phantom's contrast arrives at about 8 s and peaks in the lesion at about
// 16 s of session time, and the demo places a reference region on the phantom by itself. The page
// shows the server's perfusion message (state line, chart, parameter table), draws the reference
// disc from each frame header, places a new one with the Reference tool, restarts the curve with
// New injection, and exports the curves (with the page's access token).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fromRoot } from './helpers.js';
import {
  isReferenceColour, lastReply, openPage, pageState, replyCount, screenMapper, startDemo, waitPage,
  type Header, type PageState, type PerfusionMessage, heldOnScreen } from './browser-helpers.js';

/** The page's number format for parameters (three significant digits, whole numbers from 1000). */
const fmt = (v: number | null | undefined) => (typeof v !== 'number' || !Number.isFinite(v) ? '–' : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3));
const PARAMS = ['AT', 'PE', 'TTP', 'RT', 'WiR', 'WiAUC', 'MTT', 'FT', 'WoR', 'AUC'] as const;
const lesionOf = (m: PerfusionMessage | null | undefined) => m?.regions.find((r) => r.name === 'lesion');

/** The perfusion message, the card's text and the chart's pixels, read in one turn of the page (so they belong together). */
interface CardSnapshot {
  msg: PerfusionMessage | null;
  chart: PageState['chart'];
  stateLine: string;
  cells: Array<{ region: string; param: string; text: string }>;
  legend: string;
  axes: string;
  notice: string;
  pixels: { painted: number; lesion: number; reference: number; total: number };
}

function card(page: import('playwright-core').Page): Promise<CardSnapshot> {
  return page.evaluate(() => {
    const s = (window as unknown as { __sonomics: PageState }).__sonomics;
    const text = (id: string) => document.getElementById(id)!.textContent ?? '';
    const cells = [...document.querySelectorAll<HTMLElement>('#perfusion-card td[data-region][data-param]')]
      .map((td) => ({ region: td.dataset.region!, param: td.dataset.param!, text: td.textContent ?? '' }));
    const c = document.getElementById('perfusion-chart') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let painted = 0, lesion = 0, reference = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      painted++;
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      // Hues, whatever the opacity (the measured curves are drawn faint): lesion yellow, reference lime.
      if (r > 120 && r > g && g - b > 50) lesion++;
      if (g > 90 && g - r > 15 && g - b > 40) reference++;
    }
    return JSON.parse(JSON.stringify({
      msg: s.perfusion, chart: s.chart, stateLine: text('perfusion-state'), cells, legend: text('perfusion-legend'), axes: text('perfusion-axes'),
      notice: text('perfusion-notice'), pixels: { painted, lesion, reference, total: d.length / 4 },
    })) as CardSnapshot;
  });
}

/** The newest header, the reference disc as drawn, and canvas pixels on (and well outside) the drawn disc, per pane. */
function referenceOnCanvas(page: import('playwright-core').Page) {
  return page.evaluate(() => {
    const s = (window as unknown as { __sonomics: PageState }).__sonomics;
    const ctx = (document.getElementById('view') as HTMLCanvasElement).getContext('2d')!;
    const px = (x: number, y: number) => Array.from(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data);
    const sample = (cx: number, cy: number, rx: number, ry: number, f: number, skip: (a: number) => boolean) => {
      const out: number[][] = [];
      for (let k = 0; k < 48; k++) {
        const a = (2 * Math.PI * k) / 48;
        if (!skip(a)) out.push(px(cx + f * rx * Math.cos(a), cy + f * ry * Math.sin(a)));
      }
      return out;
    };
    return JSON.parse(JSON.stringify({
      header: s.lastHeader, layout: s.layout, drawn: s.referenceDrawn,
      // On the dashed circle; and at 1.5 radii (leaving out the upper right, where its label is).
      on: s.referenceDrawn.map((r) => sample(r.cx, r.cy, r.rx, r.ry, 1, () => false)),
      off: s.referenceDrawn.map((r) => sample(r.cx, r.cy, r.rx, r.ry, 1.5, (a) => a > 1.4 * Math.PI && a < 2 * Math.PI)),
    })) as { header: Header; layout: NonNullable<PageState['layout']>; drawn: PageState['referenceDrawn']; on: number[][][]; off: number[][][] };
  });
}
const share = (px: number[][]) => px.filter(([r, g, b]) => isReferenceColour(r, g, b)).length / Math.max(1, px.length);

t.test('the perfusion card shows the fitted lesion; the reference is drawn, placed by click, and cleared; New injection restarts the curve; CSV and JSON export', async (t) => {
  // With an access token: the exports must carry it.
  const token = 'perfusion-token-0123456789abcdef';
  const saved = process.env.SONOMICS_TOKEN;
  delete process.env.SONOMICS_TOKEN;
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-browser-in-'));
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }); if (saved !== undefined) process.env.SONOMICS_TOKEN = saved; });
  writeFileSync(join(dir, 'token'), `${token}\n`);
  chmodSync(join(dir, 'token'), 0o600);
  const demo = await startDemo(t, { overlay: { tokenFile: join(dir, 'token') } });
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, `${demo.url}#token=${token}`);

  // ---- The lesion's fit, as the server says it, on the card -------------------------------
  await waitPage(page, (s) => { const l = lesionOf(s.perfusion); return l?.state === 'fitted' && !!l.parameters; }, 'the lesion fitted with parameters', 60000);
  // The card is drawn from the message that came with it: read both in one go.
  const snap = await card(page);
  const msg = snap.msg!;
  const lesion = lesionOf(msg)!;
  t.equal(lesion.state, 'fitted', `lesion: ${lesion.message}`);
  t.equal(msg.state, 'fitted', 'the message\'s state is the lesion\'s');
  t.equal(snap.stateLine, msg.message, `the state line is the lesion's message: "${snap.stateLine}"`);
  t.match(snap.stateLine, /^(lognormal|gammaVariate) fit, R² 0\.\d{3}$/, 'model and R²');
  const cell = (region: string, param: string) => snap.cells.find((c) => c.region === region && c.param === param)?.text;
  t.equal(cell('lesion', 'PE'), fmt(lesion.parameters!.PE), `PE shown as ${cell('lesion', 'PE')} (message ${lesion.parameters!.PE})`);
  t.same(PARAMS.map((p) => cell('lesion', p)), PARAMS.map((p) => fmt(lesion.parameters![p])), 'all ten lesion parameters as in the message');
  t.match(await page.textContent('#perfusion-params thead') ?? '', /Lesion.*Ref\./, 'lesion and reference columns');
  t.match(await page.textContent('#perfusion-params tbody') ?? '', /PEa\.u\..*WiRa\.u\.\/s.*WiAUCa\.u\.·s/, 'parameters with their units');
  // No numbers for a region whose fit does not stand, whichever it is.
  for (const r of msg.regions) {
    const shown = snap.cells.filter((c) => c.region === r.name && !c.param.startsWith('r') && c.param !== 'R2');
    if (!shown.length) continue;
    if (r.state === 'fitted') t.same(shown.map((c) => c.text), shown.map((c) => fmt(r.parameters![c.param as (typeof PARAMS)[number]])), `${r.name}: fitted, its parameters shown`);
    else t.ok(shown.every((c) => c.text === '–'), `${r.name}: ${r.state}, no parameters shown`);
  }
  if (lesion.relative) t.equal(cell('lesion', 'rPE'), fmt(lesion.relative.rPE), `relative PE shown (${cell('lesion', 'rPE')})`);
  else t.equal(cell('lesion', 'rPE'), undefined, 'no relative column without relative values');
  t.match(snap.notice, /not for diagnosis/, 'the notice on the card');
  t.match(snap.axes, msg.units, `the units: ${msg.units}`);
  for (const re of [/lesion/, /ring 3 mm/, /ring 8 mm/, /reference/, /fit/]) t.match(snap.legend, re, `legend: ${re.source}`);
  t.notMatch(snap.legend, /px/, 'rings the picture does not draw stay off the card');
  // The chart: measured curves, the fitted curves dashed, the phases.
  const chart = snap.chart!;
  t.ok(chart.drawn, 'chart drawn');
  t.equal(chart.points, msg.curve.t.length, `all ${chart.points} points of the curve`);
  t.ok(chart.x![1] - chart.x![0] >= msg.curve.t.at(-1)! - msg.curve.t[0] - 1e-6, `x spans the curve (${chart.x!.map((v) => v.toFixed(1)).join('–')} s)`);
  t.ok(['lesion', 'ring3mm', 'reference'].every((n) => chart.series!.includes(n)), `measured curves drawn: ${chart.series!.join(', ')}`);
  t.ok(chart.fits!.includes('lesion'), `fitted curves drawn: ${chart.fits!.join(', ')}`);
  const expectedPhases = Object.entries(msg.phases!).filter(([, [a]]) => a === null || a < chart.x![1]).map(([k]) => k);
  t.same(chart.phases!.map((p) => p.phase), expectedPhases, `phases drawn: ${expectedPhases.join(', ')}`);
  t.ok(snap.pixels.painted > 0.05 * snap.pixels.total, `chart not blank (${snap.pixels.painted} of ${snap.pixels.total} pixels painted)`);
  t.ok(snap.pixels.lesion > 100, `the lesion's curves in its colour (${snap.pixels.lesion} pixels)`);
  t.ok(snap.pixels.reference > 50, `the reference's curve in its colour (${snap.pixels.reference} pixels)`);
  t.match(await page.textContent('#perfusion-phases') ?? '', /pre start–\d+\.\d s · early/, 'the phases in words');
  // The picture in the README: the fitted curve on the card (docs/img/overlay.jpg is made from it).
  await page.screenshot({ path: fromRoot('test', 'artifacts', 'overlay-perfusion.png') });

  // ---- The reference disc, drawn where each header says ------------------------------------
  const ref0 = await referenceOnCanvas(page);
  const h0 = ref0.header;
  t.ok(h0.reference, `the demo placed a reference: ${JSON.stringify(h0.reference)}`);
  t.equal(ref0.drawn.length, 2, 'drawn on both panes');
  for (const [k, d] of ref0.drawn.entries()) {
    const pane = ref0.layout.panes[d.pane];
    t.ok(Math.abs(d.cx - (pane.rect.x + h0.reference!.x + 0.5)) < 1e-6 && Math.abs(d.cy - (pane.rect.y + h0.reference!.y + 0.5)) < 1e-6, `${d.pane}: centre at the header's reference`);
    t.ok(Math.abs(d.rx - h0.reference!.radiusMm / pane.spacingX) < 1e-6 && Math.abs(d.ry - h0.reference!.radiusMm / pane.spacingY) < 1e-6, `${d.pane}: radius ${h0.reference!.radiusMm} mm = ${d.rx.toFixed(1)} px`);
    t.ok(share(ref0.on[k]) > 0.35, `${d.pane}: the reference colour on the dashed circle at ${(100 * share(ref0.on[k])).toFixed(0)} % of the points`);
    t.ok(share(ref0.off[k]) < 0.05, `${d.pane}: and not half a radius outside it (${(100 * share(ref0.off[k])).toFixed(0)} %)`);
  }

  // ---- Placing a reference with the tool: a click on the contrast pane ---------------------
  // On a frozen frame, so that the frame the page shows is the frame the server anchors the
  // reference to (live, they may be a frame apart while the lesion moves).
  await page.click('#freeze');
  const held = await waitPage(page, (s) => heldOnScreen(s) && s.lastHeader?.tracking.state === 'tracking', 'a tracked frame held on screen');
  await page.click('#tool-reference');
  await waitPage(page, (s) => s.referenceTool, 'the reference tool on');
  t.equal(await page.getAttribute('#tool-reference', 'aria-pressed'), 'true', 'Reference shows pressed');
  t.match(await page.textContent('#badge-tool') ?? '', /Reference/, 'the badge says what a click does');
  const { toScreen } = await screenMapper(page);
  const c = held.lastHeader!.tracking.center!;
  const { width, height } = held.layout!.panes.bmode.rect;
  const mm = 1 / held.layout!.panes.bmode.spacingX;
  // Normal tissue left of and below the lesion, well inside the pane.
  const target = { x: Math.round(Math.min(width - 40, Math.max(40, c.x - 12 * mm))), y: Math.round(Math.min(height - 40, Math.max(40, c.y + 4 * mm))) };
  const replies = await replyCount(page, 'reference');
  const at = toScreen(target.x, target.y, 'contrast');
  await page.mouse.click(at.x, at.y);
  const reply = await lastReply(page, 'reference', replies);
  t.equal(reply.type, 'ack', `reference: ${JSON.stringify(reply).slice(0, 200)}`);
  const sent = reply.result!.reference as { x: number; y: number; radiusMm: number };
  t.ok(Math.abs(sent.x - target.x) <= 1.5 && Math.abs(sent.y - target.y) <= 1.5, `the contrast-pane click sent as B-mode pane coordinates (${sent.x}, ${sent.y}) for (${target.x}, ${target.y})`);
  t.equal(sent.radiusMm, 4, '4 mm');
  const placed = (await pageState(page)).referencePlaced!;
  t.same([placed.pane, placed.seq], ['contrast', held.state!.frozenSeq], 'placed on the contrast pane of the held frame');
  t.equal((await pageState(page)).referenceTool, false, 'one placement per tool use');
  await page.click('#freeze');
  // It follows the lesion: the next headers carry it at the clicked offset from the lesion's
  // centre, scaled as the tracker scales the lesion (compression) since the held frame.
  const offset = { x: sent.x - c.x, y: sent.y - c.y };
  const scale0 = held.lastHeader!.tracking.scale;
  const seen: string[] = [];
  const moved = await waitPage(page, (s) => {
    const h = s.lastHeader;
    if (!h || h.seq <= held.state!.frozenSeq! || !h.reference || !h.tracking.center || h.reference.radiusMm !== 4) return false;
    const k = h.tracking.scale / scale0;
    const o = { x: h.reference.x - h.tracking.center.x, y: h.reference.y - h.tracking.center.y };
    if (seen.length < 5) seen.push(`${h.seq}: offset (${o.x.toFixed(2)}, ${o.y.toFixed(2)}) at scale x${k.toFixed(4)}`);
    return Math.hypot(o.x - k * offset.x, o.y - k * offset.y) < 0.15;
  }, 'live headers with the new reference at the clicked offset from the lesion', 10000).catch((e: Error) => {
    throw new Error(`${e.message}: clicked offset (${offset.x.toFixed(2)}, ${offset.y.toFixed(2)}) on held frame ${held.state!.frozenSeq} (scale ${scale0}), headers ${seen.join('; ')}`);
  });
  const h1 = moved.lastHeader!;
  t.pass(`frame ${h1.seq}: reference (${h1.reference!.x}, ${h1.reference!.y}), lesion at (${h1.tracking.center!.x}, ${h1.tracking.center!.y}); clicked (${target.x}, ${target.y}) with the lesion at (${c.x}, ${c.y})`);
  const ref1 = await referenceOnCanvas(page);
  t.ok(ref1.header.reference && ref1.drawn.length === 2 && ref1.drawn.every((d) => Math.abs(d.cx - (ref1.layout.panes[d.pane].rect.x + ref1.header.reference!.x + 0.5)) < 1e-6), 'drawn at the new place');
  t.ok(share(ref1.on[0]) > 0.35 && share(ref1.on[1]) > 0.35, 'and in its colour');

  // The TIC (perfusion) layer hides the disc with the card.
  await page.click('#layer-tic');
  await waitPage(page, (s) => s.state?.layers.tic === false, 'tic layer off');
  let frames = (await pageState(page)).framesDrawn;
  await waitPage(page, (s) => s.framesDrawn > frames + 1 && s.referenceDrawn.length === 0, 'frames without the disc');
  t.equal(await page.isVisible('#perfusion-card'), false, 'card hidden');
  await page.click('#layer-tic');
  await waitPage(page, (s) => !!s.state?.layers.tic && s.referenceDrawn.length === 2, 'the disc back with the layer');

  // ---- A viewer sees the card, may export, may not change anything ---------------------------
  const viewer = await openPage(await demo.otherBrowser(), `${demo.url}#token=${token}`);
  await waitPage(viewer.page, (s) => lesionOf(s.perfusion)?.state === 'fitted', 'the viewer gets the perfusion messages');
  for (const sel of ['#tool-reference', '#reference-clear', '#perfusion-reset'])
    t.equal(await viewer.page.isDisabled(sel), true, `viewer: ${sel} read-only`);
  for (const sel of ['#export-csv', '#export-json']) t.equal(await viewer.page.isDisabled(sel), false, `viewer: ${sel} allowed`);
  await viewer.page.context().close();

  // ---- Exports -----------------------------------------------------------------------------
  const [csv] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#export-csv')]);
  const csvText = readFileSync((await csv.path())!, 'utf8');
  t.match(csv.suggestedFilename(), /^sonomics-perfusion-.*\.csv$/, `CSV saved as ${csv.suggestedFilename()}`);
  t.match(csvText, /^t_s,lesion,/, `CSV header: ${csvText.split('\n')[0].slice(0, 120)}`);
  t.match(csvText.split('\n')[0], /lesion_fit_(lognormal|gammaVariate)/, 'with the fitted curve');
  t.ok(csvText.trim().split('\n').length > 100, `${csvText.trim().split('\n').length - 1} rows`);
  const [json] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#export-json')]);
  const doc = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { notice: string; analysis: { state: string } | null };
  t.match(doc.notice, /not for diagnosis/, 'JSON with the notice');
  t.equal(doc.analysis?.state, 'fitted', 'and the analysis');
  t.same((await pageState(page)).exports.map((e) => [e.format, e.status]), [['csv', 200], ['json', 200]], 'both exports answered 200');
  t.equal((await fetch(`${demo.url}api/perfusion.csv`)).status, 401, 'without the token the export is refused: the page sent it');

  // ---- New injection: the curve starts again -----------------------------------------------
  const last = (await pageState(page)).perfusion!;
  const resets = await replyCount(page, 'perfusion');
  await page.click('#perfusion-reset');
  t.equal((await lastReply(page, 'perfusion', resets)).type, 'ack', 'reset acknowledged');
  const fresh = await waitPage(page, (s) => !!s.perfusion && s.perfusion.counts.samples < last.counts.samples && s.perfusion.durationS < last.durationS && s.perfusion.curve.t.length > 0 && s.perfusion.curve.t.at(-1)! < 5,
    'a perfusion message of the new curve', 15000);
  t.ok(fresh.perfusion!.counts.samples < last.counts.samples, `samples ${last.counts.samples} -> ${fresh.perfusion!.counts.samples}, duration ${last.durationS.toFixed(1)} -> ${fresh.perfusion!.durationS.toFixed(1)} s (${fresh.perfusionStale} analyses of the old curve not shown)`);
  const after = await card(page);
  t.equal(after.stateLine, after.msg!.message, `state line: "${after.stateLine}"`);
  if (lesionOf(after.msg)!.state !== 'fitted') t.equal(after.cells.find((c) => c.region === 'lesion' && c.param === 'PE')?.text, '–', 'no lesion parameters on the new curve yet');

  // ---- Clear reference ---------------------------------------------------------------------
  const clears = await replyCount(page, 'reference');
  await page.click('#reference-clear');
  t.equal((await lastReply(page, 'reference', clears)).type, 'ack', 'clear acknowledged');
  frames = (await pageState(page)).framesDrawn;
  await waitPage(page, (s) => s.framesDrawn > frames + 1 && s.lastHeader?.reference === null && s.referenceDrawn.length === 0, 'frames without a reference');
  t.pass('the reference is gone from the headers and the picture');

  t.same(problems, [], 'no page errors, no console errors');
});
