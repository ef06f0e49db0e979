// The trained one-tap U-Net as an ONNX graph (opset 13), built with onnx-proto from the batch-norm-
// folded weights: Conv+Relu blocks, MaxPool 2x2, nearest Resize x2 (floor, asymmetric: the same
// as tf.image.resizeNearestNeighbor at an exact factor 2), Concat. Input `x` [batch, 2, S, S],
// output `logits` [batch, 1, S, S]. The bytes depend only on the weights, so a seeded training
// run gives the same file.
import onnxProto from 'onnx-proto';
import type { FoldedConv } from './net.js';

const { onnx } = onnxProto;
const F32 = onnx.TensorProto.DataType.FLOAT;
const AT = onnx.AttributeProto.AttributeType;

export function unetToOnnx(convs: FoldedConv[], channels: number[], size: number, producer: string): Uint8Array {
  const byName = new Map(convs.map((c) => [c.name, c]));
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: onnxProto.onnx.ITensorProto[] = [];
  let id = 0;
  const fresh = () => `t${id++}`;
  const ints = (name: string, v: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: AT.INTS, ints: v });
  const str = (name: string, v: string): onnxProto.onnx.IAttributeProto => ({ name, type: AT.STRING, s: new TextEncoder().encode(v) });
  const tensor = (name: string, dims: number[], data: Float32Array) => {
    inits.push({ name, dims, dataType: F32, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  };
  const conv = (x: string, name: string): string => {
    const c = byName.get(name);
    if (!c) throw new Error(`segmenter export: no convolution ${name}`);
    const { k, ci, co } = c;
    // HWIO -> OIHW.
    const w = new Float32Array(co * ci * k * k);
    for (let kh = 0; kh < k; kh++)
      for (let kw = 0; kw < k; kw++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) w[((o * ci + i) * k + kh) * k + kw] = c.w[((kh * k + kw) * ci + i) * co + o];
    tensor(`${name}.weight`, [co, ci, k, k], w);
    tensor(`${name}.bias`, [co], c.b);
    const p = (k - 1) / 2, y = fresh();
    nodes.push({ opType: 'Conv', name, input: [x, `${name}.weight`, `${name}.bias`], output: [y], attribute: [ints('kernel_shape', [k, k]), ints('pads', [p, p, p, p])] });
    if (!c.relu) return y;
    const r = fresh();
    nodes.push({ opType: 'Relu', input: [y], output: [r] });
    return r;
  };
  const L = channels.length;
  let h = 'x';
  const skips: string[] = [];
  for (let l = 0; l < L - 1; l++) {
    h = conv(conv(h, `e${l}a`), `e${l}b`);
    skips.push(h);
    const m = fresh();
    nodes.push({ opType: 'MaxPool', input: [h], output: [m], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])] });
    h = m;
  }
  h = conv(conv(h, 'ma'), 'mb');
  tensor('up2.scales', [4], Float32Array.of(1, 1, 2, 2));
  for (let l = L - 2; l >= 0; l--) {
    const u = fresh(), cat = fresh();
    nodes.push({ opType: 'Resize', input: [h, '', 'up2.scales'], output: [u],
      attribute: [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor')] });
    nodes.push({ opType: 'Concat', input: [u, skips[l]], output: [cat], attribute: [{ name: 'axis', type: AT.INT, i: 1 }] });
    h = conv(conv(cat, `d${l}a`), `d${l}b`);
  }
  conv(h, 'head');
  nodes[nodes.length - 1].output = ['logits'];
  const info = (name: string, c: number): onnxProto.onnx.IValueInfoProto => ({
    name, type: { tensorType: { elemType: F32, shape: { dim: [{ dimParam: 'batch' }, { dimValue: c }, { dimValue: size }, { dimValue: size }] } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: producer,
    graph: { name: 'sonomics-tap-unet', node: nodes, initializer: inits, input: [info('x', 2)], output: [info('logits', 1)] },
  });
  return onnx.ModelProto.encode(model).finish();
}
