// N-API binding of the radiomics engine: every region of a frame (lesion and rings, in each
// pane) in one call, synchronously or on the libuv pool. Arguments are checked here and errors
// name the argument; a region that fails PyRadiomics' mask checks gets a reason instead of
// features, so one bad ring never costs the frame.
#include "common.h"
#include "radiomics/radiomics.h"
#include <algorithm>
#include <exception>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace sono {
namespace {

using radiomics::kFeatureCount;

// One long-lived helper thread for the second half of a call's regions. A fresh thread per call
// would start with cold, empty per-thread buffers and fault in their pages on every frame. A
// call that finds the helper busy (another call in flight) runs all its regions itself.
class Helper {
 public:
  static Helper& instance() {
    static Helper* h = new Helper();  // lives as long as the process; never joined
    return *h;
  }
  bool tryStart(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(m_);
    if (busy_) return false;
    busy_ = true;
    task_ = std::move(task);
    cv_.notify_one();
    return true;
  }
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [this] { return !busy_; });
  }

 private:
  Helper() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [this] { return (bool)task_; });
      std::function<void()> task = std::move(task_);
      task_ = nullptr;
      lock.unlock();
      task();
      lock.lock();
      busy_ = false;
      done_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_, done_;
  std::function<void()> task_;
  bool busy_ = false;
};

struct Job {
  const uint8_t* image = nullptr;
  int width = 0, height = 0;
  std::vector<Rect> panes;
  const uint8_t* codes = nullptr;
  int nRings = 0;
  radiomics::Settings settings;
  std::vector<double> values;
  std::vector<std::string> errors;

  void runRegions(size_t first, size_t last, size_t step) {
    const int regions = nRings + 1;
    // Kept per thread between calls: its buffers keep their capacity, so a frame does not page
    // in fresh memory for every region.
    thread_local radiomics::Region tlsRegion;
    radiomics::Region& r = tlsRegion;
    // One pass over a pane summarises every region code for all its regions.
    radiomics::CodeStats stats;
    size_t statsPane = (size_t)-1;
    for (size_t idx = first; idx < last; idx += step) {
      const size_t p = idx / regions;
      const Rect& pane = panes[p];
      const int k = (int)(idx % regions);
      if (p != statsPane) {
        radiomics::summarizeCodes(image, width, pane.x, pane.y, pane.w, pane.h, codes, regions, stats);
        statsPane = p;
      }
      // Lesion: code 1. Ring k-1: codes 2..k+1 (band from the lesion border out to that radius).
      const int lo = k == 0 ? 1 : 2, hi = k == 0 ? 1 : k + 1;
      errors[idx] = radiomics::buildRegion(image, width, pane.x, pane.y, pane.w, pane.h, codes, lo, hi, stats, settings, r);
      if (errors[idx].empty()) radiomics::computeAll(r, settings, &values[idx * kFeatureCount]);
    }
  }

  // Regions are independent: with several, a second thread shares the work (the box has two
  // cores; a single region always runs on the calling thread). Several panes split by pane, so
  // both threads get the same mix of lesion and rings; one pane alternates regions.
  void run() {
    const size_t n = panes.size() * (nRings + 1);
    values.assign(n * kFeatureCount, NAN);
    errors.assign(n, "");
    const size_t threads = std::min<size_t>({n, (size_t)std::max(1u, std::thread::hardware_concurrency()), (size_t)settings.threads});
    if (threads < 2) { runRegions(0, n, 1); return; }
    const size_t half = panes.size() / 2 * (nRings + 1);
    const bool byPane = panes.size() >= 2;
    std::exception_ptr failure;
    Helper& helper = Helper::instance();
    if (!helper.tryStart([&] {
          try { byPane ? runRegions(half, n, 1) : runRegions(1, n, 2); } catch (...) { failure = std::current_exception(); }
        })) {
      runRegions(0, n, 1);
      return;
    }
    try { byPane ? runRegions(0, half, 1) : runRegions(0, n, 2); } catch (...) { helper.wait(); throw; }
    helper.wait();
    if (failure) std::rethrow_exception(failure);
  }
};

bool getBool(Napi::Env env, const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsBoolean()) throwType(env, std::string("settings.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int> getIntArray(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi, std::vector<int> dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  std::string name = std::string("settings.") + key;
  if (!v.IsArray()) throwType(env, name + " must be an array of integers");
  auto a = v.As<Napi::Array>();
  if (a.Length() == 0 || a.Length() > 16) throwRange(env, name + " must hold 1 to 16 integers");
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi)
      throwRange(env, name + "[" + std::to_string(i) + "] must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out.push_back((int)d);
  }
  return out;
}

radiomics::Settings parseSettings(Napi::Env env, const Napi::Object& o) {
  radiomics::Settings s;
  s.binWidth = getNumberOr(env, o, "binWidth", "settings", 25);
  if (s.binWidth <= 0) throwRange(env, "settings.binWidth must be > 0");
  s.binCount = (int)getNumberOr(env, o, "binCount", "settings", 0);
  if (s.binCount < 0 || s.binCount > 65536 || s.binCount != getNumberOr(env, o, "binCount", "settings", 0))
    throwRange(env, "settings.binCount must be an integer in [0, 65536] (0: use binWidth)");
  s.distances = getIntArray(env, o, "distances", 1, 64, {1});
  s.symmetricalGLCM = getBool(env, o, "symmetricalGLCM", true);
  s.gldmA = getNumberOr(env, o, "gldm_a", "settings", 0);
  if (s.gldmA < 0) throwRange(env, "settings.gldm_a must be >= 0");
  s.voxelArrayShift = getNumberOr(env, o, "voxelArrayShift", "settings", 0);
  double dims = getNumberOr(env, o, "minimumROIDimensions", "settings", 2);
  if (dims != 1 && dims != 2) throwRange(env, "settings.minimumROIDimensions must be 1 or 2");
  s.minimumROIDimensions = (int)dims;
  double minSize = getNumberOr(env, o, "minimumROISize", "settings", 0);
  if (minSize < 0 || minSize != std::floor(minSize)) throwRange(env, "settings.minimumROISize must be an integer >= 0");
  s.minimumROISize = (int)std::min(minSize, 2e9);
  s.spacingX = getNumberOr(env, o, "spacingX", "settings", 1);
  s.spacingY = getNumberOr(env, o, "spacingY", "settings", 1);
  if (s.spacingX <= 0 || s.spacingY <= 0) throwRange(env, "settings.spacingX and settings.spacingY must be > 0 (mm)");
  s.ibsi = getBool(env, o, "ibsi", false);
  double threads = getNumberOr(env, o, "threads", "settings", 2);
  if (threads != 1 && threads != 2) throwRange(env, "settings.threads must be 1 or 2");
  s.threads = (int)threads;
  std::vector<int> classes = getIntArray(env, o, "classes", 0, radiomics::kClassCount - 1, {0, 1, 2, 3, 4, 5, 6});
  s.classes.fill(false);
  for (int c : classes) s.classes[c] = true;
  return s;
}

Job parseJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "radiomics(image, width, height, panes, codes, nRings, settings)";
  if (info.Length() < 7) throwType(env, std::string(usage) + ": expected 7 arguments, got " + std::to_string(info.Length()));
  Job j;
  if (!info[1].IsNumber() || !info[2].IsNumber()) throwType(env, "radiomics: width and height must be numbers");
  double w = info[1].As<Napi::Number>().DoubleValue(), h = info[2].As<Napi::Number>().DoubleValue();
  if (!(w >= 1 && h >= 1 && w <= (1 << 16) && h <= (1 << 16)) || w != std::floor(w) || h != std::floor(h))
    throwRange(env, "radiomics: width and height must be integers in [1, 65536]");
  j.width = (int)w;
  j.height = (int)h;
  j.image = grayArg(env, info[0], j.width, j.height, "radiomics: image").data;
  if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() == 0) throwType(env, "radiomics: panes must be a non-empty array of rects");
  auto pa = info[3].As<Napi::Array>();
  if (pa.Length() > 16) throwRange(env, "radiomics: at most 16 panes");
  for (uint32_t i = 0; i < pa.Length(); i++) {
    std::string name = "radiomics: panes[" + std::to_string(i) + "]";
    Rect r = rectArg(env, pa.Get(i), name);
    checkRectInside(env, r, j.width, j.height, name);
    if (i > 0 && (r.w != j.panes[0].w || r.h != j.panes[0].h)) throwRange(env, "radiomics: all panes must have the size of the region codes");
    j.panes.push_back(r);
  }
  j.codes = grayArg(env, info[4], j.panes[0].w, j.panes[0].h, "radiomics: codes (pane-sized)").data;
  if (!info[5].IsNumber()) throwType(env, "radiomics: nRings must be a number");
  double nr = info[5].As<Napi::Number>().DoubleValue();
  if (!(nr >= 0 && nr <= 250) || nr != std::floor(nr)) throwRange(env, "radiomics: nRings must be an integer in [0, 250]");
  j.nRings = (int)nr;
  j.settings = parseSettings(env, argObject(info, 6, "radiomics: settings"));
  return j;
}

Napi::Object toResult(Napi::Env env, const Job& j) {
  auto values = Napi::Float64Array::New(env, j.values.size());
  std::copy(j.values.begin(), j.values.end(), values.Data());
  auto errors = Napi::Array::New(env, j.errors.size());
  for (size_t i = 0; i < j.errors.size(); i++)
    errors.Set((uint32_t)i, j.errors[i].empty() ? env.Null() : Napi::String::New(env, j.errors[i]));
  auto o = Napi::Object::New(env);
  o.Set("values", values);
  o.Set("errors", errors);
  return o;
}

Napi::Value Radiomics(const Napi::CallbackInfo& info) {
  Job j = parseJob(info);
  j.run();
  return toResult(info.Env(), j);
}

class RadiomicsWorker : public Napi::AsyncWorker {
 public:
  RadiomicsWorker(Napi::Env env, Job job, Napi::Value image, Napi::Value codes)
      : Napi::AsyncWorker(env), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {
    // Keep the buffers alive while the worker reads them off the main thread.
    image_ = Napi::Persistent(image.As<Napi::Object>());
    codes_ = Napi::Persistent(codes.As<Napi::Object>());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      job_.run();
    } catch (const std::exception& e) {
      SetError(std::string("radiomics: ") + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(toResult(Env(), job_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference image_, codes_;
};

Napi::Value RadiomicsAsync(const Napi::CallbackInfo& info) {
  Job j = parseJob(info);
  auto* w = new RadiomicsWorker(info.Env(), std::move(j), info[0], info[4]);
  auto p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitRadiomics(Napi::Env env, Napi::Object exports) {
  using namespace radiomics;
  struct Cls { const char* prefix; const char* const* names; int count; };
  const Cls classes[] = {{"firstorder", kFirstOrderNames, kFirstOrderCount}, {"shape2D", kShape2DNames, kShape2DCount},
                         {"glcm", kGLCMNames, kGLCMCount},                   {"glrlm", kGLRLMNames, kGLRLMCount},
                         {"glszm", kGLSZMNames, kGLSZMCount},                {"gldm", kGLDMNames, kGLDMCount},
                         {"ngtdm", kNGTDMNames, kNGTDMCount}};
  auto names = Napi::Array::New(env, kFeatureCount);
  uint32_t i = 0;
  for (const Cls& c : classes)
    for (int k = 0; k < c.count; k++) names.Set(i++, std::string(c.prefix) + "_" + c.names[k]);
  exports.Set("radiomicsFeatureNames", names);
  auto deprecated = Napi::Array::New(env, 2);
  deprecated.Set((uint32_t)0, "firstorder_StandardDeviation");
  deprecated.Set((uint32_t)1, "shape2D_SphericalDisproportion");
  exports.Set("radiomicsDeprecatedFeatures", deprecated);
  exports.Set("radiomics", Napi::Function::New(env, Radiomics, "radiomics"));
  exports.Set("radiomicsAsync", Napi::Function::New(env, RadiomicsAsync, "radiomicsAsync"));
}

}  // namespace sono
