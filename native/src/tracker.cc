// Template tracker kernel: normalised cross-correlation of a fixed reference template against
// the frame resampled at the current scale, coarse-to-fine (half resolution, then full),
// sub-pixel by parabola fit, scale refined by a three-point parabola. One call per frame.
#include "common.h"
#include <algorithm>
#include <limits>

namespace sono {
namespace {

// Samples the frame (clamped to `bounds`) on a grid centred at (cx, cy) with step `s`.
void resample(const GrayView& f, const Rect& bounds, double cx, double cy, double s, int w, int h, std::vector<float>& out) {
  out.resize((size_t)w * h);
  const float maxX = bounds.x + bounds.w - 1.001f, maxY = bounds.y + bounds.h - 1.001f;
  for (int j = 0; j < h; j++) {
    float y = (float)(cy + s * (j + 0.5 - h * 0.5) - 0.5);
    y = std::clamp(y, (float)bounds.y, maxY);
    int iy = (int)y;
    float fy = y - iy;
    const uint8_t* r0 = f.data + (size_t)iy * f.width;
    const uint8_t* r1 = r0 + f.width;
    for (int i = 0; i < w; i++) {
      float x = (float)(cx + s * (i + 0.5 - w * 0.5) - 0.5);
      x = std::clamp(x, (float)bounds.x, maxX);
      int ix = (int)x;
      float fx = x - ix;
      float a = r0[ix] + fx * (r0[ix + 1] - r0[ix]);
      float b = r1[ix] + fx * (r1[ix + 1] - r1[ix]);
      out[(size_t)j * w + i] = a + fy * (b - a);
    }
  }
}

void downsample2(const std::vector<float>& in, int w, int h, std::vector<float>& out, int& w2, int& h2) {
  w2 = w / 2; h2 = h / 2;
  out.resize((size_t)w2 * h2);
  for (int j = 0; j < h2; j++)
    for (int i = 0; i < w2; i++) {
      const float* p = &in[(size_t)(2 * j) * w + 2 * i];
      out[(size_t)j * w2 + i] = 0.25f * (p[0] + p[1] + p[w] + p[w + 1]);
    }
}

// Zero-mean, unit-norm copy of a template. Returns false when the template is flat.
bool normalise(std::vector<float>& t) {
  double m = 0;
  for (float v : t) m += v;
  m /= t.size();
  double ss = 0;
  for (auto& v : t) { v = (float)(v - m); ss += (double)v * v; }
  if (ss < 1e-9) return false;
  float inv = (float)(1.0 / std::sqrt(ss));
  for (auto& v : t) v *= inv;
  return true;
}

struct NccMap {
  int n = 0;  // side: 2r+1
  std::vector<double> v;
};

// NCC of normalised template t (tw x th) over patch p (pw x ph) at offsets [-r, r] around
// the patch centre (offset 0 = template centred in the patch). Patch size must be tw+2r.
void nccMap(const std::vector<float>& t, int tw, int th, const std::vector<float>& p, int pw, int ph, int r,
            int ox0, int oy0, NccMap& out) {
  // Integral images of p and p^2 for window mean / energy.
  std::vector<double> I((size_t)(pw + 1) * (ph + 1), 0.0), I2((size_t)(pw + 1) * (ph + 1), 0.0);
  for (int j = 0; j < ph; j++) {
    double rs = 0, rs2 = 0;
    for (int i = 0; i < pw; i++) {
      double v = p[(size_t)j * pw + i];
      rs += v; rs2 += v * v;
      I[(size_t)(j + 1) * (pw + 1) + i + 1] = I[(size_t)j * (pw + 1) + i + 1] + rs;
      I2[(size_t)(j + 1) * (pw + 1) + i + 1] = I2[(size_t)j * (pw + 1) + i + 1] + rs2;
    }
  }
  const double n = (double)tw * th;
  out.n = 2 * r + 1;
  out.v.assign((size_t)out.n * out.n, -1.0);
  for (int oy = -r; oy <= r; oy++)
    for (int ox = -r; ox <= r; ox++) {
      int x0 = (pw - tw) / 2 + ox0 + ox, y0 = (ph - th) / 2 + oy0 + oy;
      if (x0 < 0 || y0 < 0 || x0 + tw > pw || y0 + th > ph) continue;
      auto box = [&](const std::vector<double>& S) {
        return S[(size_t)(y0 + th) * (pw + 1) + x0 + tw] - S[(size_t)y0 * (pw + 1) + x0 + tw] -
               S[(size_t)(y0 + th) * (pw + 1) + x0] + S[(size_t)y0 * (pw + 1) + x0];
      };
      double s = box(I), s2 = box(I2);
      double var = s2 - s * s / n;
      double dot = 0;
      for (int j = 0; j < th; j++) {
        const float* tr = &t[(size_t)j * tw];
        const float* pr = &p[(size_t)(y0 + j) * pw + x0];
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int i = 0; i < tw; i++) acc += tr[i] * pr[i];
        dot += acc;
      }
      out.v[(size_t)(oy + r) * out.n + ox + r] = var > 1e-6 ? dot / std::sqrt(var) : 0.0;
    }
}

// Vertex of the parabola through (-1, a), (0, b), (1, c), clamped to [-0.5, 0.5].
inline double parabolaPeak(double a, double b, double c) {
  double d = a - 2 * b + c;
  if (d >= -1e-12) return 0;
  return std::clamp(0.5 * (a - c) / d, -0.5, 0.5);
}

}  // namespace

class TemplateTracker : public Napi::ObjectWrap<TemplateTracker> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TemplateTracker", {InstanceMethod("track", &TemplateTracker::Track),
                                                InstanceMethod("score", &TemplateTracker::Score),
                                                InstanceAccessor("centerX", &TemplateTracker::CenterX, nullptr),
                                                InstanceAccessor("centerY", &TemplateTracker::CenterY, nullptr)});
  }

  // new TemplateTracker(frame, width, height, templateRect)
  explicit TemplateTracker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TemplateTracker>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4) throwType(env, "TemplateTracker(frame, width, height, templateRect)");
    int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
    int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    GrayView f = grayArg(env, info[0], w, h, "TemplateTracker: frame");
    Rect r = rectArg(env, info[3], "TemplateTracker: templateRect");
    checkRectInside(env, r, w, h, "TemplateTracker: templateRect");
    if (r.w < 8 || r.h < 8) throwRange(env, "TemplateTracker: templateRect must be at least 8x8 pixels");
    tw_ = r.w & ~1; th_ = r.h & ~1;
    cx_ = r.x + tw_ * 0.5; cy_ = r.y + th_ * 0.5;
    Rect all{0, 0, w, h};
    resample(f, all, cx_, cy_, 1.0, tw_, th_, t_);
    downsample2(t_, tw_, th_, t2_, tw2_, th2_);
    if (!normalise(t_) || !normalise(t2_)) throwRange(env, "TemplateTracker: the template region is flat (no texture to track)");
  }

 private:
  std::vector<float> t_, t2_;
  int tw_ = 0, th_ = 0, tw2_ = 0, th2_ = 0;
  double cx_ = 0, cy_ = 0;
  std::vector<float> patch_, patch2_, probe_;

  Napi::Value CenterX(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cx_); }
  Napi::Value CenterY(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cy_); }

  double nccAt(const GrayView& f, const Rect& b, double x, double y, double s) {
    resample(f, b, x, y, s, tw_, th_, probe_);
    NccMap m;
    nccMap(t_, tw_, th_, probe_, tw_, th_, 0, 0, 0, m);
    return m.v[0];
  }

  void parseFrame(const Napi::CallbackInfo& info, GrayView& f, Rect& bounds, double& x, double& y, double& s) {
    Napi::Env env = info.Env();
    if (info.Length() < 5) throwType(env, "track(frame, width, height, bounds, {x, y, scale}[, searchRadius])");
    int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
    int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    f = grayArg(env, info[0], w, h, "track: frame");
    bounds = rectArg(env, info[3], "track: bounds");
    checkRectInside(env, bounds, w, h, "track: bounds");
    if (bounds.w < 2 || bounds.h < 2) throwRange(env, "track: bounds must be at least 2x2");
    auto p = argObject(info, 4, "track: prediction");
    x = getNumber(env, p, "x", "prediction");
    y = getNumber(env, p, "y", "prediction");
    s = getNumber(env, p, "scale", "prediction");
    if (s < 0.25 || s > 4) throwRange(env, "prediction.scale must be in [0.25, 4]");
  }

  // score(frame, w, h, bounds, {x, y, scale}) -> NCC of the template at that pose.
  Napi::Value Score(const Napi::CallbackInfo& info) {
    GrayView f; Rect b; double x, y, s;
    parseFrame(info, f, b, x, y, s);
    return Napi::Number::New(info.Env(), nccAt(f, b, x, y, s));
  }

  // track(frame, w, h, bounds, {x, y, scale}, searchRadius) -> {x, y, scale, score, psr}
  Napi::Value Track(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    GrayView f; Rect b; double px, py, s;
    parseFrame(info, f, b, px, py, s);
    int R = 12;
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      if (!info[5].IsNumber()) throwType(env, "track: searchRadius must be a number");
      R = info[5].As<Napi::Number>().Int32Value();
      if (R < 2 || R > 256) throwRange(env, "track: searchRadius must be in [2, 256]");
    }
    R += R & 1;  // even, so the half-resolution radius is exact
    // Coarse: half resolution over the full search window.
    int pw = tw_ + 2 * R, ph = th_ + 2 * R;
    resample(f, b, px, py, s, pw, ph, patch_);
    int pw2, ph2;
    downsample2(patch_, pw, ph, patch2_, pw2, ph2);
    NccMap coarse;
    nccMap(t2_, tw2_, th2_, patch2_, pw2, ph2, R / 2, 0, 0, coarse);
    int best = (int)(std::max_element(coarse.v.begin(), coarse.v.end()) - coarse.v.begin());
    int bx = best % coarse.n - R / 2, by = best / coarse.n - R / 2;
    double peak = coarse.v[best];
    // Peak-to-sidelobe ratio on the coarse map (sidelobe: outside a 5x5 around the peak).
    double sm = 0, ss = 0; int cnt = 0;
    for (int j = 0; j < coarse.n; j++)
      for (int i = 0; i < coarse.n; i++) {
        if (std::abs(i - R / 2 - bx) <= 2 && std::abs(j - R / 2 - by) <= 2) continue;
        double v = coarse.v[(size_t)j * coarse.n + i];
        sm += v; ss += v * v; cnt++;
      }
    double psr = 0;
    if (cnt > 1) {
      double m = sm / cnt, sd = std::sqrt(std::max(1e-12, ss / cnt - m * m));
      psr = (peak - m) / sd;
    }
    // Fine: full resolution, +-2 around the coarse peak.
    NccMap fine;
    nccMap(t_, tw_, th_, patch_, pw, ph, 2, 2 * bx, 2 * by, fine);
    int fb = (int)(std::max_element(fine.v.begin(), fine.v.end()) - fine.v.begin());
    int fx = fb % fine.n, fy = fb / fine.n;
    double score = fine.v[fb];
    double sx = 0, sy = 0;
    if (fx > 0 && fx < fine.n - 1) sx = parabolaPeak(fine.v[fb - 1], score, fine.v[fb + 1]);
    if (fy > 0 && fy < fine.n - 1) sy = parabolaPeak(fine.v[fb - fine.n], score, fine.v[fb + fine.n]);
    double ox = 2 * bx + (fx - 2) + sx, oy = 2 * by + (fy - 2) + sy;
    double nx = px + s * ox, ny = py + s * oy;
    // Scale: parabola through three scales at the found position.
    const double d = 0.02;
    double a = nccAt(f, b, nx, ny, s * (1 - d)), c0 = nccAt(f, b, nx, ny, s), c = nccAt(f, b, nx, ny, s * (1 + d));
    double ns = s * (1 + d * parabolaPeak(a, c0, c) * 2);
    double finalScore = std::max(c0, score);
    Napi::Object r = Napi::Object::New(env);
    r.Set("x", nx); r.Set("y", ny); r.Set("scale", ns);
    r.Set("score", finalScore); r.Set("psr", psr);
    return r;
  }
};

void InitTracker(Napi::Env env, Napi::Object exports) {
  exports.Set("TemplateTracker", TemplateTracker::Define(env));
}

}  // namespace sono
