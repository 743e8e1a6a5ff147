/*
 * dorsal's spine clock: nanoseconds, monotonic, one time line for every thread of the process,
 * read without allocating.
 *
 * `tick()` writes the time, in nanoseconds, into the Float64Array the calling thread bound with
 * `bind()` and returns nothing; JavaScript reads the value back unboxed. (`performance.now()`
 * returns a boxed double: garbage on every read.) Each worker thread binds its own array: the
 * pointer is thread-local; the calibration below is process-wide, so every thread computes the
 * same function of the same counter.
 *
 * Where the time comes from:
 * - x86-64 Linux whose kernel runs on the TSC (it checks at boot that the counter is invariant
 *   and synchronized across CPUs): RDTSC (~9 ns here, where clock_gettime costs ~21), scaled to
 *   CLOCK_MONOTONIC nanoseconds. The rate is first measured over 20 ms when the addon loads (a
 *   few ppm), then refined 1 s, 10 s, 100 s later and every 1000 s after, each time steering back
 *   to CLOCK_MONOTONIC without a jump (see `Refine`): the clock stays within microseconds of it,
 *   and every thread reads the same line.
 * - elsewhere: clock_gettime(CLOCK_MONOTONIC).
 *
 * How it is called: a plain V8 function (the raw V8 API, not Node-API: ~20 ns less per call), and
 * on V8 11.3 (Node 20) also a V8 "fast API call": optimized code calls `FastTick` directly, like a
 * C function, without entering the API callback machinery. Node does not ship
 * v8-fast-api-calls.h, so the three descriptor records V8 reads are declared below for that one
 * version, with their layout checked at compile time; other versions build without the fast path.
 *
 * Built on install (binding.gyp) against the installed Node; optional: without it the spine clock
 * reads performance.now().
 */
#include <node.h>
#include <v8-version.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <mutex>
#include <time.h>

#if defined(__x86_64__) && defined(__linux__)
#include <x86intrin.h>
#define DORSAL_CLOCK_TSC 1
#endif

#if V8_MAJOR_VERSION == 11 && V8_MINOR_VERSION == 3
#define DORSAL_CLOCK_FAST_CALL 1
#endif

namespace {

/*
 * The calling thread's bound array. Initial-exec TLS: an offset from the thread pointer, where the
 * default model for a shared object calls __tls_get_addr on every read (~0.6 ns of a ~10 ns tick
 * here). It takes 8 bytes of the static TLS that glibc keeps for objects loaded later; should that
 * ever run out, the addon fails to load and the spine clock reads performance.now() instead.
 */
thread_local double *slot __attribute__((tls_model("initial-exec"))) = nullptr;

double MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

/* Where the time comes from; written once under `calibrated`. */
const char *source = "clock_gettime(CLOCK_MONOTONIC)";
std::once_flag calibrated;

#ifdef DORSAL_CLOCK_TSC
/*
 * The TSC's line: ns = ns0 + (tsc - tsc0) * nsPerTick until `refineAt`, then a new line that
 * starts where this one ends (so time never jumps) and aims at CLOCK_MONOTONIC one interval later.
 * A line is never changed once published; a new one replaces it (and the old one is left in
 * place, for a reader that may still hold it: one small record per refinement, at most one every
 * 1000 s after the first few).
 */
struct Line {
  uint64_t tsc0;
  double ns0;
  double nsPerTick;
  uint64_t refineAt;
  double intervalNs;
};
// Acquire/release: a reader that sees a new line sees its fields (on x86 both are plain moves).
std::atomic<const Line *> line{nullptr};
// The last measured (TSC, CLOCK_MONOTONIC) pair; only the thread holding `refining` touches it.
uint64_t pairTsc = 0;
double pairNs = 0;
std::atomic_flag refining = ATOMIC_FLAG_INIT;

constexpr double kFirstIntervalNs = 1e9;
constexpr double kLongestIntervalNs = 1e12;

/* Linux validates the TSC (invariant, synchronized across CPUs) before it makes it the clock source. */
bool KernelClockIsTsc() {
  FILE *file = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (file == nullptr) return false;
  char name[32] = {0};
  const bool read = fgets(name, sizeof name, file) != nullptr;
  fclose(file);
  return read && strcmp(name, "tsc\n") == 0;
}

/* One (TSC, CLOCK_MONOTONIC) pair: of 32 tries, the one whose two TSC reads are closest (~1 µs). */
void Pair(uint64_t *tsc, double *ns) {
  uint64_t narrowest = UINT64_MAX;
  for (int i = 0; i < 32; i++) {
    const uint64_t before = __rdtsc();
    const double now = MonotonicNs();
    const uint64_t after = __rdtsc();
    if (after - before < narrowest) {
      narrowest = after - before;
      *tsc = before + (after - before) / 2;
      *ns = now;
    }
  }
}

double OnLine(const Line *l, uint64_t tsc) {
  // Signed: a core whose TSC lags the calibrating one by a few ticks gives a small negative delta.
  return l->ns0 + static_cast<double>(static_cast<int64_t>(tsc - l->tsc0)) * l->nsPerTick;
}

/*
 * Called by the first read past `refineAt`: measures a new pair, derives the TSC's rate from the
 * previous pair, and publishes a line that starts where the current one is now and reaches
 * CLOCK_MONOTONIC (which NTP may slew) one interval later. Intervals grow 1 s, 10 s, ... 1000 s.
 * A rate more than 1 % off the current one (a VM paused or moved, say) is not trusted: the line
 * keeps its rate and is only steered. The steered slope stays within 0.5–2× the rate, so the
 * clock never stands still or runs backwards, however far off it was.
 */
const Line *Refine(const Line *current) {
  if (refining.test_and_set(std::memory_order_acquire)) return current;  // another thread is at it
  const Line *l = line.load(std::memory_order_acquire);
  if (l == current) {
    uint64_t tsc = 0;
    double ns = 0;
    Pair(&tsc, &ns);
    const double measured = (ns - pairNs) / static_cast<double>(tsc - pairTsc);
    const bool plausible = tsc > pairTsc && measured > l->nsPerTick * 0.99 && measured < l->nsPerTick * 1.01;
    const double rate = plausible ? measured : l->nsPerTick;
    const double intervalNs = l->intervalNs * 10 < kLongestIntervalNs ? l->intervalNs * 10 : kLongestIntervalNs;
    const double intervalTicks = intervalNs / rate;
    const double at = OnLine(l, tsc);
    double slope = rate + (ns - at) / intervalTicks;
    if (slope < rate * 0.5) slope = rate * 0.5;
    if (slope > rate * 2) slope = rate * 2;
    l = new Line{tsc, at, slope, tsc + static_cast<uint64_t>(intervalTicks), intervalNs};
    pairTsc = tsc;
    pairNs = ns;
    line.store(l, std::memory_order_release);
  }
  refining.clear(std::memory_order_release);
  return l;
}
#endif

void Calibrate() {
#ifdef DORSAL_CLOCK_TSC
  if (!KernelClockIsTsc()) return;
  uint64_t tsc0 = 0, tsc1 = 0;
  double ns0 = 0, ns1 = 0;
  Pair(&tsc0, &ns0);
  const timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  Pair(&tsc1, &ns1);
  const double nsPerTick = (ns1 - ns0) / static_cast<double>(tsc1 - tsc0);
  // A counter below 10 MHz or above 100 GHz is not a TSC to trust.
  if (!(tsc1 > tsc0 && nsPerTick > 0.01 && nsPerTick < 100)) return;
  pairTsc = tsc1;
  pairNs = ns1;
  const uint64_t refineAt = tsc1 + static_cast<uint64_t>(kFirstIntervalNs / nsPerTick);
  line.store(new Line{tsc1, ns1, nsPerTick, refineAt, kFirstIntervalNs}, std::memory_order_release);
  source = "rdtsc, calibrated against CLOCK_MONOTONIC";
#endif
}

/*
 * A plain RDTSC, not RDTSCP or LFENCE+RDTSC (~24 ns here against ~17 through the whole call): it
 * is not ordered after earlier loads, so a reading may be taken up to the out-of-order window
 * (tens of ns) before the load that precedes it in the program. Where that matters across
 * threads, the spine orders it itself: a handler's start is never stamped before its message's
 * publish time (SpineAdapter).
 */
inline void Stamp() {
  double *const out = slot;
  if (out == nullptr) return;
#ifdef DORSAL_CLOCK_TSC
  const Line *l = line.load(std::memory_order_acquire);
  if (l != nullptr) {
    const uint64_t tsc = __rdtsc();
    if (tsc >= l->refineAt) l = Refine(l);
    out[0] = OnLine(l, tsc);
    return;
  }
#endif
  out[0] = MonotonicNs();
}

void SlowTick(const v8::FunctionCallbackInfo<v8::Value> &) { Stamp(); }

#ifdef DORSAL_CLOCK_FAST_CALL
void FastTick(v8::Local<v8::Object> /* receiver */) { Stamp(); }

/*
 * V8 11.3's v8::CTypeInfo, v8::CFunctionInfo and v8::CFunction, as V8 reads them: a type is three
 * bytes (type, sequence kind, flags); a signature is the return type, the argument count and a
 * pointer to the argument types (the receiver first); a fast function is its address and its
 * signature. Read off Node 20's binary (`nm`, disassembly of the exported constructors).
 */
namespace fast_call {
struct TypeInfo {
  uint8_t type;
  uint8_t sequence;
  uint8_t flags;
};
struct FunctionInfo {
  TypeInfo returns;
  unsigned int argumentCount;
  const TypeInfo *arguments;
};
struct Function {
  const void *address;
  const FunctionInfo *info;
};
static_assert(sizeof(TypeInfo) == 3, "v8::CTypeInfo is 3 bytes in V8 11.3");
static_assert(offsetof(FunctionInfo, argumentCount) == 4 && offsetof(FunctionInfo, arguments) == 8 &&
                  sizeof(FunctionInfo) == 16,
              "v8::CFunctionInfo layout of V8 11.3");
static_assert(sizeof(Function) == 16, "v8::CFunction layout of V8 11.3");

constexpr uint8_t kVoid = 0;
constexpr uint8_t kV8Value = 10;  // also the type of a Local<Object> receiver
const TypeInfo kTickArguments[] = {{kV8Value, 0, 0}};
const FunctionInfo kTickInfo = {{kVoid, 0, 0}, 1, kTickArguments};
const Function kTick = {reinterpret_cast<const void *>(&FastTick), &kTickInfo};
}  // namespace fast_call
#endif

/* bind(array): `array` must be a Float64Array of at least one element, kept alive by the caller. */
void Bind(const v8::FunctionCallbackInfo<v8::Value> &info) {
  v8::Isolate *isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsFloat64Array() || info[0].As<v8::Float64Array>()->Length() < 1) {
    isolate->ThrowException(v8::Exception::TypeError(
        v8::String::NewFromUtf8Literal(isolate, "bind() needs a Float64Array of at least one element")));
    return;
  }
  v8::Local<v8::Float64Array> array = info[0].As<v8::Float64Array>();
  // Buffer() moves a small on-heap array's elements off the heap first: the pointer stays valid.
  char *data = static_cast<char *>(array->Buffer()->Data());
  slot = reinterpret_cast<double *>(data + array->ByteOffset());
}

void Set(v8::Local<v8::Context> context, v8::Local<v8::Object> exports, const char *name,
         v8::Local<v8::Value> value) {
  v8::Isolate *isolate = context->GetIsolate();
  exports->Set(context, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(), value).Check();
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  std::call_once(calibrated, Calibrate);
  v8::Isolate *isolate = context->GetIsolate();
#ifdef DORSAL_CLOCK_FAST_CALL
  const v8::CFunction *fast = reinterpret_cast<const v8::CFunction *>(&fast_call::kTick);
  const char *call = "V8 fast call";
#else
  const v8::CFunction *fast = nullptr;
  const char *call = "V8 function call";
#endif
  v8::Local<v8::FunctionTemplate> tick =
      v8::FunctionTemplate::New(isolate, SlowTick, v8::Local<v8::Value>(), v8::Local<v8::Signature>(), 0,
                                v8::ConstructorBehavior::kThrow, v8::SideEffectType::kHasNoSideEffect, fast);
  Set(context, exports, "tick", tick->GetFunction(context).ToLocalChecked());
  Set(context, exports, "bind", v8::FunctionTemplate::New(isolate, Bind)->GetFunction(context).ToLocalChecked());
  Set(context, exports, "source", v8::String::NewFromUtf8(isolate, source).ToLocalChecked());
  Set(context, exports, "call", v8::String::NewFromUtf8(isolate, call).ToLocalChecked());
}
