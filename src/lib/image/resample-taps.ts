/** Pillow's per-axis resampling taps in fixed point: shared by the JavaScript passes and the WebAssembly ones. */

export interface Taps {
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
}
