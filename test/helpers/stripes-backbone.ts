/**
 * A backbone whose last block discards what the task needs, for the fine-tuning tests: the stem computes
 * horizontal-edge, vertical-edge and two blur channels of the (grey) image; the block's 1x1 convolution passes only
 * the blur channels to the pooled features. Horizontal and vertical stripes have the same mean brightness, so a
 * head on the frozen features cannot separate them, while training the last block can.
 */
import {floatTensor, type OnnxModelSpec} from '../../src/lib/onnx/model.js';

/** `channels` 1 (grey input) or 3 (RGB, each channel a third of the grey kernel); input `size` x `size`. */
export function stripesBackbone(channels: 1 | 3 = 1, size = 8): OnnxModelSpec {
  const edgeH = [-1, -1, -1, 2, 2, 2, -1, -1, -1];
  const edgeV = [-1, 2, -1, -1, 2, -1, -1, 2, -1];
  const blur = new Array<number>(9).fill(1 / 9);
  const perChannel = (k: number[]): number[] => (channels === 1 ? k : [...k, ...k, ...k].map((v) => v / 3));
  const mix = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0.5, 0.5, 0, 0, 0.5, -0.5]; // [out 4][in 4]: no edge channel reaches the features
  return {
    graphName: 'stripes-backbone',
    opset: 13,
    inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', channels, size, size]}],
    outputs: [{name: 'logits', type: 'float', shape: ['batch', 2]}],
    initializers: [
      floatTensor('stem.weight', [4, channels, 3, 3], [...perChannel(edgeH), ...perChannel(edgeV), ...perChannel(blur), ...perChannel(blur)]),
      floatTensor('blocks.0.conv.weight', [4, 4, 1, 1], mix),
      floatTensor('blocks.0.conv.bias', [4], [0.1, 0.1, 0.1, 0.1]),
      floatTensor('head.weight', [2, 4], [0.1, -0.1, 0.05, 0.02, -0.03, 0.04, 0.1, -0.1]),
      floatTensor('head.bias', [2], [0, 0]),
    ],
    nodes: [
      {name: '/stem/Conv', opType: 'Conv', inputs: ['pixel_values', 'stem.weight'], outputs: ['stem_conv'], attributes: {pads: [1, 1, 1, 1]}},
      {name: '/stem/Relu', opType: 'Relu', inputs: ['stem_conv'], outputs: ['stem']},
      {name: '/blocks/blocks.0/conv/Conv', opType: 'Conv', inputs: ['stem', 'blocks.0.conv.weight', 'blocks.0.conv.bias'], outputs: ['b0']},
      {name: '/blocks/blocks.0/Relu', opType: 'Relu', inputs: ['b0'], outputs: ['b0r']},
      {name: '/blocks/blocks.0/pool/GlobalAveragePool', opType: 'GlobalAveragePool', inputs: ['b0r'], outputs: ['pooled']},
      {name: '/Flatten', opType: 'Flatten', inputs: ['pooled'], outputs: ['features']},
      {name: '/head/Gemm', opType: 'Gemm', inputs: ['features', 'head.weight', 'head.bias'], outputs: ['logits'], attributes: {transB: 1}},
    ],
  };
}
