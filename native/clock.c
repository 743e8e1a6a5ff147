/*
 * dorsal's spine clock, read without allocating.
 *
 * `performance.now()` returns a boxed double: 16 bytes of garbage per read, a scavenge every
 * ~64k reads on a hot path. `tick()` instead writes CLOCK_MONOTONIC, in nanoseconds, into the
 * Float64Array the calling thread bound with `bind()` and returns nothing; JavaScript reads the
 * value from the array, unboxed. Each worker thread binds its own array: the pointer is
 * thread-local, and Node-API addons are loaded once per thread.
 *
 * Node-API keeps the binary stable across Node versions; it is built on install (binding.gyp)
 * and optional: without it the clock falls back to performance.now().
 */
#include <node_api.h>
#include <time.h>

static _Thread_local double *slot = NULL;

static napi_value tick(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  if (slot != NULL && clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
    slot[0] = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
  }
  return NULL;
}

/* bind(array): `array` must be a Float64Array of at least one element, kept alive by the caller. */
static napi_value bind(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < 1) {
    napi_throw_type_error(env, NULL, "bind() needs a Float64Array of at least one element");
    return NULL;
  }
  slot = (double *)data;
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "tick", NAPI_AUTO_LENGTH, tick, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "tick", fn) != napi_ok ||
      napi_create_function(env, "bind", NAPI_AUTO_LENGTH, bind, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "bind", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
