// First-order features (PyRadiomics' `firstorder` class) for every region of a frame in one
// call: the lesion and each peritumoral ring, in each pane. 8-bit pixels make every feature a
// function of the region's 256-bin histogram, so one pass over the pane builds all histograms.
// Conventions follow PyRadiomics: population moments, Kurtosis not excess, numpy's linear
// percentiles, Entropy/Uniformity on the histogram discretised with binWidth (edges at
// multiples of binWidth), voxelArrayShift added for Energy, TotalEnergy and RootMeanSquared.
#include "common.h"
#include <algorithm>
#include <array>

namespace sono {
namespace {

const char* kNames[] = {"Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum",
                        "Mean", "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation",
                        "RobustMeanAbsoluteDeviation", "RootMeanSquared", "StandardDeviation", "Skewness", "Kurtosis",
                        "Variance", "Uniformity"};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);

struct FirstOrderSettings {
  double binWidth = 25, shift = 0, spacingX = 1, spacingY = 1;
};

// k-th order statistic (0-based) from a histogram.
inline double orderStat(const std::array<double, 256>& h, double k) {
  double c = 0;
  for (int v = 0; v < 256; v++) {
    c += h[v];
    if (c > k) return v;
  }
  return 255;
}

inline double percentile(const std::array<double, 256>& h, double n, double q) {
  double pos = q / 100.0 * (n - 1);
  double lo = std::floor(pos), frac = pos - lo;
  double a = orderStat(h, lo);
  if (frac == 0) return a;
  double b = orderStat(h, lo + 1);
  return a + frac * (b - a);
}

void features(const std::array<double, 256>& h, const FirstOrderSettings& s, double* out) {
  double n = 0;
  for (double c : h) n += c;
  if (n == 0) { for (int i = 0; i < kCount; i++) out[i] = NAN; return; }
  int vmin = 0, vmax = 255;
  while (h[vmin] == 0) vmin++;
  while (h[vmax] == 0) vmax--;
  double sum = 0, energy = 0;
  for (int v = vmin; v <= vmax; v++) { sum += h[v] * v; energy += h[v] * (v + s.shift) * (v + s.shift); }
  double mean = sum / n;
  double m2 = 0, m3 = 0, m4 = 0, mad = 0;
  for (int v = vmin; v <= vmax; v++) {
    if (!h[v]) continue;
    double d = v - mean, d2 = d * d;
    m2 += h[v] * d2; m3 += h[v] * d2 * d; m4 += h[v] * d2 * d2; mad += h[v] * std::fabs(d);
  }
  m2 /= n; m3 /= n; m4 /= n; mad /= n;
  double p10 = percentile(h, n, 10), p90 = percentile(h, n, 90);
  double p25 = percentile(h, n, 25), p75 = percentile(h, n, 75), med = percentile(h, n, 50);
  // Robust MAD: values within [p10, p90].
  double rn = 0, rs = 0;
  for (int v = vmin; v <= vmax; v++) if (v >= p10 && v <= p90) { rn += h[v]; rs += h[v] * v; }
  double rmean = rn > 0 ? rs / rn : NAN, rmad = 0;
  for (int v = vmin; v <= vmax; v++) if (v >= p10 && v <= p90) rmad += h[v] * std::fabs(v - rmean);
  rmad = rn > 0 ? rmad / rn : NAN;
  // Discretised histogram: bin = floor(v / bw) - floor(min / bw) (edges at multiples of bw).
  std::vector<double> bins;
  double low = std::floor(vmin / s.binWidth);
  for (int v = vmin; v <= vmax; v++) {
    if (!h[v]) continue;
    size_t b = (size_t)(std::floor(v / s.binWidth) - low);
    if (b >= bins.size()) bins.resize(b + 1, 0.0);
    bins[b] += h[v];
  }
  const double eps = 2.220446049250313e-16;
  double entropy = 0, uniformity = 0;
  for (double c : bins) {
    if (!c) continue;
    double p = c / n;
    entropy -= p * std::log2(p + eps);
    uniformity += p * p;
  }
  out[0] = energy;
  out[1] = energy * s.spacingX * s.spacingY;
  out[2] = entropy;
  out[3] = vmin;
  out[4] = p10;
  out[5] = p90;
  out[6] = vmax;
  out[7] = mean;
  out[8] = med;
  out[9] = p75 - p25;
  out[10] = vmax - vmin;
  out[11] = mad;
  out[12] = rmad;
  out[13] = std::sqrt(energy / n);
  out[14] = std::sqrt(m2);
  out[15] = m2 > 0 ? m3 / std::pow(m2, 1.5) : 0;
  out[16] = m2 > 0 ? m4 / (m2 * m2) : 0;
  out[17] = m2;
  out[18] = uniformity;
}

struct Job {
  const uint8_t* image = nullptr;
  int width = 0, height = 0;
  std::vector<Rect> panes;
  const uint8_t* codes = nullptr;
  int nRings = 0;
  FirstOrderSettings settings;
  std::vector<double> result;

  void run() {
    int regions = nRings + 1;
    result.assign(panes.size() * regions * kCount, NAN);
    const Rect& p0 = panes[0];
    for (size_t pi = 0; pi < panes.size(); pi++) {
      const Rect& p = panes[pi];
      std::vector<std::array<double, 256>> hist(nRings + 2);
      for (auto& hh : hist) hh.fill(0);
      for (int y = 0; y < p0.h; y++) {
        const uint8_t* c = codes + (size_t)y * p0.w;
        const uint8_t* img = image + (size_t)(p.y + y) * width + p.x;
        for (int x = 0; x < p0.w; x++)
          if (c[x] && c[x] <= nRings + 1) hist[c[x]][img[x]] += 1;
      }
      std::array<double, 256> acc;
      features(hist[1], settings, &result[(pi * regions) * kCount]);
      acc.fill(0);
      for (int r = 1; r <= nRings; r++) {
        for (int v = 0; v < 256; v++) acc[v] += hist[r + 1][v];
        features(acc, settings, &result[(pi * regions + r) * kCount]);
      }
    }
  }
};

Job parseJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7)
    throwType(env, "firstOrder(image, width, height, panes, codes, nRings, {binWidth, voxelArrayShift, spacingX, spacingY})");
  Job j;
  j.width = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  j.height = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  j.image = grayArg(env, info[0], j.width, j.height, "firstOrder: image").data;
  if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() == 0) throwType(env, "firstOrder: panes must be a non-empty array of rects");
  auto pa = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < pa.Length(); i++) {
    Rect r = rectArg(env, pa.Get(i), "firstOrder: panes[" + std::to_string(i) + "]");
    checkRectInside(env, r, j.width, j.height, "firstOrder: panes[" + std::to_string(i) + "]");
    if (i > 0 && (r.w != j.panes[0].w || r.h != j.panes[0].h)) throwRange(env, "firstOrder: all panes must have the size of the region codes");
    j.panes.push_back(r);
  }
  j.codes = grayArg(env, info[4], j.panes[0].w, j.panes[0].h, "firstOrder: codes (pane-sized)").data;
  if (!info[5].IsNumber()) throwType(env, "firstOrder: nRings must be a number");
  j.nRings = info[5].As<Napi::Number>().Int32Value();
  if (j.nRings < 0 || j.nRings > 250) throwRange(env, "firstOrder: nRings must be in [0, 250]");
  auto o = argObject(info, 6, "firstOrder: settings");
  j.settings.binWidth = getNumberOr(env, o, "binWidth", "settings", 25);
  j.settings.shift = getNumberOr(env, o, "voxelArrayShift", "settings", 0);
  j.settings.spacingX = getNumberOr(env, o, "spacingX", "settings", 1);
  j.settings.spacingY = getNumberOr(env, o, "spacingY", "settings", 1);
  if (j.settings.binWidth <= 0) throwRange(env, "settings.binWidth must be > 0");
  if (j.settings.spacingX <= 0 || j.settings.spacingY <= 0) throwRange(env, "settings.spacingX/spacingY must be > 0");
  return j;
}

Napi::Float64Array toArray(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Float64Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

Napi::Value FirstOrder(const Napi::CallbackInfo& info) {
  Job j = parseJob(info);
  j.run();
  return toArray(info.Env(), j.result);
}

class FirstOrderWorker : public Napi::AsyncWorker {
 public:
  FirstOrderWorker(Napi::Env env, Job job, Napi::Value image, Napi::Value codes)
      : Napi::AsyncWorker(env), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {
    // Keep the buffers alive while the worker reads them off the main thread.
    image_ = Napi::Persistent(image.As<Napi::Object>());
    codes_ = Napi::Persistent(codes.As<Napi::Object>());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { job_.run(); }
  void OnOK() override { deferred_.Resolve(toArray(Env(), job_.result)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference image_, codes_;
};

Napi::Value FirstOrderAsync(const Napi::CallbackInfo& info) {
  Job j = parseJob(info);
  auto* w = new FirstOrderWorker(info.Env(), std::move(j), info[0], info[4]);
  auto p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitFirstOrder(Napi::Env env, Napi::Object exports) {
  auto names = Napi::Array::New(env, kCount);
  for (int i = 0; i < kCount; i++) names.Set((uint32_t)i, std::string("firstorder_") + kNames[i]);
  exports.Set("firstOrderFeatureNames", names);
  exports.Set("firstOrder", Napi::Function::New(env, FirstOrder, "firstOrder"));
  exports.Set("firstOrderAsync", Napi::Function::New(env, FirstOrderAsync, "firstOrderAsync"));
}

}  // namespace sono
