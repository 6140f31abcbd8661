/* Fused CPU kernels for ParallelMLP on a scalar input (see piecewise.py).
 *
 * For copy c and sample i, k = number of breakpoints t[c, :] below x_i (binary search):
 *     pre_j  = x_i * A[c, k, j] + C[c, k, j]    (k in 0..K, j in 0..H)            (exact layer-2 pre-activation)
 *     out_o  = b3[c, o] + sum_j relu(pre_j) * W3[c, j, o]
 * The backward pass recomputes pre_j instead of storing (copies, B, H) activations.
 * relu is written (p < 0 ? 0 : p) so that a NaN propagates as in torch.
 *
 * Plain C, no Python or torch headers: loaded with ctypes.  One thread per
 * group of copies (copies are independent nets), so no accumulation races.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct {
    int64_t c0, c1, B, K, H, m;
    const void *x, *A, *C, *W3, *b3, *g;
    const void *t;
    void *out, *dx, *dA, *dC, *dW3, *db3;
} job_t;

/* Number of entries of the sorted row t[0..n) that are < x (NaN x gives 0). */
#define DEFINE_KERNELS(T, SUF)                                                                     \
static int64_t below_##SUF(const T *t, int64_t n, T x) {                                          \
    const T *base = t;                                 /* branch-free lower bound */               \
    while (n > 1) {                                                                                \
        const int64_t half = n / 2;                                                                \
        base = base[half] < x ? base + half : base;                                                \
        n -= half;                                                                                 \
    }                                                                                              \
    return (base - t) + (*base < x);                                                               \
}                                                                                                  \
static void fwd_##SUF(const job_t *j) {                                                           \
    const T *x = j->x, *A = j->A, *C = j->C, *W3 = j->W3, *b3 = j->b3;                             \
    T *out = j->out;                                                                               \
    const int64_t B = j->B, K = j->K, H = j->H, m = j->m, rows = K + 1;                                      \
    for (int64_t c = j->c0; c < j->c1; c++) {                                                      \
        const T *Ac = A + c * rows * H, *Cc = C + c * rows * H, *W = W3 + c * H * m;               \
        for (int64_t i = 0; i < B; i++) {                                                          \
            const T xi = x[i];                                                                     \
            const int64_t k = below_##SUF((const T *)j->t + c * K, K, xi);                         \
            const T *a = Ac + k * H, *cc = Cc + k * H;                                             \
            T *o = out + (c * B + i) * m;                                                          \
            if (m == 1) {                                                                          \
                T acc = b3[c];                                                                     \
                _Pragma("omp simd reduction(+:acc)")                                               \
                for (int64_t h = 0; h < H; h++) {                                                  \
                    const T p = xi * a[h] + cc[h];                                                 \
                    acc += (p < 0 ? 0 : p) * W[h];                                           \
                }                                                                                  \
                o[0] = acc;                                                                        \
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
}                                                                                                  \
static void bwd_##SUF(const job_t *j) {                                                           \
    const T *x = j->x, *A = j->A, *C = j->C, *W3 = j->W3, *g = j->g;                               \
    T *dx = j->dx, *dA = j->dA, *dC = j->dC, *dW3 = j->dW3, *db3 = j->db3;                         \
    const int64_t B = j->B, K = j->K, H = j->H, m = j->m, rows = K + 1;                                      \
    for (int64_t c = j->c0; c < j->c1; c++) {                                                      \
        const T *Ac = A + c * rows * H, *Cc = C + c * rows * H, *W = W3 + c * H * m;               \
        T *dAc = dA + c * rows * H, *dCc = dC + c * rows * H, *dW = dW3 + c * H * m;               \
        for (int64_t i = 0; i < B; i++) {                                                          \
            const T xi = x[i];                                                                     \
            const int64_t k = below_##SUF((const T *)j->t + c * K, K, xi);                         \
            const T *a = Ac + k * H, *cc = Cc + k * H, *gi = g + (c * B + i) * m;                  \
            T *da = dAc + k * H, *dc = dCc + k * H;                                                \
            T dxi = 0;                                                                             \
            for (int64_t q = 0; q < m; q++) db3[c * m + q] += gi[q];                               \
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
            dx[c * B + i] = dxi;                                                                   \
        }                                                                                          \
    }                                                                                              \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

typedef void (*kernel_t)(const job_t *);

typedef struct { kernel_t fn; job_t job; } task_t;

static void *run_task(void *arg) {
    task_t *t = arg;
    t->fn(&t->job);
    return NULL;
}

/* Split copies [0, copies) over up to `threads` threads; the caller's thread takes the first share. */
static void run(kernel_t fn, job_t base, int64_t copies, int64_t threads) {
    if (threads > copies) threads = copies;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    task_t tasks[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int64_t t = 0; t < threads; t++) {
        tasks[t].fn = fn;
        tasks[t].job = base;
        tasks[t].job.c0 = copies * t / threads;
        tasks[t].job.c1 = copies * (t + 1) / threads;
        started[t] = t > 0 && pthread_create(&ids[t], NULL, run_task, &tasks[t]) == 0;
    }
    for (int64_t t = 0; t < threads; t++)
        if (!started[t]) fn(&tasks[t].job);
    for (int64_t t = 1; t < threads; t++)
        if (started[t]) pthread_join(ids[t], NULL);
}

/* dtype_bytes selects float (4) or double (8).  All arrays are contiguous:
 * x (B), t (copies, K) sorted breakpoints, A and C (copies, K + 1, H), W3 (copies, H, m), b3 (copies, m),
 * out and g (copies, B, m), dx (copies, B).  dA, dC, dW3, db3 must be zeroed by the caller. */
void piecewise_forward(int64_t dtype_bytes, int64_t copies, int64_t B, int64_t K, int64_t H, int64_t m,
                       const void *x, const void *t, const void *A, const void *C,
                       const void *W3, const void *b3, void *out, int64_t threads) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.B = B; j.K = K; j.H = H; j.m = m; j.x = x; j.t = t; j.A = A; j.C = C; j.W3 = W3; j.b3 = b3; j.out = out;
    run(dtype_bytes == 4 ? fwd_f32 : fwd_f64, j, copies, threads);
}

void piecewise_backward(int64_t dtype_bytes, int64_t copies, int64_t B, int64_t K, int64_t H, int64_t m,
                        const void *x, const void *t, const void *A, const void *C,
                        const void *W3, const void *g, void *dx, void *dA, void *dC,
                        void *dW3, void *db3, int64_t threads) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.B = B; j.K = K; j.H = H; j.m = m; j.x = x; j.t = t; j.A = A; j.C = C; j.W3 = W3; j.g = g;
    j.dx = dx; j.dA = dA; j.dC = dC; j.dW3 = dW3; j.db3 = db3;
    run(dtype_bytes == 4 ? bwd_f32 : bwd_f64, j, copies, threads);
}
