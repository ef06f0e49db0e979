// PanelDriver's connection handling over socat pty pairs: unplug and replug (socat killed by its
// PID: the device path disappears; started again with the same links) with exponential backoff
// and a full re-sync; a silent or restarted panel (heartbeat timeout); a port that is not there
// yet; finding the port by USB vendor and product id.
import { join } from 'node:path';
import t from 'tap';
import { PanelDriver, type PanelError, type PortListing } from '../device/panel/driver.js';
import { sleep, until } from './helpers.js';
import { buildSim, CPanel, nextEvent, ptyPair, requireTool, testDriverOptions, tmp, TsPanel } from './panel-helpers.js';

t.test('unplug and replug: disconnected, retries with backoff, reconnects and re-syncs LEDs and status', async (t) => {
  if (!requireTool(t, 'gcc') || !requireTool(t, 'socat')) return;
  buildSim();
  const pair = await ptyPair(t, tmp('panel-unplug'));
  // The heartbeat timeout is long here: on a loaded machine it could otherwise fire before the
  // port's close is seen, and this test is about the close.
  const driver = new PanelDriver(testDriverOptions(pair.a, { reconnect: { initialMs: 50, maxMs: 400 }, heartbeatTimeoutMs: 20000 }));
  const errors: PanelError[] = [];
  const retries: Array<{ attempt: number; delayMs: number; error: string }> = [];
  const events: string[] = [];
  driver.on('error', (e: PanelError) => errors.push(e));
  driver.on('retry', (r: { attempt: number; delayMs: number; error: string }) => retries.push(r));
  for (const e of ['connected', 'disconnected', 'synced']) driver.on(e, () => events.push(e));
  t.teardown(() => driver.stop());
  const synced = nextEvent(driver, 'synced', 5000);
  driver.start();
  let panel = new CPanel(t, pair.b);
  await synced;
  driver.setLeds({ frozen: 'on', tracking: 'blink' });
  driver.setStatus('FROZEN #42');
  await panel.waitLine(/^rx STATUS .*FROZEN #42/);

  // Unplug: the line goes away under both ends.
  const lost = nextEvent<{ reason: string }>(driver, 'disconnected', 10000);
  const t0 = performance.now();
  await pair.kill();
  t.match((await lost).reason, new RegExp(`^${pair.a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} went away`),
    `disconnected, naming the port (noticed in ${(performance.now() - t0).toFixed(0)} ms)`);
  await panel.waitLine(/^gone /, 3000);
  t.match(errors.find((e) => e.code === 'port-lost')!.message, 'went away');
  await until(() => retries.length >= 5, 5000, 'five attempts');
  t.same(retries.slice(0, 5).map((r) => r.delayMs), [50, 100, 200, 400, 400], 'exponential backoff up to maxMs');
  t.match(retries[1].error, /cannot open .*: .*No such file or directory/, 'the path is gone');
  t.equal(errors.filter((e) => e.code === 'open-failed').length, 1, 'one error for the outage, then retry events');
  t.equal(driver.stats().state, 'waiting');

  // Replug: the same links come back, with a panel that has forgotten everything.
  const back = nextEvent(driver, 'synced', 5000);
  await pair.restart();
  panel = new CPanel(t, pair.b);
  await back;
  t.match(await panel.waitLine(/^rx LEDS /), /modes=2,1,0,0,1$/, 're-synced LEDs: tracking blinking, frozen on, link on');
  t.match(await panel.waitLine(/^rx STATUS /), /text="FROZEN #42"$/, 're-synced status line');
  t.match(driver.stats(), { connected: true, state: 'ready', reconnects: 1 });
  t.same(events, ['connected', 'synced', 'disconnected', 'connected', 'synced']);
  // And it works as before.
  const button = nextEvent(driver, 'button');
  panel.send('press 1');
  t.match(await button, { id: 1, action: 'freeze', pressed: true });
});

t.test('a silent panel times out; a restarted panel is re-synced', async (t) => {
  if (!requireTool(t, 'gcc') || !requireTool(t, 'socat')) return;
  buildSim();
  const pair = await ptyPair(t, tmp('panel-hb'));
  const driver = new PanelDriver(testDriverOptions(pair.a, { heartbeatTimeoutMs: 1200, helloRetryMs: 300 }));
  const errors: PanelError[] = [];
  driver.on('error', (e: PanelError) => errors.push(e));
  t.teardown(() => driver.stop());
  const synced = nextEvent(driver, 'synced', 5000);
  driver.start();
  let panel = new CPanel(t, pair.b);
  await synced;
  driver.setStatus('TRACKING');
  // Heartbeats keep it connected well past the timeout.
  await sleep(1600);
  t.equal(driver.stats().connected, true, 'heartbeats keep the link');
  t.equal(driver.stats().heartbeatTimeouts, 0);
  // The panel dies (its process killed by PID; the line stays, as an RS-232 cable would).
  await panel.kill();
  const lost = await nextEvent<{ reason: string }>(driver, 'disconnected', 3000);
  t.match(lost.reason, 'nothing from the panel for 1200 ms (heartbeat timeout)');
  t.match(errors.find((e) => e.code === 'heartbeat-timeout')!.message, 'asking it to say HELLO again');
  // The panel is restarted without sending HELLO by itself: the driver's HELLO_REQUEST brings it back.
  const back = nextEvent(driver, 'synced', 5000);
  panel = new CPanel(t, pair.b, ['--no-hello']);
  await panel.waitLine(/^rx HELLO_REQUEST /, 3000);
  await back;
  t.match(await panel.waitLine(/^rx STATUS /), /text="TRACKING"$/, 'the status line again');
  t.match(driver.stats(), { connected: true, heartbeatTimeouts: 1, reconnects: 0 }, 'the port never closed');
});

t.test('a port that is not there yet; finding it by USB id; stop() while waiting', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const dir = tmp('panel-usb');
  const missing = join(dir, 'a');
  const driver = new PanelDriver(testDriverOptions(missing, { reconnect: { initialMs: 40, maxMs: 100 } }));
  const errors: PanelError[] = [];
  driver.on('error', (e: PanelError) => errors.push(e));
  t.teardown(() => driver.stop());
  driver.start();
  await until(() => driver.stats().state === 'waiting' && errors.length > 0, 3000, 'the first failure');
  t.match(errors[0], { code: 'open-failed', message: new RegExp(`cannot open ${missing}`) });
  // The port appears (the panel is plugged in after the module started).
  const connected = nextEvent(driver, 'connected', 5000);
  const pair = await ptyPair(t, dir);
  const panel = await TsPanel.open(t, pair.b);
  panel.hello();
  await connected;
  t.equal(driver.stats().path, pair.a);
  await driver.stop();
  t.equal(driver.stats().state, 'stopped');

  // By USB id: not listed yet, then listed.
  let ports: PortListing[] = [{ path: '/dev/ttyS0' }, { path: '/dev/ttyACM7', vendorId: '2341', productId: '0043' }];
  const usb = new PanelDriver({ usb: { vendorId: '1209', productId: '0001' }, baudRate: 115200, reconnect: { initialMs: 40, maxMs: 80 }, heartbeatTimeoutMs: 1500, list: async () => ports });
  const usbErrors: PanelError[] = [];
  usb.on('error', (e: PanelError) => usbErrors.push(e));
  t.teardown(() => usb.stop());
  usb.start();
  await until(() => usbErrors.length > 0, 3000, 'not found');
  t.match(usbErrors[0], { code: 'not-found', message: 'panel: no serial port with USB id 1209:0001 (found /dev/ttyACM7 2341:0043)' });
  const opened = nextEvent<string>(usb, 'open', 3000);
  ports = [...ports, { path: pair.a, vendorId: '1209', productId: '0001', manufacturer: 'pid.codes' }];
  t.equal(await opened, pair.a, 'opened the port with the ids');
  const c2 = nextEvent(usb, 'connected', 3000);
  panel.hello();
  await c2;
  await usb.stop();
  // Stopping while it waits to retry leaves nothing running.
  const idle = new PanelDriver(testDriverOptions(join(dir, 'never'), { reconnect: { initialMs: 10000, maxMs: 10000 } }));
  idle.on('error', () => undefined);
  idle.start();
  await until(() => idle.stats().state === 'waiting', 3000, 'waiting');
  await idle.stop();
  t.equal(idle.stats().state, 'stopped');
  t.throws(() => new PanelDriver({ baudRate: 115200, reconnect: { initialMs: 1, maxMs: 1 }, heartbeatTimeoutMs: 1 }), /give a port path or USB vendor\/product ids/);
  t.throws(() => new PanelDriver(testDriverOptions('x', { reconnect: { initialMs: 100, maxMs: 10 } })), /maxMs >= initialMs/);
});
