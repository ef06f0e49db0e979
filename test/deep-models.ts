// Tiny CNNs for the deep-feature tests, WRITTEN by our own code into a folder (no binary
// fixtures in the repository): an ONNX model through onnx-proto, a TF.js layers model saved with
// tf.io.withSaveHandler, and a hand-written TF.js graph model. All three compute the same thing
// from the same seeded weights: 3x3 convolution (stride 1, zero 'same' padding) with bias -> ReLU
// -> global average pool -> K values, so a test can compute the expectation in plain JS
// (convReluMean). Also the small ONNX builder the bench uses for its MobileNetV2-sized network.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { seededRandom } from '../core/random.js';
import { loadTf } from '../core/deep.js';

export const { onnx } = onnxProto;
const F32 = onnx.TensorProto.DataType.FLOAT;
const AT = onnx.AttributeProto.AttributeType;

// ---- ONNX builder ------------------------------------------------------------------------------

export function valueInfo(name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: F32, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

export function initializer(name: string, dims: number[], data: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: F32, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export const attr = {
  ints: (name: string, ints: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: AT.INTS, ints }),
  int: (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: AT.INT, i }),
  float: (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, type: AT.FLOAT, f }),
};

export function encodeOnnx(graph: onnxProto.onnx.IGraphProto, opset = 13): Uint8Array {
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: opset }], producerName: 'sonomics-test', graph });
  return onnx.ModelProto.encode(model).finish();
}

// ---- the shared tiny network -------------------------------------------------------------------

export interface TinyNet {
  channels: number; height: number; width: number; filters: number;
  /** [filters][channels][3][3], row-major (ONNX / PyTorch order). */
  weight: Float32Array;
  bias: Float32Array;
}

export function tinyNet(channels: number, height: number, width: number, filters: number, seed = 7): TinyNet {
  const rnd = seededRandom(seed);
  const weight = new Float32Array(filters * channels * 9).map(() => (rnd() - 0.5) * 0.8);
  const bias = new Float32Array(filters).map(() => (rnd() - 0.3) * 0.2);
  return { channels, height, width, filters, weight, bias };
}

/** The expectation in plain JS (double precision): conv3x3 'same' + bias -> ReLU -> mean, on an NCHW input. */
export function convReluMean(net: TinyNet, x: ArrayLike<number>): Float64Array {
  const { channels: C, height: H, width: W, filters: K, weight, bias } = net;
  const out = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let sum = 0;
    for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      let v = bias[k];
      for (let c = 0; c < C; c++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
        const yy = y + i - 1, xs = xx + j - 1;
        if (yy < 0 || yy >= H || xs < 0 || xs >= W) continue;
        v += weight[((k * C + c) * 3 + i) * 3 + j] * x[(c * H + yy) * W + xs];
      }
      sum += Math.max(0, v);
    }
    out[k] = sum / (H * W);
  }
  return out;
}

/** NHWC -> NCHW (for feeding convReluMean from an NHWC input). */
export function nhwcToNchw(x: ArrayLike<number>, C: number, H: number, W: number): Float64Array {
  const out = new Float64Array(C * H * W);
  for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) for (let c = 0; c < C; c++) out[(c * H + y) * W + xx] = x[(y * W + xx) * C + c];
  return out;
}

/** [K][C][3][3] -> TF's [3][3][C][K]. */
function tfKernel(net: TinyNet): Float32Array {
  const { channels: C, filters: K, weight } = net;
  const out = new Float32Array(weight.length);
  for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++)
    out[((i * 3 + j) * C + c) * K + k] = weight[((k * C + c) * 3 + i) * 3 + j];
  return out;
}

export const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function write(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/**
 * (a) ONNX: input `image` [1,C,H,W] (or [1,H,W,C] with layout 'nhwc', transposed inside) -> Conv
 * -> Relu -> GlobalAveragePool -> Flatten -> output `embedding` [1,K]; a second output `pooled`
 * ([1,K,1,1]) is the pool before Flatten. Returns the path.
 */
export function writeOnnxModel(path: string, net: TinyNet, layout: 'nchw' | 'nhwc' = 'nchw'): string {
  const { channels: C, height: H, width: W, filters: K } = net;
  const nodes: onnxProto.onnx.INodeProto[] = [];
  let x = 'image';
  if (layout === 'nhwc') {
    nodes.push({ opType: 'Transpose', input: ['image'], output: ['image_nchw'], attribute: [attr.ints('perm', [0, 3, 1, 2])] });
    x = 'image_nchw';
  }
  nodes.push(
    { opType: 'Conv', input: [x, 'conv.weight', 'conv.bias'], output: ['conv'], attribute: [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1]), attr.ints('strides', [1, 1])] },
    { opType: 'Relu', input: ['conv'], output: ['relu'] },
    { opType: 'GlobalAveragePool', input: ['relu'], output: ['pooled'] },
    { opType: 'Flatten', input: ['pooled'], output: ['embedding'] },
  );
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'tiny',
    input: [valueInfo('image', layout === 'nchw' ? [1, C, H, W] : [1, H, W, C])],
    output: [valueInfo('embedding', [1, K]), valueInfo('pooled', [1, K, 1, 1])],
    initializer: [initializer('conv.weight', [K, C, 3, 3], net.weight), initializer('conv.bias', [K], net.bias)],
    node: nodes,
  };
  write(path, encodeOnnx(graph));
  return path;
}

/**
 * (b) TF.js layers model: input [H,W,C] -> conv2d 'conv' (relu) -> globalAveragePooling2d 'gap'
 * (the embedding, K values) -> dense 'head' (2 units, the model's own output). Writes model.json
 * and weights.bin into dir; returns the two paths.
 */
export async function writeTfjsLayersModel(dir: string, net: TinyNet): Promise<{ modelJson: string; weights: string }> {
  const { tf } = await loadTf();
  const { channels: C, height: H, width: W, filters: K } = net;
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [H, W, C], filters: K, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 2, name: 'head' }),
    ],
  });
  const rnd = seededRandom(99);
  const values = [tf.tensor4d(tfKernel(net), [3, 3, C, K]), tf.tensor1d(net.bias), tf.tensor2d(new Float32Array(2 * K).map(() => rnd() - 0.5), [K, 2]), tf.tensor1d([0.1, -0.1])];
  model.setWeights(values);
  values.forEach((v) => v.dispose());
  const paths = await saveTfjsLayersModel(model, dir);
  model.dispose();
  return paths;
}

/** Saves a TF.js layers model as dir/model.json + dir/weights.bin (what tfjs' file:// saver writes). */
export async function saveTfjsLayersModel(model: import('@tensorflow/tfjs').LayersModel, dir: string): Promise<{ modelJson: string; weights: string }> {
  const { tf } = await loadTf();
  const modelJson = join(dir, 'model.json'), weights = join(dir, 'weights.bin');
  await model.save(tf.io.withSaveHandler(async (a) => {
    write(weights, new Uint8Array(tf.io.concatenateArrayBuffers(a.weightData as ArrayBuffer | ArrayBuffer[])));
    write(modelJson, JSON.stringify({
      format: 'layers-model', generatedBy: a.generatedBy, convertedBy: a.convertedBy ?? null, modelTopology: a.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return { modelJson, weights };
}

/**
 * (c) A hand-written TF.js graph model: Placeholder `x` [1,H,W,C] -> Conv2D (SAME) -> BiasAdd ->
 * Relu -> Mean over H,W -> `embedding` [1,K]. Writes model.json and group1-shard1of1.bin into dir.
 */
export function writeTfjsGraphModel(dir: string, net: TinyNet): { modelJson: string; weights: string } {
  const { channels: C, height: H, width: W, filters: K } = net;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const shape = (dims: number[]) => ({ dim: dims.map((d) => ({ size: String(d) })) });
  const constNode = (name: string, dtype: string, dims: number[]) => ({ name, op: 'Const', attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: shape(dims) } } } });
  const T = { T: { type: 'DT_FLOAT' } };
  const json = {
    format: 'graph-model', generatedBy: 'sonomics test/deep-models.ts', convertedBy: 'hand-written',
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: shape([1, H, W, C]) } } },
        constNode('conv/kernel', 'DT_FLOAT', [3, 3, C, K]),
        constNode('conv/bias', 'DT_FLOAT', [K]),
        constNode('mean/axes', 'DT_INT32', [2]),
        { name: 'conv/Conv2D', op: 'Conv2D', input: ['x', 'conv/kernel'], attr: { ...T, strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } } } },
        { name: 'conv/BiasAdd', op: 'BiasAdd', input: ['conv/Conv2D', 'conv/bias'], attr: { ...T, data_format: { s: b64('NHWC') } } },
        { name: 'conv/Relu', op: 'Relu', input: ['conv/BiasAdd'], attr: T },
        { name: 'embedding', op: 'Mean', input: ['conv/Relu', 'mean/axes'], attr: { ...T, keep_dims: { b: false }, Tidx: { type: 'DT_INT32' } } },
      ],
      versions: { producer: 1 },
    },
    weightsManifest: [{
      paths: ['group1-shard1of1.bin'],
      weights: [
        { name: 'conv/kernel', shape: [3, 3, C, K], dtype: 'float32' },
        { name: 'conv/bias', shape: [K], dtype: 'float32' },
        { name: 'mean/axes', shape: [2], dtype: 'int32' },
      ],
    }],
  };
  const bin = Buffer.concat([Buffer.from(tfKernel(net).buffer), Buffer.from(net.bias.buffer, net.bias.byteOffset, net.bias.byteLength), Buffer.from(new Int32Array([1, 2]).buffer)]);
  const modelJson = join(dir, 'model.json'), weights = join(dir, 'group1-shard1of1.bin');
  write(modelJson, JSON.stringify(json));
  write(weights, bin);
  return { modelJson, weights };
}
