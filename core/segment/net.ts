// The one-tap network for training: a small U-Net (2 input channels: the standardised crop and the
// tap as a Gaussian heatmap; 1 output: lesion logits), batch norm, ReLU, max-pool down, nearest
// up, skip concatenation. Trained with @tensorflow/tfjs on its wasm backend (one thread, so a seed
// gives the same weights): that backend has no Conv2DBackpropFilter, so every convolution carries
// its own gradient (dx by a flipped-kernel convolution, dW by a convolution with the batch as
// channels), built from kernels the backend has. Inference runs on the batch-norm-folded weights
// exported to ONNX (onnx.ts).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as Tf from '@tensorflow/tfjs';

export type TfModule = typeof Tf;

/** One convolution: 3x3 with batch norm and ReLU, or the 1x1 head with a bias. Weights HWIO. */
export interface ConvWeights {
  name: string; k: 1 | 3; ci: number; co: number;
  w: number[];
  /** Batch norm (3x3 only): scale, shift, running mean and variance. */
  g?: number[]; b?: number[]; rm?: number[]; rv?: number[];
  /** The head's bias (1x1 only). */
  bias?: number[];
}

export interface NetWeights { channels: number[]; inputChannels: number; convs: ConvWeights[] }

/** A convolution with batch norm folded in: y = conv(x, w) + b (weights HWIO). */
export interface FoldedConv { name: string; k: 1 | 3; ci: number; co: number; w: Float32Array; b: Float32Array; relu: boolean }

export const BN_EPSILON = 1e-3;
const BN_MOMENTUM = 0.9;

let loaded: TfModule | undefined;

/** @tensorflow/tfjs on the wasm backend with one thread (deterministic), once per process. */
export async function trainingBackend(): Promise<TfModule> {
  if (loaded) return loaded;
  const tf: TfModule = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(1);
  wasm.setWasmPaths(`${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('segmenter training: the tfjs wasm backend did not start');
  await tf.ready();
  return (loaded = tf);
}

interface Conv {
  spec: { name: string; k: 1 | 3; ci: number; co: number };
  w: Tf.Variable;
  g?: Tf.Variable; b?: Tf.Variable; rm?: Tf.Variable; rv?: Tf.Variable; bias?: Tf.Variable;
}

export class TrainableUNet {
  private readonly convs: Conv[] = [];
  private readonly enc: Array<[Conv, Conv]> = [];
  private readonly mid: [Conv, Conv];
  private readonly dec: Array<[Conv, Conv]> = [];
  private readonly head: Conv;
  private readonly conv: (x: Tf.Tensor4D, w: Tf.Tensor4D) => Tf.Tensor4D;
  /** Batch statistics of the last training forward, applied to the running ones by commitBatchNorm. */
  private pending: Array<[Conv, Tf.Tensor1D, Tf.Tensor1D]> = [];
  readonly trainable: Tf.Variable[];

  /** He-normal weights from `random` (uniform 0..1), unit BN scale, zero shift. */
  constructor(private readonly tf: TfModule, readonly channels: number[], readonly inputChannels: number, random: () => number) {
    const normal = () => {
      let u = 0;
      while (u === 0) u = random();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    };
    const add = (name: string, ci: number, co: number, k: 1 | 3 = 3): Conv => {
      const n = k * k * ci * co, sd = Math.sqrt(2 / (k * k * ci)), a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = normal() * sd;
      const c: Conv = { spec: { name, k, ci, co }, w: tf.variable(tf.tensor4d(a, [k, k, ci, co]), true, `${name}/w`) };
      if (k === 3) {
        c.g = tf.variable(tf.ones([co]), true, `${name}/g`);
        c.b = tf.variable(tf.zeros([co]), true, `${name}/b`);
        c.rm = tf.variable(tf.zeros([co]), false, `${name}/rm`);
        c.rv = tf.variable(tf.ones([co]), false, `${name}/rv`);
      } else c.bias = tf.variable(tf.zeros([co]), true, `${name}/bias`);
      this.convs.push(c);
      return c;
    };
    const L = channels.length;
    let ci = inputChannels;
    for (let l = 0; l < L - 1; l++) {
      this.enc.push([add(`e${l}a`, ci, channels[l]), add(`e${l}b`, channels[l], channels[l])]);
      ci = channels[l];
    }
    this.mid = [add('ma', ci, channels[L - 1]), add('mb', channels[L - 1], channels[L - 1])];
    ci = channels[L - 1];
    for (let l = L - 2; l >= 0; l--) {
      this.dec.push([add(`d${l}a`, ci + channels[l], channels[l]), add(`d${l}b`, channels[l], channels[l])]);
      ci = channels[l];
    }
    this.head = add('head', ci, 1, 1);
    this.trainable = this.convs.flatMap((c) => (c.spec.k === 3 ? [c.w, c.g!, c.b!] : [c.w, c.bias!]));
    // 'same' stride-1 convolution with an explicit gradient (see the file's head).
    this.conv = tf.customGrad(((x: Tf.Tensor4D, w: Tf.Tensor4D, save: Tf.GradSaveFunc) => {
      save([x, w]);
      return {
        value: tf.conv2d(x, w, 1, 'same'),
        gradFunc: (dy: Tf.Tensor4D, saved: Tf.Tensor[]) => {
          const [xs, ws] = saved as [Tf.Tensor4D, Tf.Tensor4D];
          const [fh, fw, cin, cout] = ws.shape;
          const [b, h, wd] = xs.shape;
          const flipped = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as Tf.Tensor4D;
          const dx = tf.conv2d(dy, flipped, 1, 'same');
          let dw: Tf.Tensor4D;
          if (fh === 1) {
            dw = tf.reshape(tf.matMul(tf.transpose(tf.reshape(xs, [b * h * wd, cin])), tf.reshape(dy, [b * h * wd, cout])), [1, 1, cin, cout]);
          } else {
            const ph = (fh - 1) / 2, pw = (fw - 1) / 2;
            const xp = tf.pad(xs, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
            dw = tf.transpose(tf.conv2d(tf.transpose(xp, [3, 1, 2, 0]) as Tf.Tensor4D, tf.transpose(dy, [1, 2, 0, 3]) as Tf.Tensor4D, 1, 'valid'), [1, 2, 0, 3]);
          }
          return [dx, dw];
        },
      };
    }) as unknown as Parameters<TfModule["customGrad"]>[0]) as unknown as (x: Tf.Tensor4D, w: Tf.Tensor4D) => Tf.Tensor4D;
  }

  private block(c: Conv, x: Tf.Tensor4D): Tf.Tensor4D {
    const tf = this.tf;
    const y = this.conv(x, c.w as unknown as Tf.Tensor4D);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    this.pending.push([c, tf.keep(mean.clone()) as Tf.Tensor1D, tf.keep(variance.clone()) as Tf.Tensor1D]);
    return tf.relu(tf.add(tf.mul(tf.div(tf.sub(y, mean), tf.sqrt(tf.add(variance, BN_EPSILON))), c.g!), c.b!)) as Tf.Tensor4D;
  }

  /** Training forward (batch statistics): NHWC input, logits NHWC with one channel. */
  forward(x: Tf.Tensor4D): Tf.Tensor4D {
    const tf = this.tf;
    const skips: Tf.Tensor4D[] = [];
    let h = x;
    for (const [a, b] of this.enc) {
      h = this.block(b, this.block(a, h));
      skips.push(h);
      h = tf.maxPool(h, 2, 2, 'valid');
    }
    h = this.block(this.mid[1], this.block(this.mid[0], h));
    this.dec.forEach(([a, b], i) => {
      const s = skips[skips.length - 1 - i];
      h = tf.image.resizeNearestNeighbor(h, [s.shape[1], s.shape[2]]);
      h = this.block(b, this.block(a, tf.concat([h, s], 3)));
    });
    return tf.add(this.conv(h, this.head.w as unknown as Tf.Tensor4D), this.head.bias!);
  }

  /** Moves the running batch-norm statistics toward the last training batch's. */
  commitBatchNorm(): void {
    const tf = this.tf;
    for (const [c, m, v] of this.pending) {
      tf.tidy(() => {
        c.rm!.assign(tf.add(tf.mul(c.rm!, BN_MOMENTUM), tf.mul(m, 1 - BN_MOMENTUM)));
        c.rv!.assign(tf.add(tf.mul(c.rv!, BN_MOMENTUM), tf.mul(v, 1 - BN_MOMENTUM)));
      });
      m.dispose();
      v.dispose();
    }
    this.pending = [];
  }

  async weights(): Promise<NetWeights> {
    const data = async (v: Tf.Variable | undefined) => Array.from(await v!.data());
    const convs: ConvWeights[] = [];
    for (const c of this.convs) {
      const o: ConvWeights = { ...c.spec, w: await data(c.w) };
      if (c.spec.k === 3) { o.g = await data(c.g); o.b = await data(c.b); o.rm = await data(c.rm); o.rv = await data(c.rv); }
      else o.bias = await data(c.bias);
      convs.push(o);
    }
    return { channels: [...this.channels], inputChannels: this.inputChannels, convs };
  }

  dispose(): void {
    for (const c of this.convs) for (const v of [c.w, c.g, c.b, c.rm, c.rv, c.bias]) v?.dispose();
    this.commitBatchNorm();
  }
}

/** Binary cross-entropy plus soft Dice (per image, smoothed by 1), the mean over the batch. */
export function segmentationLoss(tf: TfModule, y: Tf.Tensor4D, logits: Tf.Tensor4D): Tf.Scalar {
  const bce = tf.losses.sigmoidCrossEntropy(y, logits);
  const p = tf.sigmoid(logits);
  const inter = tf.sum(tf.mul(p, y), [1, 2, 3]);
  const den = tf.add(tf.sum(p, [1, 2, 3]), tf.sum(y, [1, 2, 3]));
  return tf.add(bce, tf.mean(tf.sub(1, tf.div(tf.add(tf.mul(2, inter), 1), tf.add(den, 1))))) as Tf.Scalar;
}

/** Batch norm folded into each convolution, in graph order (encoder, middle, decoder, head). */
export function foldBatchNorm(net: NetWeights): FoldedConv[] {
  return net.convs.map((c) => {
    const w = Float32Array.from(c.w), b = new Float32Array(c.co);
    if (c.k === 3) {
      for (let o = 0; o < c.co; o++) {
        const s = c.g![o] / Math.sqrt(c.rv![o] + BN_EPSILON);
        b[o] = c.b![o] - c.rm![o] * s;
        for (let i = o; i < w.length; i += c.co) w[i] *= s;
      }
    } else b.set(c.bias!);
    return { name: c.name, k: c.k, ci: c.ci, co: c.co, w, b, relu: c.k === 3 };
  });
}
