// The panel layout file and its schema, and the generator: the committed C files are what the
// layout generates today (regenerating gives identical bytes), and the layout's protocol block is
// the protocol the TypeScript codec speaks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { MAX_PAYLOAD, MSG, NAK, PROTOCOL_VERSION } from '../device/panel/codec.js';
import { GENERATED_FILES, generatePanelFirmware, renderPanelFirmware } from '../device/panel/codegen.js';
import {
  DEFAULT_LAYOUT_PATH, layoutHash, layoutProblems, loadPanelLayout, PanelLayoutError, parsePanelLayout, PROTOCOL_CONSTANTS, sliderRaw, sliderValue,
  type PanelLayout,
} from '../device/panel/layout.js';
import { errorOf, fromRoot } from './helpers.js';
import { tmp } from './panel-helpers.js';

const shipped = () => JSON.parse(readFileSync(DEFAULT_LAYOUT_PATH(), 'utf8')) as PanelLayout;

t.test('the shipped layout passes its schema; the protocol block is the codec\'s', async (t) => {
  const l = loadPanelLayout();
  t.same(layoutProblems(shipped()), []);
  t.same(l.buttons.map((b) => b.action), ['overlay-toggle', 'freeze', 'lock-lesion', 'next-model', 'ring-distance', 'record', 'mark-event'], 'every action has a button');
  t.same(l.leds.map((d) => d.shows), ['tracking', 'frozen', 'recording', 'overlay', 'link']);
  t.same(l.protocol.messages, { ...MSG }, 'message codes');
  t.same(l.protocol.nakReasons, { ...NAK }, 'NAK reasons');
  t.equal(l.protocol.version, PROTOCOL_VERSION);
  t.equal(l.protocol.maxPayload, MAX_PAYLOAD);
  t.same(PROTOCOL_CONSTANTS.messages, l.protocol.messages);
  // The schema pins the same constants (an edited code is refused, by name).
  const schema = JSON.parse(readFileSync(fromRoot('firmware-config', 'panel-layout.schema.json'), 'utf8'));
  const pinned = Object.fromEntries(Object.entries(schema.properties.protocol.properties.messages.properties as Record<string, { const: number }>).map(([k, v]) => [k, v.const]));
  t.same(pinned, { ...MSG }, 'the schema pins the codec\'s message codes');
});

t.test('errors name the key', async (t) => {
  const bad = (edit: (l: Record<string, any>) => void) => {
    const l = shipped() as unknown as Record<string, any>;
    edit(l);
    return layoutProblems(l);
  };
  t.same(bad((l) => { l.buttons[2].action = 'explode'; }), ['buttons[2].action: must be one of "overlay-toggle", "freeze", "lock-lesion", "next-model", "ring-distance", "record", "mark-event"']);
  t.same(bad((l) => { delete l.slider.raw; }), ['slider.raw: required']);
  t.same(bad((l) => { l.leds[0].colour = 'red'; }), ['leds[0].colour: unknown key']);
  t.same(bad((l) => { l.protocol.messages.BUTTON = 7; }), ['protocol.messages.BUTTON: must be 2 (fixed by protocol version 1)']);
  t.same(bad((l) => { l.protocol.baudRate = 12345; }), [`protocol.baudRate: must be one of 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600`]);
  t.same(bad((l) => { l.usb.vendorId = '12345'; }), ['usb.vendorId: must match pattern "^[0-9a-fA-F]{4}$"']);
  t.same(bad((l) => { l.buttons[1].id = 5; }), ['buttons[1].id: must be 1 (ids run 0, 1, 2, ... in the order listed; the firmware indexes by them)']);
  t.same(bad((l) => { l.buttons[3].name = 'freeze'; }), ['buttons.name[3]: "freeze" repeats buttons.name[1]']);
  t.same(bad((l) => { l.leds[4].shows = 'frozen'; }), ['leds.shows[4]: "frozen" repeats leds.shows[1]']);
  t.same(bad((l) => { l.slider.default = 30; }), ['slider.default: must be in [2, 15] (got 30)']);
  t.same(bad((l) => { l.slider.raw.max = 0; }), ['slider.raw.max: must be greater than slider.raw.min (0)']);
  t.same(bad((l) => { l.protocol.heartbeatTimeoutMs = 600; }), ['protocol.heartbeatTimeoutMs: must be at least twice heartbeatMs (1000), or one late heartbeat drops the panel']);
  const e = errorOf(() => parsePanelLayout({ name: 'x' }, 'my.json'));
  t.ok(e instanceof PanelLayoutError);
  t.match(e!.message, /^panel layout my\.json: version: required; protocol: required; buttons: required; leds: required; slider: required/);
  t.match(errorOf(() => loadPanelLayout('/no/such/layout.json'))!.message, 'panel layout /no/such/layout.json: cannot read it: ENOENT');
});

t.test('the layout hash: stable, ignores $schema, changes with any edit', async (t) => {
  const l = loadPanelLayout();
  const h = layoutHash(l);
  t.equal(h, layoutHash({ ...l, $schema: 'elsewhere.json' }), '$schema does not count');
  const reversed = (v: unknown): unknown => Array.isArray(v) ? v.map(reversed)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)])) : v;
  t.equal(h, layoutHash(reversed(l) as PanelLayout), 'key order does not count (RFC 8785)');
  t.not(h, layoutHash({ ...l, buttons: l.buttons.map((b, i) => (i === 0 ? { ...b, label: 'Layers' } : b)) }), 'a label counts');
  t.match(readFileSync(fromRoot('firmware-config', 'generated', 'panel_protocol.h'), 'utf8'), `#define PANEL_LAYOUT_HASH                  0x${h.toString(16).padStart(8, '0').toUpperCase()}UL`);
});

t.test('the generated firmware files are current: regenerating gives identical bytes', async (t) => {
  const l = loadPanelLayout();
  const text = renderPanelFirmware(l);
  for (const f of GENERATED_FILES) {
    const committed = readFileSync(fromRoot('firmware-config', 'generated', f), 'utf8');
    t.equal(committed, text[f], `${f} is what the layout generates (else run: sonomics panel-firmware)`);
  }
  const out = tmp('panel-gen');
  const r = generatePanelFirmware(DEFAULT_LAYOUT_PATH(), out);
  t.same(r.files, GENERATED_FILES.map((f) => join(out, f)));
  for (const f of GENERATED_FILES) t.equal(readFileSync(join(out, f), 'utf8'), readFileSync(fromRoot('firmware-config', 'generated', f), 'utf8'), `${f}: same bytes`);
  t.equal(r.layoutHash, layoutHash(l).toString(16).padStart(8, '0'));
  t.throws(() => generatePanelFirmware('/no/such.json', out), /cannot read it/, 'a bad layout writes nothing');
  const h = text['panel_protocol.h'];
  for (const want of ['#define PANEL_MSG_BUTTON                   0x02u', '#define PANEL_BUTTON_LOCK                  2u /* Lock lesion: lock-lesion */',
    '#define PANEL_LED_COUNT                    5u', '#define PANEL_CRC16_CHECK                  0x29B1u', '#define PANEL_BAUD_RATE                    115200UL'])
    t.ok(h.includes(want), want);
});

t.test('slider: raw readings to the layout\'s unit and back', async (t) => {
  const s = loadPanelLayout().slider;
  t.equal(sliderValue(s, s.raw.min), s.min);
  t.equal(sliderValue(s, s.raw.max), s.max);
  t.equal(sliderValue(s, -5), s.min, 'clamped');
  t.equal(sliderValue(s, 99999), s.max, 'clamped');
  t.equal(sliderValue(s, sliderRaw(s, 5)), 5, 'the default round-trips');
  t.equal(sliderValue(s, sliderRaw(s, 7.3)), 7.5, 'rounded to the step');
});
