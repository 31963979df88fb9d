/* charlm's per-character step in C: a stacked LSTM / GRU / RNN with int8 weights, one call a
 * character. Built on the user's machine by charlm/generate/native/build.py (-O3 for its CPU), loaded
 * with ctypes; charlm/generate/native/net.py lays out the structs below and the weights they point at.
 *
 * Why C: at batch 1 a step of a 2x512 reads 3 MB of int8 weights, ~30 us from cache, but as
 * ~25 PyTorch calls it spent as long again in dispatch between them. Here a step is a single
 * call: per layer two int8 matrix-vector products (input, recurrent) and the cell, then the
 * fp32 head.
 *
 * Arithmetic: weights are int8 with one scale per row (symmetric); each activation vector is
 * quantized to int8 on the fly with one scale per vector (symmetric, round to nearest even),
 * products are summed exactly in int32, and the sum is scaled back to fp32. How activations are
 * stored depends on the instruction set, every path computing the same integers: AVX512-VNNI
 * takes them as uint8 (q + 128) for vpdpbusd, and 128 * the row's sum is taken off again; AVX2
 * as int8 q followed by |q| for vpmaddubsw(|q|, sign(w, q)) (pairs of products stay under
 * 2 * 127 * 127, no saturation: q is never -128); NEON (aarch64) as int8 q, for sdot where the
 * CPU has the dot-product instructions, else smull + smlal2 + sadalp; plain C as int16.
 *
 * Layouts (all row-major, contiguous):
 *   table    (V, G) fp32: layer 0's input projection, one row a character, its bias folded in
 *   Mat.w    (rows, kpad) int8, zero from cols to kpad (kpad a multiple of 64)
 *   h, c     (N, H) fp32 per layer: the state, read and written in place
 *   gates    LSTM i, f, o, g (reordered from PyTorch's i, f, g, o: one sigmoid span); GRU r, z, n;
 *            RNN the new h before its tanh. G = 4H, 3H or H.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__AVX2__) || defined(__AVX512BW__))
#include <immintrin.h>
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define ACT_UINT8 1            /* activations stored as q + 128, for vpdpbusd (u8 x s8) */
#define ACT_SIGNED 0
#define ACT_NEON 0
#elif defined(__AVX2__)
#define ACT_UINT8 0
#define ACT_SIGNED 1           /* kpad int8 q, then kpad uint8 |q|: for vpsignb + vpmaddubsw */
#define ACT_NEON 0
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define ACT_UINT8 0
#define ACT_SIGNED 0
#define ACT_NEON 1             /* kpad int8 q: for sdot (vdotq_s32), or smull + sadalp */
#else
#define ACT_UINT8 0
#define ACT_SIGNED 0           /* int16 q, for plain C */
#define ACT_NEON 0
#endif

enum { CELL_LSTM = 0, CELL_GRU = 1, CELL_RNN = 2 };

typedef struct {
    const int8_t *w;           /* (rows, kpad) */
    const float *scale;        /* (rows): the row's dequantization scale */
    const int32_t *rowsum;     /* (rows): the sum of the row's weights (the uint8 offset's correction) */
    const float *bias;         /* (rows), or NULL */
    int32_t rows, cols, kpad;
} Mat;

typedef struct {
    int32_t cell, layers, hidden, vocab, batch, gates;
    int32_t threads;           /* for the matrix products (OpenMP builds); the caller's torch threads */
    const float *table;        /* (V, G) */
    const Mat *inp;            /* per layer; inp[0] unused (the table) */
    const Mat *rec;            /* per layer */
    float *const *h;           /* per layer, (N, H) */
    float *const *c;           /* per layer, (N, H); LSTM only */
    const float *head_w;       /* (V, H) fp32 */
    const float *head_b;       /* (V) */
    float *logits;             /* (N, V) */
    float *gi, *gh;            /* (N, G) scratch: input and recurrent parts of the gates */
    void *act;                 /* (N, kmax) quantized activations: 1 or 2 bytes a slot (charlm_act_bytes) */
    float *act_scale;          /* (N) */
} Net;

int charlm_act_bytes(void) { return ACT_UINT8 || ACT_NEON ? 1 : 2; }

/* Whether this build splits its products over threads (built with OpenMP). */
int charlm_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* The instruction set this build uses for its dot products (shown by `charlm info`-like reports). */
const char *charlm_kernel_isa(void) {
#if ACT_UINT8
    return "avx512-vnni";
#elif ACT_SIGNED
    return "avx2";
#elif ACT_NEON && defined(__ARM_FEATURE_DOTPROD)
    return "neon-dotprod";
#elif ACT_NEON
    return "neon";
#else
    return "portable C";
#endif
}

/* ---- elementwise ------------------------------------------------------------------------- */

/* exp(x) as 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], Cephes' degree-6 polynomial: within
 * 2 ulp of expf, and written so that the loops calling it vectorize (no libm call). */
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = { ((int32_t)n + 127) << 23 };
    return p * scale.f;
}

static inline float sigmoid_fast(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): no cancellation near 0 that matters
 * (the error there is absolute, ~1e-7), no overflow anywhere. */
static inline float tanh_fast(float x) {
    float a = x < 0.0f ? -x : x;
    float e = exp_fast(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

/* ---- int8 products ----------------------------------------------------------------------- */

/* Quantize x (n values) into dst (kpad slots, the tail zero), symmetric, one scale; returns it. */
static float quantize(const float *restrict x, int n, int kpad, void *restrict dst) {
    float lane[16] = {0}, amax = 0.0f;     /* 16 running maxima: the loop vectorizes */
    int k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 16; j++) {
            float a = x[k + j] < 0.0f ? -x[k + j] : x[k + j];
            lane[j] = a > lane[j] ? a : lane[j];
        }
    for (; k < n; k++) {
        float a = x[k] < 0.0f ? -x[k] : x[k];
        amax = a > amax ? a : amax;
    }
    for (int j = 0; j < 16; j++) amax = lane[j] > amax ? lane[j] : amax;
    float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
    float inv = 1.0f / scale;
#if ACT_UINT8
    uint8_t *q = (uint8_t *)dst;
    for (k = 0; k < n; k++) q[k] = (uint8_t)((int32_t)nearbyintf(x[k] * inv) + 128);
    for (k = n; k < kpad; k++) q[k] = 128;
#elif ACT_SIGNED
    int8_t *q = (int8_t *)dst;
    uint8_t *a = (uint8_t *)dst + kpad;
    for (k = 0; k < n; k++) {
        int32_t v = (int32_t)nearbyintf(x[k] * inv);
        q[k] = (int8_t)v;
        a[k] = (uint8_t)(v < 0 ? -v : v);
    }
    for (k = n; k < kpad; k++) q[k] = 0, a[k] = 0;
#elif ACT_NEON
    int8_t *q = (int8_t *)dst;
    for (k = 0; k < n; k++) q[k] = (int8_t)nearbyintf(x[k] * inv);
    for (k = n; k < kpad; k++) q[k] = 0;
#else
    int16_t *q = (int16_t *)dst;
    for (k = 0; k < n; k++) q[k] = (int16_t)nearbyintf(x[k] * inv);
    for (k = n; k < kpad; k++) q[k] = 0;
#endif
    return scale;
}

#if ACT_UINT8
static inline __m128i sum4_512(__m512i a, __m512i b, __m512i c, __m512i d) {
    /* the four vectors' sums, in one 128-bit vector */
    __m256i a2 = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m256i b2 = _mm256_add_epi32(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
    __m256i c2 = _mm256_add_epi32(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    __m256i d2 = _mm256_add_epi32(_mm512_castsi512_si256(d), _mm512_extracti64x4_epi64(d, 1));
    __m128i a1 = _mm_add_epi32(_mm256_castsi256_si128(a2), _mm256_extracti128_si256(a2, 1));
    __m128i b1 = _mm_add_epi32(_mm256_castsi256_si128(b2), _mm256_extracti128_si256(b2, 1));
    __m128i c1 = _mm_add_epi32(_mm256_castsi256_si128(c2), _mm256_extracti128_si256(c2, 1));
    __m128i d1 = _mm_add_epi32(_mm256_castsi256_si128(d2), _mm256_extracti128_si256(d2, 1));
    return _mm_hadd_epi32(_mm_hadd_epi32(a1, b1), _mm_hadd_epi32(c1, d1));
}
#endif

#if ACT_SIGNED
/* q . w over 32 bytes as 8 int32 lanes: |q| * sign(w, q) summed in pairs (vpmaddubsw: at most
 * 2 * 127 * 127, no saturation), then pairs of pairs. */
static inline __m256i dot32(__m256i q, __m256i abs_q, __m256i w) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_q, _mm256_sign_epi8(w, q)), _mm256_set1_epi16(1));
}

static inline __m128i sum4_256(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m128i a1 = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    __m128i b1 = _mm_add_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    __m128i c1 = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    __m128i d1 = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
    return _mm_hadd_epi32(_mm_hadd_epi32(a1, b1), _mm_hadd_epi32(c1, d1));
}
#endif

#if ACT_NEON
/* acc + the 16 products q_k w_k, in 4 int32 lanes. sdot sums 4 products a lane exactly. Without
 * it, smull and smlal2 sum products in pairs in int16 lanes: |q| <= 127 (never -128) and |w| <=
 * 127 (net.py clamps; -128 would fit too), so a pair is at most 2 * 127 * 128 = 32512 < 32767,
 * no overflow; sadalp then adds pairs of pairs into the int32 lanes. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t q, int8x16_t w) {
#ifdef __ARM_FEATURE_DOTPROD
    return vdotq_s32(acc, q, w);
#else
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(q), vget_low_s8(w)), q, w));
#endif
}

static inline int32x4_t sum4_neon(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));     /* the four vectors' sums */
}
#endif

/* The exact int32 dot products of rows r..r+3 of m with one quantized vector q. */
static inline void dot4(const Mat *m, int r, const void *q, int32_t out[4]) {
    const int kpad = m->kpad;
    const int8_t *w0 = m->w + (size_t)r * kpad, *w1 = w0 + kpad, *w2 = w1 + kpad, *w3 = w2 + kpad;
#if ACT_UINT8
    const uint8_t *x = (const uint8_t *)q;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < kpad; k += 64) {
        __m512i xv = _mm512_loadu_si512(x + k);
        a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512(w0 + k));
        a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_loadu_si512(w1 + k));
        a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_loadu_si512(w2 + k));
        a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_loadu_si512(w3 + k));
    }
    _mm_storeu_si128((__m128i *)out, sum4_512(a0, a1, a2, a3));
    for (int j = 0; j < 4; j++) out[j] -= 128 * m->rowsum[r + j];
#elif ACT_SIGNED
    const int8_t *x = (const int8_t *)q;
    const int8_t *ax = x + kpad;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < kpad; k += 32) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k)), av = _mm256_loadu_si256((const __m256i *)(ax + k));
        a0 = _mm256_add_epi32(a0, dot32(xv, av, _mm256_loadu_si256((const __m256i *)(w0 + k))));
        a1 = _mm256_add_epi32(a1, dot32(xv, av, _mm256_loadu_si256((const __m256i *)(w1 + k))));
        a2 = _mm256_add_epi32(a2, dot32(xv, av, _mm256_loadu_si256((const __m256i *)(w2 + k))));
        a3 = _mm256_add_epi32(a3, dot32(xv, av, _mm256_loadu_si256((const __m256i *)(w3 + k))));
    }
    _mm_storeu_si128((__m128i *)out, sum4_256(a0, a1, a2, a3));
#elif ACT_NEON
    /* Two sets of sums, for the two halves of 32 columns: one chain of sdots a row would wait
     * on each one's latency. kpad is a multiple of 64, so 32 at a time leaves no tail. */
    const int8_t *x = (const int8_t *)q;
    int32x4_t a[2][4];
    for (int h = 0; h < 2; h++) a[h][0] = a[h][1] = a[h][2] = a[h][3] = vdupq_n_s32(0);
    for (int k = 0; k < kpad; k += 32)
        for (int h = 0; h < 2; h++) {
            const int kh = k + 16 * h;
            int8x16_t xv = vld1q_s8(x + kh);
            a[h][0] = dot16(a[h][0], xv, vld1q_s8(w0 + kh));
            a[h][1] = dot16(a[h][1], xv, vld1q_s8(w1 + kh));
            a[h][2] = dot16(a[h][2], xv, vld1q_s8(w2 + kh));
            a[h][3] = dot16(a[h][3], xv, vld1q_s8(w3 + kh));
        }
    vst1q_s32(out, vaddq_s32(sum4_neon(a[0][0], a[0][1], a[0][2], a[0][3]),
                             sum4_neon(a[1][0], a[1][1], a[1][2], a[1][3])));
#else
    const int16_t *x = (const int16_t *)q;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < kpad; k++) {
        int32_t xv = x[k];
        s0 += w0[k] * xv; s1 += w1[k] * xv; s2 += w2[k] * xv; s3 += w3[k] * xv;
    }
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
#endif
}

/* Several vectors at once (VEC_BLOCK): each weight load feeds them all, which is what makes a
 * batch of streams, or a prompt's positions, cheaper per vector than one. */
#if ACT_UINT8
#define VEC_BLOCK 4
static inline void dot4_block(const Mat *m, int r, const void *q, size_t stride, int32_t out[VEC_BLOCK][4]) {
    const int kpad = m->kpad;
    const int8_t *w0 = m->w + (size_t)r * kpad, *w1 = w0 + kpad, *w2 = w1 + kpad, *w3 = w2 + kpad;
    const uint8_t *x = (const uint8_t *)q;
    __m512i a[VEC_BLOCK][4];
    for (int j = 0; j < VEC_BLOCK; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm512_setzero_si512();
    for (int k = 0; k < kpad; k += 64) {
        __m512i v0 = _mm512_loadu_si512(w0 + k), v1 = _mm512_loadu_si512(w1 + k);
        __m512i v2 = _mm512_loadu_si512(w2 + k), v3 = _mm512_loadu_si512(w3 + k);
        for (int j = 0; j < VEC_BLOCK; j++) {
            __m512i xv = _mm512_loadu_si512(x + j * stride + k);
            a[j][0] = _mm512_dpbusd_epi32(a[j][0], xv, v0);
            a[j][1] = _mm512_dpbusd_epi32(a[j][1], xv, v1);
            a[j][2] = _mm512_dpbusd_epi32(a[j][2], xv, v2);
            a[j][3] = _mm512_dpbusd_epi32(a[j][3], xv, v3);
        }
    }
    for (int j = 0; j < VEC_BLOCK; j++) {
        _mm_storeu_si128((__m128i *)out[j], sum4_512(a[j][0], a[j][1], a[j][2], a[j][3]));
        for (int i = 0; i < 4; i++) out[j][i] -= 128 * m->rowsum[r + i];
    }
}
#elif ACT_SIGNED
#define VEC_BLOCK 2
static inline void dot4_block(const Mat *m, int r, const void *q, size_t stride, int32_t out[VEC_BLOCK][4]) {
    const int kpad = m->kpad;
    const int8_t *w0 = m->w + (size_t)r * kpad, *w1 = w0 + kpad, *w2 = w1 + kpad, *w3 = w2 + kpad;
    __m256i a[VEC_BLOCK][4];
    for (int j = 0; j < VEC_BLOCK; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm256_setzero_si256();
    for (int k = 0; k < kpad; k += 32) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(w0 + k)), v1 = _mm256_loadu_si256((const __m256i *)(w1 + k));
        __m256i v2 = _mm256_loadu_si256((const __m256i *)(w2 + k)), v3 = _mm256_loadu_si256((const __m256i *)(w3 + k));
        for (int j = 0; j < VEC_BLOCK; j++) {
            const int8_t *x = (const int8_t *)q + j * stride;
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
            __m256i av = _mm256_loadu_si256((const __m256i *)(x + kpad + k));
            a[j][0] = _mm256_add_epi32(a[j][0], dot32(xv, av, v0));
            a[j][1] = _mm256_add_epi32(a[j][1], dot32(xv, av, v1));
            a[j][2] = _mm256_add_epi32(a[j][2], dot32(xv, av, v2));
            a[j][3] = _mm256_add_epi32(a[j][3], dot32(xv, av, v3));
        }
    }
    for (int j = 0; j < VEC_BLOCK; j++) _mm_storeu_si128((__m128i *)out[j], sum4_256(a[j][0], a[j][1], a[j][2], a[j][3]));
}
#elif ACT_NEON
#define VEC_BLOCK 4            /* 16 sums + 4 rows' weights + a vector: 21 of NEON's 32 registers */
static inline void dot4_block(const Mat *m, int r, const void *q, size_t stride, int32_t out[VEC_BLOCK][4]) {
    const int kpad = m->kpad;
    const int8_t *w0 = m->w + (size_t)r * kpad, *w1 = w0 + kpad, *w2 = w1 + kpad, *w3 = w2 + kpad;
    int32x4_t a[VEC_BLOCK][4];
    for (int j = 0; j < VEC_BLOCK; j++) a[j][0] = a[j][1] = a[j][2] = a[j][3] = vdupq_n_s32(0);
    for (int k = 0; k < kpad; k += 16) {
        int8x16_t v0 = vld1q_s8(w0 + k), v1 = vld1q_s8(w1 + k), v2 = vld1q_s8(w2 + k), v3 = vld1q_s8(w3 + k);
        for (int j = 0; j < VEC_BLOCK; j++) {
            int8x16_t xv = vld1q_s8((const int8_t *)q + j * stride + k);
            a[j][0] = dot16(a[j][0], xv, v0);
            a[j][1] = dot16(a[j][1], xv, v1);
            a[j][2] = dot16(a[j][2], xv, v2);
            a[j][3] = dot16(a[j][3], xv, v3);
        }
    }
    for (int j = 0; j < VEC_BLOCK; j++) vst1q_s32(out[j], sum4_neon(a[j][0], a[j][1], a[j][2], a[j][3]));
}
#else
#define VEC_BLOCK 1            /* plain C: one vector at a time (dot4) */
#endif

static inline int32_t dot1(const Mat *m, int r, const void *q) {
    const int8_t *w = m->w + (size_t)r * m->kpad;
    int32_t s = 0;
#if ACT_UINT8
    const uint8_t *x = (const uint8_t *)q;
    for (int k = 0; k < m->kpad; k++) s += (int32_t)x[k] * w[k];
    s -= 128 * m->rowsum[r];
#elif ACT_SIGNED
    const int8_t *x = (const int8_t *)q;
    for (int k = 0; k < m->kpad; k++) s += (int32_t)x[k] * w[k];
#elif ACT_NEON
    const int8_t *x = (const int8_t *)q;
    int32x4_t a = vdupq_n_s32(0);
    for (int k = 0; k < m->kpad; k += 16) a = dot16(a, vld1q_s8(x + k), vld1q_s8(w + k));
    s = vaddvq_s32(a);
#else
    const int16_t *x = (const int16_t *)q;
    for (int k = 0; k < m->kpad; k++) s += (int32_t)x[k] * w[k];
#endif
    return s;
}

/* Splitting a product over threads pays from about this many weights (64 KB) times vectors. */
#define PARALLEL_MIN 65536

/* out[n * ldo + r] = scale_r * xs_n * (W q_n)_r + bias_r for n < count vectors q (stride kpad
 * slots of act_bytes). Rows outer, vectors inner: four rows' weights stay in L1 across them;
 * threads take contiguous spans of rows, so each reads its own part of the matrix. */
/* gemm_q's work for rows [r0, r1) only (r0 a multiple of 4), on the calling thread. */
static void rows_q(const Mat *m, int r0, int r1, const void *q, const float *xs, int count, float *out, int ldo) {
    const size_t stride = (size_t)m->kpad * charlm_act_bytes();
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        int n = 0;
#if VEC_BLOCK > 1
        for (; n + VEC_BLOCK <= count; n += VEC_BLOCK) {
            int32_t d[VEC_BLOCK][4];
            dot4_block(m, r, (const char *)q + n * stride, stride, d);
            for (int j = 0; j < VEC_BLOCK; j++) {
                float *o = out + (size_t)(n + j) * ldo + r;
                for (int i = 0; i < 4; i++)
                    o[i] = (float)d[j][i] * (m->scale[r + i] * xs[n + j]) + (m->bias ? m->bias[r + i] : 0.0f);
            }
        }
#endif
        for (; n < count; n++) {
            int32_t d[4];
            dot4(m, r, (const char *)q + n * stride, d);
            float *o = out + (size_t)n * ldo + r;
            for (int j = 0; j < 4; j++)
                o[j] = (float)d[j] * (m->scale[r + j] * xs[n]) + (m->bias ? m->bias[r + j] : 0.0f);
        }
    }
    for (; r < r1; r++)
        for (int n = 0; n < count; n++)
            out[(size_t)n * ldo + r] = (float)dot1(m, r, (const char *)q + n * stride) * (m->scale[r] * xs[n])
                                       + (m->bias ? m->bias[r] : 0.0f);
}

/* Thread `tid` of `nt`'s share of `total` items, in whole blocks of 4: [*lo, *hi). */
static inline void share(int total, int tid, int nt, int *lo, int *hi) {
    int per = ((total / 4 + nt - 1) / nt) * 4;
    *lo = tid * per < total ? tid * per : total;
    *hi = *lo + per < total ? *lo + per : total;
    if (tid == nt - 1) *hi = total;
}

static inline int parallel_pays(const Mat *m, int count, int threads) {
    return threads > 1 && (long)m->rows * m->kpad * count >= PARALLEL_MIN;
}

static void gemm_q(const Mat *m, const void *q, const float *xs, int count, float *out, int ldo, int threads) {
#ifdef _OPENMP
    if (parallel_pays(m, count, threads)) {
        #pragma omp parallel num_threads(threads)
        {
            int lo, hi;
            share(m->rows, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
            rows_q(m, lo, hi, q, xs, count, out, ldo);
        }
        return;
    }
#endif
    (void)threads;
    rows_q(m, 0, m->rows, q, xs, count, out, ldo);
}

/* out (count, rows) = m applied to each of count fp32 vectors x (stride ldx). */
static void gemm(const Mat *m, const float *x, int ldx, int count, void *act, float *act_scale, float *out, int ldo,
                 int threads) {
    const size_t stride = (size_t)m->kpad * charlm_act_bytes();
    for (int n = 0; n < count; n++)
        act_scale[n] = quantize(x + (size_t)n * ldx, m->cols, m->kpad, (char *)act + n * stride);
    gemm_q(m, act, act_scale, count, out, ldo, threads);
}

/* ---- cells ------------------------------------------------------------------------------- */

/* One stream's cell for units [j0, j1): gates from its input part gi and recurrent part gh
 * (gate k of unit j at k * H + j); h (and c) in place. */
static void cell(int kind, int H, int j0, int j1, const float *restrict gi, const float *restrict gh,
                 float *restrict h, float *restrict c) {
    if (kind == CELL_LSTM) {
        for (int j = j0; j < j1; j++) {
            float i = sigmoid_fast(gi[j] + gh[j]);
            float f = sigmoid_fast(gi[H + j] + gh[H + j]);
            float o = sigmoid_fast(gi[2 * H + j] + gh[2 * H + j]);
            float u = tanh_fast(gi[3 * H + j] + gh[3 * H + j]);
            float cn = f * c[j] + i * u;
            c[j] = cn;
            h[j] = o * tanh_fast(cn);
        }
    } else if (kind == CELL_GRU) {
        for (int j = j0; j < j1; j++) {
            float r = sigmoid_fast(gi[j] + gh[j]);
            float z = sigmoid_fast(gi[H + j] + gh[H + j]);
            float n = tanh_fast(gi[2 * H + j] + r * gh[2 * H + j]);
            h[j] = n + z * (h[j] - n);
        }
    } else {
        for (int j = j0; j < j1; j++) h[j] = tanh_fast(gi[j] + gh[j]);
    }
}

/* Layer l over `count` streams: gi (count, G) holds its input part; adds the recurrent part
 * and steps the cell, h and c in place. */
static void recur(const Net *net, int l, const float *gi, int ldi, float *h, float *c, int count) {
    const int H = net->hidden, G = net->gates;
    gemm(&net->rec[l], h, H, count, net->act, net->act_scale, net->gh, G, net->threads);
    for (int n = 0; n < count; n++)
        cell(net->cell, H, 0, H, gi + (size_t)n * ldi, net->gh + (size_t)n * G, h + (size_t)n * H,
             c ? c + (size_t)n * H : NULL);
}

/* logits (count, V) = head_w h + head_b, in fp32: 16 partial sums a row so the loop vectorizes
 * without reordering a float sum the compiler may not reorder. */
static void head(const Net *net, const float *h, int count, float *logits) {
    const int H = net->hidden, V = net->vocab;
    for (int n = 0; n < count; n++) {
        const float *x = h + (size_t)n * H;
        for (int v = 0; v < V; v++) {
            const float *w = net->head_w + (size_t)v * H;
            float acc[16] = {0};
            int k = 0;
            for (; k + 16 <= H; k += 16)
                for (int j = 0; j < 16; j++) acc[j] += w[k + j] * x[k + j];
            float s = net->head_b[v];
            for (; k < H; k++) s += w[k] * x[k];
            for (int j = 0; j < 16; j++) s += acc[j];
            logits[(size_t)n * V + v] = s;
        }
    }
}

/* Layer l's recurrence over P positions of N streams (a prompt read layer by layer): stream
 * n's input part at t is gi row n * P + t, its h goes to outs row n * P + t. In one parallel
 * region: each thread owns a span of units, computes their gates' recurrent rows and their
 * cell, so a position costs two barriers rather than a fork and join and a serial cell. */
static void read_recurrence(const Net *net, int l, const float *gi, int P, float *outs) {
    const int N = net->batch, G = net->gates, H = net->hidden, kinds = G / H;
    const Mat *m = &net->rec[l];
    float *h = net->h[l], *c = net->cell == CELL_LSTM ? net->c[l] : NULL;
    const size_t stride = (size_t)m->kpad * charlm_act_bytes();
    const int threads = parallel_pays(m, N, net->threads) ? net->threads : 1;
    (void)threads;
#ifdef _OPENMP
    #pragma omp parallel num_threads(threads)
#endif
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int tid = 0, nt = 1;
#endif
        int j0, j1;
        share(H, tid, nt, &j0, &j1);
        for (int t = 0; t < P; t++) {
#ifdef _OPENMP
            #pragma omp single
#endif
            for (int n = 0; n < N; n++)
                net->act_scale[n] = quantize(h + (size_t)n * H, H, m->kpad, (char *)net->act + n * stride);
            for (int k = 0; k < kinds; k++)      /* this thread's units' rows of each gate */
                rows_q(m, k * H + j0, k * H + j1, net->act, net->act_scale, N, net->gh, G);
            for (int n = 0; n < N; n++) {
                float *hn = h + (size_t)n * H;
                cell(net->cell, H, j0, j1, gi + ((size_t)n * P + t) * G, net->gh + (size_t)n * G, hn,
                     c ? c + (size_t)n * H : NULL);
                memcpy(outs + ((size_t)n * P + t) * H + j0, hn + j0, (size_t)(j1 - j0) * sizeof(float));
            }
#ifdef _OPENMP
            #pragma omp barrier
#endif
        }
    }
}

/* ---- the entry points -------------------------------------------------------------------- */

/* Layer 0's input for character id; an id outside the vocabulary reads <unk>'s row (0)
 * rather than memory past the table. */
static inline const float *row(const Net *net, int64_t id) {
    return net->table + (size_t)((uint64_t)id < (uint64_t)net->vocab ? id : 0) * net->gates;
}

/* Feed one character per stream (ids: N); the logits for the next ones in net->logits. */
void charlm_step(const Net *net, const int64_t *ids) {
    const int N = net->batch, G = net->gates, H = net->hidden;
    for (int l = 0; l < net->layers; l++) {
        float *h = net->h[l], *c = net->cell == CELL_LSTM ? net->c[l] : NULL;
        if (l == 0) {
            for (int n = 0; n < N; n++) memcpy(net->gi + (size_t)n * G, row(net, ids[n]), G * sizeof(float));
        } else {
            gemm(&net->inp[l], net->h[l - 1], H, N, net->act, net->act_scale, net->gi, G, net->threads);
        }
        recur(net, l, net->gi, G, h, c, N);
    }
    head(net, net->h[net->layers - 1], N, net->logits);
}

/* Read P characters per stream (ids: N x P) layer by layer: a layer's input part for all P
 * positions first (one pass over its input matrix), then only its recurrence steps. outs
 * (N, P, H) gets the last layer's h at every position; gi (N * P, G), act (N * P, kmax
 * slots) and act_scale (N * P) are the caller's scratch. The state moves on by P characters. */
void charlm_read(const Net *net, const int64_t *ids, int P, float *outs, float *gi, void *act, float *act_scale) {
    const int N = net->batch, G = net->gates, H = net->hidden;
    for (int l = 0; l < net->layers; l++) {
        if (l == 0) {
            for (int i = 0; i < N * P; i++) memcpy(gi + (size_t)i * G, row(net, ids[i]), G * sizeof(float));
        } else {
            gemm(&net->inp[l], outs, H, N * P, act, act_scale, gi, G, net->threads);
        }
        read_recurrence(net, l, gi, P, outs);
    }
    head(net, net->h[net->layers - 1], N, net->logits);
}

/* One draw from softmax(logits / t) over ids 1..V-1 (id 0, <unk>, is never drawn) at the
 * uniform u in [0, 1): the first id whose cumulative probability exceeds u times the total,
 * as charlm.generate.sampler._pick_one computes it. prob gets the model's own probability (temperature
 * 1) of the id drawn. */
int charlm_draw(const float *logits, int V, float t, float u, float *prob) {
    float top = logits[0];
    for (int v = 1; v < V; v++) top = logits[v] > top ? logits[v] : top;
    const float inv_t = 1.0f / t;
    double total = 0.0, total1 = 0.0;        /* sums in double: u just under 1 still lands inside */
    for (int v = 0; v < V; v++) {
        total += expf((logits[v] - top) * inv_t);
        total1 += expf(logits[v] - top);
    }
    const double floor = expf((logits[0] - top) * inv_t);
    if (total - floor <= 1e-30 * total) {    /* all the mass on <unk>: the likeliest other id */
        int best = 1;
        for (int v = 2; v < V; v++) best = logits[v] > logits[best] ? v : best;
        *prob = (float)(expf(logits[best] - top) / total1);
        return best;
    }
    const double target = floor + (double)u * (total - floor);
    double cum = floor;
    int id = 0, last = 0;
    for (int v = 1; v < V; v++) {
        float e = expf((logits[v] - top) * inv_t);
        if (e > 0.0f) last = v;
        cum += e;
        if (cum > target) { id = v; break; }
    }
    if (id == 0) id = last > 0 ? last : 1;   /* past the end by rounding: the last id with any mass */
    *prob = (float)(expf(logits[id] - top) / total1);
    return id;
}

/* out (count, m->rows) = m x for `count` fp32 vectors x (count, m->cols): one product on its
 * own, as a step computes it (the benchmark's weight-streaming bound times this). */
void charlm_product(const Mat *m, const float *x, int count, void *act, float *act_scale, float *out, int threads) {
    gemm(m, x, m->cols, count, act, act_scale, out, m->rows, threads);
}
