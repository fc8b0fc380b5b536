/* C11 threads (<threads.h>) on top of POSIX threads, preloaded into the ThreadSanitizer runs of the
 * C++ tests (`make sanitize-*-tsan` sets LD_PRELOAD to the shared library built from this file).
 *
 * Why: Debian's librdkafka is built with C11 threads (thrd_create, mtx_lock, cnd_wait, ...). glibc
 * implements those by calling its internal pthread functions directly, and GCC 12's and clang 14's
 * TSan runtimes intercept only the public pthread_* entry points. So TSan never sees librdkafka's
 * threads start (the first malloc on such a thread crashes inside the TSan allocator, whose
 * per-thread state was never set up) nor its mutexes and condition variables (every hand-over of
 * our memory through librdkafka's queues, e.g. a delivery report's opaque, would look like a race).
 * Routing the C11 calls through the public pthread functions makes TSan see both, as newer
 * compiler-rt versions do with their own C11 thread interceptors.
 *
 * glibc lays out thrd_t, mtx_t, cnd_t and once_flag exactly like pthread_t, pthread_mutex_t,
 * pthread_cond_t and pthread_once_t (its own C11 functions cast between them), so the casts below
 * are the ones glibc makes. Only for test runs; never linked into the product.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");

/* The thrd_* result for a pthread error code, as glibc maps it. */
static int thrd_result(int pthread_error) {
  switch (pthread_error) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

struct thread_start {
  thrd_start_t function;
  void* argument;
};

static void* run_thread(void* raw) {
  struct thread_start start = *(struct thread_start*)raw;
  free(raw);
  return (void*)(intptr_t)start.function(start.argument);
}

int thrd_create(thrd_t* thread, thrd_start_t function, void* argument) {
  struct thread_start* start = malloc(sizeof *start);
  if (start == NULL) return thrd_nomem;
  start->function = function;
  start->argument = argument;
  const int error = pthread_create((pthread_t*)thread, NULL, run_thread, start);
  if (error != 0) free(start);
  return thrd_result(error);
}

int thrd_join(thrd_t thread, int* result) {
  void* value = NULL;
  const int error = pthread_join((pthread_t)thread, &value);
  if (error == 0 && result != NULL) *result = (int)(intptr_t)value;
  return thrd_result(error);
}

int thrd_detach(thrd_t thread) {
  return thrd_result(pthread_detach((pthread_t)thread));
}

_Noreturn void thrd_exit(int result) {
  pthread_exit((void*)(intptr_t)result);
}

int mtx_init(mtx_t* mutex, int type) {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_settype(&attributes,
                            (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_NORMAL);
  const int error = pthread_mutex_init((pthread_mutex_t*)mutex, &attributes);
  pthread_mutexattr_destroy(&attributes);
  return thrd_result(error);
}

int mtx_lock(mtx_t* mutex) {
  return thrd_result(pthread_mutex_lock((pthread_mutex_t*)mutex));
}

int mtx_trylock(mtx_t* mutex) {
  return thrd_result(pthread_mutex_trylock((pthread_mutex_t*)mutex));
}

int mtx_timedlock(mtx_t* restrict mutex, const struct timespec* restrict deadline) {
  return thrd_result(pthread_mutex_timedlock((pthread_mutex_t*)mutex, deadline));
}

int mtx_unlock(mtx_t* mutex) {
  return thrd_result(pthread_mutex_unlock((pthread_mutex_t*)mutex));
}

void mtx_destroy(mtx_t* mutex) {
  pthread_mutex_destroy((pthread_mutex_t*)mutex);
}

int cnd_init(cnd_t* condition) {
  return thrd_result(pthread_cond_init((pthread_cond_t*)condition, NULL));
}

int cnd_signal(cnd_t* condition) {
  return thrd_result(pthread_cond_signal((pthread_cond_t*)condition));
}

int cnd_broadcast(cnd_t* condition) {
  return thrd_result(pthread_cond_broadcast((pthread_cond_t*)condition));
}

int cnd_wait(cnd_t* condition, mtx_t* mutex) {
  return thrd_result(pthread_cond_wait((pthread_cond_t*)condition, (pthread_mutex_t*)mutex));
}

int cnd_timedwait(cnd_t* restrict condition, mtx_t* restrict mutex,
                  const struct timespec* restrict deadline) {
  return thrd_result(pthread_cond_timedwait((pthread_cond_t*)condition, (pthread_mutex_t*)mutex, deadline));
}

void cnd_destroy(cnd_t* condition) {
  pthread_cond_destroy((pthread_cond_t*)condition);
}

void call_once(once_flag* flag, void (*function)(void)) {
  pthread_once((pthread_once_t*)flag, function);
}
