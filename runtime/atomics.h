/* Internal (not installed). The atomic operations of the concurrent core.
 *
 * Read-modify-write operations (exchange, compare-and-swap, fetch-and-add)
 * go through Concurrency Kit's ck_pr, which emits the lock-prefixed x86
 * instructions (full barriers) or, under -DCK_USE_CC_BUILTINS=1 (the TSan
 * build), the compiler's __sync builtins (sequentially consistent).
 *
 * Plain loads and stores that *publish* data (a release store paired with an
 * acquire load) use the compiler's __atomic builtins with an explicit order:
 * ck_pr_load/ck_pr_store are volatile accesses plus compiler barriers, which
 * are correct on x86 but which neither the C memory model nor ThreadSanitizer
 * treat as acquire/release. Each call site names its order and its pair. */
#ifndef CASTY_ATOMICS_H
#define CASTY_ATOMICS_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stdint.h>

#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_seqcst(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_seqcst(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* Exchange with a full barrier (lock xchg on x86-64, as ck_pr_fas_*).
 * Not ck_pr_fas_*: with CK_USE_CC_BUILTINS (the TSan build) ck writes it
 * as a plain load and a CAS loop, and when TSan can no longer restore the
 * stack of that load (one long before: a slab's bitmap word is exchanged
 * once per pass over the slab) the ck_pr_md_load_* suppression cannot
 * match, and a false race is reported. */
#define exchange_seqcst(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

#if defined(__SANITIZE_THREAD__)
#define CASTY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CASTY_TSAN 1
#endif
#endif

/* A full barrier. ThreadSanitizer does not model standalone fences (gcc
 * refuses them under -fsanitize=thread), so there it is a sequentially
 * consistent read-modify-write, which is a full barrier on every target. */
static inline void fence_seqcst(void)
{
#ifdef CASTY_TSAN
    static _Thread_local uint32_t fence_word;
    __atomic_fetch_add(&fence_word, 0, __ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static inline void cpu_relax(void)
{
    ck_pr_stall();
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Asks for p's cache line in a writable state ahead of a write. Without
 * -march, __builtin_prefetch(p, 1) is a plain read prefetch on x86, which
 * leaves the line shared and the write still waiting for the other cores'
 * copies to go; PREFETCHW (on every x86-64 AMD part and Intel since
 * Broadwell, a no-op on older ones) asks for ownership. Never faults. */
static inline void prefetch_for_write(const void *p)
{
#if defined(__x86_64__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1);
#endif
}

#endif
