#!/usr/bin/env node
// Development entry: same as run.js but against a fresh build (`npm run build` first).
import {execute} from '@oclif/core';

await execute({development: true, dir: import.meta.url});
