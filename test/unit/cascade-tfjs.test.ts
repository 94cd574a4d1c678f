import {mkdir, mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {loadCascade} from '../../src/lib/cascade/index.js';
import {decodeImage} from '../../src/lib/image/decode.js';
import {preprocessImage} from '../../src/lib/image/preprocess.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';

describe('TensorFlow.js models in the cascade', () => {
  it('loads a layers model.json with its weights and answers like the model itself', async () => {
    const {tf} = await loadTfjs('wasm');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-tfjs-'));
    const model = tf.sequential();
    model.add(tf.layers.conv2d({inputShape: [24, 24, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}));
    model.add(tf.layers.globalAveragePooling2d({}));
    model.add(tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 2})}));
    const modelDir = path.join(dir, 'tfjs-model');
    await mkdir(modelDir, {recursive: true});
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        await writeFile(path.join(modelDir, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
        await writeFile(path.join(modelDir, 'model.json'), JSON.stringify({format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}]}));
        return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
      }),
    );
    const image = path.join(dir, 'x.png');
    await sharp({create: {width: 40, height: 30, channels: 3, background: {r: 200, g: 120, b: 40}}}).png().toFile(image);
    const cascade = await loadCascade(path.join(modelDir, 'model.json'), {device: 'cpu'});
    const described = cascade.describe().stages[0]!.models[0]!;
    expect(described).toMatchObject({kind: 'tfjs', input: '24x24 nhwc stretch'});
    const result = await cascade.predict(image);
    // Independently: the same preprocessing, then the in-memory model.
    const tensor = await preprocessImage(await decodeImage(image), cascade.models()[0]!.preprocessing);
    const expected = tf.tidy(() => (model.predict(tf.tensor4d(tensor.data as Float32Array, [1, 24, 24, 3])) as import('@tensorflow/tfjs').Tensor).dataSync());
    // The model ends in a softmax: `auto` decoding takes the probability of index 1 as it is.
    expect(result.probability).toBeCloseTo(expected[1]!, 5);
    await cascade.close();
  });
});

