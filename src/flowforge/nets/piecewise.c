/* Fused CPU kernels for a ReLU MLP 1 -> K -> H -> m on a scalar input (see piecewise.py).
 *
 * Per copy c (an independent net): unit j of the first layer, relu(w_j x + b_j), is on
 * for x above (w_j > 0) or below (w_j < 0) its breakpoint t_j = -b_j / w_j. With the
 * breakpoints sorted, on interval k (exactly k breakpoints below x) the second layer's
 * pre-activation is linear in x:
 *     pre = x A[k] + C[k],   A[k] = sum_{j on} w_j W2[j],   C[k] = b2 + sum_{j on} b_j W2[j]
 * and out = b3 + relu(pre) @ W3. Tables are built by walking the sorted breakpoints
 * (one unit switches per step, sums kept in double); the per-sample pass is a row
 * lookup. The backward pass recomputes pre instead of storing (copies, B, H)
 * activations, then maps the table gradients back to w, b, W2, b2 with prefix sums.
 * relu is written (p < 0 ? 0 : p) so that a NaN propagates as in torch.
 *
 * Plain C, no Python or torch headers: loaded with ctypes. Single-threaded on
 * purpose: a thread of its own would compete with torch's OpenMP workers, which
 * may still be spinning on the other cores; the kernel is a small part of a step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t copies, B, K, H, m;
    const void *x, *w1, *b1, *W2, *b2, *W3, *b3, *g;
    void *t, *A, *C;        /* tables: written by forward, read by backward */
    int64_t *order;         /* order[r]: unit with the r-th smallest breakpoint */
    void *out, *dx, *dA, *dC, *dw1, *db1, *dW2, *db2, *dW3, *db3;
    int failed;             /* out of memory */
} job_t;

/* Stable merge sort of idx[0..n) by key[idx]; scratch holds n entries. */
#define DEFINE_SORT(T, SUF)                                                                        \
static void sort_##SUF(int64_t *idx, int64_t *scratch, const T *key, int64_t n) {                 \
    for (int64_t i = 0; i < n; i++) idx[i] = i;                                                    \
    for (int64_t width = 1; width < n; width *= 2) {                                               \
        for (int64_t lo = 0; lo < n; lo += 2 * width) {                                            \
            int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n; \
            int64_t a = lo, b = mid, o = lo;                                                       \
            while (a < mid && b < hi) scratch[o++] = key[idx[b]] < key[idx[a]] ? idx[b++] : idx[a++]; \
            while (a < mid) scratch[o++] = idx[a++];                                               \
            while (b < hi) scratch[o++] = idx[b++];                                                \
        }                                                                                          \
        memcpy(idx, scratch, n * sizeof *idx);                                                     \
    }                                                                                              \
}

#define DEFINE_KERNELS(T, SUF)                                                                     \
DEFINE_SORT(T, SUF)                                                                                \
                                                                                                   \
/* Number of entries of the sorted row t[0..n) below x (branch-free lower bound; NaN gives 0). */ \
static int64_t below_##SUF(const T *t, int64_t n, T x) {                                          \
    const T *base = t;                                                                             \
    while (n > 1) {                                                                                \
        const int64_t half = n / 2;                                                                \
        base = base[half] < x ? base + half : base;                                                \
        n -= half;                                                                                 \
    }                                                                                              \
    return (base - t) + (*base < x);                                                               \
}                                                                                                  \
                                                                                                   \
/* +1: switches on when x passes t_j upwards; -1: switches off; 0: constant (w_j == 0). */        \
static int sign_##SUF(T w) { return (w > 0) - (w < 0); }                                          \
/* Unit on below every breakpoint. */                                                              \
static int on_left_##SUF(T w, T b) { return w < 0 || (w == 0 && b > 0); }                        \
                                                                                                   \
static void tables_##SUF(const job_t *j, int64_t c, double *accA, double *accC, int64_t *scratch) { \
    const int64_t K = j->K, H = j->H;                                                              \
    const T *w = (const T *)j->w1 + c * K, *b = (const T *)j->b1 + c * K;                          \
    const T *W2 = (const T *)j->W2 + c * K * H, *b2 = (const T *)j->b2 + c * H;                    \
    T *t = (T *)j->t + c * K, *A = (T *)j->A + c * (K + 1) * H, *C = (T *)j->C + c * (K + 1) * H;  \
    int64_t *order = j->order + c * K;                                                             \
    T *raw = (T *)(scratch + K);                                                                   \
    for (int64_t u = 0; u < K; u++) raw[u] = w[u] != 0 ? -b[u] / w[u] : 0;                        \
    sort_##SUF(order, scratch, raw, K);                                                            \
    for (int64_t r = 0; r < K; r++) t[r] = raw[order[r]];                                          \
    for (int64_t h = 0; h < H; h++) { accA[h] = 0; accC[h] = b2[h]; }                             \
    for (int64_t u = 0; u < K; u++)                                                                \
        if (on_left_##SUF(w[u], b[u]))                                                             \
            for (int64_t h = 0; h < H; h++) {                                                      \
                accA[h] += (double)w[u] * W2[u * H + h];                                           \
                accC[h] += (double)b[u] * W2[u * H + h];                                           \
            }                                                                                      \
    for (int64_t r = 0;; r++) {                                                                    \
        for (int64_t h = 0; h < H; h++) { A[r * H + h] = accA[h]; C[r * H + h] = accC[h]; }       \
        if (r == K) break;                                                                         \
        const int64_t u = order[r];                                                                \
        const int s = sign_##SUF(w[u]);                                                            \
        if (s)                                                                                     \
            for (int64_t h = 0; h < H; h++) {                                                      \
                accA[h] += s * (double)w[u] * W2[u * H + h];                                       \
                accC[h] += s * (double)b[u] * W2[u * H + h];                                       \
            }                                                                                      \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static void fwd_##SUF(job_t *j) {                                                                  \
    const int64_t B = j->B, K = j->K, H = j->H, m = j->m;                                          \
    const T *x = j->x, *W3 = j->W3, *b3 = j->b3;                                                   \
    double *acc = malloc(2 * H * sizeof *acc);                                                     \
    int64_t *scratch = malloc(K * (sizeof(int64_t) + sizeof(T)));                                  \
    if (!acc || !scratch) { j->failed = 1; free(acc); free(scratch); return; }                     \
    for (int64_t c = 0; c < j->copies; c++) {                                                      \
        tables_##SUF(j, c, acc, acc + H, scratch);                                                 \
        const T *t = (const T *)j->t + c * K;                                                      \
        const T *A = (const T *)j->A + c * (K + 1) * H, *C = (const T *)j->C + c * (K + 1) * H;    \
        const T *W = W3 + c * H * m;                                                               \
        T *out = (T *)j->out + c * B * m;                                                          \
        for (int64_t i = 0; i < B; i++) {                                                          \
            const T xi = x[i];                                                                     \
            const int64_t k = below_##SUF(t, K, xi);                                               \
            const T *a = A + k * H, *cc = C + k * H;                                               \
            T *o = out + i * m;                                                                    \
            if (m == 1) {                                                                          \
                T s = b3[c];                                                                       \
                _Pragma("omp simd reduction(+:s)")                                                 \
                for (int64_t h = 0; h < H; h++) {                                                  \
                    const T p = xi * a[h] + cc[h];                                                 \
                    s += (p < 0 ? 0 : p) * W[h];                                                   \
                }                                                                                  \
                o[0] = s;                                                                          \
            } else {                                                                               \
                for (int64_t q = 0; q < m; q++) o[q] = b3[c * m + q];                              \
                for (int64_t h = 0; h < H; h++) {                                                  \
                    const T p = xi * a[h] + cc[h];                                                 \
                    if (!(p < 0))                                                                  \
                        for (int64_t q = 0; q < m; q++) o[q] += p * W[h * m + q];                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    free(acc);                                                                                     \
    free(scratch);                                                                                 \
}                                                                                                  \
                                                                                                   \
/* Table gradients dA, dC (copy c) -> gradients of w, b, W2, b2 (assigned).                      \
 * A unit with rank r is on for k > r (up) or k <= r (down): its share of the table            \
 * gradient is total - prefix(r) or prefix(r), prefix(r) = sum_{k <= r}. */                      \
static void tables_backward_##SUF(const job_t *j, int64_t c, double *tot, double *pre) {          \
    const int64_t K = j->K, H = j->H;                                                              \
    const T *w = (const T *)j->w1 + c * K, *b = (const T *)j->b1 + c * K;                          \
    const T *W2 = (const T *)j->W2 + c * K * H;                                                    \
    const T *dA = (const T *)j->dA + c * (K + 1) * H, *dC = (const T *)j->dC + c * (K + 1) * H;    \
    const int64_t *order = j->order + c * K;                                                       \
    T *dw = (T *)j->dw1 + c * K, *db = (T *)j->db1 + c * K;                                        \
    T *dW2 = (T *)j->dW2 + c * K * H, *db2 = (T *)j->db2 + c * H;                                  \
    double *totA = tot, *totC = tot + H, *preA = pre, *preC = pre + H;                             \
    for (int64_t h = 0; h < H; h++) { totA[h] = totC[h] = preA[h] = preC[h] = 0; }                \
    for (int64_t k = 0; k <= K; k++)                                                               \
        for (int64_t h = 0; h < H; h++) { totA[h] += dA[k * H + h]; totC[h] += dC[k * H + h]; }   \
    for (int64_t h = 0; h < H; h++) db2[h] = totC[h];                                              \
    for (int64_t r = 0; r < K; r++) {                                                              \
        for (int64_t h = 0; h < H; h++) { preA[h] += dA[r * H + h]; preC[h] += dC[r * H + h]; }   \
        const int64_t u = order[r];                                                                \
        const int up = w[u] > 0, down = w[u] < 0, always = w[u] == 0 && b[u] > 0;                  \
        double gw = 0, gb = 0;                                                                     \
        for (int64_t h = 0; h < H; h++) {                                                          \
            const double sa = up ? totA[h] - preA[h] : down ? preA[h] : always ? totA[h] : 0;      \
            const double sc = up ? totC[h] - preC[h] : down ? preC[h] : always ? totC[h] : 0;      \
            dW2[u * H + h] = w[u] * sa + b[u] * sc;                                                \
            gw += W2[u * H + h] * sa;                                                              \
            gb += W2[u * H + h] * sc;                                                              \
        }                                                                                          \
        dw[u] = gw;                                                                                \
        db[u] = gb;                                                                                \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static void bwd_##SUF(job_t *j) {                                                                  \
    const int64_t B = j->B, K = j->K, H = j->H, m = j->m;                                          \
    const T *x = j->x, *W3 = j->W3, *g = j->g;                                                     \
    double *work = malloc(4 * H * sizeof *work);                                                   \
    if (!work) { j->failed = 1; return; }                                                          \
    for (int64_t c = 0; c < j->copies; c++) {                                                      \
        const T *t = (const T *)j->t + c * K;                                                      \
        const T *A = (const T *)j->A + c * (K + 1) * H, *C = (const T *)j->C + c * (K + 1) * H;    \
        T *dA = (T *)j->dA + c * (K + 1) * H, *dC = (T *)j->dC + c * (K + 1) * H;                  \
        const T *W = W3 + c * H * m;                                                               \
        T *dW = (T *)j->dW3 + c * H * m, *db3 = (T *)j->db3 + c * m, *dx = (T *)j->dx + c * B;     \
        for (int64_t i = 0; i < B; i++) {                                                          \
            const T xi = x[i];                                                                     \
            const int64_t k = below_##SUF(t, K, xi);                                               \
            const T *a = A + k * H, *cc = C + k * H, *gi = g + (c * B + i) * m;                    \
            T *da = dA + k * H, *dc = dC + k * H;                                                  \
            T dxi = 0;                                                                             \
            for (int64_t q = 0; q < m; q++) db3[q] += gi[q];                                       \
            if (m == 1) {                                                                          \
                const T g0 = gi[0];                                                                \
                _Pragma("omp simd reduction(+:dxi)")                                               \
                for (int64_t h = 0; h < H; h++) {                                                  \
                    const T p = xi * a[h] + cc[h];                                                 \
                    const T on = p > 0 ? 1 : 0;                                                    \
                    const T gp = on * g0 * W[h];                                                   \
                    dW[h] += on * p * g0;                                                          \
                    dxi += gp * a[h];                                                              \
                    da[h] += gp * xi;                                                              \
                    dc[h] += gp;                                                                   \
                }                                                                                  \
            } else {                                                                               \
                for (int64_t h = 0; h < H; h++) {                                                  \
                    const T p = xi * a[h] + cc[h];                                                 \
                    if (!(p > 0)) continue;                                                        \
                    T gp = 0;                                                                      \
                    for (int64_t q = 0; q < m; q++) {                                              \
                        gp += gi[q] * W[h * m + q];                                                \
                        dW[h * m + q] += p * gi[q];                                                \
                    }                                                                              \
                    dxi += gp * a[h];                                                              \
                    da[h] += gp * xi;                                                              \
                    dc[h] += gp;                                                                   \
                }                                                                                  \
            }                                                                                      \
            dx[i] = dxi;                                                                           \
        }                                                                                          \
        tables_backward_##SUF(j, c, work, work + 2 * H);                                           \
    }                                                                                              \
    free(work);                                                                                    \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* All arrays contiguous; dtype_bytes 4 (float) or 8 (double).
 * x (B); w1, b1 (copies, K); W2 (copies, K, H); b2 (copies, H); W3 (copies, H, m); b3 (copies, m).
 * Forward writes t, order (copies, K), A, C (copies, K + 1, H) and out (copies, B, m).
 * Backward reads them with g (copies, B, m) and writes dx (copies, B), dw1, db1, dW2, db2;
 * dA, dC (workspace), dW3 and db3 must come zeroed. Returns 0, or -1 when out of memory. */
int piecewise_forward(int64_t dtype_bytes, int64_t copies, int64_t B, int64_t K, int64_t H, int64_t m,
                      const void *x, const void *w1, const void *b1, const void *W2, const void *b2,
                      const void *W3, const void *b3, void *t, int64_t *order, void *A, void *C,
                      void *out) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.copies = copies; j.B = B; j.K = K; j.H = H; j.m = m;
    j.x = x; j.w1 = w1; j.b1 = b1; j.W2 = W2; j.b2 = b2; j.W3 = W3; j.b3 = b3;
    j.t = t; j.order = order; j.A = A; j.C = C; j.out = out;
    (dtype_bytes == 4 ? fwd_f32 : fwd_f64)(&j);
    return j.failed ? -1 : 0;
}

int piecewise_backward(int64_t dtype_bytes, int64_t copies, int64_t B, int64_t K, int64_t H, int64_t m,
                       const void *x, const void *w1, const void *b1, const void *W2, const void *W3,
                       const void *t, const int64_t *order, const void *A, const void *C, const void *g,
                       void *dx, void *dA, void *dC, void *dw1, void *db1, void *dW2, void *db2,
                       void *dW3, void *db3) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.copies = copies; j.B = B; j.K = K; j.H = H; j.m = m;
    j.x = x; j.w1 = w1; j.b1 = b1; j.W2 = W2; j.W3 = W3;
    j.t = (void *)t; j.order = (int64_t *)order; j.A = (void *)A; j.C = (void *)C; j.g = g;
    j.dx = dx; j.dA = dA; j.dC = dC; j.dw1 = dw1; j.db1 = db1; j.dW2 = dW2; j.db2 = db2;
    j.dW3 = dW3; j.db3 = db3;
    (dtype_bytes == 4 ? bwd_f32 : bwd_f64)(&j);
    return j.failed ? -1 : 0;
}
