import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { classesOf, loadParams, paramsFromObject, parseParams, ParamsError, selectFeatureNames } from '../core/params.js';
import { ALL_FEATURE_NAMES, DEPRECATED_FEATURES, FEATURE_NAMES, RadiomicsError } from '../core/radiomics.js';

const SRC = 'test-params.yaml';

function errorOf(f: () => unknown): ParamsError {
  try { f(); } catch (e) {
    if (e instanceof ParamsError) return e;
    throw e;
  }
  throw new Error('expected a ParamsError, nothing was thrown');
}

/** Parses `text` expecting a refusal; checks the error's key, file and message. */
function refused(t: Test, text: string, key: string, message: RegExp): void {
  const e = errorOf(() => parseParams(text, { source: SRC }));
  t.equal(e.key, key, `key of: ${text.replace(/\n/g, ' | ')}`);
  t.equal(e.file, SRC);
  t.ok(e.message.startsWith(`${SRC}: `), 'the message names the file');
  t.match(e.message, message, text.replace(/\n/g, ' | '));
}

t.test('an accepted file gives the shared settings and the feature selection', async (t) => {
  const p = parseParams(`
# PyRadiomics parameter file
setting:
  binWidth: 10
  distances: [1, 2]
  symmetricalGLCM: false
  gldm_a: 1
  voxelArrayShift: 100
  minimumROIDimensions: 1
  minimumROISize: 5
  force2D: true
  force2Ddimension: 0
  label: 1
  additionalInfo: true
  preCrop: false
  correctMask: true
  geometryTolerance: 1.0e-6
imageType:
  Original: {}
featureClass:
  firstorder:
  shape2D: []
  glcm: [Contrast, JointEnergy, Contrast]
`, { source: SRC });
  t.strictSame(p.settings, { binWidth: 10, distances: [1, 2], symmetricalGLCM: false, gldm_a: 1, voxelArrayShift: 100, minimumROIDimensions: 1, minimumROISize: 5 });
  t.strictSame(p.selection, { firstorder: null, shape2D: null, glcm: ['glcm_Contrast', 'glcm_JointEnergy'] });
  t.equal(p.source, SRC);
});

t.test('empty sections mean PyRadiomics defaults: Original image, every class', async (t) => {
  for (const text of ['', '{}', 'setting:\nimageType:\nfeatureClass:\n', 'imageType: {Original: }\nfeatureClass: {}\n', 'imageType: {}\n']) {
    const p = parseParams(text, { source: SRC });
    t.strictSame(p.settings, {}, JSON.stringify(text));
    t.equal(p.selection, null, JSON.stringify(text));
  }
  const c = parseParams('setting: {binCount: 32, minimumROISize: null}', { source: SRC });
  t.strictSame(c.settings, { binCount: 32, minimumROISize: null });
  const j = parseParams(JSON.stringify({ setting: { binWidth: 5 }, featureClass: { ngtdm: [] } }), { source: 'p.json' });
  t.strictSame(j.settings, { binWidth: 5 }, 'JSON parameter files are read too');
  t.strictSame(j.selection, { ngtdm: null });
});

t.test('loadParams reads a file and names it in errors', async (t) => {
  const dir = t.testdir({ 'ok.yaml': 'setting:\n  binWidth: 4\n', 'bad.yaml': 'setting:\n  normalize: true\n' });
  t.strictSame(loadParams(join(dir, 'ok.yaml')).settings, { binWidth: 4 });
  const e = errorOf(() => loadParams(join(dir, 'bad.yaml')));
  t.equal(e.file, join(dir, 'bad.yaml'));
  t.match(e.message, `${join(dir, 'bad.yaml')}: setting normalize is not supported by sonomics`);
  const missing = errorOf(() => loadParams(join(dir, 'nope.yaml')));
  t.match(missing.message, /nope\.yaml: cannot read the parameter file: ENOENT/);
});

t.test('settings sonomics does not implement are refused by name with the reason', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['normalize', 'true', /normalization/],
    ['normalizeScale', '100', /normalization/],
    ['removeOutliers', '3', /normalization/],
    ['resampledPixelSpacing', '[1, 1, 0]', /no resampling on live frames/],
    ['interpolator', 'sitkBSpline', /no resampling/],
    ['padDistance', '5', /no resampling/],
    ['weightingNorm', 'euclidean', /weighting/],
    ['resegmentRange', '[-3, 3]', /re-segmentation/],
    ['resegmentMode', 'sigma', /re-segmentation/],
    ['resegmentShape', 'true', /re-segmentation/],
    ['kernelRadius', '2', /voxel-based/],
    ['maskedKernel', 'true', /voxel-based/],
    ['initValue', '0', /voxel-based/],
    ['voxelBatch', '1000', /voxel-based/],
    ['sigma', '[1, 2]', /LoG/],
    ['start_level', '0', /wavelet/],
    ['level', '1', /wavelet/],
    ['wavelet', 'coif1', /wavelet/],
    ['gradientUseSpacing', 'true', /gradient/],
    ['lbp2DRadius', '1', /local binary pattern/],
    ['lbp2DSamples', '8', /local binary pattern/],
    ['lbp3DLevels', '2', /local binary pattern/],
    ['label_channel', '0', /single-channel/],
  ];
  for (const [key, value, reason] of cases) {
    refused(t, `setting:\n  ${key}: ${value}\n`, `setting.${key}`, new RegExp(`setting ${key} is not supported by sonomics \\(`));
    refused(t, `setting:\n  ${key}: ${value}\n`, `setting.${key}`, reason);
  }
  refused(t, 'setting:\n  binWdith: 25\n', 'setting.binWdith', /setting binWdith is not a PyRadiomics setting sonomics knows \(supported: binWidth,/);
});

t.test('no-op settings take only the value that is a no-op here', async (t) => {
  refused(t, 'setting: {force2D: false}', 'setting.force2D', /force2D: false is not supported by sonomics \(a 2D engine/);
  refused(t, 'setting: {force2Ddimension: 2}', 'setting.force2Ddimension', /force2Ddimension: 2 is not supported.*only 0/);
  refused(t, 'setting: {label: 2}', 'setting.label', /label: 2 is not supported.*every non-zero mask pixel is the ROI/);
  refused(t, 'setting: {force2D: "yes"}', 'setting.force2D', /setting force2D must be true or false \(got "yes"\)/);
  refused(t, 'setting: {label: 1.5}', 'setting.label', /setting label must be an integer/);
  refused(t, 'setting: {additionalInfo: 1}', 'setting.additionalInfo', /must be true or false \(got 1\)/);
  refused(t, 'setting: {preCrop: null}', 'setting.preCrop', /must be true or false \(got null\)/);
  refused(t, 'setting: {correctMask: "false"}', 'setting.correctMask', /must be true or false/);
  refused(t, 'setting: {geometryTolerance: 0}', 'setting.geometryTolerance', /must be a number > 0 \(got 0\)/);
});

t.test('values of shared settings are type-checked', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['binWidth: "25"', 'setting.binWidth', /setting binWidth must be a number > 0 \(got "25"\)/],
    ['binWidth: 0', 'setting.binWidth', /setting binWidth must be a number > 0 \(got 0\)/],
    ['binWidth: .nan', 'setting.binWidth', /setting binWidth must be a number > 0/],
    ['binCount: 2.5', 'setting.binCount', /setting binCount must be an integer >= 1 \(got 2.5\)/],
    ['binCount: 100000', 'setting.binCount', /binCount must be an integer in \[1, 65536\]/],
    ['distances: 1', 'setting.distances', /setting distances must be a non-empty list of integers >= 1 \(got 1\)/],
    ['distances: []', 'setting.distances', /non-empty list/],
    ['distances: [1, 0]', 'setting.distances', /setting distances\[1\] must be an integer >= 1 \(got 0\)/],
    ['symmetricalGLCM: "true"', 'setting.symmetricalGLCM', /must be true or false/],
    ['gldm_a: -1', 'setting.gldm_a', /setting gldm_a must be an integer >= 0/],
    ['voxelArrayShift: 0.5', 'setting.voxelArrayShift', /setting voxelArrayShift must be an integer/],
    ['minimumROIDimensions: 3', 'setting.minimumROIDimensions', /minimumROIDimensions must be 1 or 2 \(a 2D engine\)/],
    ['minimumROIDimensions: 0', 'setting.minimumROIDimensions', /must be an integer in \[1, 3\]/],
    ['minimumROISize: 0', 'setting.minimumROISize', /setting minimumROISize must be an integer >= 1 \(got 0\)/],
  ];
  for (const [line, key, re] of cases) refused(t, `setting:\n  ${line}\n`, key, re);
  refused(t, 'setting: [binWidth]', 'setting', /setting must be a mapping/);
});

t.test('imageType: only Original, without settings', async (t) => {
  for (const type of ['LoG', 'Wavelet', 'Square', 'SquareRoot', 'Logarithm', 'Exponential', 'Gradient', 'LBP2D', 'LBP3D']) {
    refused(t, `imageType:\n  Original: {}\n  ${type}: {}\n`, `imageType.${type}`, new RegExp(`imageType ${type} is not supported by sonomics \\(no .* filter`));
  }
  refused(t, 'imageType: {Sharpen: {}}', 'imageType.Sharpen', /unknown imageType "Sharpen"/);
  refused(t, 'imageType: {Original: {binWidth: 5}}', 'imageType.Original', /per-image-type settings are not supported/);
  refused(t, 'imageType: [Original]', 'imageType', /imageType must be a mapping/);
});

t.test('featureClass: known 2D classes, known feature names', async (t) => {
  refused(t, 'featureClass: {shape: }', 'featureClass.shape', /shape \(3D\) is not supported.*use shape2D/);
  refused(t, 'featureClass: {glrlm: [], texture: []}', 'featureClass.texture', /unknown featureClass "texture" \(known: firstorder, shape2D, glcm, glrlm, glszm, gldm, ngtdm\)/);
  refused(t, 'featureClass: {glcm: [Contrast, Dissimilarity]}', 'featureClass.glcm[1]', /unknown glcm feature "Dissimilarity" \(known: .*Contrast/);
  refused(t, 'featureClass: {glcm: [glcm_Contrast]}', 'featureClass.glcm[0]', /unknown glcm feature "glcm_Contrast"/);
  refused(t, 'featureClass: {glcm: Contrast}', 'featureClass.glcm', /must be a list of feature names/);
  refused(t, 'featureClass: {glcm: [1]}', 'featureClass.glcm[0]', /must be a feature name \(got 1\)/);
  refused(t, 'featureClass: [glcm]', 'featureClass', /featureClass must be a mapping/);
  const dep = parseParams('featureClass: {firstorder: [StandardDeviation], shape2D: [SphericalDisproportion]}', { source: SRC });
  t.strictSame(dep.selection, { firstorder: ['firstorder_StandardDeviation'], shape2D: ['shape2D_SphericalDisproportion'] }, 'deprecated features can be asked for by name');
});

t.test('feature names are validated against the given name list', async (t) => {
  const featureNames = ['glcm_Foo', 'glcm_Bar', 'ngtdm_Busyness'];
  const p = parseParams('featureClass: {glcm: [Bar]}', { source: SRC, featureNames });
  t.strictSame(p.selection, { glcm: ['glcm_Bar'] });
  const e = errorOf(() => parseParams('featureClass: {glcm: [Contrast]}', { source: SRC, featureNames }));
  t.match(e.message, /unknown glcm feature "Contrast" \(known: Foo, Bar\)/);
});

t.test('sections: voxelSetting refused, unknown sections refused, bad documents refused', async (t) => {
  refused(t, 'voxelSetting:\n  kernelRadius: 2\n', 'voxelSetting', /voxelSetting is not supported by sonomics \(no voxel-based extraction/);
  refused(t, 'settings:\n  binWidth: 25\n', 'settings', /unknown section "settings" \(a PyRadiomics parameter file has setting, imageType, featureClass, voxelSetting\)/);
  refused(t, '- binWidth\n', '(top level)', /must be a mapping with sections/);
  refused(t, '42', '(top level)', /must be a mapping/);
  const e = errorOf(() => parseParams('setting: {binWidth: 25\n', { source: SRC }));
  t.equal(e.key, undefined);
  t.match(e.message, /^test-params\.yaml: not valid YAML: /);
  const dup = errorOf(() => parseParams('setting:\n  binWidth: 1\n  binWidth: 2\n', { source: SRC }));
  t.match(dup.message, /not valid YAML: .*unique/i, 'duplicate keys are an error, not last-one-wins');
});

t.test('errors are RadiomicsErrors', async (t) => {
  const e = errorOf(() => paramsFromObject({ setting: { normalize: true } }, { source: SRC }));
  t.ok(e instanceof RadiomicsError);
  t.equal(e.name, 'ParamsError');
});

t.test('selectFeatureNames and classesOf', async (t) => {
  t.strictSame(selectFeatureNames(null, { includeDeprecated: false }), [...FEATURE_NAMES], 'no selection: the default features');
  t.equal(FEATURE_NAMES.length, 102);
  t.strictSame(selectFeatureNames(null, { includeDeprecated: true }), [...ALL_FEATURE_NAMES], 'with deprecated: every feature');
  t.ok(DEPRECATED_FEATURES.has('firstorder_StandardDeviation') && DEPRECATED_FEATURES.has('shape2D_SphericalDisproportion'));

  const glcm = ALL_FEATURE_NAMES.filter((n) => n.startsWith('glcm_'));
  const sel = selectFeatureNames({ glcm: null, firstorder: ['firstorder_StandardDeviation', 'firstorder_Mean'] }, { includeDeprecated: false });
  const fo = ALL_FEATURE_NAMES.filter((n) => n === 'firstorder_Mean' || n === 'firstorder_StandardDeviation');
  t.strictSame(sel, [...fo, ...glcm], 'engine order; listed features exactly, even deprecated ones');

  const names = ['a_X', 'a_Old', 'b_Y', 'b_Z'];
  const deprecated = new Set(['a_Old']);
  t.strictSame(selectFeatureNames({ a: null } as never, { includeDeprecated: false, names, deprecated }), ['a_X']);
  t.strictSame(selectFeatureNames({ a: null } as never, { includeDeprecated: true, names, deprecated }), ['a_X', 'a_Old']);
  t.strictSame(selectFeatureNames({ b: ['b_Z'] } as never, { includeDeprecated: true, names, deprecated }), ['b_Z']);

  t.strictSame(classesOf(['glcm_Contrast', 'firstorder_Mean', 'glcm_Id']), ['firstorder', 'glcm']);
  t.strictSame(classesOf(FEATURE_NAMES), ['firstorder', 'shape2D', 'glcm', 'glrlm', 'glszm', 'gldm', 'ngtdm']);
});

// A file laid out like PyRadiomics' example parameter files, with a per-class feature list.
t.test('a typical PyRadiomics file', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'Params.yaml');
  writeFileSync(file, `imageType:
  Original: {}

featureClass:
  shape2D:
  firstorder: []
  glcm:
    - 'Autocorrelation'
    - 'JointAverage'
    - 'ClusterProminence'
  glrlm:
  glszm:
  gldm:
  ngtdm:

setting:
  binWidth: 25
  label: 1
  force2D: true
  force2Ddimension: 0
  additionalInfo: true
`);
  const p = loadParams(file);
  t.strictSame(p.settings, { binWidth: 25 });
  t.strictSame(p.selection?.glcm, ['glcm_Autocorrelation', 'glcm_JointAverage', 'glcm_ClusterProminence']);
  const names = selectFeatureNames(p.selection, { includeDeprecated: false });
  t.equal(names.length, 102 - 24 + 3);
});
