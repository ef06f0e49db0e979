import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import type { UltrasoundRegion } from '../core/calibration.js';
import { ConfigError, layoutProfile, loadConfig, resolveConfig } from '../core/config.js';
import {
  layoutFromRegions, ProfileError, profileProblems, renderProfilePng, renderSector, resolveProfile, type LayoutProfile, type SectorSpec,
} from '../core/profile.js';
import { seededRandom } from '../core/random.js';
import { DicomFile } from '../device/dicom.js';
import { PhantomScanner } from '../device/phantom.js';
import { errorOf, fromRoot, sharedDir } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-profile-'));


const base: LayoutProfile = {
  screen: { width: 1280, height: 720 },
  panes: { bmode: { x: 38, y: 79, width: 576, height: 561 }, contrast: { x: 665, y: 79, width: 576, height: 561 } },
  calibration: { ruler: { from: [617, 79], to: [617, 500], mm: 30 } },
};
const withProfile = (patch: Record<string, unknown>) => ({ ...base, ...patch }) as LayoutProfile;

// gdcm-US-ALOKA-16.dcm: two side-by-side tissue regions and a small non-spatial one.
const CM = 0.03826530650258064;
const tissue = (x0: number, x1: number): UltrasoundRegion =>
  ({ x0, y0: 24, x1, y1: 415, spatialFormat: 1, dataType: 1, unitsX: 3, unitsY: 3, deltaX: CM, deltaY: CM });
const ALOKA: UltrasoundRegion[] = [
  tissue(32, 335), tissue(336, 639),
  { x0: 32, y0: 40, x1: 63, y1: 103, spatialFormat: 0, dataType: 13, unitsX: 0, unitsY: 0, deltaX: 0, deltaY: 0 },
];
const alokaProfile: LayoutProfile = {
  screen: { width: 640, height: 480 },
  panes: { bmode: { x: 32, y: 24, width: 304, height: 392 }, contrast: { x: 336, y: 24, width: 304, height: 392 } },
  calibration: { dicom: true },
};

/** The YAML blocks of docs/layout-profiles.md that define `layouts`. */
function docExamples(): string[] {
  const md = readFileSync(fromRoot('docs', 'layout-profiles.md'), 'utf8');
  return [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((y) => /^layouts:\n {2}[A-Za-z0-9]/.test(y));
}

t.test('ruler and mmPerPixel calibration', async (t) => {
  const l = resolveProfile('p', base);
  t.same(l.panes.bmode.rect, base.panes.bmode);
  t.same(l.panes.contrast.rect, base.panes.contrast);
  t.equal(l.panes.bmode.name, 'bmode');
  t.equal(l.panes.contrast.name, 'contrast');
  t.equal(l.width, 1280);
  t.equal(l.height, 720);
  t.equal(l.sector, undefined);
  t.equal(l.panes.bmode.spacingX, 30 / 421);
  t.equal(l.panes.contrast.spacingY, 30 / 421);
  // A slanted ruler: the euclidean length counts.
  const slanted = resolveProfile('p', withProfile({ calibration: { ruler: { from: [100, 100], to: [130, 140], mm: 10 } } }));
  t.equal(slanted.panes.bmode.spacingX, 10 / 50);
  t.equal(slanted.panes.bmode.spacingY, 10 / 50);
  const iso = resolveProfile('p', withProfile({ calibration: { mmPerPixel: 0.1 } }));
  t.equal(iso.panes.contrast.spacingX, 0.1);
  t.equal(iso.panes.contrast.spacingY, 0.1);
  const aniso = resolveProfile('p', withProfile({ calibration: { mmPerPixel: { x: 0.12, y: 0.09 } } }));
  t.same([aniso.panes.bmode.spacingX, aniso.panes.bmode.spacingY, aniso.panes.contrast.spacingX, aniso.panes.contrast.spacingY], [0.12, 0.09, 0.12, 0.09]);
});

t.test('DICOM calibration from the region containing the B-mode pane (ALOKA numbers)', async (t) => {
  const l = resolveProfile('aloka', alokaProfile, { regions: ALOKA });
  t.equal(l.panes.bmode.spacingX, CM * 10);
  t.equal(l.panes.bmode.spacingY, CM * 10);
  t.equal(l.panes.contrast.spacingX, CM * 10);
  // A pane inside the region (cropped margins) takes the region's spacing too.
  const inner = resolveProfile('aloka', { ...alokaProfile, panes: { bmode: { x: 40, y: 30, width: 280, height: 380 }, contrast: { x: 350, y: 30, width: 280, height: 380 } } }, { regions: ALOKA });
  t.equal(inner.panes.bmode.spacingX, CM * 10);
  // Not cm: no spacing.
  const seconds = ALOKA.map((r) => ({ ...r, unitsX: 4 }));
  t.throws(() => resolveProfile('aloka', alokaProfile, { regions: seconds }), /layouts\.aloka\.calibration\.dicom: the DICOM region around the B-mode pane has physical units seconds\/cm \(x\/y\), not cm/);
  // No region around the pane.
  const shifted = { ...alokaProfile, panes: { bmode: { x: 300, y: 24, width: 100, height: 100 }, contrast: { x: 420, y: 24, width: 100, height: 100 } } };
  t.throws(() => resolveProfile('aloka', shifted, { regions: ALOKA }), /layouts\.aloka\.calibration\.dicom: no DICOM ultrasound region contains the B-mode pane \(x 300\.\.399, y 24\.\.123\)/);
  // Two regions around the pane that disagree.
  const twice = [...ALOKA, { ...ALOKA[0], x0: 0, deltaX: CM * 2 }];
  t.throws(() => resolveProfile('aloka', alokaProfile, { regions: twice }), /disagree on the pixel spacing/);
});

t.test('the ALOKA file itself carries these regions', async (t) => {
  const data = sharedDir(t, 'data', 'dicom_us');
  if (!data) return;
  // Read by the product's DICOM reader, which also converts the deltas to mm.
  const f = await DicomFile.open(join(data, 'gdcm-US-ALOKA-16.dcm'));
  t.match(f.info.regions, ALOKA);
  const l = layoutFromRegions(f.info.regions, f.info.width, f.info.height);
  t.same([l.width, l.height], [640, 480]);
  t.same(resolveProfile('aloka-dual', alokaProfile, { regions: f.info.regions }).panes, l.panes);
});

t.test('layoutFromRegions: two equal tissue regions side by side, else a clear error', async (t) => {
  const l = layoutFromRegions(ALOKA, 640, 480);
  t.same(l.panes.bmode.rect, { x: 32, y: 24, width: 304, height: 392 });
  t.same(l.panes.contrast.rect, { x: 336, y: 24, width: 304, height: 392 });
  t.equal(l.panes.bmode.spacingX, CM * 10);
  t.equal(l.panes.contrast.spacingY, CM * 10);
  // Order in the sequence does not matter: left is B-mode.
  t.same(layoutFromRegions([ALOKA[1], ALOKA[2], ALOKA[0]], 640, 480).panes.bmode.rect.x, 32);
  const one = errorOf(() => layoutFromRegions([ALOKA[0], ALOKA[2]], 640, 480));
  t.ok(one instanceof ProfileError, 'a ProfileError');
  t.match(one?.message, /found 1 2D tissue region\(s\) \(x 32\.\.335, y 24\.\.415/);
  t.match(one?.message, /the pipeline needs two panes of equal size/);
  t.match(one?.message, /name a layout profile .*layouts\.<name>/);
  t.throws(() => layoutFromRegions([], 640, 480), /found 0 2D tissue region\(s\); the pipeline needs two panes of equal size/);
  t.throws(() => layoutFromRegions([ALOKA[0], { ...ALOKA[1], x1: 600 }], 640, 480), /are 304x392 and 265x392; the pipeline needs two panes of equal size/);
  t.throws(() => layoutFromRegions([ALOKA[0], { ...ALOKA[0], y0: 420, y1: 811 }], 640, 900), /not side by side/);
  t.throws(() => layoutFromRegions(ALOKA.map((r) => ({ ...r, unitsY: 0 })), 640, 480), /dicom regions\.left: physical units cm\/none \(x\/y\) are not cm/);
  // Regions beyond the image size are refused by name.
  t.throws(() => layoutFromRegions(ALOKA, 600, 480), /dicom regions: the tissue region x 336\.\.639, y 24\.\.415 .*lies outside the 600x480 image/);
});

t.test('fan sector: radii and angles from straight down, positive towards +x', async (t) => {
  const w = 100, h = 100;
  const fan: SectorSpec = { type: 'fan', apex: [50, -20], innerRadius: 30, outerRadius: 100, fromDeg: -30, toDeg: 30 };
  const m = renderSector(fan, w, h);
  const at = (x: number, y: number) => m[y * w + x];
  // Straight below the apex: inside between the radii (rows 10..80), outside beyond them.
  for (let y = 10; y <= 80; y++) t.equal(at(50, y), 255, `(50, ${y}) is between the radii`);
  t.equal(at(50, 9), 0, 'nearer than innerRadius');
  t.equal(at(50, 81), 0, 'beyond outerRadius');
  // Along rays: 25 degrees either side is inside, 40 degrees is outside.
  const ray = (deg: number, r: number) => [Math.round(50 + r * Math.sin((deg * Math.PI) / 180)), Math.round(-20 + r * Math.cos((deg * Math.PI) / 180))];
  for (const deg of [25, -25]) t.equal(at(...(ray(deg, 60) as [number, number])), 255, `${deg} degrees is inside`);
  for (const deg of [40, -40]) t.equal(at(...(ray(deg, 60) as [number, number])), 0, `${deg} degrees is outside`);
  // Borders count as inside: pixel centres exactly on an edge of a 90 degree fan.
  const square = renderSector({ ...fan, fromDeg: -45, toDeg: 45 }, w, h);
  t.equal(square[10 * w + 80], 255, '(80, 10) lies on the +45 degree edge');
  t.equal(square[10 * w + 20], 255, '(20, 10) lies on the -45 degree edge');
  t.equal(square[10 * w + 81], 0, '(81, 10) is beyond it');
  t.equal(square[80 * w + 50], 255, '(50, 80) lies on the outer arc');
  // Sign convention: a fan from 0 to 45 degrees lies towards +x.
  const right = renderSector({ ...fan, fromDeg: 0, toDeg: 45 }, w, h);
  t.equal(right[60 * w + 70], 255, 'right of the apex column');
  t.equal(right[60 * w + 30], 0, 'left of the apex column');
  // Area: a fan fully inside a large pane matches (theta / 2)(ro^2 - ri^2) within 1 %.
  const big = renderSector({ type: 'fan', apex: [200, 0], innerRadius: 50, outerRadius: 300, fromDeg: -30, toDeg: 30 }, 400, 320);
  const count = big.reduce((n, v) => n + (v ? 1 : 0), 0);
  const area = ((Math.PI / 3) / 2) * (300 ** 2 - 50 ** 2);
  t.ok(Math.abs(count / area - 1) < 0.01, `pixel count ${count} vs area ${area.toFixed(0)}`);
  t.ok(big.every((v) => v === 0 || v === 255), 'mask is 0/255');
  // Attached to the layout, pane-sized.
  const l = resolveProfile('convex', withProfile({ sector: { type: 'fan', apex: [288, -100], innerRadius: 120, outerRadius: 640, fromDeg: -35, toDeg: 35 } }));
  t.equal(l.sector?.length, 576 * 561);
  t.equal(l.sector?.[300 * 576 + 288], 255);
  t.equal(l.sector?.[5 * 576 + 2], 0);
});

t.test('rect and polygon sectors', async (t) => {
  const w = 40, h = 30;
  const count = (m: Uint8Array) => m.reduce((n, v) => n + (v ? 1 : 0), 0);
  const rect = renderSector({ type: 'rect', x: 10, y: 5, width: 20, height: 10 }, w, h);
  t.equal(count(rect), 200);
  t.equal(rect[5 * w + 10], 255);
  t.equal(rect[14 * w + 29], 255);
  t.equal(rect[15 * w + 29], 0);
  t.equal(rect[14 * w + 30], 0);
  // The same rectangle as a polygon through the corner pixel centres gives the same mask.
  t.same(renderSector({ type: 'polygon', points: [[10, 5], [29, 5], [29, 14], [10, 14]] }, w, h), rect);
  // A right triangle with legs of 20: pixels with x + y <= 20 (border included).
  const tri = renderSector({ type: 'polygon', points: [[0, 0], [20, 0], [0, 20]] }, w, h);
  t.equal(count(tri), (21 * 22) / 2);
  t.equal(tri[10 * w + 10], 255, 'on the hypotenuse');
  t.equal(tri[10 * w + 11], 0);
  // Concave L shape: the notch is outside.
  const ell = renderSector({ type: 'polygon', points: [[0, 0], [20, 0], [20, 10], [10, 10], [10, 20], [0, 20]] }, w, h);
  t.equal(ell[5 * w + 15], 255);
  t.equal(ell[15 * w + 5], 255);
  t.equal(ell[15 * w + 15], 0, 'the notch');
  // Clipped to the pane.
  const clipped = renderSector({ type: 'polygon', points: [[-10, -10], [100, -10], [100, 100], [-10, 100]] }, w, h);
  t.equal(count(clipped), w * h);
  const l = resolveProfile('p', withProfile({ sector: { type: 'rect', x: 50, y: 0, width: 476, height: 561 } }));
  t.equal(l.sector?.[0 * 576 + 49], 0);
  t.equal(l.sector?.[560 * 576 + 525], 255);
});

t.test('every bad profile names its key', async (t) => {
  const bad = (p: unknown, re: RegExp, regions?: UltrasoundRegion[]) => {
    const e = errorOf(() => resolveProfile('epiq7-ceus', p as LayoutProfile, { regions }));
    t.ok(e instanceof ProfileError, `ProfileError for ${re}`);
    t.match(e?.message, re);
  };
  bad(withProfile({ panes: { ...base.panes, contrast: { x: 900, y: 79, width: 576, height: 561 } } }), /^layouts\.epiq7-ceus\.panes\.contrast: x 900\.\.1475, y 79\.\.639 lies outside the 1280x720 screen$/);
  bad(withProfile({ panes: { ...base.panes, bmode: { x: -1, y: 79, width: 576, height: 561 } } }), /layouts\.epiq7-ceus\.panes\.bmode\.x: must be an integer >= 0/);
  bad(withProfile({ panes: { ...base.panes, contrast: { x: 665, y: 79, width: 570, height: 561 } } }), /layouts\.epiq7-ceus\.panes: the B-mode \(576x561\) and contrast \(570x561\) panes must have the same size/);
  bad(withProfile({ panes: { ...base.panes, contrast: { x: 300, y: 79, width: 576, height: 561 } } }), /layouts\.epiq7-ceus\.panes: the B-mode and contrast panes overlap/);
  bad(withProfile({ calibration: { ruler: { from: [617, 79], to: [617, 79], mm: 30 } } }), /^layouts\.epiq7-ceus\.calibration\.ruler: the two points are the same$/);
  bad(withProfile({ calibration: { ruler: { from: [617, 79], to: [617, 500], mm: 0 } } }), /layouts\.epiq7-ceus\.calibration\.ruler\.mm: must be a number > 0/);
  bad(withProfile({ calibration: { ruler: { from: [617, 79], to: [617, 500], mm: -5 } } }), /layouts\.epiq7-ceus\.calibration\.ruler\.mm: must be a number > 0/);
  bad(withProfile({ calibration: { ruler: { from: [617, 79], to: [617, 800], mm: 30 } } }), /layouts\.epiq7-ceus\.calibration\.ruler\.to: \[617, 800\] lies outside the 1280x720 screen/);
  bad(withProfile({ calibration: { dicom: true } }), /^layouts\.epiq7-ceus\.calibration\.dicom: no DICOM ultrasound regions were given/);
  bad(withProfile({ calibration: { dicom: true } }), /calibration\.dicom: no DICOM ultrasound regions/, []);
  bad(withProfile({ calibration: { mmPerPixel: 0 } }), /layouts\.epiq7-ceus\.calibration\.mmPerPixel: must be a number > 0 or \{x, y\}/);
  bad(withProfile({ calibration: { mmPerPixel: { x: 0.1 } } }), /layouts\.epiq7-ceus\.calibration\.mmPerPixel\.y: must be a number > 0/);
  bad(withProfile({ calibration: { mmPerPixel: 0.1, dicom: true } }), /layouts\.epiq7-ceus\.calibration: give exactly one of ruler, mmPerPixel or dicom \(found mmPerPixel and dicom\)/);
  bad(withProfile({ calibration: { dicom: false } }), /layouts\.epiq7-ceus\.calibration\.dicom: must be true/);
  bad(withProfile({ sector: { type: 'ellipse', cx: 1 } }), /^layouts\.epiq7-ceus\.sector\.type: must be fan, rect or polygon \(got "ellipse"\)$/);
  bad(withProfile({ sector: { type: 'fan', apex: [288, -100], innerRadius: 300, outerRadius: 200, fromDeg: 30, toDeg: -30 } }),
    /layouts\.epiq7-ceus\.sector\.outerRadius: must be greater than innerRadius \(300\); layouts\.epiq7-ceus\.sector\.toDeg: must be greater than fromDeg \(30\)/);
  bad(withProfile({ sector: { type: 'fan', apex: [288], innerRadius: 0, outerRadius: 200, fromDeg: -30, toDeg: 200 } }),
    /sector\.apex: must be \[x, y\].*sector\.toDeg: must be a number in \[-180, 180\]/);
  bad(withProfile({ sector: { type: 'rect', x: 500, y: 0, width: 100, height: 10 } }), /layouts\.epiq7-ceus\.sector: x 500\.\.599, y 0\.\.9 lies outside the 576x561 pane/);
  bad(withProfile({ sector: { type: 'polygon', points: [[0, 0], [10, 0]] } }), /layouts\.epiq7-ceus\.sector\.points: must be a list of at least 3/);
  bad(withProfile({ sector: { type: 'polygon', points: [[0, 0], [10, 0], ['a', 3]] } }), /layouts\.epiq7-ceus\.sector\.points\.2: must be \[x, y\]/);
  bad(withProfile({ sector: { type: 'polygon', points: [[-50, -50], [-10, -50], [-10, -10]] } }), /layouts\.epiq7-ceus\.sector: covers no pixel of the 576x561 pane/);
  bad(withProfile({ screen: { width: 1280 } }), /layouts\.epiq7-ceus\.screen\.height: must be an integer in \[16, 8192\]/);
  bad({ screen: base.screen, panes: base.panes }, /layouts\.epiq7-ceus\.calibration: missing/);
  bad(withProfile({ colour: 'red' }), /layouts\.epiq7-ceus\.colour: unknown key/);
  bad(withProfile({ panes: { ...base.panes, bmode: { ...base.panes.bmode, w: 3 } } }), /layouts\.epiq7-ceus\.panes\.bmode\.w: unknown key/);
  bad(withProfile({ calibration: { ruler: { from: [617, 79], to: [617, 500], mm: 30, unit: 'cm' } } }), /layouts\.epiq7-ceus\.calibration\.ruler\.unit: unknown key/);
  // Several problems are all named.
  const e = errorOf(() => resolveProfile('x', withProfile({ screen: { width: 640, height: 480 }, calibration: { mmPerPixel: -1 } })));
  t.ok(e instanceof ProfileError && e.problems.length === 3, e?.message ?? 'no error');
  t.same(profileProblems('ok', base), []);
  t.match(profileProblems('no good', base)[0], /^layouts\.no good: a profile name must start with a letter or digit/);
});

t.test('config: layouts key, defaults, errors naming the key, layoutProfile()', async (t) => {
  t.same(resolveConfig({}).layouts, {});
  const profiles: Record<string, LayoutProfile> = {
    ruler: base,
    'iso.mm': withProfile({ calibration: { mmPerPixel: 0.07 } }),
    aniso_mm: withProfile({ calibration: { mmPerPixel: { x: 0.07, y: 0.08 } } }),
    dicom: withProfile({ calibration: { dicom: true } }),
    fan: withProfile({ description: 'convex', sector: { type: 'fan', apex: [288, -100], innerRadius: 120, outerRadius: 640, fromDeg: -35, toDeg: 35 } }),
    rect: withProfile({ sector: { type: 'rect', x: 10, y: 0, width: 500, height: 561 } }),
    poly: withProfile({ sector: { type: 'polygon', points: [[0, 0], [575, 0], [575, 560], [0, 560]] } }),
  };
  const c = resolveConfig({ layouts: profiles });
  t.same(c.layouts, profiles, 'every kind passes the schema unchanged');
  t.equal(layoutProfile(c, 'fan'), c.layouts.fan);
  const missing = errorOf(() => layoutProfile(c, 'epiq7'));
  t.ok(missing instanceof ConfigError);
  t.match(missing?.message, /layouts\.epiq7: no such layout profile \(known: ruler, iso\.mm, aniso_mm, dicom, fan, rect, poly\)/);
  t.match(errorOf(() => layoutProfile(resolveConfig({}), 'x'))?.message, /layouts\.x: no such layout profile \(the config defines none\)/);
  t.throws(() => layoutProfile(c, 'constructor'), /layouts\.constructor: no such layout profile/);

  const bad = (obj: unknown, re: RegExp) => {
    const e = errorOf(() => resolveConfig(obj, 'test'));
    t.ok(e instanceof ConfigError, `ConfigError for ${re}`);
    t.match(e?.message, re);
    // Ajv's oneOf noise is replaced by the clear messages.
    t.notMatch(e?.message, /must match exactly one schema|must match a schema in anyOf|must be equal to constant/);
  };
  bad({ layouts: { p: { ...base, colour: 'red' } } }, /^invalid config \(test\): layouts\.p\.colour: unknown key$/);
  bad({ layouts: { p: { ...base, sector: { type: 'ellipse' } } } }, /layouts\.p\.sector\.type: must be fan, rect or polygon \(got "ellipse"\)/);
  bad({ layouts: { p: { ...base, sector: { type: 'fan', apex: [1, 1], innerRadius: 0, outerRadius: 10, fromDeg: -5, toDeg: 5, radius: 3 } } } }, /layouts\.p\.sector\.radius: unknown key/);
  bad({ layouts: { p: { ...base, calibration: { ruler: { from: [1, 1], to: [1, 1], mm: 10 } } } } }, /layouts\.p\.calibration\.ruler: the two points are the same/);
  bad({ layouts: { p: { ...base, calibration: { ruler: { from: [1, 1], to: [1, 9], mm: -1 } } } } }, /layouts\.p\.calibration\.ruler\.mm: must be a number > 0/);
  bad({ layouts: { p: { ...base, calibration: {} } } }, /layouts\.p\.calibration: give exactly one of ruler, mmPerPixel or dicom \(found none\)/);
  bad({ layouts: { p: { ...base, calibration: { mmPerPixel: 'small' } } } }, /layouts\.p\.calibration\.mmPerPixel: must be a number > 0 or \{x, y\}/);
  bad({ layouts: { p: { ...base, panes: { bmode: base.panes.bmode } } } }, /layouts\.p\.panes\.contrast: missing/);
  bad({ layouts: { 'bad name!': base } }, /layouts\.bad name!: a profile name must start with a letter or digit/);
  bad({ layouts: [base] }, /layouts: must be an object mapping profile names to layout profiles/);
  // Geometry passes the schema but not the second pass.
  bad({ layouts: { p: { ...base, panes: { ...base.panes, contrast: { x: 900, y: 79, width: 576, height: 561 } } } } }, /layouts\.p\.panes\.contrast: .*outside the 1280x720 screen/);
  // Problems elsewhere are still reported beside those of the layouts.
  const both = errorOf(() => resolveConfig({ overlay: { port: -1 }, layouts: { p: { ...base, colour: 1 } } }));
  t.match(both?.message, /overlay\.port: must be >= 0; layouts\.p\.colour: unknown key/);
});

t.test('mutated profiles: each is accepted and resolves, or is refused with every message naming a key under layouts.p', async (t) => {
  const seeds: LayoutProfile[] = [
    base,
    withProfile({ sector: { type: 'fan', apex: [288, -100], innerRadius: 120, outerRadius: 640, fromDeg: -35, toDeg: 35 }, calibration: { mmPerPixel: { x: 0.1, y: 0.2 } } }),
    withProfile({ sector: { type: 'rect', x: 1, y: 2, width: 30, height: 40 }, calibration: { dicom: true } }),
    withProfile({ description: 'tri', sector: { type: 'polygon', points: [[0, 0], [5, 0], [0, 5]] }, calibration: { mmPerPixel: 0.1 } }),
  ];
  const values: unknown[] = [undefined, null, 0, -1, 1, 0.5, 1e6, 'x', true, false, [], [1], [1, 2], [1, 2, 3], {}, { x: 1 }, { x: 1, y: 1 }, 'fan', 'rect', 'polygon', -200, 8, 7];
  const leaves = (o: unknown, path: string[] = [], out: string[][] = []): string[][] => {
    if (path.length) out.push(path);
    if (o && typeof o === 'object') for (const k of Object.keys(o)) leaves((o as Record<string, unknown>)[k], [...path, k], out);
    return out;
  };
  const rnd = seededRandom(7);
  let unkeyed = 0, crashed = 0, refused = 0;
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const p = structuredClone(seeds[i % seeds.length]) as unknown as Record<string, unknown>;
    const paths = leaves(p);
    const path = paths[Math.floor(rnd() * paths.length)];
    let o = p as Record<string, unknown>;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    const last = path[path.length - 1], r = rnd();
    if (r < 0.1) o.extra = 1;
    else if (r < 0.2) { if (Array.isArray(o)) o.splice(Number(last), 1); else delete o[last]; }
    else o[last] = structuredClone(values[Math.floor(rnd() * values.length)]);
    const e = errorOf(() => resolveConfig({ layouts: { p } }));
    if (e) {
      refused++;
      // A refusal is a ConfigError whose every problem names its key; anything else is a crash.
      if (!(e instanceof ConfigError)) crashed++;
      else if (!e.problems.every((m) => m.startsWith('layouts.p'))) unkeyed++;
    } else {
      // Accepted profiles must resolve (ALOKA regions for DICOM calibration) without surprises.
      const c = (p as { calibration?: object }).calibration ?? {};
      const r = errorOf(() => resolveProfile('p', p as unknown as LayoutProfile, 'dicom' in c ? { regions: ALOKA } : {}));
      if (r && !(r instanceof ProfileError)) crashed++;
    }
  }
  t.equal(crashed, 0, 'no mutation makes the checks or the resolver throw anything but their own errors');
  t.equal(unkeyed, 0, 'every problem names its key under layouts.p');
  t.ok(refused > n / 2, `${refused} of ${n} mutations refused`);
});

/** Rows of gray-200 tick pixels in column x between rows y0 and y1 (exclusive). */
function tickRows(f: { data: Uint8Array; width: number }, x: number, y0: number, y1: number): number[] {
  const rows: number[] = [];
  for (let y = y0; y < y1; y++) if (f.data[y * f.width + x] === 200) rows.push(y);
  return rows;
}

t.test('the phantom profile in docs/layout-profiles.md gives the phantom layout, and its ruler points are real ticks', async (t) => {
  const blocks = docExamples();
  const phantomYaml = blocks.find((b) => b.includes('sonomics-phantom:'));
  if (!phantomYaml) { t.fail('docs/layout-profiles.md has no sonomics-phantom block'); return; }
  writeFileSync(join(dir, 'phantom.yaml'), phantomYaml);
  const c = loadConfig(join(dir, 'phantom.yaml'));
  const profile = layoutProfile(c, 'sonomics-phantom');
  const phantom = new PhantomScanner({});
  const layout = resolveProfile('sonomics-phantom', profile);
  t.same([layout.width, layout.height], [phantom.layout.width, phantom.layout.height]);
  t.same(layout.panes.bmode.rect, phantom.layout.panes.bmode.rect);
  t.same(layout.panes.contrast.rect, phantom.layout.panes.contrast.rect);
  for (const s of [layout.panes.bmode.spacingX, layout.panes.bmode.spacingY, layout.panes.contrast.spacingX])
    t.ok(Math.abs(s / phantom.mmPerPixel - 1) < 0.01, `spacing ${s} within 1 % of ${phantom.mmPerPixel}`);

  // Find the ruler in a rendered frame: the column right of the B-mode pane with the most ticks.
  const frame = phantom.frameAt(0).frame;
  const b = phantom.layout.panes.bmode.rect, c2 = phantom.layout.panes.contrast.rect;
  let best = { x: -1, rows: [] as number[] };
  for (let x = b.x + b.width; x < c2.x; x++) {
    const rows = tickRows(frame, x, b.y, b.y + b.height);
    if (rows.length > best.rows.length) best = { x, rows };
  }
  t.ok(best.rows.length >= 6, `ruler column ${best.x} has ${best.rows.length} ticks`);
  // The ruler column is where ticks start: long ticks (10 mm) run 7 pixels to the right, short ones 3.
  const long = best.rows.filter((y) => frame.data[y * frame.width + best.x + 6] === 200);
  const short = best.rows.filter((y) => !long.includes(y));
  t.ok(long.length >= 3 && short.length >= 3, `long ${long.join(',')} short ${short.join(',')}`);
  t.equal(frame.data[long[0] * frame.width + best.x - 1], 0, 'nothing left of the tick start');
  // Ticks alternate long/short every 5 mm from the top of the pane: the first long tick is 0 mm.
  t.equal(best.rows[0], long[0]);
  if (!('ruler' in profile.calibration)) { t.fail('the phantom profile uses a ruler'); return; }
  const { from, to, mm } = profile.calibration.ruler;
  t.same(from, [best.x, long[0]], 'from = the 0 mm tick');
  t.same(to, [best.x, long[mm / 10]], `to = the ${mm} mm tick`);
  // Spacing from all measured ticks (5 mm apart), independent of the profile.
  const measured = (5 * (best.rows.length - 1)) / (best.rows[best.rows.length - 1] - best.rows[0]);
  t.ok(Math.abs(measured / phantom.mmPerPixel - 1) < 0.01, `ticks give ${measured} mm/px`);
  t.ok(Math.abs(layout.panes.bmode.spacingX / measured - 1) < 0.005, 'profile spacing agrees with the tick fit');
  // The contrast pane's ruler has its ticks on the same rows.
  t.same(tickRows(frame, c2.x + c2.width + 3, c2.y, c2.y + c2.height), best.rows);
});

t.test('every layouts example in docs/layout-profiles.md is a valid config', async (t) => {
  const blocks = docExamples();
  t.ok(blocks.length >= 3, `${blocks.length} examples`);
  for (const [i, yaml] of blocks.entries()) {
    const path = join(dir, `example${i}.yaml`);
    writeFileSync(path, yaml);
    const c = loadConfig(path);
    for (const [name, p] of Object.entries(c.layouts)) {
      t.doesNotThrow(() => resolveProfile(name, p, 'dicom' in p.calibration ? { regions: ALOKA } : {}), `${name} resolves`);
    }
  }
});

async function decode(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
  return { info, px };
}

t.test('renderProfilePng draws the profile over the frame', async (t) => {
  const phantom = new PhantomScanner({});
  const { frame } = phantom.frameAt(0);
  const layout = resolveProfile('sonomics-phantom', base);
  const ruler = (base.calibration as { ruler: { from: [number, number]; to: [number, number]; mm: number } }).ruler;
  const png = await renderProfilePng(frame, layout, { name: 'sonomics-phantom', ruler });
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const meta = await sharp(png).metadata();
  t.equal(meta.format, 'png');
  t.same([meta.width, meta.height], [1280, 720]);
  const { info, px } = await decode(png);
  t.equal(info.channels, 3, 'RGB');
  const gray = (x: number, y: number) => frame.data[y * frame.width + x];
  const b = layout.panes.bmode.rect, c = layout.panes.contrast.rect;
  // Outlines just outside each pane, in two different colours.
  t.same(px(b.x - 1, b.y + 200), [0x00, 0xd8, 0xff], 'B-mode outline, left');
  t.same(px(b.x + 100, b.y + b.height), [0x00, 0xd8, 0xff], 'B-mode outline, bottom');
  t.same(px(c.x - 1, c.y + 200), [0xff, 0x9f, 0x1a], 'contrast outline, left');
  t.same(px(c.x + c.width, c.y + 300), [0xff, 0x9f, 0x1a], 'contrast outline, right');
  // Pane pixels keep the frame's gray value.
  for (const [x, y] of [[b.x + 288, b.y + 280], [b.x, b.y + 100], [c.x + 288, c.y + 280], [c.x + c.width - 1, c.y + c.height - 1]])
    t.same(px(x, y), [gray(x, y), gray(x, y), gray(x, y)], `pixel (${x}, ${y}) keeps gray ${gray(x, y)}`);
  // The ruler rings are drawn around its points; the tick pixel at each point stays visible.
  const ring = px(ruler.from[0] + 4, ruler.from[1] + 1);
  t.ok(ring[0] > 150 && ring[1] < 150 && ring[2] > 150, `ruler ring is magenta (${ring})`);
  t.same(px(ruler.to[0], ruler.to[1]), [200, 200, 200], 'the tick under the ring centre');

  // With a sector: outside it is tinted, inside keeps its gray.
  const convex = resolveProfile('convex', withProfile({ sector: { type: 'fan', apex: [288, -100], innerRadius: 120, outerRadius: 640, fromDeg: -30, toDeg: 30 } }));
  const png2 = await renderProfilePng(frame, convex, { name: 'convex' });
  const d2 = await decode(png2);
  const [x0, y0] = [b.x + 5, b.y + 5];
  const tinted = d2.px(x0, y0);
  t.ok(tinted[0] > tinted[1] && tinted[0] > tinted[2], `outside the sector is red-tinted (${tinted} over gray ${gray(x0, y0)})`);
  for (const [x, y] of [[b.x + 288, b.y + 300], [c.x + 288, c.y + 300]]) t.same(d2.px(x, y), [gray(x, y), gray(x, y), gray(x, y)], 'inside the sector keeps its gray');
  t.ok(convex.sector && convex.sector[300 * 576 + 288] === 255);

  await t.rejects(renderProfilePng({ data: new Uint8Array(640 * 480), width: 640, height: 480 }, layout), /frame is 640x480.*1280x720/);
});

t.test('renderProfilePng works without any font (text is then missing)', async (t) => {
  const conf = join(dir, 'no-fonts.conf');
  writeFileSync(conf, `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><cachedir>${join(dir, 'fc-cache')}</cachedir></fontconfig>\n`);
  const script = `
    const { PhantomScanner } = await import(${JSON.stringify(new URL('../device/phantom.js', import.meta.url).href)});
    const { resolveProfile, renderProfilePng } = await import(${JSON.stringify(new URL('../core/profile.js', import.meta.url).href)});
    const { default: sharp } = await import('sharp');
    const profile = ${JSON.stringify(base)};
    const png = await renderProfilePng(new PhantomScanner({}).frameAt(0).frame, resolveProfile('p', profile), { name: 'p', ruler: profile.calibration.ruler });
    const m = await sharp(png).metadata();
    const data = await sharp(png).extract({ left: 37, top: 279, width: 1, height: 1 }).raw().toBuffer();
    console.log(JSON.stringify({ width: m.width, height: m.height, format: m.format, outline: [...data] }));`;
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fromRoot(), env: { ...process.env, FONTCONFIG_FILE: conf, FONTCONFIG_PATH: dir, XDG_CACHE_HOME: join(dir, 'cache') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { if (child.pid) process.kill(child.pid, 'SIGKILL'); }, 60000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  t.equal(out.code, 0, out.stderr);
  t.same(JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}'), { width: 1280, height: 720, format: 'png', outline: [0x00, 0xd8, 0xff] }, 'drawn, B-mode outline included');
});
