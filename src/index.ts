/** The natix library: everything the commands use, for programmatic use. */
export * from './lib/errors.js';
export * from './lib/data/sample.js';
export {openDataset, detectFormat} from './lib/data/open.js';
export {decodeImage} from './lib/image/decode.js';
