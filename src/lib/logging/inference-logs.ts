/**
 * The cascade's JSON-lines logs (pino): `inference.log` one line per image, `errors.log` failures only,
 * `performance.log` run summaries. Written asynchronously; `close()` flushes them.
 */
import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {pino, type Logger} from 'pino';

export interface InferenceLogs {
  inference: Logger;
  errors: Logger;
  performance: Logger;
  dir: string;
  close(): Promise<void>;
}

function fileLogger(file: string): {logger: Logger; stream: ReturnType<typeof pino.destination>} {
  const stream = pino.destination({dest: file, sync: false, mkdir: true});
  // No pid/hostname: the lines describe images, not processes; `time` is epoch ms as pino writes it.
  return {logger: pino({base: undefined, messageKey: 'event'}, stream), stream};
}

export function openInferenceLogs(dir: string): InferenceLogs {
  mkdirSync(dir, {recursive: true});
  const inference = fileLogger(path.join(dir, 'inference.log'));
  const errors = fileLogger(path.join(dir, 'errors.log'));
  const performance = fileLogger(path.join(dir, 'performance.log'));
  return {
    dir,
    inference: inference.logger,
    errors: errors.logger,
    performance: performance.logger,
    async close() {
      for (const s of [inference.stream, errors.stream, performance.stream]) {
        await new Promise<void>((resolve) => {
          s.flush(() => {
            s.end();
            resolve();
          });
        });
      }
    },
  };
}
