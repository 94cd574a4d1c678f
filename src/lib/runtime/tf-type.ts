/**
 * The TensorFlow.js namespace type, in a module of its own so that backend setup (runtime/tfjs.ts) and the kernels
 * it registers (runtime/wasm-kernels.ts) can both name it without importing each other.
 */
export type Tf = typeof import('@tensorflow/tfjs');
