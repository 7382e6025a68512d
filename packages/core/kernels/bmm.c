// Batched float32 matmul for tfjs-backend-wasm, in wasm SIMD (simd128, no relaxed FMA).
//   C[b] = op(A[b]) @ op(B[b]),  op = identity or transpose, every variant on one path.
// The module imports tfjs-wasm's own linear memory, so A, B and C are tfjs tensors in place
// (nothing is copied in or out). op(B) of each batch is packed into panels of 8 columns
// ([ceil(N/8)][K][8], zero-padded past N) in a scratch buffer the caller allocates; a transposed
// A is packed too, into blocks of 4 rows ([ceil(M/4)][K][4]); a row-major A is read in place.
// Every variant then runs a 4x8 register tile. A broadcast operand (stride 0) is packed once.
// No stack, no data segment, no globals are used: the module writes only C and the scratch.
// Build: pnpm --filter @selfalign/core build:kernels (clang + lld, see scripts/build-kernels.mjs).
#include <wasm_simd128.h>

typedef float f32;

// pack op(B) [K,N] into panels [ceil(N/8)][K][8]
static void pack(const f32* b, int tb, int k, int n, f32* out) {
  int panels = (n + 7) >> 3;
  for (int p = 0; p < panels; p++) {
    int j0 = p << 3;
    int w = n - j0 < 8 ? n - j0 : 8;
    f32* dst = out + p * k * 8;
    if (!tb && w == 8) {
      for (int kk = 0; kk < k; kk++) {
        const f32* src = b + kk * n + j0;
        wasm_v128_store(dst + kk * 8, wasm_v128_load(src));
        wasm_v128_store(dst + kk * 8 + 4, wasm_v128_load(src + 4));
      }
      continue;
    }
    for (int kk = 0; kk < k; kk++) {
      for (int j = 0; j < 8; j++) {
        f32 v = 0.0f;
        if (j < w) v = tb ? b[(j0 + j) * k + kk] : b[kk * n + j0 + j];
        dst[kk * 8 + j] = v;
      }
    }
  }
}

static inline void store8(f32* c, v128_t lo, v128_t hi, int w) {
  if (w == 8) {
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  if (w >= 4) {
    wasm_v128_store(c, lo);
    if (w > 4) c[4] = wasm_f32x4_extract_lane(hi, 0);
    if (w > 5) c[5] = wasm_f32x4_extract_lane(hi, 1);
    if (w > 6) c[6] = wasm_f32x4_extract_lane(hi, 2);
    return;
  }
  c[0] = wasm_f32x4_extract_lane(lo, 0);
  if (w > 1) c[1] = wasm_f32x4_extract_lane(lo, 1);
  if (w > 2) c[2] = wasm_f32x4_extract_lane(lo, 2);
}

// pack op(A) [M,K] into blocks of 4 rows [ceil(M/4)][K][4], zero-padded past M
static void packA(const f32* a, int ta, int m, int k, f32* out) {
  int blocks = (m + 3) >> 2;
  for (int p = 0; p < blocks; p++) {
    int i0 = p << 2;
    int h = m - i0 < 4 ? m - i0 : 4;
    f32* dst = out + p * k * 4;
    if (ta && h == 4) {
      for (int kk = 0; kk < k; kk++) wasm_v128_store(dst + kk * 4, wasm_v128_load(a + kk * m + i0));
      continue;
    }
    for (int kk = 0; kk < k; kk++) {
      for (int r = 0; r < 4; r++) {
        f32 v = 0.0f;
        if (r < h) v = ta ? a[kk * m + i0 + r] : a[(i0 + r) * k + kk];
        dst[kk * 4 + r] = v;
      }
    }
  }
}

#define FMA8(a0, a1, a2, a3)                            \
  c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0));     \
  c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));     \
  c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0));     \
  c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));     \
  c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0));     \
  c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));     \
  c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0));     \
  c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));

// One batch: C [M,N] = op(A) @ packed B panels, a 4x8 register tile. `packed` != 0: A is in
// 4-row blocks (packA, used for transposed A); else A is row-major [M,K] read in place.
static void gemm(const f32* a, int packed, const f32* panels, f32* c, int m, int n, int k) {
  int np = (n + 7) >> 3;
  int nb = (m + 3) >> 2;
  for (int p = 0; p < np; p++) {
    const f32* bp = panels + p * k * 8;
    int j0 = p << 3;
    int w = n - j0 < 8 ? n - j0 : 8;
    for (int q = 0; q < nb; q++) {
      int i = q << 2;
      int h = m - i < 4 ? m - i : 4;
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
      v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      if (packed) {
        const f32* aq = a + q * k * 4;
        for (int kk = 0; kk < k; kk++) {
          v128_t b0 = wasm_v128_load(bp + kk * 8);
          v128_t b1 = wasm_v128_load(bp + kk * 8 + 4);
          v128_t av = wasm_v128_load(aq + kk * 4);
          v128_t a0 = wasm_i32x4_shuffle(av, av, 0, 0, 0, 0);
          v128_t a1 = wasm_i32x4_shuffle(av, av, 1, 1, 1, 1);
          v128_t a2 = wasm_i32x4_shuffle(av, av, 2, 2, 2, 2);
          v128_t a3 = wasm_i32x4_shuffle(av, av, 3, 3, 3, 3);
          FMA8(a0, a1, a2, a3)
        }
      } else if (h == 4) {
        const f32* r0 = a + i * k;
        const f32* r1 = r0 + k;
        const f32* r2 = r1 + k;
        const f32* r3 = r2 + k;
        for (int kk = 0; kk < k; kk++) {
          v128_t b0 = wasm_v128_load(bp + kk * 8);
          v128_t b1 = wasm_v128_load(bp + kk * 8 + 4);
          v128_t a0 = wasm_f32x4_splat(r0[kk]);
          v128_t a1 = wasm_f32x4_splat(r1[kk]);
          v128_t a2 = wasm_f32x4_splat(r2[kk]);
          v128_t a3 = wasm_f32x4_splat(r3[kk]);
          FMA8(a0, a1, a2, a3)
        }
      } else {
        // the last 1-3 rows: row i+r for r >= h repeats row i (computed, never stored)
        const f32* r0 = a + i * k;
        const f32* r1 = h > 1 ? r0 + k : r0;
        const f32* r2 = h > 2 ? r0 + 2 * k : r0;
        for (int kk = 0; kk < k; kk++) {
          v128_t b0 = wasm_v128_load(bp + kk * 8);
          v128_t b1 = wasm_v128_load(bp + kk * 8 + 4);
          v128_t a0 = wasm_f32x4_splat(r0[kk]);
          v128_t a1 = wasm_f32x4_splat(r1[kk]);
          v128_t a2 = wasm_f32x4_splat(r2[kk]);
          v128_t a3 = a0;
          FMA8(a0, a1, a2, a3)
        }
      }
      store8(c + i * n + j0, c00, c01, w);
      if (h > 1) store8(c + (i + 1) * n + j0, c10, c11, w);
      if (h > 2) store8(c + (i + 2) * n + j0, c20, c21, w);
      if (h > 3) store8(c + (i + 3) * n + j0, c30, c31, w);
    }
  }
}

/**
 * C[b] = op(A[b]) @ op(B[b]) for b < batch. Pointers are byte offsets into the shared memory.
 * strideA / strideB: elements between batches (0 broadcasts).
 * scratch: (8*ceil(N/8) + 4*ceil(M/4)) * K floats (packed B panels, then packed A blocks when ta).
 */
__attribute__((export_name("bmm"))) void bmm(const f32* a, const f32* b, f32* c, int batch,
                                             int m, int n, int k, int ta, int tb, int strideA,
                                             int strideB, f32* scratch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  if (k <= 0) {
    for (int i = 0; i < batch * m * n; i++) c[i] = 0.0f;
    return;
  }
  f32* apack = scratch + ((n + 7) >> 3) * 8 * k;
  for (int bi = 0; bi < batch; bi++) {
    if (bi == 0 || strideB != 0) pack(b + bi * strideB, tb, k, n, scratch);
    if (ta) {
      if (bi == 0 || strideA != 0) packA(a + bi * strideA, ta, m, k, apack);
      gemm(apack, 1, scratch, c + bi * m * n, m, n, k);
    } else {
      gemm(a + bi * strideA, 0, scratch, c + bi * m * n, m, n, k);
    }
  }
}
