// a persistent thread pool: workers sleep on a condition variable, spin for up to SPIN_NS after a job,
// and are re-created lazily after fork(); one job at a time, concurrent callers run inline
#define _GNU_SOURCE
#include "ff_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// how long a worker waiting for a job, or a caller waiting for the workers, spins before it sleeps: longer than
// the gap between two decode steps (about 0.1 ms of python and sampling), so a generating worker is not put to
// sleep and woken again every token (a futex wake cost the 1.1B decode step about 80 us). An idle pool burns this
// much of each core once, after its last job
#define SPIN_NS 1000000

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// 1 once a spin that began at *t0 (0: not yet read) has run SPIN_NS; reads the clock every 64 calls
static int spin_over(int *spins, uint64_t *t0) {
    ff_cpu_relax();
    if (++*spins % 64) return 0;
    uint64_t t = now_ns();
    if (!*t0) *t0 = t;
    return t - *t0 > SPIN_NS;
}

typedef struct {
    pthread_mutex_t mu;      // guards sleeping and waking
    pthread_cond_t cv_work;  // workers wait here for a new generation
    pthread_cond_t cv_done;  // the caller waits here for pending == 0
    pthread_mutex_t busy;    // held by the caller that owns the current job
    pthread_t th[FF_MAX_THREADS];
    uint64_t start_gen[FF_MAX_THREADS];  // gen when each worker was created: its first job comes after
    int n_workers;                       // started workers (the caller is not one of them)
    _Atomic uint64_t gen;                // (job counter << 16) | nth, bumped once per job
    _Atomic int pending;                 // participating workers still running
    ff_task_fn fn;                       // stable while a participating worker runs
    void *ctx;
    ff_span ahead[FF_MAX_THREADS];  // what each task index reads after its part of the job (see ff_parallel_pf)
} pool_t;

static pool_t pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv_work = PTHREAD_COND_INITIALIZER,
    .cv_done = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};
static _Atomic int n_threads = 0;  // 0 = not chosen yet: default on first use
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

// spans handed to workers, read-aheads finished (each span, however little of it was read: equal to ahead_posted
// once no worker reads or is about to read), and the bytes they read
static _Atomic int64_t ahead_posted, ahead_spans, ahead_bytes;

// read span s a line at a time, into this core's caches, until it ends or a job newer than `seen` is posted
static void read_ahead(ff_span s, uint64_t seen) {
    const volatile uint8_t *p = s.p;
    uint8_t sink = 0;
    int64_t off = 0;
    for (; off < s.bytes && atomic_load_explicit(&pool.gen, memory_order_relaxed) == seen; off += 4096)
        for (int64_t i = off; i < FF_MIN(off + 4096, s.bytes); i += 64) sink ^= p[i];
    (void)sink;
    atomic_fetch_add_explicit(&ahead_bytes, FF_MIN(off, s.bytes), memory_order_relaxed);
    atomic_fetch_add_explicit(&ahead_spans, 1, memory_order_release);  // after its last read
}

void ff_read_ahead_stats(int64_t *spans, int64_t *bytes) {
    *spans = atomic_load(&ahead_spans);
    *bytes = atomic_load(&ahead_bytes);
}

static void *worker_main(void *arg) {
    int idx = (int)(intptr_t)arg;  // this worker runs task index idx + 1
    uint64_t seen = pool.start_gen[idx];
    for (;;) {
        // wait for a new job: spin up to SPIN_NS, then sleep
        uint64_t g, t0 = 0;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && !spin_over(&spins, &t0)) {}
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.cv_work, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        // nth travels inside gen: a worker left out of this job reads nothing else
        int nth = (int)(g & 0xffff);
        if (idx + 1 >= nth) continue;
        pool.fn(pool.ctx, idx + 1, nth);
        ff_span ahead = pool.ahead[idx + 1];  // read before pending drops: the caller may post the next job then
        // the last one out wakes the caller
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_broadcast(&pool.cv_done);
            pthread_mutex_unlock(&pool.mu);
        }
        if (ahead.bytes > 0) read_ahead(ahead, seen);
    }
    return NULL;
}

// in a forked child only the forking thread exists: forget the workers and reset the locks
static void atfork_child(void) {
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv_work, NULL);
    pthread_cond_init(&pool.cv_done, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    pool.n_workers = 0;
    atomic_store(&pool.gen, 0);
    atomic_store(&pool.pending, 0);
    atomic_store(&ahead_posted, atomic_load(&ahead_spans));  // the parent's workers' read-aheads are not ours
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, atfork_child); }

// start workers until there are `want`; returns how many exist (fewer if the OS refuses)
static int ensure_workers(int want) {
    while (pool.n_workers < want) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.start_gen[pool.n_workers] = atomic_load(&pool.gen);
        int rc = pthread_create(&pool.th[pool.n_workers], &attr, worker_main, (void *)(intptr_t)pool.n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.n_workers++;
    }
    return pool.n_workers;
}

int ff_default_num_threads(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return FF_MIN(n, FF_MAX_THREADS);
    }
#endif
    return 1;
}

void ff_set_num_threads(int n) { atomic_store(&n_threads, FF_MAX(1, FF_MIN(n, FF_MAX_THREADS))); }

int ff_get_num_threads(void) {
    int n = atomic_load(&n_threads);
    if (n == 0) {
        n = ff_default_num_threads();
        atomic_store(&n_threads, n);
    }
    return n;
}

// post a job to workers 1..nth-1 (they exist; the caller holds busy), run task 0 and wait for theirs
static void run_job(ff_task_fn fn, void *ctx, int nth, const ff_span *ahead) {
    pool.fn = fn;
    pool.ctx = ctx;
    for (int i = 1; i < nth; i++) {
        pool.ahead[i] = ahead ? ahead[i] : (ff_span){NULL, 0};
        if (pool.ahead[i].bytes > 0) atomic_fetch_add_explicit(&ahead_posted, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&pool.pending, nth - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool.mu);
    uint64_t g = atomic_load_explicit(&pool.gen, memory_order_relaxed);
    atomic_store_explicit(&pool.gen, (((g >> 16) + 1) << 16) | (uint64_t)nth, memory_order_release);
    pthread_cond_broadcast(&pool.cv_work);
    pthread_mutex_unlock(&pool.mu);

    fn(ctx, 0, nth);

    // wait for the workers: spin up to SPIN_NS, then sleep
    uint64_t t0 = 0;
    for (int spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0 && !spin_over(&spins, &t0);) {}
    if (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&pool.mu);
        while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0)
            pthread_cond_wait(&pool.cv_done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
}

void ff_parallel_pf(ff_task_fn fn, void *ctx, int nth_max, const ff_span *ahead) {
    int nth = FF_MIN(ff_get_num_threads(), nth_max);
    // one job at a time: a second concurrent caller computes alone
    if (nth <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    nth = FF_MIN(nth, ensure_workers(nth - 1) + 1);
    if (nth <= 1)
        fn(ctx, 0, 1);
    else
        run_job(fn, ctx, nth, ahead);
    pthread_mutex_unlock(&pool.busy);
}

void ff_parallel(ff_task_fn fn, void *ctx, int nth_max) { ff_parallel_pf(fn, ctx, nth_max, NULL); }

static void settle_task(void *ctx, int ith, int nth) { (void)ctx, (void)ith, (void)nth; }

void ff_pool_settle(void) {
    // nothing to wait for once every span handed out (this thread's among them) has been read to its end or left:
    // the usual case, where each read-ahead was cut short by the job it read for
    int64_t done = atomic_load_explicit(&ahead_spans, memory_order_acquire);
    if (done == atomic_load_explicit(&ahead_posted, memory_order_relaxed)) return;
    // else an empty task for every worker: a worker runs it only after the 4 KB of its read-ahead in hand
    pthread_mutex_lock(&pool.busy);
    if (pool.n_workers > 0) run_job(settle_task, NULL, pool.n_workers + 1, NULL);
    pthread_mutex_unlock(&pool.busy);
}

// ---- per-thread scratch: grows on demand, freed when the thread exits ----
typedef struct {
    void *p;
    size_t cap;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *arg) {
    scratch_t *s = arg;
    free(s->p);
    free(s);
}

static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *ff_scratch(size_t bytes) {
    pthread_once(&scratch_once, scratch_key_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->cap < bytes) {
        size_t cap = (bytes + 63) & ~(size_t)63;
        void *p = aligned_alloc(64, cap);
        if (!p) return NULL;
        free(s->p);
        s->p = p;
        s->cap = cap;
    }
    return s->p;
}

// ---- a memory read probe: the roofline a decode step is measured against ----

typedef struct {
    const uint64_t *p;
    int64_t n;
    int width;  // 512, 256 or 0: the loads of the ISA path in use (wide loads keep more lines in flight)
    uint64_t part[FF_MAX_THREADS];
} readsum_ctx;

// the sum of p[lo..hi), read front to back with no software prefetch, as the decode kernels read W (on a Zen 4 a
// 2 KiB-ahead prefetch made this 0-10% slower); four vector sums keep loads in flight
static uint64_t readsum_base(const uint64_t *p, int64_t lo, int64_t hi) {
    uint64_t s[4] = {0};
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4)
        for (int j = 0; j < 4; j++) s[j] += p[i + j];
    for (; i < hi; i++) s[0] += p[i];
    return s[0] + s[1] + s[2] + s[3];
}

#ifdef FF_HAVE_X86
#include <immintrin.h>

__attribute__((target("avx2"))) static uint64_t readsum_avx2(const uint64_t *p, int64_t lo, int64_t hi) {
    __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    int64_t i = lo;
    for (; i + 16 <= hi; i += 16)
        for (int j = 0; j < 4; j++)
            s[j] = _mm256_add_epi64(s[j], _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 4 * j)));
    uint64_t v[4], r = readsum_base(p, i, hi);
    _mm256_storeu_si256((__m256i *)(void *)v,
                        _mm256_add_epi64(_mm256_add_epi64(s[0], s[1]), _mm256_add_epi64(s[2], s[3])));
    return r + v[0] + v[1] + v[2] + v[3];
}

__attribute__((target("avx512f"))) static uint64_t readsum_avx512(const uint64_t *p, int64_t lo, int64_t hi) {
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    int64_t i = lo;
    for (; i + 32 <= hi; i += 32)
        for (int j = 0; j < 4; j++) s[j] = _mm512_add_epi64(s[j], _mm512_loadu_si512(p + i + 8 * j));
    return readsum_base(p, i, hi) + (uint64_t)_mm512_reduce_add_epi64(
                                        _mm512_add_epi64(_mm512_add_epi64(s[0], s[1]), _mm512_add_epi64(s[2], s[3])));
}
#endif

static void readsum_task(void *arg, int ith, int nth) {
    readsum_ctx *c = arg;
    int64_t lo, hi;
    ff_split(c->n, ith, nth, 64, &lo, &hi);  // whole 512-byte runs per thread
#ifdef FF_HAVE_X86
    if (c->width == 512) {
        c->part[ith] = readsum_avx512(c->p, lo, hi);
        return;
    }
    if (c->width == 256) {
        c->part[ith] = readsum_avx2(c->p, lo, hi);
        return;
    }
#endif
    c->part[ith] = readsum_base(c->p, lo, hi);
}

uint64_t ff_read_sum(const uint64_t *p, int64_t n) {
    readsum_ctx c = {.p = p, .n = n};
#ifdef FF_HAVE_X86
    c.width = ff_isa_current() == FF_ISA_AVX512 ? 512 : ff_isa_current() == FF_ISA_AVX2 ? 256 : 0;
#endif
    ff_parallel(readsum_task, &c, FF_MAX_THREADS);
    // a busy pool runs the task once, alone: the parts it did not run stay 0
    uint64_t s = 0;
    for (int t = 0; t < FF_MAX_THREADS; t++) s += c.part[t];
    return s;
}
