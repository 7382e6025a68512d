// Small memory-bound kernels for tfjs-backend-wasm, in wasm SIMD, beside bmm.c in one module.
// tfjs-wasm 4.22 runs these in JavaScript one row at a time (Slice and SplitV first copy their
// whole input out of the heap; Concat calls subarray/set per row) or transposes before a
// reduction (Sum over leading axes); the optimiser step is ~14 element-wise kernels per
// parameter. Each function here is one pass over tfjs's own memory. Same rules as bmm.c: no
// stack, no data segment, no globals; every pointer is into tfjs-wasm's heap.
#include <wasm_simd128.h>

typedef float f32;
typedef int i32;

// rows x len 4-byte elements: dst[r * dstStride + j] = src[r * srcStride + j]. Bit-exact (any
// 4-byte dtype): the copies are integer loads and stores.
__attribute__((export_name("copy_rows"))) void copy_rows(const i32* src, i32* dst, int rows,
                                                         int len, int srcStride, int dstStride) {
  for (int r = 0; r < rows; r++) {
    const i32* s = src + r * srcStride;
    i32* d = dst + r * dstStride;
    int j = 0;
    for (; j + 16 <= len; j += 16) {
      v128_t a = wasm_v128_load(s + j);
      v128_t b = wasm_v128_load(s + j + 4);
      v128_t c = wasm_v128_load(s + j + 8);
      v128_t e = wasm_v128_load(s + j + 12);
      wasm_v128_store(d + j, a);
      wasm_v128_store(d + j + 4, b);
      wasm_v128_store(d + j + 8, c);
      wasm_v128_store(d + j + 12, e);
    }
    for (; j + 4 <= len; j += 4) wasm_v128_store(d + j, wasm_v128_load(s + j));
    for (; j < len; j++) d[j] = s[j];
  }
}

// out[j] = sum over r < rows of x[r * len + j]: the sum over leading axes, accumulated in row
// order in float32 (the order tfjs-wasm's Sum uses after its transpose, so results agree).
__attribute__((export_name("col_sum"))) void col_sum(const f32* x, f32* out, int rows, int len) {
  int j = 0;
  for (; j + 4 <= len; j += 4) wasm_v128_store(out + j, wasm_f32x4_splat(0.0f));
  for (; j < len; j++) out[j] = 0.0f;
  for (int r = 0; r < rows; r++) {
    const f32* s = x + r * len;
    j = 0;
    for (; j + 4 <= len; j += 4)
      wasm_v128_store(out + j, wasm_f32x4_add(wasm_v128_load(out + j), wasm_v128_load(s + j)));
    for (; j < len; j++) out[j] += s[j];
  }
}

// sum of x[i]^2, i < n, in eight float32 lanes, then the lanes in order (for gradient norms)
__attribute__((export_name("sum_squares"))) f32 sum_squares(const f32* x, int n) {
  v128_t a = wasm_f32x4_splat(0.0f);
  v128_t b = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    v128_t u = wasm_v128_load(x + i);
    v128_t w = wasm_v128_load(x + i + 4);
    a = wasm_f32x4_add(a, wasm_f32x4_mul(u, u));
    b = wasm_f32x4_add(b, wasm_f32x4_mul(w, w));
  }
  a = wasm_f32x4_add(a, b);
  f32 s = wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1) +
          wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3);
  for (; i < n; i++) s += x[i] * x[i];
  return s;
}

// One AdamW step of n parameters, in the order of optim.ts's element-wise form:
//   g' = clip g;  m' = beta1 m + (1 - beta1) g';  v' = beta2 v + (1 - beta2) g'^2
//   p' = p - rate ((m' / c1) / (sqrt(v' / c2) + eps) + wd p)
// (ob1, ob2: 1 - beta1, 1 - beta2 rounded once from double, as tfjs's scalars are; c1, c2: the
// bias corrections 1 - beta^t). Outputs may not alias inputs.
__attribute__((export_name("adamw"))) void adamw(const f32* p, const f32* g, const f32* m,
                                                 const f32* v, f32* pOut, f32* mOut, f32* vOut,
                                                 int n, f32 clip, f32 beta1, f32 ob1, f32 beta2,
                                                 f32 ob2, f32 c1, f32 c2, f32 eps, f32 wd,
                                                 f32 rate) {
  v128_t vclip = wasm_f32x4_splat(clip), vb1 = wasm_f32x4_splat(beta1);
  v128_t vb2 = wasm_f32x4_splat(beta2), vob1 = wasm_f32x4_splat(ob1);
  v128_t vob2 = wasm_f32x4_splat(ob2), vc1 = wasm_f32x4_splat(c1), vc2 = wasm_f32x4_splat(c2);
  v128_t veps = wasm_f32x4_splat(eps), vwd = wasm_f32x4_splat(wd), vrate = wasm_f32x4_splat(rate);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gg = wasm_f32x4_mul(wasm_v128_load(g + i), vclip);
    v128_t mm = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), vb1), wasm_f32x4_mul(gg, vob1));
    v128_t vv = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vb2),
                               wasm_f32x4_mul(wasm_f32x4_mul(gg, gg), vob2));
    v128_t pp = wasm_v128_load(p + i);
    v128_t den = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(vv, vc2)), veps);
    v128_t up = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_div(mm, vc1), den), wasm_f32x4_mul(pp, vwd));
    wasm_v128_store(mOut + i, mm);
    wasm_v128_store(vOut + i, vv);
    wasm_v128_store(pOut + i, wasm_f32x4_sub(pp, wasm_f32x4_mul(up, vrate)));
  }
  for (; i < n; i++) {
    f32 gg = g[i] * clip;
    f32 mm = m[i] * beta1 + gg * ob1;
    f32 vv = v[i] * beta2 + (gg * gg) * ob2;
    f32 up = (mm / c1) / (__builtin_sqrtf(vv / c2) + eps) + p[i] * wd;
    mOut[i] = mm;
    vOut[i] = vv;
    pOut[i] = p[i] - up * rate;
  }
}
