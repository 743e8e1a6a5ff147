/*
 * dorsal's durable file creation: `createDurable(path, bytes, sync)` creates `path` (O_EXCL: it
 * fails if a file is there), writes `bytes`, and closes it; with `sync`, it fdatasyncs the file
 * and then syncs its directory, so that the name is durable too. All in one task on libuv's
 * thread pool. The same with `fs` calls costs five round trips to the pool (open, write,
 * datasync, close, the directory's sync), each waking a pool thread and then the event loop:
 * ~25 µs when the machine is idle, 100–300 µs each under load on a 2-core VM.
 *
 * Directory syncs are shared between the tasks running at once (a group commit): a task takes a
 * mark of a process-wide generation once its name exists, and needs a sync of its directory
 * that started after the mark. If one has completed, it is done; if one is running, it waits for
 * it; otherwise it starts one. (Generations are one sequence for every directory.)
 *
 * Resolves to 0, or to `(step << 16) | errno` for the call that failed (1 open, 2 write, 3 sync,
 * 4 close, 5 the directory's sync); JavaScript turns that into an Error like Node's. A file that
 * this call created is removed if a later step on it fails, so that no partial file is left under
 * the name (not after a failed directory sync: the file is whole; the call still fails).
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

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace {

enum Step : int32_t { kOpen = 1, kWrite = 2, kSync = 3, kClose = 4, kDirSync = 5 };

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

/* One directory's syncs. Guarded by `dirMutex`. */
struct DirState {
  uint64_t done = 0;    // the highest generation of a completed sync
  uint64_t latest = 0;  // the generation of the sync started last
  int running = 0;      // syncs under way
  int waiting = 0;      // tasks waiting for one (they hold a reference to this state)
};

std::mutex dirMutex;
std::condition_variable dirSynced;
std::unordered_map<std::string, DirState> dirs;
uint64_t generation = 0;  // guarded by dirMutex
constexpr size_t kMaxDirs = 4096;

uint64_t Mark() {
  std::lock_guard<std::mutex> lock(dirMutex);
  return generation;
}

int SyncDirectory(const std::string &dir) {
  int fd;
  do {
    fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  const int error = fsync(fd) != 0 ? errno : 0;
  close(fd);
  return error;
}

/* Returns once a sync of `dir` that started after `mark` has completed, or the errno of one that failed. */
int SyncDirectoryAfter(const std::string &dir, uint64_t mark) {
  std::unique_lock<std::mutex> lock(dirMutex);
  if (dirs.size() > kMaxDirs) {
    for (auto it = dirs.begin(); it != dirs.end();) {
      if (it->second.running == 0 && it->second.waiting == 0) it = dirs.erase(it);
      else ++it;
    }
  }
  DirState &state = dirs[dir];
  for (;;) {
    if (state.done > mark) return 0;
    if (state.latest > mark && state.running > 0) {
      // A sync that started after the mark is under way (or one before it, and then we look again).
      state.waiting++;
      dirSynced.wait(lock);
      state.waiting--;
      continue;
    }
    const uint64_t mine = ++generation;
    state.latest = mine;
    state.running++;
    lock.unlock();
    const int error = SyncDirectory(dir);
    lock.lock();
    state.running--;
    if (error == 0 && mine > state.done) state.done = mine;
    dirSynced.notify_all();
    if (error != 0) return error;
  }
}

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
  // The name exists: a directory sync that starts after this mark includes it.
  const uint64_t mark = Mark();
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
  if (result != 0) {
    unlink(task->path.c_str());
  } else if (task->sync) {
    const size_t slash = task->path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : task->path.substr(0, slash);
    const int error = SyncDirectoryAfter(dir, mark);
    if (error != 0) result = Failed(kDirSync, error);
  }
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
