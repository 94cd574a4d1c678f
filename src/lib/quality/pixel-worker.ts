/**
 * The worker-thread side of PixelWorkPool (pixel-pool.ts): computes an image's properties, or its full-resolution
 * brightness percentiles, from the pixels it is sent, and answers with the same numbers the main thread would get.
 */
import {parentPort} from 'node:worker_threads';
import type {PixelRequest, PixelResponse} from './pixel-pool.js';
import {computeProperties, fullResolutionBrightness, PropertiesScratch} from './properties.js';

const scratch = new PropertiesScratch();
const port = parentPort!;
port.on('message', (request: PixelRequest) => {
  let response: PixelResponse;
  try {
    const data = Buffer.from(request.data.buffer, request.data.byteOffset, request.data.byteLength);
    response =
      request.kind === 'properties'
        ? {id: request.id, properties: computeProperties({...request.image, data, channels: 3}, scratch)}
        : {id: request.id, brightness: fullResolutionBrightness(data, request.thumbnail, request.dark, request.light)};
  } catch (error) {
    response = {id: request.id, error: error instanceof Error ? error.message : String(error)};
  }
  port.postMessage(response);
});
