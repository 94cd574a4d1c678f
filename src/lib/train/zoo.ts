/**
 * The model zoo: small convolutional classifiers built with tf.layers, NHWC input in [0, 1], softmax over classes.
 * Every initializer is seeded, so the same seed builds the same weights. Only layers the ONNX exporter converts
 * are used (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, MaxPooling2D, GlobalAveragePooling2D, Dense).
 *   tiny-cnn / small-cnn: conv-BN-ReLU blocks with max pooling
 *   mobilenet: MobileNet-v1 style - a strided stem, then depthwise-separable blocks (3x3 depthwise, BN, ReLU,
 *              1x1 pointwise, BN, ReLU) - with a width multiplier
 */
import type {Tf} from '../runtime/tfjs.js';

export type Architecture = 'tiny-cnn' | 'small-cnn' | 'mobilenet';

export interface ModelSpec {
  architecture: Architecture;
  size: number;
  width: number;
  classes: number;
  seed: number;
  /** L2 penalty on convolution and dense kernels (the optimizer's weight decay); 0 = none. */
  weightDecay?: number;
}

/** The kernel regularizer implementing weight decay, when asked for. */
function decay(tf: Tf, spec: ModelSpec): {kernelRegularizer?: ReturnType<typeof tf.regularizers.l2>} {
  return spec.weightDecay ? {kernelRegularizer: tf.regularizers.l2({l2: spec.weightDecay})} : {};
}

const MOBILENET_BLOCKS: Array<[number, number]> = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
];

function buildMobileNet(tf: Tf, spec: ModelSpec): import('@tensorflow/tfjs').Sequential {
  let seed = spec.seed;
  const init = (): ReturnType<typeof tf.initializers.heNormal> => tf.initializers.heNormal({seed: seed++});
  const ch = (n: number): number => Math.max(8, Math.round(n * spec.width));
  const model = tf.sequential({name: 'mobilenet'});
  model.add(tf.layers.conv2d({name: 'stem', inputShape: [spec.size, spec.size, 3], filters: ch(32), kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(), ...decay(tf, spec)}));
  model.add(tf.layers.batchNormalization({name: 'stem_bn', momentum: 0.9, epsilon: 1e-3}));
  model.add(tf.layers.reLU({name: 'stem_relu'}));
  MOBILENET_BLOCKS.forEach(([filters, stride], i) => {
    model.add(tf.layers.depthwiseConv2d({name: `dw${i + 1}`, kernelSize: 3, strides: stride, padding: 'same', depthMultiplier: 1, useBias: false, depthwiseInitializer: init()}));
    model.add(tf.layers.batchNormalization({name: `dw${i + 1}_bn`, momentum: 0.9, epsilon: 1e-3}));
    model.add(tf.layers.reLU({name: `dw${i + 1}_relu`}));
    model.add(tf.layers.conv2d({name: `pw${i + 1}`, filters: ch(filters), kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: init(), ...decay(tf, spec)}));
    model.add(tf.layers.batchNormalization({name: `pw${i + 1}_bn`, momentum: 0.9, epsilon: 1e-3}));
    model.add(tf.layers.reLU({name: `pw${i + 1}_relu`}));
  });
  model.add(tf.layers.globalAveragePooling2d({name: 'gap'}));
  model.add(tf.layers.dense({name: 'head', units: spec.classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed++}), ...decay(tf, spec)}));
  return model;
}

export function buildModel(tf: Tf, spec: ModelSpec): import('@tensorflow/tfjs').Sequential {
  if (spec.architecture === 'mobilenet') return buildMobileNet(tf, spec);
  const blocks = spec.architecture === 'tiny-cnn' ? [8, 16, 32] : [16, 32, 64, 96];
  let seed = spec.seed;
  const init = (): ReturnType<typeof tf.initializers.heNormal> => tf.initializers.heNormal({seed: seed++});
  const model = tf.sequential({name: spec.architecture.replace('-', '_')});
  blocks.forEach((filters, i) => {
    const channels = Math.max(4, Math.round(filters * spec.width));
    model.add(
      tf.layers.conv2d({
        name: `conv${i + 1}`,
        filters: channels,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(),
        ...decay(tf, spec),
        ...(i === 0 ? {inputShape: [spec.size, spec.size, 3]} : {}),
      }),
    );
    model.add(tf.layers.batchNormalization({name: `bn${i + 1}`, momentum: 0.9, epsilon: 1e-3}));
    model.add(tf.layers.reLU({name: `relu${i + 1}`}));
    if (i < blocks.length - 1) model.add(tf.layers.maxPooling2d({name: `pool${i + 1}`, poolSize: 2, strides: 2}));
  });
  model.add(tf.layers.globalAveragePooling2d({name: 'gap'}));
  model.add(tf.layers.dense({name: 'head', units: spec.classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed++}), ...decay(tf, spec)}));
  return model;
}
