// A card with deep features, live: its CNN (an ONNX model built here) runs on the tracked lesion's
// crop of the card's pane in the risk stage, and its PCA components enter the linear predictor.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from '../core/frame.js';
import { createLesionMask } from '../core/mask.js';
import type { DeepSpec } from '../core/modelcard.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline, type DisplayFrame, type ScoreUpdate } from '../core/pipeline.js';
import { PhantomScanner } from '../device/phantom.js';
import { testCard } from './cards.js';
import { sha256Of, tinyNet, writeOnnxModel } from './deep-models.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-deep-pipeline-'));
writeOnnxModel(join(dir, 'tiny.onnx'), tinyNet(1, 32, 32, 4));

function deepCard(pane: 'bmode' | 'contrast'): string {
  const deep: DeepSpec = {
    runtime: 'onnx', file: 'tiny.onnx', sha256: { 'tiny.onnx': sha256Of(join(dir, 'tiny.onnx')) }, embeddingSize: 4,
    input: { width: 32, height: 32, channels: 1, layout: 'nchw', pane, marginFraction: 0.2, scale: 1 / 255, mean: [0.5], std: [0.25] },
    pca: { mean: [0.1, 0.1, 0.1, 0.1], components: [[1, 0, 0, 0], [0, 0.5, 0.5, 0]] },
  };
  const card = testCard({
    id: `deep-${pane}`,
    inputs: { engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'], deep },
    scaling: { mean: [100, 0, 0], std: [30, 1, 1] },
    linearPredictor: { coefficients: [0.2, 3, -2], intercept: -0.1 },
  }, ['bmode.lesion.firstorder_Mean']);
  const path = join(dir, `${pane}.json`);
  writeFileSync(path, JSON.stringify(card));
  return path;
}

for (const pane of ['bmode', 'contrast'] as const) {
  t.test(`deep features of the ${pane} pane score live with the radiomics terms`, async (t) => {
    const model = await loadRiskModel(deepCard(pane));
    t.teardown(() => model.deep?.close());
    t.same(model.terms, ['bmode.lesion.firstorder_Mean', 'deep.pc1', 'deep.pc2']);
    const phantom = new PhantomScanner({ seed: 8, width: 640, height: 360 });
    const p = new Pipeline({ layout: phantom.layout, models: [model] }).start();
    const r = phantom.layout.panes.bmode.rect;
    const frames = new Map<number, { frame: Frame; box?: DisplayFrame['track']['box'] }>();
    const updates: ScoreUpdate[] = [];
    p.on('display', (d: DisplayFrame) => frames.set(d.frame.seq, { frame: d.frame, box: d.track.box }));
    p.on('scores', (u: ScoreUpdate) => updates.push(u));
    for (let i = 0; i < 12; i++) {
      const { frame, truth } = phantom.frameAt(i);
      if (i === 0) void p.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
      p.push(frame, truth);
      const t0 = Date.now();
      while (!updates.some((u) => u.seq === i) && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 5));
    }
    await p.stop();
    const live = updates.filter((u) => u.live && u.scores[0]?.status !== 'invalid');
    t.ok(live.length >= 8, `${live.length} live score updates`);
    const last = live[live.length - 1];
    const s = last.scores[0];
    t.ok(s.status === 'ok' || s.status === 'warming-up', `status ${s.status} ${s.problem ?? ''}`);
    t.ok(s.drivers.some((d) => d.feature.startsWith('deep.pc')), 'deep components drive the score');
    // The same frame, box and pane through the model directly give the frame's linear predictor.
    const { frame, box } = frames.get(last.seq)!;
    t.ok(box && box.width > 4 && box.height > 4, 'the tracker reports the lesion box');
    const to = phantom.layout.panes[pane];
    const from = phantom.layout.panes.bmode;
    const k = { x: from.spacingX / to.spacingX, y: from.spacingY / to.spacingY };
    const frameBox = { x: to.rect.x + box!.x * k.x, y: to.rect.y + box!.y * k.y, width: box!.width * k.x, height: box!.height * k.y };
    const deep = await model.deep!.features(frame, frameBox, to.rect);
    const direct = model.score(last.features!, new Map(), model.deep!.names.map((n) => deep[n]), last.seq);
    t.equal(direct.status, 'ok');
    // Drivers are the last frame's contributions: all three terms, so the deep values must agree exactly.
    const expected = model.drivers(direct.contributions, 3).map((d) => `${d.feature} ${d.contribution.toFixed(9)}`);
    t.same(s.drivers.map((d) => `${d.feature} ${d.contribution.toFixed(9)}`), expected, 'the live frame used the same crop, pane and PCA');
  });
}
