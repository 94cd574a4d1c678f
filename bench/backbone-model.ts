/**
 * A ViT-S-shaped stand-in backbone for the head-training benches (no model can be downloaded here): pixel_values
 * [B,3,224,224] -> 16x16 patch embedding (384) -> `blocks` MLP blocks (LayerNorm-free: MatMul 384->1536, Relu,
 * MatMul 1536->384, residual Add) -> last_hidden_state [B,196,384]. About 0.46 GFLOP per block per image, so
 * inference dominates per-image cost as it does for DINOv2-small, written with its preprocessor_config.json.
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {encodeOnnxModel, floatTensor, int64Tensor, type OnnxNode} from '../src/lib/onnx/model.js';
import {SeededRandom} from '../src/lib/util/random.js';

export async function writeVitLikeBackbone(dir: string, blocks = 4): Promise<string> {
  const rng = new SeededRandom('bench-backbone');
  const rand = (n: number, scale: number): Float32Array => Float32Array.from({length: n}, () => rng.uniform(-scale, scale));
  const nodes: OnnxNode[] = [
    {opType: 'Conv', inputs: ['pixel_values', 'patch', 'patch_b'], outputs: ['p'], attributes: {kernel_shape: [16, 16], strides: [16, 16]}},
    {opType: 'Reshape', inputs: ['p', 'tokens_shape'], outputs: ['r']},
    {opType: 'Transpose', inputs: ['r'], outputs: ['h0'], attributes: {perm: [0, 2, 1]}},
  ];
  const initializers = [floatTensor('patch', [384, 3, 16, 16], rand(384 * 768, 0.036)), floatTensor('patch_b', [384], rand(384, 0.01)), int64Tensor('tokens_shape', [3], [0, 384, 196])];
  for (let b = 0; b < blocks; b++) {
    initializers.push(floatTensor(`w1_${b}`, [384, 1536], rand(384 * 1536, 0.05)), floatTensor(`w2_${b}`, [1536, 384], rand(1536 * 384, 0.025)));
    nodes.push(
      {opType: 'MatMul', inputs: [`h${b}`, `w1_${b}`], outputs: [`u${b}`]},
      {opType: 'Relu', inputs: [`u${b}`], outputs: [`a${b}`]},
      {opType: 'MatMul', inputs: [`a${b}`, `w2_${b}`], outputs: [`d${b}`]},
      {opType: 'Add', inputs: [`h${b}`, `d${b}`], outputs: [b === blocks - 1 ? 'last_hidden_state' : `h${b + 1}`]},
    );
  }
  await mkdir(dir, {recursive: true});
  await writeFile(
    path.join(dir, 'model.onnx'),
    encodeOnnxModel({inputs: [{name: 'pixel_values', type: 'float', shape: ['batch_size', 3, 224, 224]}], outputs: [{name: 'last_hidden_state', type: 'float', shape: ['batch_size', 196, 384]}], initializers, nodes}),
  );
  // DINOv2's processor: shortest edge 256, bicubic, centre crop 224, ImageNet mean/std.
  await writeFile(
    path.join(dir, 'preprocessor_config.json'),
    JSON.stringify({image_processor_type: 'BitImageProcessor', do_resize: true, size: {shortest_edge: 256}, resample: 3, do_center_crop: true, crop_size: {height: 224, width: 224}, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225]}, null, 2),
  );
  return dir;
}
