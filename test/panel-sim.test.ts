// `sonomics panel-sim`: the keyboard panel against PanelDriver over a socat pty pair, fed
// keystrokes through a stream.
import { PassThrough } from 'node:stream';
import t from 'tap';
import { panelSim } from '../cli/panel-sim.js';
import { PanelDriver, type PanelButtonEvent, type PanelSliderEvent } from '../device/panel/driver.js';
import { loadPanelLayout } from '../device/panel/layout.js';
import { until, within } from './helpers.js';
import { nextEvent, ptyPair, requireTool, testDriverOptions, tmp } from './panel-helpers.js';

t.test('keys press buttons and move the slider; the module\'s LEDs and status line are printed; q quits', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const pair = await ptyPair(t, tmp('panel-keys'));
  const driver = new PanelDriver(testDriverOptions(pair.a));
  const buttons: PanelButtonEvent[] = [];
  const sliders: PanelSliderEvent[] = [];
  driver.on('button', (b: PanelButtonEvent) => buttons.push(b));
  driver.on('slider', (s: PanelSliderEvent) => sliders.push(s));
  driver.on('error', () => undefined);
  t.teardown(() => driver.stop());
  driver.start();
  const keys = new PassThrough();
  const lines: string[] = [];
  const synced = nextEvent(driver, 'synced', 5000);
  const sim = panelSim({ path: pair.b, in: keys, out: (l) => lines.push(l) });
  t.teardown(() => { keys.end(); });
  await synced;
  t.match(lines[0], /^panel-sim on .*: keys 1 Overlay, 2 Freeze, 3 Lock lesion, 4 Next model, 5 Ring, 6 Record, 7 Mark; \+ - slider \(Lock size\); h hello; q quit$/);
  await until(() => lines.some((l) => l.startsWith('< leds ')) && lines.some((l) => l.startsWith('< status ')), 3000, 'the synced state printed');
  t.ok(lines.includes('< welcome: connected (heartbeat 500 ms)'));
  t.ok(lines.includes('< leds tracking=off frozen=off recording=off overlay=off link=on'));
  t.ok(lines.includes('< status "sonomics"'));
  keys.write('2');
  await until(() => buttons.length === 2, 3000, 'freeze pressed and released');
  t.match(buttons, [{ id: 1, action: 'freeze', pressed: true }, { id: 1, action: 'freeze', pressed: false }]);
  t.ok(lines.includes('> Freeze (freeze)'));
  keys.write('++-');
  await until(() => sliders.length === 3, 3000, 'three slider moves');
  t.same(sliders.map((s) => s.value), [5.5, 6, 5.5], 'one step (0.5 mm) each from the default 5 mm');
  t.ok(lines.includes('> slider 6 (raw 315)'));
  driver.setLeds({ frozen: 'on', tracking: 'blink' });
  driver.setStatus('FROZEN #812');
  await until(() => lines.includes('< status "FROZEN #812"'), 3000, 'the status line printed');
  t.ok(lines.includes('< leds tracking=blink frozen=on recording=off overlay=off link=on'));
  const hello = nextEvent(driver, 'hello');
  keys.write('h');
  t.match(await hello, { firmware: '0.0.0', layoutMatches: true });
  keys.write('9x'); // no ninth button, not a key: ignored
  keys.write('q');
  await within(sim, 3000, 'panel-sim to quit');
  t.equal(lines.at(-1), 'bye');
  t.equal(buttons.length, 2);
  t.equal(driver.stats().badPayloads + driver.stats().unknownTypes + driver.stats().crcErrors, 0, 'everything it sent was good');
});

t.test('the end of input quits; a port that cannot be opened is an error', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const pair = await ptyPair(t, tmp('panel-keys2'));
  const keys = new PassThrough();
  const lines: string[] = [];
  const sim = panelSim({ path: pair.b, in: keys, out: (l) => lines.push(l), heartbeat: false, layout: loadPanelLayout() });
  await until(() => lines.length > 0, 3000, 'started');
  keys.end();
  await within(sim, 3000, 'panel-sim to end with its input');
  await t.rejects(panelSim({ path: '/nonexistent/tty', in: new PassThrough(), out: () => undefined }), /panel-sim: cannot open \/nonexistent\/tty/);
});
