/**
 * How to start a worker thread whose entry module sits beside the caller: the compiled `<name>.js` when running
 * from dist/; from TypeScript sources (tests, `tsx`) the `<name>.ts` entry through tsx's loader, registered inside
 * the worker (a worker does not inherit the parent's loader hooks).
 */
import {existsSync} from 'node:fs';
import {createRequire} from 'node:module';
import {fileURLToPath, pathToFileURL} from 'node:url';

/** `callerUrl`: the caller's `import.meta.url`; `name`: the entry's file name without extension. */
export function workerEntry(callerUrl: string, name: string): {source: string | URL; eval: boolean} {
  const js = new URL(`./${name}.js`, callerUrl);
  if (!callerUrl.endsWith('.ts') && existsSync(fileURLToPath(js))) return {source: js, eval: false};
  const ts = new URL(`./${name}.ts`, callerUrl).href;
  const tsx = pathToFileURL(createRequire(callerUrl).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  return {source: `import(${JSON.stringify(tsx)}).then(({register}) => { register(); return import(${JSON.stringify(ts)}); });`, eval: true};
}
