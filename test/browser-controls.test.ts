// The overlay page's shared controls in a real browser (Debian chromium driven by playwright-core):
// one controller and read-only viewers, taking control, recording and marked events, clinical
// inputs, and the access token.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { testCard } from './cards.js';
import { lastReply, openPage, pageState, startDemo, waitPage } from './browser-helpers.js';

/** A temporary folder removed after the test. */
function tmpFolder(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-browser-in-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a second page is a read-only viewer: it sees the controller\'s changes, and Take control hands control over', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  const a = await openPage(demo.browser, demo.url);
  const b = await openPage(await demo.otherBrowser(), demo.url, { hasTouch: true });
  const sa = await pageState(a.page), sb = await pageState(b.page);
  t.equal(sa.state?.controller, sa.viewer?.id, 'the first page has control');
  t.not(sb.viewer?.id, sa.viewer?.id, 'the second page is another viewer');
  t.equal(sb.viewer?.role, 'viewer');
  t.match(await b.page.textContent('#role'), new RegExp(`Viewing · ${sa.viewer!.id} has control`), 'the viewer sees who has control');
  t.equal(await b.page.isVisible('#take-control'), true, 'Take control offered');
  t.equal(await a.page.isVisible('#take-control'), false, 'not to the controller');
  for (const sel of ['#layer-contour', '#layer-rings', '#freeze', '#tool-freehand', '#record', '#mark', '#model-toggles [data-model="busi-malignancy"]'])
    t.equal(await b.page.isDisabled(sel), true, `viewer: ${sel} read-only`);

  // A click on a read-only control does nothing: no message, no change.
  await b.page.click('#layer-rings', { force: true });
  await new Promise((r) => setTimeout(r, 300));
  t.same((await pageState(b.page)).replies, [], 'the viewer sent nothing');
  t.equal((await pageState(a.page)).state?.layers.rings, true, 'rings still on');

  // The controller's changes reach the viewer.
  await a.page.click('#layer-rings');
  await waitPage(b.page, (s) => s.state?.layers.rings === false, 'the viewer sees rings off');
  t.equal(await b.page.getAttribute('#layer-rings', 'aria-pressed'), 'false', 'and shows it');
  await a.page.click('#freeze');
  await waitPage(b.page, (s) => !!s.state?.frozen, 'the viewer sees the freeze');
  t.equal(await b.page.isVisible('#badge-frozen'), true, 'FROZEN on the viewer too');
  await a.page.click('#freeze');
  await waitPage(b.page, (s) => s.state?.frozen === false, 'and the unfreeze');

  // Take control (by touch): roles swap on both screens.
  await b.page.tap('#take-control');
  await waitPage(b.page, (s) => s.state?.controller === s.viewer?.id, 'the viewer has control');
  await waitPage(a.page, (s) => !!s.state && s.state.controller !== s.viewer?.id, 'the first page lost it');
  t.match(await b.page.textContent('#role'), /In control/, 'new controller says so');
  t.match(await a.page.textContent('#role'), new RegExp(`Viewing · ${sb.viewer!.id} has control`), 'the old one sees who has it');
  t.equal(await a.page.isDisabled('#layer-rings'), true, 'the old controller is read-only now');
  t.equal(await b.page.isDisabled('#layer-rings'), false, 'the new one is not');
  await b.page.tap('#layer-rings');
  await waitPage(a.page, (s) => !!s.state?.layers.rings, 'the old controller sees the new one\'s change');
  t.same([...a.problems, ...b.problems], [], 'no page errors, no console errors');
});

t.test('record start / stop and Mark event by click', async (t) => {
  const demo = await startDemo(t);
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url);
  t.equal(await page.textContent('#record-info'), 'not recording');
  await page.click('#record');
  const s = await waitPage(page, (s) => !!s.state?.recording.active, 'recording active');
  const name = s.state!.recording.name!;
  t.match(name, /^session-.*\.sonrec$/, `recording ${name}`);
  t.ok(existsSync(join(demo.recordings, name)), 'its folder is in the recording dir');
  t.equal(await page.getAttribute('#record', 'aria-pressed'), 'true', 'Record shows pressed');
  t.equal(await page.textContent('#record'), 'Stop recording');
  t.match(await page.textContent('#record-info'), new RegExp(`● ${name.replace(/\./g, '\\.')} · 0:0\\d`), 'name and elapsed time shown');
  await page.waitForFunction(() => /· 0:0[1-9]/.test(document.getElementById('record-info')!.textContent ?? ''), undefined, { timeout: 5000 });
  t.pass('the elapsed time runs');

  await page.fill('#mark-label', 'contrast arrival');
  await page.click('#mark');
  const ev = await waitPage(page, (s) => s.events.length === 1, 'the marked event');
  t.equal(ev.events[0].label, 'contrast arrival');
  t.equal(ev.events[0].by, ev.viewer!.id, 'by this viewer');
  t.match(await page.textContent('#events'), /contrast arrival · frame \d+ · by v1/, 'listed on the page');
  t.equal(await page.inputValue('#mark-label'), '', 'the label field is cleared');
  await page.click('#mark');
  await waitPage(page, (s) => s.events.length === 2, 'an event without a label');
  t.match(await page.textContent('#events li'), /^.* · event · frame \d+/, 'newest first, unlabelled');

  await page.click('#record');
  await waitPage(page, (s) => s.state?.recording.active === false, 'recording stopped');
  const r = await lastReply(page, 'record', 1);
  t.equal(r.type, 'ack');
  t.ok((r.result?.frames as number) > 0, `${String(r.result?.frames)} frames recorded`);
  t.match(await page.textContent('#msg'), new RegExp(`Recording ${name.replace(/\./g, '\\.')} saved: \\d+ frames`), 'saved, with its frame count');
  t.same(readdirSync(demo.recordings), [name], 'one recording');
  t.ok(existsSync(join(demo.recordings, name, 'events.jsonl')), 'the marked events are in it');
  t.same(problems, [], 'no page errors, no console errors');
});

// A card that reads clinical inputs entered on the overlay (and one from the panel, not shown).
const clinicalCard = () => testCard({
  id: 'test-nomogram',
  inputs: {
    engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'],
    clinical: [
      { name: 'age', type: 'integer', unit: 'years', range: [18, 100], source: 'overlay' },
      { name: 'palpable', type: 'boolean', source: 'overlay' },
      { name: 'birads', type: 'category', levels: ['3', '4a', '4b', '4c', '5'], source: 'overlay' },
      { name: 'density', type: 'category', levels: ['a', 'b', 'c', 'd'], source: 'panel' },
    ],
  },
  scaling: { mean: [100, 50, 0.5, 2, 1], std: [20, 10, 0.5, 1, 1] },
  linearPredictor: { coefficients: [0.5, 0.8, 0.3, 0.6, 0.1], intercept: -0.2 },
}, ['bmode.lesion.firstorder_Mean']);

t.test('clinical inputs: a field per variable entered on the overlay; Set sends them; a refusal is shown', async (t) => {
  const card = join(tmpFolder(t), 'nomogram.json');
  writeFileSync(card, JSON.stringify(clinicalCard()));
  const demo = await startDemo(t, { models: ['busi-malignancy', card] });
  if (!demo) return;
  const { page, problems } = await openPage(demo.browser, demo.url, {}, false);
  await waitPage(page, (s) => s.state !== null, 'hello with the clinical card', 15000);
  t.same(await page.$$eval('#clinical-fields [data-name]', (els) => els.map((e) => `${e.tagName.toLowerCase()}:${(e as HTMLElement).dataset.name}`)),
    ['input:age', 'select:palpable', 'select:birads'], 'the overlay\'s variables, not the panel\'s');
  t.equal(await page.getAttribute('#clin-age', 'min'), '18');
  t.equal(await page.getAttribute('#clin-age', 'max'), '100');
  t.same(await page.$$eval('#clin-birads option', (os) => os.map((o) => (o as HTMLOptionElement).value)), ['', '3', '4a', '4b', '4c', '5'], 'levels to choose from');
  t.match(await page.textContent('#scores') ?? '', /incomplete: enter age, palpable, birads|^$/, 'the nomogram waits for its inputs');

  await page.fill('#clin-age', '61');
  await page.selectOption('#clin-palpable', 'true');
  await page.selectOption('#clin-birads', '4a');
  await page.click('#clinical-set');
  await waitPage(page, (s) => s.state?.clinical.age === 61 && s.state.clinical.palpable === true && s.state.clinical.birads === '4a', 'state.clinical set');
  t.equal(await page.textContent('#clinical-msg'), 'Set.');

  await page.fill('#clin-age', '140');
  await page.click('#clinical-set');
  await page.waitForFunction(() => /age = 140: must be in \[18, 100\]/.test(document.getElementById('clinical-msg')!.textContent ?? ''), undefined, { timeout: 10000 });
  t.pass('the server\'s refusal is shown');
  t.equal((await pageState(page)).state?.clinical.age, 61, 'nothing changed');
  t.equal(await page.inputValue('#clin-age'), '140', 'the value typed stays for correction');

  await page.fill('#clin-age', '');
  await page.selectOption('#clin-birads', '');
  await page.click('#clinical-set');
  await waitPage(page, (s) => !!s.state && s.state.clinical.age === undefined && s.state.clinical.birads === undefined && s.state.clinical.palpable === true, 'age and birads cleared');
  t.same(problems, [], 'no page errors, no console errors');
});

t.test('an overlay with an access token: the page asks for it, and takes it from the URL fragment', async (t) => {
  const token = 'test-token-0123456789abcdef';
  const saved = process.env.SONOMICS_TOKEN;
  delete process.env.SONOMICS_TOKEN;
  t.teardown(() => { if (saved !== undefined) process.env.SONOMICS_TOKEN = saved; });
  const file = join(tmpFolder(t), 'token');
  writeFileSync(file, `${token}\n`);
  chmodSync(file, 0o600);
  const demo = await startDemo(t, { overlay: { tokenFile: file } });
  if (!demo) return;

  // No token: the socket is refused, /api/status says 401, the page shows the token form.
  const a = await openPage(demo.browser, demo.url, {}, false);
  await a.page.waitForSelector('#token-form:not([hidden])', { timeout: 10000 });
  t.match(await a.page.textContent('#token-msg'), /needs an access token/);
  t.equal(await a.page.getAttribute('#token-input', 'type'), 'password');
  await a.page.fill('#token-input', 'wrong-token-0123456789');
  await a.page.click('#token-connect');
  await a.page.waitForFunction(() => /refused/.test(document.getElementById('token-msg')!.textContent ?? '') && !document.getElementById('token-form')!.hidden, undefined, { timeout: 10000 });
  t.pass('a wrong token is refused and the form comes back');
  await a.page.fill('#token-input', token);
  await a.page.click('#token-connect');
  await waitPage(a.page, (s) => s.framesDrawn > 3 && s.connected, 'frames with the right token');
  t.equal(await a.page.isVisible('#token-form'), false, 'form gone');

  // The token in the fragment: used, kept for the session, and taken out of the address bar.
  const b = await openPage(await demo.otherBrowser(), `${demo.url}#token=${token}`, {}, false);
  await waitPage(b.page, (s) => s.framesDrawn > 3 && s.connected, 'frames with the token from the URL');
  t.equal(await b.page.evaluate(() => location.hash), '', 'no token in the address bar');
  t.equal(await b.page.evaluate(() => sessionStorage.getItem('sonomics.token')), token, 'kept in sessionStorage');
  await b.page.reload();
  await waitPage(b.page, (s) => s.framesDrawn > 3 && s.connected, 'frames after a reload');
  t.pass('a reload reconnects with the stored token');

  // The refused attempts log network errors (401) to the console; nothing else may.
  const unexpected = a.problems.filter((p) => !/401|WebSocket connection to .* failed/.test(p));
  t.same([...unexpected, ...b.problems], [], 'no page errors, no other console errors');
});
