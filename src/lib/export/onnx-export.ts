/**
 * TF.js (tf.layers) -> ONNX for the layers the zoo uses: Conv2D, DepthwiseConv2D (a grouped Conv), BatchNormalization, ReLU, MaxPooling2D,
 * GlobalAveragePooling2D, Dense (+ softmax), Dropout (dropped at inference), Flatten (only after global pooling).
 * The ONNX graph takes NCHW `pixel_values` in [0, 1] and outputs `logits` (the softmax is left to the consumer, as
 * Hugging Face image classifiers do), written with natix's own ONNX encoder.
 */
import type {LayersModel} from '@tensorflow/tfjs';
import {encodeOnnxModel, floatTensor, type OnnxNode, type OnnxTensor} from '../onnx/model.js';

export interface ExportedGraph {
  onnx: Uint8Array;
  inputSize: number;
  classes: number;
}

function transposeConvKernel(data: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let h = 0; h < kh!; h++) for (let w = 0; w < kw!; w++) for (let i = 0; i < ci!; i++) for (let o = 0; o < co!; o++) out[((o * ci! + i) * kh! + h) * kw! + w] = data[((h * kw! + w) * ci! + i) * co! + o]!;
  return out;
}

/** Converts a Sequential model built from the supported layers; throws on anything else. */
export async function tfjsToOnnx(model: LayersModel, producerVersion: string): Promise<ExportedGraph> {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  const inputShape = model.inputs[0]!.shape as Array<number | null>;
  const size = inputShape[1]!;
  let current = 'pixel_values';
  let spatial = true;
  let classes = 0;
  const read = async (layer: LayersModel['layers'][number], name: string): Promise<{data: Float32Array; shape: number[]}> => {
    const w = layer.weights.find((v) => v.originalName.endsWith(`/${name}`) || v.name.endsWith(`/${name}`))!;
    if (!w) throw new Error(`layer ${layer.name} has no weight ${name}`);
    return {data: (await w.read().data()) as Float32Array, shape: w.shape as number[]};
  };
  for (const layer of model.layers) {
    const cfg = layer.getConfig() as Record<string, unknown>;
    const cls = layer.getClassName();
    const out = `${layer.name}_out`;
    switch (cls) {
      case 'Conv2D': {
        const kernel = await read(layer, 'kernel');
        const [kh, kw, ci, co] = kernel.shape as [number, number, number, number];
        const strides = (cfg.strides as number[]) ?? [1, 1];
        const dilation = (cfg.dilationRate as number[] | number) ?? 1;
        if ((Array.isArray(dilation) ? dilation : [dilation]).some((d) => d !== 1)) throw new Error(`${layer.name}: dilated convolutions are not supported by the exporter`);
        const inputs = [current, `${layer.name}_W`];
        initializers.push(floatTensor(`${layer.name}_W`, [co, ci, kh, kw], transposeConvKernel(kernel.data, kernel.shape)));
        if (cfg.useBias) {
          const bias = await read(layer, 'bias');
          initializers.push(floatTensor(`${layer.name}_B`, [co], bias.data));
          inputs.push(`${layer.name}_B`);
        }
        const attributes: Record<string, number[] | string> = {kernel_shape: [kh, kw], strides};
        if (cfg.padding === 'same') {
          if (strides.some((s) => s !== 1)) attributes.auto_pad = 'SAME_UPPER';
          else attributes.pads = [Math.floor((kh - 1) / 2), Math.floor((kw - 1) / 2), Math.ceil((kh - 1) / 2), Math.ceil((kw - 1) / 2)];
        }
        nodes.push({opType: 'Conv', inputs, outputs: [out], name: layer.name, attributes});
        if (cfg.activation && cfg.activation !== 'linear') {
          if (cfg.activation !== 'relu') throw new Error(`${layer.name}: activation ${String(cfg.activation)} is not supported`);
          nodes.push({opType: 'Relu', inputs: [out], outputs: [`${out}_relu`]});
          current = `${out}_relu`;
          continue;
        }
        break;
      }
      case 'DepthwiseConv2D': {
        const kernel = await read(layer, 'depthwise_kernel');
        const [kh, kw, c, m] = kernel.shape as [number, number, number, number];
        const strides = (cfg.strides as number[]) ?? [1, 1];
        // [kh, kw, C, M] -> ONNX grouped Conv weights [C*M, 1, kh, kw], group = C.
        const w = new Float32Array(kernel.data.length);
        for (let h = 0; h < kh; h++) for (let x = 0; x < kw; x++) for (let ci = 0; ci < c; ci++) for (let mi = 0; mi < m; mi++) w[(ci * m + mi) * kh * kw + h * kw + x] = kernel.data[((h * kw + x) * c + ci) * m + mi]!;
        initializers.push(floatTensor(`${layer.name}_W`, [c * m, 1, kh, kw], w));
        const inputs = [current, `${layer.name}_W`];
        if (cfg.useBias) {
          const bias = await read(layer, 'bias');
          initializers.push(floatTensor(`${layer.name}_B`, [c * m], bias.data));
          inputs.push(`${layer.name}_B`);
        }
        const attributes: Record<string, number | number[] | string> = {kernel_shape: [kh, kw], strides, group: c};
        if (cfg.padding === 'same') {
          if (strides.some((v) => v !== 1)) attributes.auto_pad = 'SAME_UPPER';
          else attributes.pads = [Math.floor((kh - 1) / 2), Math.floor((kw - 1) / 2), Math.ceil((kh - 1) / 2), Math.ceil((kw - 1) / 2)];
        }
        nodes.push({opType: 'Conv', inputs, outputs: [out], name: layer.name, attributes});
        break;
      }
      case 'BatchNormalization': {
        for (const [name, onnxName] of [['gamma', 'scale'], ['beta', 'B'], ['moving_mean', 'mean'], ['moving_variance', 'var']] as const) {
          const w = await read(layer, name);
          initializers.push(floatTensor(`${layer.name}_${onnxName}`, w.shape, w.data));
        }
        nodes.push({opType: 'BatchNormalization', inputs: [current, `${layer.name}_scale`, `${layer.name}_B`, `${layer.name}_mean`, `${layer.name}_var`], outputs: [out], name: layer.name, attributes: {epsilon: {float: Number(cfg.epsilon ?? 1e-3)}}});
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const act = cls === 'ReLU' ? 'relu' : String(cfg.activation);
        if (act !== 'relu') throw new Error(`${layer.name}: activation ${act} is not supported`);
        nodes.push({opType: 'Relu', inputs: [current], outputs: [out], name: layer.name});
        break;
      }
      case 'MaxPooling2D': {
        const pool = (cfg.poolSize as number[]) ?? [2, 2];
        const strides = (cfg.strides as number[]) ?? pool;
        nodes.push({opType: 'MaxPool', inputs: [current], outputs: [out], name: layer.name, attributes: {kernel_shape: pool, strides, ...(cfg.padding === 'same' ? {auto_pad: 'SAME_UPPER'} : {})}});
        break;
      }
      case 'GlobalAveragePooling2D':
        nodes.push({opType: 'GlobalAveragePool', inputs: [current], outputs: [`${out}_pool`], name: layer.name}, {opType: 'Flatten', inputs: [`${out}_pool`], outputs: [out]});
        spatial = false;
        break;
      case 'Dropout':
        continue;
      case 'Flatten':
        if (spatial) throw new Error(`${layer.name}: Flatten over a feature map is not supported (NCHW vs NHWC order); use global pooling`);
        continue;
      case 'Dense': {
        const kernel = await read(layer, 'kernel');
        const bias = await read(layer, 'bias');
        initializers.push(floatTensor(`${layer.name}_W`, kernel.shape, kernel.data), floatTensor(`${layer.name}_B`, bias.shape, bias.data));
        nodes.push({opType: 'Gemm', inputs: [current, `${layer.name}_W`, `${layer.name}_B`], outputs: [out], name: layer.name});
        classes = kernel.shape[1]!;
        const act = String(cfg.activation ?? 'linear');
        if (act === 'relu') {
          nodes.push({opType: 'Relu', inputs: [out], outputs: [`${out}_relu`]});
          current = `${out}_relu`;
          continue;
        }
        if (act !== 'softmax' && act !== 'linear') throw new Error(`${layer.name}: activation ${act} is not supported`);
        break; // softmax: left to the consumer (the graph outputs logits)
      }
      default:
        throw new Error(`layer ${layer.name} (${cls}) is not supported by the ONNX exporter`);
    }
    current = out;
  }
  nodes.push({opType: 'Identity', inputs: [current], outputs: ['logits']});
  return {
    onnx: encodeOnnxModel({
      inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 3, size, size]}],
      outputs: [{name: 'logits', type: 'float', shape: ['batch', classes]}],
      initializers,
      nodes,
      producerVersion,
      docString: `natix export of ${model.name}`,
    }),
    inputSize: size,
    classes,
  };
}
