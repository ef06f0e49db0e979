// Tracking benchmark (issue 5): our tracker (`sonomics track`) and OpenCV's CSRT and KCF
// (Debian python3-opencv, bench/opencv_trackers.py; comparison only) on the same sequences in
// one run:
//   1. the phantom, 3 minutes at 30 fps on a 640x480 B-mode pane (breathing, drift, sway,
//      compression, out-of-plane speckle decorrelation, gain steps, the contrast wash-in);
//   2. real liver frames (../shared/data/us_seq_liver1) warped by known smooth displacement
//      fields (breathing-like translation, scaling, a non-rigid part, gain drift, noise);
//   3. forward-backward error on the unwarped real sequence;
//   4. the lost state: the phantom lesion leaves the pane and comes back.
// Errors are displacement errors: |(centre_t - centre_0) - (truth_t - truth_0)|, so a box
// tracker (centre of its box) and ours (lesion centroid) are measured alike.
// Env: BENCH_QUICK=1 (20 s of phantom instead of 3 min, 2 warped sequences), BENCH_KEEP=1.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { mean, quantile } from 'simple-statistics';
import { readGrayImage } from '../core/imageio.js';
import { createLesionMask, ellipseMask, maskStats } from '../core/mask.js';
import { packageRoot } from '../core/paths.js';
import { PhantomScanner, type PhantomOptions } from '../device/phantom.js';
import { SessionRecorder } from '../device/recording.js';
import { table } from './table.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROOT = packageRoot();
const SHARED = join(ROOT, '..', 'shared');
const LIVER = join(SHARED, 'data', 'us_seq_liver1', 'frames');
const LIVER_MM_PER_PX = 150 / 580;   // depth 150 mm shown over the 580-pixel crop (approximate)
const PYTHON = '/usr/bin/python3';

interface Point { x: number; y: number }
interface Box { x: number; y: number; width: number; height: number }
interface TrackRun { centres: Point[]; scales: number[]; states: string[]; msMedian: number; summary: Record<string, unknown> }
interface Sequence {
  name: string;
  /** --frames DIR or --video FILE (with its size) for the OpenCV runner; --input for ours. */
  input: string;
  video?: { width: number; height: number };
  initMask: string;
  initBox: Box;
  crop?: Box;
  truth: Point[];
  mmPerPx: number;
  inView?: number[];
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString(), stderr = Buffer.concat(err).toString();
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      else resolve({ stdout, stderr });
    });
  });
}

const lastJson = (stderr: string) => JSON.parse(stderr.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)!) as Record<string, unknown>;

async function ours(seq: Sequence, input = seq.input, initMask = seq.initMask): Promise<TrackRun> {
  const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin', 'sonomics.js'), 'track', '--input', input, '--init', initMask]);
  const rows = stdout.trim().split('\n').slice(1).map((l) => l.split(','));
  const summary = lastJson(stderr);
  return {
    centres: rows.map((r) => ({ x: Number(r[1]), y: Number(r[2]) })), scales: rows.map((r) => Number(r[3])), states: rows.map((r) => r[5]),
    msMedian: (summary.trackMs as { median: number }).median, summary,
  };
}

async function opencv(tracker: 'csrt' | 'kcf', seq: Sequence, input = seq.input, box = seq.initBox): Promise<TrackRun> {
  const src = seq.video ? ['--video', input, '--size', `${seq.video.width}x${seq.video.height}`] : ['--frames', input];
  const crop = seq.crop ? ['--crop', `${seq.crop.x},${seq.crop.y},${seq.crop.width},${seq.crop.height}`] : [];
  // KCF in this OpenCV does not search on its first update after init: prime it on frame 0.
  const prime = tracker === 'kcf' ? ['--prime'] : [];
  const { stdout, stderr } = await run(PYTHON, [join(ROOT, 'bench', 'opencv_trackers.py'), '--tracker', tracker, '--threads', '1',
    '--init', `${box.x},${box.y},${box.width},${box.height}`, ...src, ...crop, ...prime]);
  const rows = stdout.trim().split('\n').slice(1).map((l) => l.split(','));
  const summary = lastJson(stderr);
  return { centres: rows.map((r) => ({ x: Number(r[1]), y: Number(r[2]) })), scales: [], states: rows.map((r) => (r[5] === '1' ? 'ok' : 'failed')), msMedian: summary.median_ms as number, summary };
}

const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Displacement errors (mm) of a run against the truth, over the frames `use` selects. */
function errors(r: TrackRun, seq: Sequence, use: (k: number) => boolean = () => true): number[] {
  const c0 = r.centres[0], t0 = seq.truth[0], out: number[] = [];
  const n = Math.min(r.centres.length, seq.truth.length);
  for (let k = 0; k < n; k++) {
    if (!use(k)) continue;
    const c = r.centres[k], t = seq.truth[k];
    out.push(Math.hypot(c.x - c0.x - (t.x - t0.x), c.y - c0.y - (t.y - t0.y)) * seq.mmPerPx);
  }
  return out;
}

async function writeMaskPng(path: string, mask: Uint8Array, width: number, height: number): Promise<void> {
  await sharp(Buffer.from(mask), { raw: { width, height, channels: 1 } }).png().toFile(path);
}

/** The mask's bounding box (what a sonographer would draw for a box tracker). */
function maskBox(mask: Uint8Array, width: number, height: number): Box {
  const s = maskStats(createLesionMask(mask, width, height));
  return { x: s.x0, y: s.y0, width: s.x1 - s.x0 + 1, height: s.y1 - s.y0 + 1 };
}

/** A phantom session recorded losslessly (the same file feeds every tracker) with its truth. */
async function phantomSequence(dir: string, name: string, opts: PhantomOptions, frames: number): Promise<Sequence> {
  const phantom = new PhantomScanner(opts);
  const { bmode } = phantom.layout.panes;
  const path = join(dir, `${name}.sonrec`);
  const rec = new SessionRecorder({ path, width: phantom.width, height: phantom.height, fps: phantom.fps, sourceId: phantom.id, layout: phantom.layout });
  const truth: Point[] = [], inView: number[] = [];
  let initMask = '', initBox: Box | undefined;
  for (let i = 0; i < frames; i++) {
    const { frame, truth: t } = phantom.frameAt(i);
    truth.push(t.frameCenters.bmode);
    inView.push(t.inView);
    if (i === 0) {
      initMask = join(dir, `${name}-init.png`);
      await writeMaskPng(initMask, t.lesionMask, bmode.rect.width, bmode.rect.height);
      const b = maskBox(t.lesionMask, bmode.rect.width, bmode.rect.height);
      initBox = { ...b, x: b.x + bmode.rect.x, y: b.y + bmode.rect.y };
    }
    // The encoder takes one frame at a time; wait for it (a bench, not a live session).
    for (let tries = 0; !rec.write(frame); tries++) {
      if (tries > 5000) throw new Error('recorder stalled');
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const stats = await rec.close();
  if (stats.written !== frames) throw new Error(`recorded ${stats.written} of ${frames} frames`);
  return {
    name, input: path, video: { width: phantom.width, height: phantom.height }, initMask, initBox: initBox!, crop: bmode.rect,
    truth, mmPerPx: phantom.mmPerPixel, inView,
  };
}

/**
 * A real liver frame moved by a known smooth field, frame by frame: breathing-like translation
 * (4.4 s period at 18 fps), scaling about the image centre, a non-rigid sinusoidal part, gain
 * drift and per-frame noise. Output pixel p samples the base frame at G_t(p); the truth is the
 * p with G_t(p) = the target's position in the base frame.
 */
async function warpedSequence(dir: string, base: number, target: Point, radii: Point, frames: number, seed: number): Promise<Sequence> {
  const img = await readGrayImage(join(LIVER, `${String(base).padStart(4, '0')}.png`));
  const { width: w, height: h, data } = img;
  const out = join(dir, `warp-${base}`);
  mkdirSync(out, { recursive: true });
  const cx = w / 2, cy = h / 2;
  const ph = seed * 1.7;
  const field = (t: number) => {
    const s = t / 18;   // seconds at 18 fps
    const breath = Math.sin((2 * Math.PI * s) / 4.4 + ph);
    return {
      tx: 4 * breath + 6 * Math.sin((2 * Math.PI * s) / 23 + ph), ty: 22 * breath + 5 * Math.sin((2 * Math.PI * s) / 17),
      scale: 1 + 0.04 * Math.sin((2 * Math.PI * s) / 9 + ph), nonRigid: 2.5 * Math.sin((2 * Math.PI * s) / 6.1), gain: 1 + 0.12 * Math.sin((2 * Math.PI * s) / 7),
    };
  };
  const G = (p: Point, F: ReturnType<typeof field>): Point => ({
    x: cx + (p.x - cx - F.tx) / F.scale + F.nonRigid * Math.sin((2 * Math.PI * p.y) / 300),
    y: cy + (p.y - cy - F.ty) / F.scale + F.nonRigid * Math.sin((2 * Math.PI * p.x) / 350),
  });
  const truth: Point[] = [];
  let rnd = seed * 7919 + 1;
  const uniform = () => ((rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648);
  const px = new Uint8Array(w * h);
  for (let t = 0; t < frames; t++) {
    const F = field(t);
    // Truth: solve G(p) = target by fixed-point iteration (the field is a small perturbation).
    let p = { ...target };
    for (let k = 0; k < 30; k++) {
      const g = G(p, F);
      p = { x: p.x + (target.x - g.x) * F.scale, y: p.y + (target.y - g.y) * F.scale };
    }
    truth.push(p);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const q = G({ x, y }, F);
        const qx = Math.min(w - 1.001, Math.max(0, q.x)), qy = Math.min(h - 1.001, Math.max(0, q.y));
        const ix = Math.floor(qx), iy = Math.floor(qy), fx = qx - ix, fy = qy - iy;
        const i = iy * w + ix;
        const v = (data[i] * (1 - fx) + data[i + 1] * fx) * (1 - fy) + (data[i + w] * (1 - fx) + data[i + w + 1] * fx) * fy;
        px[y * w + x] = Math.max(0, Math.min(255, Math.round(v * F.gain * (0.92 + 0.16 * uniform()))));
      }
    }
    writeFileSync(join(out, `${String(t).padStart(4, '0')}.pgm`), Buffer.concat([Buffer.from(`P5\n${w} ${h}\n255\n`), px]));
  }
  const initMask = join(dir, `warp-${base}-init.png`);
  const m = ellipse(w, h, target, radii);
  await writeMaskPng(initMask, m, w, h);
  return { name: `liver frame ${base}, warped`, input: out, initMask, initBox: maskBox(m, w, h), truth, mmPerPx: LIVER_MM_PER_PX };
}

function ellipse(w: number, h: number, c: Point, r: Point, scale = 1): Uint8Array {
  return ellipseMask(w, h, { cx: c.x, cy: c.y, rx: r.x * scale, ry: r.y * scale }).data;
}

async function main(): Promise<void> {
  if (!existsSync(LIVER)) throw new Error(`${LIVER} is missing: the real-frame parts need ../shared/data/us_seq_liver1`);
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-bench-tracking-'));
  const rows: string[][] = [];
  const notes: string[] = [];
  try {
    // 1. The phantom on a 640x480 B-mode pane (screen 1423x616), 3 minutes at 30 fps.
    const seconds = QUICK ? 20 : 180;
    const screen = { width: 1423, height: 616, fps: 30 };
    console.error(`recording ${seconds} s of phantom...`);
    const ph = await phantomSequence(dir, 'phantom', screen, seconds * 30);
    const pane = new PhantomScanner(screen).layout.panes.bmode.rect;
    notes.push(`phantom: ${seconds} s at 30 fps, B-mode pane ${pane.width}x${pane.height}, ${f(ph.mmPerPx, 4)} mm/pixel; wash-in from 8 s`);
    const results: Array<{ seq: Sequence; runs: Record<string, TrackRun> }> = [];
    const runAll = async (seq: Sequence) => {
      console.error(`tracking ${seq.name}...`);
      const runs = { sonomics: await ours(seq), csrt: await opencv('csrt', seq), kcf: await opencv('kcf', seq) };
      results.push({ seq, runs });
      return runs;
    };
    await runAll(ph);

    // 2. Warped real frames.
    const bases = QUICK ? [0, 100] : [0, 50, 100, 150];
    const warped: Sequence[] = [];
    for (const [k, b] of bases.entries()) {
      console.error(`warping liver frame ${b}...`);
      warped.push(await warpedSequence(dir, b, { x: 390, y: 260 }, { x: 48, y: 36 }, 200, k + 1));
    }
    for (const w of warped) await runAll(w);

    for (const { seq, runs } of results) {
      for (const [name, r] of Object.entries(runs)) {
        const e = errors(r, seq);
        const lost = r.states.filter((s) => s === 'lost' || s === 'failed').length;
        rows.push([seq.name, name, String(r.centres.length), f(mean(e), 3), f(quantile(e, 0.95), 3), f(Math.max(...e), 3), f(r.msMedian, 2), String(lost)]);
      }
    }
    table('Tracking accuracy and time (displacement error vs. known truth; ms per frame: median of the tracker call)',
      ['<sequence', '<tracker', 'frames', 'mean mm', 'p95 mm', 'max mm', 'ms/frame', 'lost/failed'], rows, notes);

    // Summary over the warped sequences.
    const pooled = (name: string) => results.filter((x) => x.seq !== ph).flatMap((x) => errors(x.runs[name], x.seq));
    table('Warped real frames, pooled', ['<tracker', 'mean mm', 'mean px', 'p95 mm'],
      ['sonomics', 'csrt', 'kcf'].map((n) => { const e = pooled(n); return [n, f(mean(e), 3), f(mean(e) / LIVER_MM_PER_PX, 2), f(quantile(e, 0.95), 3)]; }),
      [`${warped.length} sequences of 200 frames; ${f(LIVER_MM_PER_PX, 3)} mm/pixel assumed (150 mm depth over 580 pixels)`]);

    // 3. Forward-backward on the unwarped real sequence: forward 0..199, then from where each
    // tracker ended, backward 199..0; the error is the distance from the start.
    const rev = join(dir, 'liver-reversed');
    mkdirSync(rev);
    const names = readdirSync(LIVER).filter((n) => n.endsWith('.png')).sort();
    names.forEach((n, k) => symlinkSync(join(LIVER, n), join(rev, `${String(names.length - 1 - k).padStart(4, '0')}.png`)));
    const targets: Array<{ c: Point; r: Point }> = [
      { c: { x: 390, y: 260 }, r: { x: 48, y: 36 } }, { c: { x: 455, y: 190 }, r: { x: 40, y: 40 } },
      { c: { x: 330, y: 480 }, r: { x: 60, y: 36 } }, { c: { x: 300, y: 340 }, r: { x: 44, y: 36 } },
    ];
    const fbRows: string[][] = [];
    const fb: Record<string, number[]> = { sonomics: [], csrt: [], kcf: [] };
    const fbFailed: Record<string, number> = { sonomics: 0, csrt: 0, kcf: 0 };
    const fbMoved: Record<string, number[]> = { sonomics: [], csrt: [], kcf: [] };
    const travel = (r: TrackRun) => Math.max(...r.centres.map((c) => Math.hypot(c.x - r.centres[0].x, c.y - r.centres[0].y)));
    for (const [k, tg] of targets.entries()) {
      const m = ellipse(760, 580, tg.c, tg.r);
      const init = join(dir, `fb-${k}.png`);
      await writeMaskPng(init, m, 760, 580);
      const seq: Sequence = { name: `fb ${k}`, input: LIVER, initMask: init, initBox: maskBox(m, 760, 580), truth: [], mmPerPx: LIVER_MM_PER_PX };
      const row = [`(${tg.c.x}, ${tg.c.y})`];
      // Ours: restart from an outline moved (and scaled) to where the forward run ended.
      const fw = await ours(seq);
      const end = fw.centres.at(-1)!;
      const endScale = fw.scales.at(-1)!;
      const back = join(dir, `fb-${k}-back.png`);
      await writeMaskPng(back, ellipse(760, 580, end, tg.r, endScale), 760, 580);
      const bw = await ours(seq, rev, back);
      const eOurs = Math.hypot(bw.centres.at(-1)!.x - fw.centres[0].x, bw.centres.at(-1)!.y - fw.centres[0].y);
      fb.sonomics.push(eOurs);
      fbFailed.sonomics += [...fw.states, ...bw.states].filter((s) => s === 'lost').length;
      fbMoved.sonomics.push(travel(fw));
      row.push(f(eOurs, 1));
      for (const tr of ['csrt', 'kcf'] as const) {
        const a = await opencv(tr, seq);
        const last = a.centres.at(-1)!, b0 = seq.initBox;
        const box = { x: Math.round(last.x - b0.width / 2), y: Math.round(last.y - b0.height / 2), width: b0.width, height: b0.height };
        const b = await opencv(tr, seq, rev, box);
        const e = Math.hypot(b.centres.at(-1)!.x - a.centres[0].x, b.centres.at(-1)!.y - a.centres[0].y);
        fb[tr].push(e);
        fbFailed[tr] += [...a.states, ...b.states].filter((s) => s === 'failed').length;
        fbMoved[tr].push(travel(a));
        row.push(f(e, 1));
      }
      fbRows.push(row);
    }
    fbRows.push(['mean (px)', f(mean(fb.sonomics), 1), f(mean(fb.csrt), 1), f(mean(fb.kcf), 1)]);
    fbRows.push(['mean (mm)', f(mean(fb.sonomics) * LIVER_MM_PER_PX, 2), f(mean(fb.csrt) * LIVER_MM_PER_PX, 2), f(mean(fb.kcf) * LIVER_MM_PER_PX, 2)]);
    fbRows.push(['frames lost/failed (of 1600)', String(fbFailed.sonomics), String(fbFailed.csrt), String(fbFailed.kcf)]);
    fbRows.push(['mean travel forward (px)', f(mean(fbMoved.sonomics), 1), f(mean(fbMoved.csrt), 1), f(mean(fbMoved.kcf), 1)]);
    table('Forward-backward error on the real liver sequence (200 frames forward, then back; px from the start)',
      ['<target (x, y)', 'sonomics', 'csrt', 'kcf'], fbRows, ['no ground truth exists for this sequence: a tracker that returns to its start is consistent, not necessarily right;',
        'a tracker that reports failure and stops moving returns trivially (see lost/failed and travel)']);

    // 4. The lost state: the lesion leaves the pane (35 mm sideways) and comes back.
    const out = { startS: 8, durationS: 14, dxMm: 45, dyMm: 0 };
    const ex = await phantomSequence(dir, 'excursion', { ...screen, motion: { excursions: [out] } }, 30 * 30);
    const r = await ours(ex);
    const inv = ex.inView!;
    const outside = inv.map((v, k) => [v, k] as const).filter(([v]) => v === 0).map(([, k]) => k);
    const leaves = inv.findIndex((v) => v < 0.999);
    const firstLost = r.states.indexOf('lost');
    const back = inv.findIndex((v, k) => k > firstLost && v >= 0.999);
    const fullyIn = inv.map((v, k) => [v, k] as const).filter(([v, k]) => v >= 0.999 && (k < leaves || k >= back)).map(([, k]) => k);
    const resumed = r.states.findIndex((s, k) => k > back && s === 'tracking');
    const phLost = results[0].runs.sonomics.states.filter((s) => s === 'lost').length;
    table('Lost state (phantom: the view slides 45 mm sideways from 8 s to 22 s and back; 30 fps)', ['<check', 'value'], [
      ['frames fully out of view', String(outside.length)],
      ['  of them reported lost', String(outside.filter((k) => r.states[k] === 'lost').length)],
      ['frames fully in view (before leaving, and from the return on)', String(fullyIn.length)],
      ['  of them reported lost', String(fullyIn.filter((k) => r.states[k] === 'lost').length)],
      ['lesion in view when lost fired (%)', f(100 * inv[firstLost], 0)],
      ['frames from fully back in view to tracking', String(resumed - back)],
      ['error after resuming: max over the rest (mm)', f(Math.max(...errors(r, ex, (k) => k >= resumed)), 3)],
      [`lost frames in the ${seconds} s phantom run (lesion always in view)`, String(phLost)],
    ]);
  } finally {
    if (process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else console.error(`kept ${dir}`);
  }
}

main().catch((e) => {
  console.error(`bench:tracking: ${(e as Error).message}`);
  process.exit(1);
});
