/*
 * dorsal's durable file creation: `createDurable(path, bytes, sync)` creates `path` (O_EXCL: it
 * fails if a file is there), writes `bytes`, fdatasyncs it if asked, and closes it, all in one
 * task on libuv's thread pool. The same with `fs` calls costs four round trips to the pool
 * (open, write, datasync, close), each waking a pool thread and then the event loop: ~25 µs when
 * the machine is idle, 100–300 µs each under load on a 2-core VM.
 *
 * Resolves to 0, or to `(step << 16) | errno` for the call that failed (1 open, 2 write, 3 sync,
 * 4 close); JavaScript turns that into an Error like Node's. A file that this call created is
 * removed if a later step fails, so that no partial file is left under the name.
 *
 * The caller keeps `bytes` unchanged until the promise settles (as for `fs.write`); a reference
 * keeps it alive meanwhile.
 *
 * Node-API (version 8), built on install beside the clock (binding.gyp); optional: without it the
 * lake makes the same calls through `fs`. Not built on Windows.
 */
#include <node_api.h>

#if !defined(_WIN32)
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace {

enum Step : int32_t { kOpen = 1, kWrite = 2, kSync = 3, kClose = 4 };

struct Task {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  napi_ref bytesRef = nullptr;
  std::string path;
  const uint8_t *data = nullptr;
  size_t length = 0;
  bool sync = true;
  int32_t result = 0;
};

int32_t Failed(Step step, int error) { return (static_cast<int32_t>(step) << 16) | (error & 0xffff); }

/* On a pool thread: no JavaScript values here. */
void Execute(napi_env, void *data) {
  Task *task = static_cast<Task *>(data);
  int fd;
  do {
    fd = open(task->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    task->result = Failed(kOpen, errno);
    return;
  }
  int32_t result = 0;
  for (size_t at = 0; at < task->length;) {
    const ssize_t n = write(fd, task->data + at, task->length - at);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = Failed(kWrite, errno);
      break;
    }
    at += static_cast<size_t>(n);
  }
#if defined(__APPLE__)
  // macOS has no fdatasync; fsync flushes to the drive (F_FULLFSYNC would also flush its cache).
  if (result == 0 && task->sync && fsync(fd) != 0) result = Failed(kSync, errno);
#else
  if (result == 0 && task->sync && fdatasync(fd) != 0) result = Failed(kSync, errno);
#endif
  // close() is not retried on EINTR: on Linux the descriptor is released either way.
  if (close(fd) != 0 && result == 0) result = Failed(kClose, errno);
  if (result != 0) unlink(task->path.c_str());
  task->result = result;
}

/* Back on the event loop. */
void Complete(napi_env env, napi_status status, void *data) {
  Task *task = static_cast<Task *>(data);
  napi_value value;
  if (status == napi_ok) {
    napi_create_int32(env, task->result, &value);
    napi_resolve_deferred(env, task->deferred, value);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "createDurable: the task was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, nullptr, message, &value);
    napi_reject_deferred(env, task->deferred, value);
  }
  napi_delete_reference(env, task->bytesRef);
  napi_delete_async_work(env, task->work);
  delete task;
}

napi_value Throw(napi_env env, const char *message) {
  napi_throw_type_error(env, nullptr, message);
  return nullptr;
}

/* createDurable(path: string, bytes: Uint8Array, sync: boolean): Promise<number> */
napi_value CreateDurable(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 3)
    return Throw(env, "createDurable(path, bytes, sync): three arguments");
  size_t pathLength = 0;
  if (napi_get_value_string_utf8(env, argv[0], nullptr, 0, &pathLength) != napi_ok)
    return Throw(env, "createDurable: path must be a string");
  Task *task = new Task();
  task->path.resize(pathLength);
  napi_get_value_string_utf8(env, argv[0], task->path.data(), pathLength + 1, &pathLength);
  bool isTypedArray = false;
  napi_is_typedarray(env, argv[1], &isTypedArray);
  napi_typedarray_type type;
  void *bytes = nullptr;
  if (!isTypedArray ||
      napi_get_typedarray_info(env, argv[1], &type, &task->length, &bytes, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    delete task;
    return Throw(env, "createDurable: bytes must be a Uint8Array");
  }
  task->data = static_cast<const uint8_t *>(bytes);
  if (napi_get_value_bool(env, argv[2], &task->sync) != napi_ok) {
    delete task;
    return Throw(env, "createDurable: sync must be a boolean");
  }
  napi_value promise;
  napi_value name;
  napi_create_reference(env, argv[1], 1, &task->bytesRef);
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "dorsal.createDurable", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, Execute, Complete, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "createDurable", NAPI_AUTO_LENGTH, CreateDurable, nullptr, &fn);
  napi_set_named_property(env, exports, "createDurable", fn);
  return exports;
}

#else

NAPI_MODULE_INIT() { return exports; }

#endif
