/* step.c under test on aarch64 (tests/test_native_arm.py): cross-compiled for one instruction set
 * and run under qemu-aarch64. It checks its own int32 products against a naive sum, then runs
 * a few small nets (laid out as net.py lays them out) and prints their logits and state, which
 * the test compares across builds. Prints `key values...` lines; exits 1 if a product is wrong.
 * Built with -I charlm/generate/native: it includes step.c to reach its static functions. */

#include <stdio.h>
#include <stdlib.h>

#include "step.c"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t next_u32(void) {          /* xorshift64: the same numbers on every build */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static int uniform_int(int lo, int hi) { return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1)); }
static float uniform(float a) { return a * ((float)next_u32() / 2147483648.0f - 1.0f); }

static int kpad_of(int cols) { return (cols + 63) / 64 * 64; }

/* ---- (a) products ------------------------------------------------------------------------ */

/* A (rows, cols) int8 matrix, zero from cols to kpad, against `count` vectors of integers as
 * floats: each holds a +-127, so its scale is 1 and it quantizes to exactly those integers.
 * fill 0: random weights and vectors; else every weight `fill` and every input 127 (the largest
 * sums a pair of products can make, for the int16 lanes of plain NEON). Returns the wrong ones. */
static int check_products(int rows, int cols, int count, int fill) {
    const int kpad = kpad_of(cols), ab = charlm_act_bytes();
    int8_t *w = calloc((size_t)rows * kpad, 1);
    float *scale = malloc(rows * sizeof(float)), *x = malloc((size_t)count * cols * sizeof(float));
    float *xs = malloc(count * sizeof(float)), *got = malloc((size_t)count * rows * sizeof(float));
    int32_t *rowsum = calloc(rows, sizeof(int32_t)), *want = malloc((size_t)count * rows * sizeof(int32_t));
    char *act = malloc((size_t)count * kpad * ab);
    for (int r = 0; r < rows; r++) {
        scale[r] = 1.0f;
        for (int k = 0; k < cols; k++) {
            w[(size_t)r * kpad + k] = (int8_t)(fill ? fill : uniform_int(-127, 127));
            rowsum[r] += w[(size_t)r * kpad + k];
        }
    }
    for (int n = 0; n < count; n++) {
        for (int k = 0; k < cols; k++) x[(size_t)n * cols + k] = (float)(fill ? 127 : uniform_int(-127, 127));
        if (!fill) x[(size_t)n * cols + uniform_int(0, cols - 1)] = uniform_int(0, 1) ? 127.0f : -127.0f;
    }
    for (int n = 0; n < count; n++)
        for (int r = 0; r < rows; r++) {
            int32_t s = 0;
            for (int k = 0; k < cols; k++) s += (int32_t)w[(size_t)r * kpad + k] * (int32_t)x[(size_t)n * cols + k];
            want[(size_t)n * rows + r] = s;
        }
    Mat m = {w, scale, rowsum, NULL, rows, cols, kpad};
    const size_t stride = (size_t)kpad * ab;
    for (int n = 0; n < count; n++) xs[n] = quantize(x + (size_t)n * cols, cols, kpad, act + n * stride);

    int wrong = 0;
    for (int n = 0; n < count; n++) {
        wrong += xs[n] != 1.0f;
        for (int r = 0; r < rows; r++) wrong += dot1(&m, r, act + n * stride) != want[(size_t)n * rows + r];
        for (int r = 0; r + 4 <= rows; r += 4) {
            int32_t d[4];
            dot4(&m, r, act + n * stride, d);
            for (int i = 0; i < 4; i++) wrong += d[i] != want[(size_t)n * rows + r + i];
        }
    }
#if VEC_BLOCK > 1
    for (int n = 0; n + VEC_BLOCK <= count; n += VEC_BLOCK)
        for (int r = 0; r + 4 <= rows; r += 4) {
            int32_t d[VEC_BLOCK][4];
            dot4_block(&m, r, act + n * stride, stride, d);
            for (int j = 0; j < VEC_BLOCK; j++)
                for (int i = 0; i < 4; i++) wrong += d[j][i] != want[(size_t)(n + j) * rows + r + i];
        }
#endif
    /* The whole product as a step dispatches it: exact too, the sums being under 2^24. */
    charlm_product(&m, x, count, act, xs, got, 1);
    for (size_t i = 0; i < (size_t)count * rows; i++) wrong += got[i] != (float)want[i];
    printf("products %dx%dx%d fill %d kpad %d wrong %d\n", rows, cols, count, fill, kpad, wrong);
    free(w), free(scale), free(x), free(xs), free(got), free(rowsum), free(want), free(act);
    return wrong;
}

/* ---- (b) whole steps --------------------------------------------------------------------- */

/* net.py's QuantMat of a random (rows, cols) matrix: one symmetric scale a row, round to even. */
static Mat quant_mat(int rows, int cols, float amp) {
    const int kpad = kpad_of(cols);
    int8_t *q = calloc((size_t)rows * kpad, 1);
    float *scale = malloc(rows * sizeof(float)), *bias = malloc(rows * sizeof(float)), *w = malloc(cols * sizeof(float));
    int32_t *rowsum = calloc(rows, sizeof(int32_t));
    for (int r = 0; r < rows; r++) {
        float amax = 0.0f;
        for (int k = 0; k < cols; k++) w[k] = uniform(amp), amax = fabsf(w[k]) > amax ? fabsf(w[k]) : amax;
        scale[r] = (amax > 1e-12f ? amax : 1e-12f) / 127.0f;
        for (int k = 0; k < cols; k++) {
            float v = nearbyintf(w[k] / scale[r]);
            q[(size_t)r * kpad + k] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
            rowsum[r] += q[(size_t)r * kpad + k];
        }
        bias[r] = uniform(0.1f);
    }
    free(w);
    Mat m = {q, scale, rowsum, bias, rows, cols, kpad};
    return m;
}

static float *random_floats(size_t n, float amp) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = uniform(amp);
    return x;
}

static void print_floats(const char *key, const char *name, const float *x, size_t n) {
    printf("%s %s", key, name);
    for (size_t i = 0; i < n; i++) printf(" %.9g", x[i]);
    printf("\n");
}

/* A net of `layers` x H for N streams: reads a prompt of P characters (charlm_read), then steps
 * S more (charlm_step); prints its logits and every layer's h. */
static void run_net(const char *name, int cell, int layers, int H, int N, int P, int S) {
    const int V = 29, G = (cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1) * H, kmax = kpad_of(H);
    const size_t ab = charlm_act_bytes();
    Mat *inp = calloc(layers, sizeof(Mat)), *rec = calloc(layers, sizeof(Mat));
    float **h = calloc(layers, sizeof(float *)), **c = calloc(layers, sizeof(float *));
    for (int l = 0; l < layers; l++) {
        if (l > 0) inp[l] = quant_mat(G, H, 0.3f);
        rec[l] = quant_mat(G, H, 0.3f);
        h[l] = calloc((size_t)N * H, sizeof(float));
        c[l] = calloc((size_t)N * H, sizeof(float));
    }
    float *logits = malloc((size_t)N * V * sizeof(float));
    Net net = {cell, layers, H, V, N, G, 1, random_floats((size_t)V * G, 1.0f), inp, rec, h, c,
               random_floats((size_t)V * H, 0.5f), random_floats(V, 0.1f), logits,
               malloc((size_t)N * G * sizeof(float)), malloc((size_t)N * G * sizeof(float)),
               malloc((size_t)N * kmax * ab), malloc(N * sizeof(float))};
    int64_t *ids = malloc((size_t)N * P * sizeof(int64_t));
    for (int i = 0; i < N * P; i++) ids[i] = uniform_int(0, V - 1);
    float *outs = malloc((size_t)N * P * H * sizeof(float)), *gi = malloc((size_t)N * P * G * sizeof(float));
    void *act = malloc((size_t)N * P * kmax * ab);
    float *act_scale = malloc((size_t)N * P * sizeof(float));
    charlm_read(&net, ids, P, outs, gi, act, act_scale);
    for (int s = 0; s < S; s++) {
        for (int n = 0; n < N; n++) ids[n] = uniform_int(0, V - 1);
        charlm_step(&net, ids);
    }
    print_floats("logits", name, logits, (size_t)N * V);
    for (int l = 0; l < layers; l++) print_floats("h", name, h[l], (size_t)N * H);
}

int main(void) {
    printf("isa %s\nact_bytes %d\nvec_block %d\n", charlm_kernel_isa(), charlm_act_bytes(), VEC_BLOCK);
    /* rows not whole blocks of 4, vectors not whole VEC_BLOCKs, kpad 64, 128 and 576 */
    static const int shapes[][4] = {{1, 5, 1, 0},    {37, 64, 1, 0},   {8, 100, 5, 0},   {13, 130, 9, 0},
                                    {64, 576, 4, 0}, {203, 576, 7, 0}, {6, 128, 3, 0},   {5, 64, 2, 127},
                                    {8, 576, 5, -127}, {7, 576, 6, -128}};
    int wrong = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        wrong += check_products(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    printf("wrong %d\n", wrong);
    /* 120 columns reach into kpad's last 16; 64 fill it; 72 leave most of it zero */
    run_net("lstm", CELL_LSTM, 2, 120, 5, 7, 12);
    run_net("gru", CELL_GRU, 2, 64, 5, 7, 12);
    run_net("rnn", CELL_RNN, 1, 72, 3, 7, 12);
    return wrong != 0;
}
