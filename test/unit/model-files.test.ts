/**
 * The files onnxruntime opens by path (a model and the external data files it names) are checked before a session
 * is created: regular files only, inside the model's folder. A valid external-data model still loads and runs.
 */
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {openSession, ort} from '../../src/lib/cascade/onnx-session.js';
import {NatixError} from '../../src/lib/errors.js';
import {assertOnnxModelFiles, onnxExternalDataLocations} from '../../src/lib/onnx/external-data.js';
import {UserFileError} from '../../src/lib/util/user-files.js';
import {mkfifo} from '../helpers/corrupt.js';
import {externalDataModel, redVsBlueLogitsModel} from '../helpers/models.js';

async function modelDir(location: string, writeData = true): Promise<{dir: string; file: string}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-model-files-'));
  const {model, data} = externalDataModel(location);
  const file = path.join(dir, 'model.onnx');
  await writeFile(file, model);
  if (writeData) {
    await mkdir(path.dirname(path.resolve(dir, location)), {recursive: true});
    await writeFile(path.resolve(dir, location), data);
  }
  return {dir, file};
}

describe('external data files of an ONNX model', () => {
  it('finds the locations without reading the weights, and a valid external-data model still loads and runs', async () => {
    const {file} = await modelDir('model.onnx_data');
    expect(await onnxExternalDataLocations(file)).toEqual(['model.onnx_data']);
    const inline = path.join(path.dirname(file), 'inline.onnx');
    await writeFile(inline, redVsBlueLogitsModel(3));
    expect(await onnxExternalDataLocations(inline)).toEqual([]);
    const {session} = await openSession(file, {device: 'cpu', threads: 1});
    const out = await session.run({x: new ort.Tensor('float32', Float32Array.from([1]), [1, 1])});
    expect(out.y!.data[0]).toBeCloseTo(1.25, 6); // the weight came from model.onnx_data
    await session.release();
  });

  it('a FIFO, a folder or a symlink to a FIFO as the external data file is refused, naming it', async () => {
    const fifo = await modelDir('model.onnx_data', false);
    mkfifo(path.join(fifo.dir, 'model.onnx_data'));
    await expect(assertOnnxModelFiles(fifo.file)).rejects.toThrow(/model\.onnx_data is a FIFO/);
    await expect(openSession(fifo.file, {device: 'cpu', threads: 1})).rejects.toBeInstanceOf(UserFileError);
    const folder = await modelDir('weights/w.bin', false);
    await mkdir(path.join(folder.dir, 'weights', 'w.bin'), {recursive: true});
    await expect(assertOnnxModelFiles(folder.file)).rejects.toThrow(/w\.bin is a directory/);
  }, 20_000);

  it('a location outside the model folder (../, absolute) is refused before anything is opened', async () => {
    for (const location of ['../elsewhere.bin', '/etc/hostname', 'a/../../x.bin']) {
      const {file} = await modelDir('model.onnx_data');
      const {model} = externalDataModel(location);
      await writeFile(file, model);
      const error = await assertOnnxModelFiles(file).catch((e: unknown) => e);
      expect(error, location).toBeInstanceOf(NatixError);
      expect((error as NatixError).exitCode).toBe(2);
      expect((error as NatixError).message).toContain(`"${location}", which is not inside the model's folder`);
    }
  });

  it('a file that is not ONNX is left to onnxruntime (which says so); a FIFO model is refused', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-model-files-'));
    await writeFile(path.join(dir, 'junk.onnx'), Buffer.from('not a model at all \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', 'latin1'));
    await expect(assertOnnxModelFiles(path.join(dir, 'junk.onnx'))).resolves.toBeUndefined();
    mkfifo(path.join(dir, 'fifo.onnx'));
    await expect(assertOnnxModelFiles(path.join(dir, 'fifo.onnx'))).rejects.toThrow(/fifo\.onnx is a FIFO/);
  });
});
