/**
 * The model zoo: small convolutional classifiers built with tf.layers, NHWC input in [0, 1], softmax over classes.
 * Every initializer is seeded, so the same seed builds the same weights. Only layers the ONNX exporter converts
 * are used (Conv2D, BatchNormalization, ReLU, MaxPooling2D, GlobalAveragePooling2D, Dense).
 */
import type {Tf} from '../runtime/tfjs.js';

export type Architecture = 'tiny-cnn' | 'small-cnn';

export interface ModelSpec {
  architecture: Architecture;
  size: number;
  width: number;
  classes: number;
  seed: number;
}

export function buildModel(tf: Tf, spec: ModelSpec): import('@tensorflow/tfjs').Sequential {
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
        ...(i === 0 ? {inputShape: [spec.size, spec.size, 3]} : {}),
      }),
    );
    model.add(tf.layers.batchNormalization({name: `bn${i + 1}`, momentum: 0.9, epsilon: 1e-3}));
    model.add(tf.layers.reLU({name: `relu${i + 1}`}));
    if (i < blocks.length - 1) model.add(tf.layers.maxPooling2d({name: `pool${i + 1}`, poolSize: 2, strides: 2}));
  });
  model.add(tf.layers.globalAveragePooling2d({name: 'gap'}));
  model.add(tf.layers.dense({name: 'head', units: spec.classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed++})}));
  return model;
}
