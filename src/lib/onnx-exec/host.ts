/**
 * N-dimensional array arithmetic in JavaScript for host values: what the shape sub-graphs of exported models need
 * (broadcasting elementwise ops, transpose, slice, gather, concat), and constant folding at load time.
 */
import {OpError} from './kernel.js';
import {host, sizeOf, type ElemType, type HostValue} from './values.js';

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

/** numpy broadcasting of shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new OpError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Index into `dims`-shaped data for each flat position of a broadcast `out` shape. */
function broadcastIndex(dims: readonly number[], out: readonly number[]): Int32Array {
  const n = sizeOf(out);
  const idx = new Int32Array(n);
  const strides = stridesOf(dims);
  const offset = out.length - dims.length;
  const outStrides = stridesOf(out);
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    let src = 0;
    for (let d = 0; d < out.length; d++) {
      const coord = Math.floor(rest / outStrides[d]!);
      rest -= coord * outStrides[d]!;
      const k = d - offset;
      if (k >= 0 && dims[k] !== 1) src += coord * strides[k]!;
    }
    idx[flat] = src;
  }
  return idx;
}

export function hostElementwise(inputs: HostValue[], type: ElemType, f: (...xs: number[]) => number): HostValue {
  const out = inputs.reduce<number[]>((s, v) => broadcastShapes(s, v.dims), []);
  const maps = inputs.map((v) => broadcastIndex(v.dims, out));
  const n = sizeOf(out);
  const values = new Float64Array(n);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) args[k] = inputs[k]!.data[maps[k]![i]!]!;
    values[i] = f(...args);
  }
  return host(type, out, values);
}

export function hostTranspose(v: HostValue, perm: readonly number[]): HostValue {
  const dims = perm.map((p) => v.dims[p]!);
  const inStrides = stridesOf(v.dims);
  const outStrides = stridesOf(dims);
  const n = sizeOf(dims);
  const values = new Float64Array(n);
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    let src = 0;
    for (let d = 0; d < dims.length; d++) {
      const c = Math.floor(rest / outStrides[d]!);
      rest -= c * outStrides[d]!;
      src += c * inStrides[perm[d]!]!;
    }
    values[flat] = v.data[src]!;
  }
  return host(v.type, dims, values);
}

/** Gathers, along every axis, the listed coordinates (a general strided slice / take). */
export function hostTake(v: HostValue, coords: number[][]): HostValue {
  const dims = coords.map((c) => c.length);
  const inStrides = stridesOf(v.dims);
  const outStrides = stridesOf(dims);
  const n = sizeOf(dims);
  const values = new Float64Array(n);
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    let src = 0;
    for (let d = 0; d < dims.length; d++) {
      const c = Math.floor(rest / outStrides[d]!);
      rest -= c * outStrides[d]!;
      src += coords[d]![c]! * inStrides[d]!;
    }
    values[flat] = v.data[src]!;
  }
  return host(v.type, dims, values);
}

export function hostConcat(values: HostValue[], ax: number): HostValue {
  const first = values[0]!;
  const dims = [...first.dims];
  dims[ax] = values.reduce((s, v) => s + v.dims[ax]!, 0);
  const outer = sizeOf(first.dims.slice(0, ax));
  const out = new Float64Array(sizeOf(dims));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const v of values) {
      const chunk = sizeOf(v.dims.slice(ax));
      for (let k = 0; k < chunk; k++) out[o++] = v.data[i * chunk + k]!;
    }
  }
  return host(first.type, dims, out);
}
