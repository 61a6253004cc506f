// a persistent thread pool: workers sleep on a condition variable, spin briefly after a job,
// and are re-created lazily after fork(); one job at a time, concurrent callers run inline
#define _GNU_SOURCE
#include "ff_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef FF_HAVE_X86
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 4096

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
} pool_t;

static pool_t pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv_work = PTHREAD_COND_INITIALIZER,
    .cv_done = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};
static _Atomic int n_threads = 0;  // 0 = not chosen yet: default on first use
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void *worker_main(void *arg) {
    int idx = (int)(intptr_t)arg;  // this worker runs task index idx + 1
    uint64_t seen = pool.start_gen[idx];
    for (;;) {
        // wait for a new job: spin a little, then sleep
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
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
        // the last one out wakes the caller
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_broadcast(&pool.cv_done);
            pthread_mutex_unlock(&pool.mu);
        }
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

void ff_parallel(ff_task_fn fn, void *ctx, int nth_max) {
    int nth = FF_MIN(ff_get_num_threads(), nth_max);
    // one job at a time: a second concurrent caller computes alone
    if (nth <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    nth = FF_MIN(nth, ensure_workers(nth - 1) + 1);
    if (nth <= 1) {
        pthread_mutex_unlock(&pool.busy);
        fn(ctx, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store_explicit(&pool.pending, nth - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool.mu);
    uint64_t g = atomic_load_explicit(&pool.gen, memory_order_relaxed);
    atomic_store_explicit(&pool.gen, (((g >> 16) + 1) << 16) | (uint64_t)nth, memory_order_release);
    pthread_cond_broadcast(&pool.cv_work);
    pthread_mutex_unlock(&pool.mu);

    fn(ctx, 0, nth);

    // wait for the workers: spin a little, then sleep
    for (int spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0 && spins < SPIN_ITERS; spins++)
        cpu_relax();
    if (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&pool.mu);
        while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0)
            pthread_cond_wait(&pool.cv_done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
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
