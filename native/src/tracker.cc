// Lesion tracker kernel: normalised cross-correlation (NCC) of templates against the frame,
// translation and scale, sub-pixel. One call per frame does the whole step:
//   - the patch around the predicted pose is sampled once, as box means through an integral
//     image (area sampling: no speckle aliasing at the coarse working resolution);
//   - frame to frame: the previous frame's template (speckle still correlates) is matched over
//     the search window, coarse (half resolution) then fine, sub-pixel by parabola fit;
//   - drift control: the initial template is matched close to that result, and wins when it
//     agrees (Matthews, Ishikawa & Baker 2004, template update with drift correction);
//   - scale: three-point parabola of the NCC over scales at the found position;
//   - the previous-frame template is refreshed from this frame when asked.
// search() is the lost-lesion search: the initial template over a wide window, quarter
// resolution first, the best candidates refined at half and full resolution.
// Coordinates are pixel indices (the centre of pixel x is x), as in masks.
#include "common.h"
#include <algorithm>
#include <limits>

namespace sono {
namespace {

// Box-mean sampler over a frame region: an integral image (double) of the region clipped to
// bounds. mean() integrates the piecewise-constant image over any real-valued box, so it serves
// every sampling step (a 1-pixel box is bilinear interpolation of the pixel centres).
struct AreaSampler {
  int x0 = 0, y0 = 0, w = 0, h = 0;
  std::vector<double> S;

  // Region [ax0, ax1) x [ay0, ay1) in continuous coordinates (pixel x covers [x, x+1)).
  void build(const GrayView& f, const Rect& b, double ax0, double ay0, double ax1, double ay1) {
    int rx0 = std::clamp((int)std::floor(ax0), b.x, b.x + b.w - 1), rx1 = std::clamp((int)std::ceil(ax1), rx0 + 1, b.x + b.w);
    int ry0 = std::clamp((int)std::floor(ay0), b.y, b.y + b.h - 1), ry1 = std::clamp((int)std::ceil(ay1), ry0 + 1, b.y + b.h);
    x0 = rx0; y0 = ry0; w = rx1 - rx0; h = ry1 - ry0;
    S.assign((size_t)(w + 1) * (h + 1), 0.0);
    for (int j = 0; j < h; j++) {
      const uint8_t* row = f.data + (size_t)(y0 + j) * f.width + x0;
      const double* up = &S[(size_t)j * (w + 1)];
      double* cur = &S[(size_t)(j + 1) * (w + 1)];
      double rs = 0;
      for (int i = 0; i < w; i++) {
        rs += row[i];
        cur[i + 1] = up[i + 1] + rs;
      }
    }
  }

  // Integral over [x0, X) x [y0, Y), bilinear in the lattice (exact for the pixel model).
  inline double at(double X, double Y) const {
    double u = X - x0, v = Y - y0;
    int iu = std::min((int)u, w - 1), iv = std::min((int)v, h - 1);
    double fu = u - iu, fv = v - iv;
    const double* r0 = &S[(size_t)iv * (w + 1) + iu];
    const double* r1 = r0 + (w + 1);
    return (r0[0] + fu * (r0[1] - r0[0])) * (1 - fv) + (r1[0] + fu * (r1[1] - r1[0])) * fv;
  }

  // Mean over the box of side `side` centred on pixel-index position (x, y); clipped to the
  // region, and kept at least half a pixel wide at its edge (edge pixels repeat outside).
  inline float mean(double x, double y, double side) const {
    const double half = 0.5 * side, mw = std::min(1.0, side) * 0.5;
    const double L = x0, R = x0 + w, T = y0, B = y0 + h;
    double a0 = std::clamp(x + 0.5 - half, L, R - mw), a1 = std::clamp(x + 0.5 + half, a0 + mw, R);
    double b0 = std::clamp(y + 0.5 - half, T, B - mw), b1 = std::clamp(y + 0.5 + half, b0 + mw, B);
    double s = at(a1, b1) - at(a0, b1) - at(a1, b0) + at(a0, b0);
    return (float)(s / ((a1 - a0) * (b1 - b0)));
  }

  // A w x h grid centred on (cx, cy) with step `step`, each sample the mean of its own cell.
  void grid(double cx, double cy, double step, int gw, int gh, std::vector<float>& out) const {
    out.resize((size_t)gw * gh);
    const double side = std::max(step, 1.0);
    for (int j = 0; j < gh; j++) {
      double y = cy + step * (j + 0.5 - gh * 0.5);
      for (int i = 0; i < gw; i++) out[(size_t)j * gw + i] = mean(cx + step * (i + 0.5 - gw * 0.5), y, side);
    }
  }
};

void downsample2(const std::vector<float>& in, int w, int h, std::vector<float>& out) {
  int w2 = w / 2, h2 = h / 2;
  out.resize((size_t)w2 * h2);
  for (int j = 0; j < h2; j++)
    for (int i = 0; i < w2; i++) {
      const float* p = &in[(size_t)(2 * j) * w + 2 * i];
      out[(size_t)j * w2 + i] = 0.25f * (p[0] + p[1] + p[w] + p[w + 1]);
    }
}

// Zero-mean, unit-norm copy in place. Returns false when the samples are flat.
bool normalise(std::vector<float>& t) {
  double m = 0;
  for (float v : t) m += v;
  m /= (double)t.size();
  double ss = 0;
  for (auto& v : t) { v = (float)(v - m); ss += (double)v * v; }
  if (ss < 1e-6) return false;
  float inv = (float)(1.0 / std::sqrt(ss));
  for (auto& v : t) v *= inv;
  return true;
}

// NCC of a normalised template with samples of the same size (normalised in a reused copy).
double nccSame(const std::vector<float>& t, const std::vector<float>& samples) {
  thread_local std::vector<float> s;
  s.assign(samples.begin(), samples.end());
  if (!normalise(s)) return 0;
  double d = 0;
  for (size_t i = 0; i < t.size(); i++) d += (double)t[i] * s[i];
  return d;
}

// A template at three resolutions (full, half, quarter), each zero-mean and unit-norm.
struct Pyramid {
  std::vector<float> full, half, quarter;
  // Reuses its vectors' storage; false (contents then undefined) when any level is flat.
  bool set(const std::vector<float>& raw, int w, int h) {
    full.assign(raw.begin(), raw.end());
    downsample2(full, w, h, half);
    downsample2(half, w / 2, h / 2, quarter);
    return normalise(full) && normalise(half) && normalise(quarter);
  }
};

// NCC map of a normalised template t (tw x th) over patch p (pw x ph): offsets ox, oy in
// [-r, r] around (cx, cy), where offset 0 centres the template on the patch centre. Positions
// that do not fit in the patch get -1.
struct NccMap {
  int n = 0, cx = 0, cy = 0;
  std::vector<double> v;
  double at(int ox, int oy) const { return v[(size_t)(oy - cy + n / 2) * n + (ox - cx + n / 2)]; }
};

void nccMap(const std::vector<float>& t, int tw, int th, const std::vector<float>& p, int pw, int ph, int r, int cx, int cy,
            NccMap& out) {
  // Window sums of p and p^2 by integral images over the rows/columns the map touches.
  const int n = 2 * r + 1;
  const int bx0 = (pw - tw) / 2 + cx - r, by0 = (ph - th) / 2 + cy - r;
  const int ax0 = std::max(0, bx0), ay0 = std::max(0, by0);
  const int ax1 = std::min(pw, bx0 + n - 1 + tw), ay1 = std::min(ph, by0 + n - 1 + th);
  const int iw = std::max(0, ax1 - ax0), ih = std::max(0, ay1 - ay0);
  // Scratch kept between calls: several maps a frame, no allocation once warmed up.
  thread_local std::vector<double> I, I2;
  I.assign((size_t)(iw + 1) * (ih + 1), 0.0);
  I2.assign((size_t)(iw + 1) * (ih + 1), 0.0);
  for (int j = 0; j < ih; j++) {
    double rs = 0, rs2 = 0;
    const float* row = &p[(size_t)(ay0 + j) * pw + ax0];
    for (int i = 0; i < iw; i++) {
      double v = row[i];
      rs += v; rs2 += v * v;
      I[(size_t)(j + 1) * (iw + 1) + i + 1] = I[(size_t)j * (iw + 1) + i + 1] + rs;
      I2[(size_t)(j + 1) * (iw + 1) + i + 1] = I2[(size_t)j * (iw + 1) + i + 1] + rs2;
    }
  }
  const double cnt = (double)tw * th;
  out.n = n; out.cx = cx; out.cy = cy;
  out.v.assign((size_t)n * n, -1.0);
  for (int oy = 0; oy < n; oy++)
    for (int ox = 0; ox < n; ox++) {
      const int x0 = bx0 + ox, y0 = by0 + oy;
      if (x0 < 0 || y0 < 0 || x0 + tw > pw || y0 + th > ph) continue;
      const int u0 = x0 - ax0, v0 = y0 - ay0;
      auto box = [&](const std::vector<double>& S) {
        return S[(size_t)(v0 + th) * (iw + 1) + u0 + tw] - S[(size_t)v0 * (iw + 1) + u0 + tw] -
               S[(size_t)(v0 + th) * (iw + 1) + u0] + S[(size_t)v0 * (iw + 1) + u0];
      };
      const double s = box(I), s2 = box(I2);
      const double var = s2 - s * s / cnt;
      double dot = 0;
      for (int j = 0; j < th; j++) {
        const float* tr = &t[(size_t)j * tw];
        const float* pr = &p[(size_t)(y0 + j) * pw + x0];
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int i = 0; i < tw; i++) acc += tr[i] * pr[i];
        dot += acc;
      }
      out.v[(size_t)oy * n + ox] = var > 1e-6 ? dot / std::sqrt(var) : 0.0;
    }
}

// Vertex of the parabola through (-1, a), (0, b), (1, c), clamped to [-0.5, 0.5].
inline double parabolaPeak(double a, double b, double c) {
  double d = a - 2 * b + c;
  if (d >= -1e-12) return 0;
  return std::clamp(0.5 * (a - c) / d, -0.5, 0.5);
}

struct Peak { double ox = 0, oy = 0, score = -1; int ix = 0, iy = 0; };

// Best position of a map, sub-pixel where the neighbours exist.
Peak peakOf(const NccMap& m) {
  int best = (int)(std::max_element(m.v.begin(), m.v.end()) - m.v.begin());
  int ix = best % m.n, iy = best / m.n;
  Peak p;
  p.score = m.v[best];
  p.ix = ix - m.n / 2 + m.cx; p.iy = iy - m.n / 2 + m.cy;
  double sx = 0, sy = 0;
  auto ok = [&](int i, int j) { return m.v[(size_t)j * m.n + i] > -1; };
  if (ix > 0 && ix < m.n - 1 && ok(ix - 1, iy) && ok(ix + 1, iy)) sx = parabolaPeak(m.v[best - 1], p.score, m.v[best + 1]);
  if (iy > 0 && iy < m.n - 1 && ok(ix, iy - 1) && ok(ix, iy + 1)) sy = parabolaPeak(m.v[best - m.n], p.score, m.v[best + m.n]);
  p.ox = p.ix + sx; p.oy = p.iy + sy;
  return p;
}

// Peak-to-sidelobe ratio: (peak - sidelobe mean) / sidelobe sd, sidelobe = outside a
// (2*ex+1)^2 square around the peak. 0 when the map is too small to have a sidelobe.
double psrOf(const NccMap& m, const Peak& p, int ex) {
  double s = 0, ss = 0; int cnt = 0;
  for (int j = 0; j < m.n; j++)
    for (int i = 0; i < m.n; i++) {
      int ox = i - m.n / 2 + m.cx, oy = j - m.n / 2 + m.cy;
      if (std::abs(ox - p.ix) <= ex && std::abs(oy - p.iy) <= ex) continue;
      double v = m.v[(size_t)j * m.n + i];
      if (v <= -1) continue;
      s += v; ss += v * v; cnt++;
    }
  if (cnt < 8) return 0;
  double mean = s / cnt, sd = std::sqrt(std::max(1e-12, ss / cnt - mean * mean));
  return (p.score - mean) / sd;
}

}  // namespace

class TemplateTracker : public Napi::ObjectWrap<TemplateTracker> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TemplateTracker", {InstanceMethod("track", &TemplateTracker::Track),
                                                InstanceMethod("search", &TemplateTracker::Search),
                                                InstanceMethod("score", &TemplateTracker::Score),
                                                InstanceMethod("resetPrevious", &TemplateTracker::ResetPrevious),
                                                InstanceAccessor("centerX", &TemplateTracker::CenterX, nullptr),
                                                InstanceAccessor("centerY", &TemplateTracker::CenterY, nullptr),
                                                InstanceAccessor("step", &TemplateTracker::Step, nullptr),
                                                InstanceAccessor("templateWidth", &TemplateTracker::TemplateWidth, nullptr),
                                                InstanceAccessor("templateHeight", &TemplateTracker::TemplateHeight, nullptr)});
  }

  // new TemplateTracker(frame, width, height, templateRect[, {maxSide}])
  // The template is the rect sampled at a working step chosen so that its longer side has at
  // most maxSide samples (default 64): the cost per frame does not grow with the lesion.
  explicit TemplateTracker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TemplateTracker>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4) throwType(env, "TemplateTracker(frame, width, height, templateRect[, {maxSide}])");
    int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
    int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    GrayView f = grayArg(env, info[0], w, h, "TemplateTracker: frame");
    Rect r = rectArg(env, info[3], "TemplateTracker: templateRect");
    checkRectInside(env, r, w, h, "TemplateTracker: templateRect");
    if (r.w < 16 || r.h < 16) throwRange(env, "TemplateTracker: templateRect must be at least 16x16 pixels");
    int maxSide = 64;
    if (info.Length() > 4 && info[4].IsObject()) maxSide = getInt(env, info[4].As<Napi::Object>(), "maxSide", "TemplateTracker options", 16, 512);
    step_ = std::max(1.0, (double)std::max(r.w, r.h) / maxSide);
    tw_ = std::max(16, (int)(r.w / step_) & ~3);
    th_ = std::max(16, (int)(r.h / step_) & ~3);
    cx_ = r.x + r.w * 0.5 - 0.5;
    cy_ = r.y + r.h * 0.5 - 0.5;
    AreaSampler a;
    Rect all{0, 0, w, h};
    a.build(f, all, r.x - step_, r.y - step_, r.x + r.w + step_, r.y + r.h + step_);
    std::vector<float> raw;
    a.grid(cx_, cy_, step_, tw_, th_, raw);
    if (!t0_.set(raw, tw_, th_)) throwRange(env, "TemplateTracker: the template region is flat (no texture to track)");
    tp_ = t0_;
  }

 private:
  Pyramid t0_, tp_, spare_;
  int tw_ = 0, th_ = 0;
  double step_ = 1, cx_ = 0, cy_ = 0;
  AreaSampler area_;
  std::vector<float> patch_, patch2_, patch4_, probe_;

  Napi::Value CenterX(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cx_); }
  Napi::Value CenterY(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cy_); }
  Napi::Value Step(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), step_); }
  Napi::Value TemplateWidth(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tw_); }
  Napi::Value TemplateHeight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), th_); }

  struct Call {
    GrayView f;
    Rect bounds;
    double x = 0, y = 0, s = 1;
    Napi::Object opts;
    bool hasOpts = false;
  };

  Call parse(const Napi::CallbackInfo& info, const char* name) {
    Napi::Env env = info.Env();
    if (info.Length() < 5) throwType(env, std::string(name) + "(frame, width, height, bounds, {x, y, scale}[, options])");
    Call c;
    int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
    int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    c.f = grayArg(env, info[0], w, h, std::string(name) + ": frame");
    c.bounds = rectArg(env, info[3], std::string(name) + ": bounds");
    checkRectInside(env, c.bounds, w, h, std::string(name) + ": bounds");
    if (c.bounds.w < 2 || c.bounds.h < 2) throwRange(env, std::string(name) + ": bounds must be at least 2x2");
    auto p = argObject(info, 4, "prediction");
    c.x = getNumber(env, p, "x", "prediction");
    c.y = getNumber(env, p, "y", "prediction");
    c.s = getNumber(env, p, "scale", "prediction");
    if (!std::isfinite(c.x) || !std::isfinite(c.y)) throwRange(env, "prediction.x and prediction.y must be finite");
    if (!(c.s >= 0.25 && c.s <= 4)) throwRange(env, "prediction.scale must be in [0.25, 4]");
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      if (!info[5].IsObject()) throwType(env, std::string(name) + ": options must be an object");
      c.opts = info[5].As<Napi::Object>();
      c.hasOpts = true;
    }
    return c;
  }

  double opt(const Call& c, const char* key, double dflt, double lo, double hi, Napi::Env env) {
    if (!c.hasOpts) return dflt;
    double v = getNumberOr(env, c.opts, key, "options", dflt);
    if (!(v >= lo && v <= hi)) throwRange(env, std::string("options.") + key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }

  // NCC of template t at pose (x, y, s), sampled from area_ (which must cover it).
  double nccAt(const std::vector<float>& t, double x, double y, double s) {
    area_.grid(x, y, step_ * s, tw_, th_, probe_);
    return nccSame(t, probe_);
  }

  // Samples a (tw + 2 pad) x (th + 2 pad) patch around (x, y) at scale s (and the sampler
  // covering it plus scale probes of +-5 %).
  void samplePatch(const Call& c, double x, double y, double s, int pad, int& pw, int& ph) {
    const double st = step_ * s;
    pw = tw_ + 2 * pad; ph = th_ + 2 * pad;
    const double hx = (0.5 * pw + 1) * st * 1.05, hy = (0.5 * ph + 1) * st * 1.05;
    area_.build(c.f, c.bounds, x + 0.5 - hx, y + 0.5 - hy, x + 0.5 + hx, y + 0.5 + hy);
    area_.grid(x, y, st, pw, ph, patch_);
  }

  // score(frame, w, h, bounds, {x, y, scale}) -> NCC of the initial template at that pose.
  Napi::Value Score(const Napi::CallbackInfo& info) {
    Call c = parse(info, "score");
    const double st = step_ * c.s;
    area_.build(c.f, c.bounds, c.x + 0.5 - (tw_ * 0.5 + 1) * st, c.y + 0.5 - (th_ * 0.5 + 1) * st,
                c.x + 0.5 + (tw_ * 0.5 + 1) * st, c.y + 0.5 + (th_ * 0.5 + 1) * st);
    return Napi::Number::New(info.Env(), nccAt(t0_.full, c.x, c.y, c.s));
  }

  // resetPrevious(): the previous-frame template becomes the initial one again (after a loss).
  Napi::Value ResetPrevious(const Napi::CallbackInfo& info) {
    tp_ = t0_;
    return info.Env().Undefined();
  }

  // track(frame, w, h, bounds, {x, y, scale}, {searchRadius, anchorRadius, anchorTolerance,
  //       minAnchorScore, update, updateMinScore, updateMinPrevious})
  // The previous-frame template is refreshed (update) when the initial template scores at least
  // updateMinScore or the frame-to-frame match at least updateMinPrevious.
  //   -> {x, y, scale, score, scorePrevious, psr, anchored}; psr of the initial template's map
  // searchRadius in frame pixels (default 16); the rest in working samples / NCC units.
  Napi::Value Track(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Call c = parse(info, "track");
    const double searchPx = opt(c, "searchRadius", 16, 1, 1024, env);
    const int A = (int)opt(c, "anchorRadius", 4, 2, 16, env);
    const double tol = opt(c, "anchorTolerance", 1.5, 0, 16, env);
    const double minAnchor = opt(c, "minAnchorScore", 0.2, -1, 1, env);
    const bool update = c.hasOpts && c.opts.Get("update").ToBoolean().Value();
    const double updateMin = opt(c, "updateMinScore", 0.3, -1, 1, env);
    const double updateMinPrev = opt(c, "updateMinPrevious", 2, -1, 2, env);
    const double st = step_ * c.s;
    int R = std::clamp((int)std::ceil(searchPx / st), 2, 64);
    R += R & 1;  // even, so the half-resolution radius is exact
    const int pad = R + A + 2;
    int pw, ph;
    samplePatch(c, c.x, c.y, c.s, pad, pw, ph);
    downsample2(patch_, pw, ph, patch2_);

    // Frame to frame: the previous template, coarse then fine.
    NccMap coarse, fine, anchor;
    nccMap(tp_.half, tw_ / 2, th_ / 2, patch2_, pw / 2, ph / 2, R / 2, 0, 0, coarse);
    Peak pc = peakOf(coarse);
    nccMap(tp_.full, tw_, th_, patch_, pw, ph, 2, 2 * pc.ix, 2 * pc.iy, fine);
    Peak pf = peakOf(fine);
    // Drift control: the initial template near the frame-to-frame result.
    nccMap(t0_.full, tw_, th_, patch_, pw, ph, A, (int)std::lround(pf.ox), (int)std::lround(pf.oy), anchor);
    Peak pa = peakOf(anchor);
    const double psr = psrOf(anchor, pa, 1);  // how distinct the locked lesion's match is
    const bool anchored = pa.score >= minAnchor && std::hypot(pa.ox - pf.ox, pa.oy - pf.oy) <= tol;
    const double ox = anchored ? pa.ox : pf.ox, oy = anchored ? pa.oy : pf.oy;
    const double nx = c.x + st * ox, ny = c.y + st * oy;

    // Scale at the found position, against the initial template only when it confirmed the
    // position: scale from frame-to-frame matches would random-walk.
    double ns = c.s;
    if (anchored) {
      const double d = 0.02;
      double a = nccAt(t0_.full, nx, ny, c.s * (1 - d)), b = nccAt(t0_.full, nx, ny, c.s), e = nccAt(t0_.full, nx, ny, c.s * (1 + d));
      ns = std::clamp(c.s * (1 + d * parabolaPeak(a, b, e) * 2), 0.25, 4.0);
    }
    area_.grid(nx, ny, step_ * ns, tw_, th_, probe_);
    const double score = nccSame(t0_.full, probe_);
    if (update && (score >= updateMin || pf.score >= updateMinPrev)) {
      // Built in the spare, swapped in only when valid: no allocation per frame once warm.
      if (spare_.set(probe_, tw_, th_)) std::swap(tp_, spare_);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("x", nx); r.Set("y", ny); r.Set("scale", ns);
    r.Set("score", score); r.Set("scorePrevious", pf.score); r.Set("psr", psr);
    r.Set("anchored", anchored);
    return r;
  }

  // search(frame, w, h, bounds, {x, y, scale}, {radius, excludeRadius}) -> {x, y, scale, score, psr}
  // The initial template over +-radius frame pixels around (x, y) at that scale; candidates
  // within +-excludeRadius of (x, y) are skipped (to measure how well the background matches).
  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Call c = parse(info, "search");
    const double radiusPx = opt(c, "radius", 128, 4, 4096, env);
    const double excludePx = opt(c, "excludeRadius", 0, 0, 4096, env);
    const double st = step_ * c.s, qs = 4 * st;
    // The window: template centres within +-radius of (x, y) and inside the bounds.
    const Rect& b = c.bounds;
    const double wx0 = std::max<double>(b.x, c.x - radiusPx), wx1 = std::min<double>(b.x + b.w - 1, c.x + radiusPx);
    const double wy0 = std::max<double>(b.y, c.y - radiusPx), wy1 = std::min<double>(b.y + b.h - 1, c.y + radiusPx);
    const double wcx = 0.5 * (wx0 + wx1), wcy = 0.5 * (wy0 + wy1);
    const int rx = std::max(1, (int)std::ceil(0.5 * (wx1 - wx0) / qs)), ry = std::max(1, (int)std::ceil(0.5 * (wy1 - wy0) / qs));
    const int qw = tw_ / 4 + 2 * rx, qh = th_ / 4 + 2 * ry;
    const double hx = (0.5 * qw + 2) * qs, hy = (0.5 * qh + 2) * qs;
    area_.build(c.f, b, wcx + 0.5 - hx, wcy + 0.5 - hy, wcx + 0.5 + hx, wcy + 0.5 + hy);
    // Quarter resolution over the window, sampled directly (each sample a 4-step box mean).
    area_.grid(wcx, wcy, qs, qw, qh, patch4_);
    NccMap q;
    nccMap(t0_.quarter, tw_ / 4, th_ / 4, patch4_, qw, qh, std::max(rx, ry), 0, 0, q);
    // Up to three separated candidates, each refined at half and full resolution locally.
    std::vector<std::pair<double, int>> order;
    for (int i = 0; i < (int)q.v.size(); i++) if (q.v[i] > -1) order.push_back({q.v[i], i});
    std::sort(order.begin(), order.end(), [](auto& u, auto& v) { return u.first > v.first; });
    std::vector<Peak> picked;
    for (auto& [v, i] : order) {
      Peak p;
      p.ix = i % q.n - q.n / 2; p.iy = i / q.n - q.n / 2; p.score = v;
      const double px = wcx + qs * p.ix, py = wcy + qs * p.iy;
      if (excludePx > 0 && std::abs(px - c.x) <= excludePx && std::abs(py - c.y) <= excludePx) continue;
      bool near = false;
      for (auto& o : picked) near |= std::abs(o.ix - p.ix) <= 2 && std::abs(o.iy - p.iy) <= 2;
      if (!near) picked.push_back(p);
      if (picked.size() == 3) break;
    }
    Peak best;
    double bx = c.x, by = c.y;
    for (const Peak& p : picked) {
      const double px = wcx + qs * p.ix, py = wcy + qs * p.iy;
      const int pad = 6;
      const int pw = tw_ + 2 * pad, ph = th_ + 2 * pad;
      area_.grid(px, py, st, pw, ph, patch_);
      downsample2(patch_, pw, ph, patch2_);
      NccMap h2, f1;
      nccMap(t0_.half, tw_ / 2, th_ / 2, patch2_, pw / 2, ph / 2, 2, 0, 0, h2);
      Peak ph2 = peakOf(h2);
      nccMap(t0_.full, tw_, th_, patch_, pw, ph, 2, 2 * ph2.ix, 2 * ph2.iy, f1);
      Peak pf = peakOf(f1);
      if (pf.score > best.score) { best = pf; bx = px + st * pf.ox; by = py + st * pf.oy; }
    }
    double psr = 0;
    if (!picked.empty()) psr = psrOf(q, picked[0], 2);
    Napi::Object r = Napi::Object::New(env);
    r.Set("x", bx); r.Set("y", by); r.Set("scale", c.s);
    r.Set("score", best.score); r.Set("psr", psr);
    return r;
  }
};

void InitTracker(Napi::Env env, Napi::Object exports) {
  exports.Set("TemplateTracker", TemplateTracker::Define(env));
}

}  // namespace sono
