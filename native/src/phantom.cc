// The phantom scanner's renderer: what a capture card sees from a scanner in CEUS dual-view.
// World fields (speckle, echogenicity, perfusion, microbubble fields) are built once; each
// frame samples them through the probe motion, log-compresses like a scanner display and
// draws the chrome. One call renders a whole screen and the true lesion mask.
#include "common.h"
#include <algorithm>
#include <array>
#include <cstring>

namespace sono {
namespace {

// 5x7 bitmap font (rows MSB-left, 5 bits used) for scanner-like chrome text.
struct Glyph { char c; uint8_t rows[7]; };
const Glyph kFont[] = {
  {'0', {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}}, {'1', {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E}},
  {'2', {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F}}, {'3', {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E}},
  {'4', {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}}, {'5', {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E}},
  {'6', {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}}, {'7', {0x1F,0x01,0x02,0x04,0x08,0x08,0x08}},
  {'8', {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E}}, {'9', {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C}},
  {'A', {0x0E,0x11,0x11,0x11,0x1F,0x11,0x11}}, {'B', {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E}},
  {'C', {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E}}, {'D', {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C}},
  {'E', {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F}}, {'F', {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10}},
  {'G', {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F}}, {'H', {0x11,0x11,0x11,0x1F,0x11,0x11,0x11}},
  {'I', {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E}}, {'J', {0x07,0x02,0x02,0x02,0x02,0x12,0x0C}},
  {'K', {0x11,0x12,0x14,0x18,0x14,0x12,0x11}}, {'L', {0x10,0x10,0x10,0x10,0x10,0x10,0x1F}},
  {'M', {0x11,0x1B,0x15,0x15,0x11,0x11,0x11}}, {'N', {0x11,0x11,0x19,0x15,0x13,0x11,0x11}},
  {'O', {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E}}, {'P', {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10}},
  {'Q', {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D}}, {'R', {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11}},
  {'S', {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E}}, {'T', {0x1F,0x04,0x04,0x04,0x04,0x04,0x04}},
  {'U', {0x11,0x11,0x11,0x11,0x11,0x11,0x0E}}, {'V', {0x11,0x11,0x11,0x11,0x11,0x0A,0x04}},
  {'W', {0x11,0x11,0x11,0x15,0x15,0x15,0x0A}}, {'X', {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11}},
  {'Y', {0x11,0x11,0x11,0x0A,0x04,0x04,0x04}}, {'Z', {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F}},
  {':', {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00}}, {'.', {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}},
  {'-', {0x00,0x00,0x00,0x1F,0x00,0x00,0x00}}, {'/', {0x00,0x01,0x02,0x04,0x08,0x10,0x00}},
  {'%', {0x18,0x19,0x02,0x04,0x08,0x13,0x03}}, {'(', {0x02,0x04,0x08,0x08,0x08,0x04,0x02}},
  {')', {0x08,0x04,0x02,0x02,0x02,0x04,0x08}}, {'=', {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00}},
  {'+', {0x00,0x04,0x04,0x1F,0x04,0x04,0x00}},
};

const uint8_t* glyphRows(char c) {
  if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
  for (const auto& g : kFont) if (g.c == c) return g.rows;
  return nullptr;
}

void drawText(uint8_t* img, int W, int H, int x0, int y0, const std::string& s, int scale, uint8_t gray) {
  int x = x0;
  for (char c : s) {
    const uint8_t* rows = glyphRows(c);
    if (rows) {
      for (int r = 0; r < 7; r++)
        for (int b = 0; b < 5; b++)
          if (rows[r] & (0x10 >> b))
            for (int dy = 0; dy < scale; dy++)
              for (int dx = 0; dx < scale; dx++) {
                int px = x + b * scale + dx, py = y0 + r * scale + dy;
                if (px >= 0 && py >= 0 && px < W && py < H) img[(size_t)py * W + px] = gray;
              }
    }
    x += 6 * scale;
  }
}

// Maps a positive float to a display byte by log compression, indexed by the float's top 16
// bits (sign, exponent, 7 mantissa bits): ~0.03 dB resolution, no log() per pixel.
struct LogLut {
  std::vector<uint8_t> table;
  LogLut(double dbPerDecade, double dbMin, double dynamicRange) : table(65536, 0) {
    for (uint32_t k = 0; k < 65536; k++) {
      uint32_t bits = (k << 16) | 0x8000;  // middle of the bucket
      float f;
      std::memcpy(&f, &bits, 4);
      if (!(f > 0) || !std::isfinite(f)) { table[k] = (k & 0x8000) ? 0 : (std::isfinite(f) ? 0 : 255); continue; }
      double db = dbPerDecade * std::log10((double)f);
      double v = 255.0 * (db - dbMin) / dynamicRange;
      table[k] = (uint8_t)std::clamp(std::lround(v), 0L, 255L);
    }
  }
  inline uint8_t operator()(float f) const {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return table[bits >> 16];
  }
};

inline float smoothstep(float a, float b, float x) {
  float t = std::clamp((x - a) / (b - a), 0.0f, 1.0f);
  return t * t * (3 - 2 * t);
}

}  // namespace

class PhantomRenderer : public Napi::ObjectWrap<PhantomRenderer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PhantomRenderer", {
      InstanceMethod("render", &PhantomRenderer::Render),
      InstanceAccessor("lesionPerfusionMean", &PhantomRenderer::LesionPerfusionMean, nullptr),
      InstanceMethod("perfusionWeights", &PhantomRenderer::PerfusionWeights),
      InstanceAccessor("contrastDynamicRangeDb", &PhantomRenderer::ContrastDr, nullptr),
      InstanceAccessor("contrastDbMin", &PhantomRenderer::ContrastDbMin, nullptr),
    });
  }

  explicit PhantomRenderer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PhantomRenderer>(info) {
    Napi::Env env = info.Env();
    auto o = argObject(info, 0, "phantom options");
    seed_ = (uint64_t)getNumber(env, o, "seed", "phantom");
    W_ = getInt(env, o, "width", "phantom", 64, 8192);
    H_ = getInt(env, o, "height", "phantom", 64, 8192);
    bmode_ = rectArg(env, o.Get("bmode"), "phantom.bmode");
    contrast_ = rectArg(env, o.Get("contrast"), "phantom.contrast");
    checkRectInside(env, bmode_, W_, H_, "phantom.bmode");
    checkRectInside(env, contrast_, W_, H_, "phantom.contrast");
    if (bmode_.w != contrast_.w || bmode_.h != contrast_.h) throwRange(env, "phantom: the two panes must have the same size");
    mmPerPx_ = getNumber(env, o, "mmPerPixel", "phantom");
    if (mmPerPx_ <= 0) throwRange(env, "phantom.mmPerPixel must be > 0");
    margin_ = getInt(env, o, "margin", "phantom", 0, 4096);
    marginX_ = o.Get("marginX").IsUndefined() ? margin_ : getInt(env, o, "marginX", "phantom", 0, 8192);
    auto lesion = o.Get("lesion");
    if (!lesion.IsObject()) throwType(env, "phantom.lesion must be an object");
    auto lo = lesion.As<Napi::Object>();
    lcx_ = getNumber(env, lo, "cx", "phantom.lesion");
    lcy_ = getNumber(env, lo, "cy", "phantom.lesion");
    auto radii = lo.Get("radii");
    if (!radii.IsTypedArray() || radii.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throwType(env, "phantom.lesion.radii must be a Float64Array");
    auto ra = radii.As<Napi::Float64Array>();
    if (ra.ElementLength() < 8) throwRange(env, "phantom.lesion.radii needs at least 8 samples");
    radii_.assign(ra.Data(), ra.Data() + ra.ElementLength());
    for (double r : radii_) if (!(r > 0) || !std::isfinite(r)) throwRange(env, "phantom.lesion.radii must be positive and finite");
    rmax_ = *std::max_element(radii_.begin(), radii_.end());
    build();
  }

 private:
  uint64_t seed_;
  int W_, H_, margin_, marginX_;
  Rect bmode_, contrast_;
  double mmPerPx_, lcx_, lcy_, rmax_;
  std::vector<double> radii_;
  int WW_ = 0, WH_ = 0;  // world size
  std::vector<float> echo_, perfLesion_, perfTissue_;
  // Tissue speckle as complex fields (I, Q interleaved) at successive elevations: out-of-plane
  // motion mixes neighbouring fields, so the speckle decorrelates as a real beam's does.
  static constexpr int kSpeckleFields = 6;
  std::vector<float> iq_[kSpeckleFields];
  // Per-row scratch of render() (vertically interpolated echo and speckle rows), kept between frames.
  std::vector<float> rowE_, rowA_, rowB_;
  static constexpr int kBubbleFields = 6;
  std::vector<float> bubbles_[kBubbleFields];
  double lesionPerfMean_ = 0;
  // B-mode echo of the contrast agent per unit concentration (low-MI fundamental: weak).
  static constexpr float kBubbleEcho = 0.05f;
  const double contrastDr_ = 40.0, contrastDbMin_ = -34.0;
  LogLut bLut_{20.0, -30.0, 42.0};
  LogLut cLut_{10.0, -34.0, 40.0};

  // Lesion radius at angle theta (world px), linear interpolation of the sampled table.
  inline double lesionRadius(double theta) const {
    int n = (int)radii_.size();
    double u = theta / (2 * M_PI) * n;
    if (u < 0) u += n;
    int i = (int)u % n;
    double f = u - std::floor(u);
    return radii_[i] + f * (radii_[(i + 1) % n] - radii_[i]);
  }
  // Normalised radial position (<1 inside) of a world point relative to the lesion.
  inline double lesionRho(double wx, double wy) const {
    double dx = wx - (lcx_ + marginX_), dy = wy - (lcy_ + margin_);
    double r = std::sqrt(dx * dx + dy * dy);
    if (r > rmax_ * 1.01) return r / rmax_;
    return r / lesionRadius(std::atan2(dy, dx));
  }

  std::vector<float> noiseField(Rng& rng, double sigmaX, double sigmaY) {
    std::vector<float> f((size_t)WW_ * WH_);
    for (auto& v : f) v = (float)rng.normal();
    gaussianBlur(f, WW_, WH_, sigmaX, sigmaY);
    double s2 = 0;
    for (float v : f) s2 += (double)v * v;
    float inv = (float)(1.0 / std::sqrt(s2 / f.size() + 1e-12));
    for (auto& v : f) v *= inv;
    return f;
  }

  // Rayleigh-distributed envelope of a band-limited complex Gaussian field, mean ~1.
  std::vector<float> speckle(Rng& rng, double sigmaLat, double sigmaAx, bool power) {
    auto i = noiseField(rng, sigmaLat, sigmaAx), q = noiseField(rng, sigmaLat, sigmaAx);
    std::vector<float> e(i.size());
    double sum = 0;
    for (size_t k = 0; k < e.size(); k++) {
      float p = i[k] * i[k] + q[k] * q[k];
      e[k] = power ? p : std::sqrt(p);
      sum += e[k];
    }
    float inv = (float)(e.size() / sum);
    for (auto& v : e) v *= inv;
    return e;
  }

  void build() {
    WW_ = bmode_.w + 2 * marginX_;
    WH_ = bmode_.h + 2 * margin_;
    Rng rng(seed_ * 0x2545F4914F6CDD1DULL + 17);
    const double mm = mmPerPx_;
    const double pxPerMm = 1.0 / mm;
    // Speckle: lateral PSF wider than axial, in pixels of ~0.08 mm (default); scale with spacing.
    double sLat = std::clamp(0.25 * pxPerMm, 0.8, 6.0), sAx = std::clamp(0.11 * pxPerMm, 0.5, 3.0);
    // The scanner's scan conversion / display smoothing widens the speckle a little.
    const double sLatD = std::hypot(sLat, 0.6), sAxD = std::hypot(sAx, 0.5);
    for (int k = 0; k < kSpeckleFields; k++) {
      auto i = noiseField(rng, sLatD, sAxD), q = noiseField(rng, sLatD, sAxD);
      iq_[k].resize(2 * i.size());
      for (size_t n = 0; n < i.size(); n++) { iq_[k][2 * n] = i[n]; iq_[k][2 * n + 1] = q[n]; }
    }
    auto hetero = noiseField(rng, 2.2 * pxPerMm, 1.5 * pxPerMm);  // mm-scale tissue heterogeneity
    auto fine = noiseField(rng, 0.35 * pxPerMm, 0.2 * pxPerMm);
    // Layer boundaries (mm), wavy across the width.
    struct Boundary { double base, amp, lambda, phase; };
    auto wave = [&](double base, double amp, double lambdaMm) {
      return Boundary{base, amp, lambdaMm, rng.uniform() * 2 * M_PI};
    };
    Boundary skinTop = wave(0.5, 0.1, 30), skinBot = wave(2.0, 0.25, 25), fatBot = wave(7.0, 1.2, 18),
             glandBot = wave(24.0, 1.5, 22), retroBot = wave(27.0, 0.8, 35), muscleBot = wave(33.5, 1.0, 40);
    auto at = [](const Boundary& b, double xmm) { return b.base + b.amp * std::sin(2 * M_PI * xmm / b.lambda + b.phase); };
    // Cooper's ligaments: a few bright thin curves through the fat layer.
    double ligPhase[4], ligLambda[4];
    for (int k = 0; k < 4; k++) { ligPhase[k] = rng.uniform() * 2 * M_PI; ligLambda[k] = 9 + 8 * rng.uniform(); }

    std::vector<float> echo((size_t)WW_ * WH_), pT((size_t)WW_ * WH_), pL((size_t)WW_ * WH_, 0.0f);
    // Posterior shadow: bottom edge of the lesion per world column.
    std::vector<double> lesionBottom(WW_, -1);
    for (int y = 0; y < WH_; y++) {
      double ymm = (y - margin_) * mm;
      for (int x = 0; x < WW_; x++) {
        double xmm = (x - marginX_) * mm;
        size_t k = (size_t)y * WW_ + x;
        double h = 1.0 + 0.22 * std::clamp((double)hetero[k], -2.0, 2.0);
        double e, perf;
        if (ymm < at(skinTop, xmm)) { e = 0.04; perf = 0.02; }
        else if (ymm < at(skinBot, xmm)) { e = 1.7; perf = 0.12; }
        else if (ymm < at(fatBot, xmm)) {
          e = 0.33 * h; perf = 0.08;
          for (int l = 0; l < 4; l++) {
            double yl = at(skinBot, xmm) + (at(fatBot, xmm) - at(skinBot, xmm)) * (0.2 + 0.2 * l) +
                        1.0 * std::sin(2 * M_PI * xmm / ligLambda[l] + ligPhase[l]);
            double d = std::fabs(ymm - yl);
            if (d < 0.25) e += 1.1 * (1 - d / 0.25);
          }
        } else if (ymm < at(glandBot, xmm)) { e = 0.95 * h * (1.0 + 0.15 * fine[k]); perf = 0.32 * h; }
        else if (ymm < at(retroBot, xmm)) { e = 0.35 * h; perf = 0.08; }
        else if (ymm < at(muscleBot, xmm)) {
          double stri = 0.5 + 0.5 * std::cos(2 * M_PI * (ymm - 0.15 * xmm) / 1.4);
          e = 0.45 + 0.55 * stri * stri * stri; perf = 0.28;
        } else { e = 0.22 * h; perf = 0.1; }
        double rho = lesionRho(x, y);
        if (rho < 1.0) {
          // Hypoechoic solid lesion, slightly heterogeneous; enhancing rim on contrast.
          e = 0.11 * (1.0 + 0.25 * fine[k]) * (1.0 + 0.2 * hetero[k]);
          perf = 0;
          pL[k] = (float)std::max(0.2, (0.72 + 0.28 * smoothstep(0.55f, 0.95f, (float)rho)) * (1.0 + 0.12 * hetero[k]));
          lesionBottom[x] = std::max(lesionBottom[x], (double)y);
        }
        // Mild attenuation with depth left after TGC.
        double depthMm = std::max(0.0, ymm);
        e *= 1.0 - 0.012 * depthMm;
        echo[k] = (float)std::max(0.01, e);
        pT[k] = (float)std::max(0.0, perf);
      }
    }
    // Posterior acoustic shadow below the lesion, smoothed across columns (no hard edges).
    std::vector<float> shadow(WW_, 0.0f);
    for (int x = 0; x < WW_; x++) shadow[x] = lesionBottom[x] >= 0 ? 1.0f : 0.0f;
    {
      std::vector<float> tmp(shadow);
      int r = (int)std::ceil(1.2 * pxPerMm);
      for (int x = 0; x < WW_; x++) {
        float acc = 0; int n = 0;
        for (int k = -r; k <= r; k++) { int xx = std::clamp(x + k, 0, WW_ - 1); acc += tmp[xx]; n++; }
        shadow[x] = acc / n;
      }
    }
    double cy0 = lcy_ + margin_;
    for (int x = 0; x < WW_; x++) {
      if (shadow[x] <= 0) continue;
      for (int y = (int)cy0; y < WH_; y++) {
        double below = (y - cy0) * mm;
        double fade = std::min(1.0, below / 4.0);  // grows in below the lesion centre
        echo[(size_t)y * WW_ + x] *= (float)(1.0 - 0.4 * shadow[x] * fade);
      }
    }
    echo_ = std::move(echo);
    perfTissue_ = std::move(pT);
    perfLesion_ = std::move(pL);
    double s = 0; size_t n = 0;
    for (float v : perfLesion_) if (v > 0) { s += v; n++; }
    lesionPerfMean_ = n ? s / n : 0;
    // Microbubble fields: power speckle (exponential), slightly coarser than tissue speckle.
    for (int b = 0; b < kBubbleFields; b++) bubbles_[b] = speckle(rng, sLat * 1.3, sAx * 1.6, true);
  }

  Napi::Value LesionPerfusionMean(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), lesionPerfMean_); }
  Napi::Value ContrastDr(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), contrastDr_); }
  Napi::Value ContrastDbMin(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), contrastDbMin_); }

  // perfusionWeights({dx, dy, scale}, codes (pane-sized), nCodes) -> Float64Array
  //   [lesion sum, tissue sum, pixels] for each code 1..nCodes: the perfusion weights of the
  //   lesion and tissue boluses over each region's pixels, sampled exactly as render() samples the
  //   contrast pane. A region's expected (linear) contrast intensity at time t is
  //   (lesion * ticLesion(t) + tissue * ticTissue(t)) / pixels (the microbubble speckle has mean 1),
  //   plus the noise floor: the truth behind a measured time-intensity curve.
  Napi::Value PerfusionWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3) throwType(env, "perfusionWeights(motion, codes, nCodes)");
    auto motion = argObject(info, 0, "perfusionWeights: motion");
    double dx = getNumber(env, motion, "dx", "motion"), dy = getNumber(env, motion, "dy", "motion");
    double scale = getNumber(env, motion, "scale", "motion");
    if (scale < 0.5 || scale > 2) throwRange(env, "motion.scale must be in [0.5, 2]");
    GrayView m = grayArg(env, info[1], bmode_.w, bmode_.h, "perfusionWeights: codes");
    if (!info[2].IsNumber()) throwType(env, "perfusionWeights: nCodes must be a number");
    int nCodes = info[2].As<Napi::Number>().Int32Value();
    if (nCodes < 1 || nCodes > 255) throwRange(env, "perfusionWeights: nCodes must be in [1, 255]");
    const int pw = bmode_.w, ph = bmode_.h;
    const float cx = pw * 0.5f, cy = ph * 0.5f;
    const float inv = (float)(1.0 / scale);
    const float offX = (float)(cx - dx + marginX_), offY = (float)(cy - dy + margin_);
    Napi::Float64Array out = Napi::Float64Array::New(env, 3 * (size_t)nCodes);
    std::vector<double> acc(3 * (size_t)nCodes, 0.0);
    for (int y = 0; y < ph; y++) {
      const float wy = std::clamp((y - cy) * inv + offY, 0.0f, WH_ - 1.001f);
      const int iyn = std::clamp((int)(wy + 0.5f), 0, WH_ - 1);
      for (int x = 0; x < pw; x++) {
        int c = m.data[(size_t)y * pw + x];
        if (c == 0 || c > nCodes) continue;
        const float wx = std::clamp((x - cx) * inv + offX, 0.0f, WW_ - 1.001f);
        const int ixn = std::min((int)(wx + 0.5f), WW_ - 1);
        double* a = &acc[3 * (size_t)(c - 1)];
        a[0] += perfLesion_[(size_t)iyn * WW_ + ixn];
        a[1] += perfTissue_[(size_t)iyn * WW_ + ixn];
        a[2] += 1;
      }
    }
    for (size_t i = 0; i < acc.size(); i++) out[i] = acc[i];
    return out;
  }

  // render(frameIndex, {dx, dy, scale, elevation?, gainDb?}, {lesion, tissue}, texts[], out[, mask])
  //   -> number of lesion pixels inside the pane (when mask is given)
  Napi::Value Render(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5) throwType(env, "render(frameIndex, motion, tic, texts, out[, maskOut])");
    if (!info[0].IsNumber()) throwType(env, "render: frameIndex must be a number");
    int64_t frame = info[0].As<Napi::Number>().Int64Value();
    auto motion = argObject(info, 1, "render: motion");
    double dx = getNumber(env, motion, "dx", "motion"), dy = getNumber(env, motion, "dy", "motion");
    double scale = getNumber(env, motion, "scale", "motion");
    if (scale < 0.5 || scale > 2) throwRange(env, "motion.scale must be in [0.5, 2]");
    double elevation = getNumberOr(env, motion, "elevation", "motion", 0.0);
    double gainDb = getNumberOr(env, motion, "gainDb", "motion", 0.0);
    if (!std::isfinite(elevation) || std::fabs(elevation) > 1e6) throwRange(env, "motion.elevation must be finite");
    if (!(gainDb >= -40 && gainDb <= 40)) throwRange(env, "motion.gainDb must be in [-40, 40]");
    auto tic = argObject(info, 2, "render: tic");
    double ticL = getNumber(env, tic, "lesion", "tic"), ticT = getNumber(env, tic, "tissue", "tic");
    if (!info[3].IsArray()) throwType(env, "render: texts must be an array");
    auto texts = info[3].As<Napi::Array>();
    auto [out, outLen] = bytesOf(env, info[4], "render: out");
    if (outLen != (size_t)W_ * H_) throwRange(env, "render: out must hold width*height bytes");
    uint8_t* mask = nullptr;
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      auto [m, mLen] = bytesOf(env, info[5], "render: maskOut");
      if (mLen != (size_t)bmode_.w * bmode_.h) throwRange(env, "render: maskOut must hold pane width*height bytes");
      mask = m;
    }

    std::memset(out, 0, outLen);
    const int pw = bmode_.w, ph = bmode_.h;
    const float cx = pw * 0.5f, cy = ph * 0.5f;
    const float inv = (float)(1.0 / scale);
    const float offX = (float)(cx - dx + marginX_), offY = (float)(cy - dy + margin_);
    const double zf = std::floor(elevation);
    const int fa = (int)(((int64_t)zf % kSpeckleFields + kSpeckleFields) % kSpeckleFields), fb = (fa + 1) % kSpeckleFields;
    const float ca = (float)std::cos((elevation - zf) * M_PI / 2), cb = (float)std::sin((elevation - zf) * M_PI / 2);
    const float gain = (float)std::pow(10.0, gainDb / 20);
    Rng rng(mix64(seed_ ^ (uint64_t)(frame * 0x9E3779B97F4A7C15ULL)));
    uint64_t pick = mix64(seed_ + (uint64_t)frame * 7919);
    const std::vector<float>& bub = bubbles_[pick % kBubbleFields];
    int box = (int)((pick >> 8) % 997) % std::max(1, marginX_), boy = (int)((pick >> 24) % 991) % std::max(1, margin_);
    const float floorP = 6.0e-4f;
    // No rotation: a pane row samples one world row (wy), so the vertical interpolation is done
    // once per row for the fields sampled bilinearly (echo, and the two speckle fields' I and Q).
    std::vector<float>& vE = rowE_;
    std::vector<float>& vA = rowA_;
    std::vector<float>& vB = rowB_;
    vE.resize((size_t)WW_); vA.resize(2 * (size_t)WW_); vB.resize(2 * (size_t)WW_);
    const std::vector<float>& fA = iq_[fa];
    const std::vector<float>& fB = iq_[fb];
    const float wx0 = (0 - cx) * inv + offX, wx1 = (pw - 1 - cx) * inv + offX;
    const int ix0 = std::clamp((int)std::floor(wx0) - 1, 0, WW_ - 2), ix1 = std::clamp((int)std::floor(wx1) + 2, 0, WW_ - 1);
    for (int y = 0; y < ph; y++) {
      uint8_t* rowB = out + (size_t)(bmode_.y + y) * W_ + bmode_.x;
      uint8_t* rowC = out + (size_t)(contrast_.y + y) * W_ + contrast_.x;
      const float wy = std::clamp((y - cy) * inv + offY, 0.0f, WH_ - 1.001f);
      const int iy = (int)wy;
      const float fy = wy - iy;
      const size_t r0 = (size_t)iy * WW_, r1 = r0 + WW_;
      for (int ix = ix0; ix <= ix1; ix++) {
        vE[ix] = echo_[r0 + ix] + fy * (echo_[r1 + ix] - echo_[r0 + ix]);
        for (int c = 0; c < 2; c++) {
          vA[2 * ix + c] = fA[2 * (r0 + ix) + c] + fy * (fA[2 * (r1 + ix) + c] - fA[2 * (r0 + ix) + c]);
          vB[2 * ix + c] = fB[2 * (r0 + ix) + c] + fy * (fB[2 * (r1 + ix) + c] - fB[2 * (r0 + ix) + c]);
        }
      }
      const int iyn = std::clamp((int)(wy + 0.5f), 0, WH_ - 1);
      const float* pL = &perfLesion_[(size_t)iyn * WW_];
      const float* pT = &perfTissue_[(size_t)iyn * WW_];
      int by = ((int)(wy + 0.5f) + boy) % WH_;
      const float* bubRow = &bub[(size_t)by * WW_];
      for (int x = 0; x < pw; x++) {
        const float wx = std::clamp((x - cx) * inv + offX, 0.0f, WW_ - 1.001f);
        const int ix = (int)wx;
        const float fx = wx - ix;
        const int ixn = std::min((int)(wx + 0.5f), WW_ - 1);
        // Contrast: concentration x microbubble speckle (fresh each frame) + noise floor.
        const float conc = pL[ixn] * (float)ticL + pT[ixn] * (float)ticT;
        const float b = bubRow[(ixn + box) % WW_];
        // B-mode: echogenicity x speckle (decorrelating with elevation), the bubbles' weak
        // fundamental echo during wash-in, the gain setting, a little electronic noise.
        const float e = vE[ix] + fx * (vE[ix + 1] - vE[ix]);
        const float* a = &vA[2 * ix];
        const float* bb = &vB[2 * ix];
        const float i = ca * (a[0] + fx * (a[2] - a[0])) + cb * (bb[0] + fx * (bb[2] - bb[0]));
        const float q = ca * (a[1] + fx * (a[3] - a[1])) + cb * (bb[1] + fx * (bb[3] - bb[1]));
        float v = e * std::sqrt(i * i + q * q) * 0.7978846f + kBubbleEcho * conc * b;  // 1 / E|Z| = sqrt(2 / pi)
        float u = (float)((rng.next() >> 40) * (1.0 / 16777216.0));
        v *= gain * (0.9f + 0.2f * u);
        v += 0.004f * u;
        rowB[x] = bLut_(v);
        float noise = floorP * (0.3f + 1.4f * (float)((rng.next() >> 40) * (1.0 / 16777216.0)));
        rowC[x] = cLut_(conc * b + noise);
      }
    }
    size_t inside = 0;
    if (mask) {
      std::memset(mask, 0, (size_t)pw * ph);
      // Lesion bounding box in pane coordinates under the motion.
      double wcx = lcx_ + marginX_, wcy = lcy_ + margin_;
      double pcx = (wcx - offX) * scale + cx, pcy = (wcy - offY) * scale + cy, pr = rmax_ * scale + 2;
      int x0 = std::max(0, (int)(pcx - pr)), x1 = std::min(pw - 1, (int)(pcx + pr) + 1);
      int y0 = std::max(0, (int)(pcy - pr)), y1 = std::min(ph - 1, (int)(pcy + pr) + 1);
      for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
          double wx = (x - cx) / scale + offX, wy = (y - cy) / scale + offY;
          if (lesionRho(wx, wy) < 1.0) { mask[(size_t)y * pw + x] = 255; inside++; }
        }
    }
    drawChrome(out, texts, env);
    return Napi::Number::New(env, (double)inside);
  }

  void drawChrome(uint8_t* img, const Napi::Array& texts, Napi::Env env) {
    for (const Rect& r : {bmode_, contrast_}) {
      // Depth ruler beside each pane: a tick every 5 mm, long tick and label every 10 mm.
      int rx = std::min(W_ - 12, r.x + r.w + 3);
      double depthMm = r.h * mmPerPx_;
      for (int mmv = 0; mmv <= (int)depthMm; mmv += 5) {
        int y = r.y + (int)std::lround(mmv / mmPerPx_);
        if (y >= r.y + r.h) break;
        int len = (mmv % 10 == 0) ? 7 : 3;
        for (int i = 0; i < len && rx + i < W_; i++) img[(size_t)y * W_ + rx + i] = 200;
        if (mmv % 10 == 0 && mmv > 0) drawText(img, W_, H_, rx + 1, y + 2, std::to_string(mmv / 10), 1, 170);
      }
      // Thin frame corners like a scanner's image area marks.
      for (int i = 0; i < 10; i++) {
        auto put = [&](int x, int y) { if (x >= 0 && y >= 0 && x < W_ && y < H_) img[(size_t)y * W_ + x] = 120; };
        put(r.x - 2 + i, r.y - 2); put(r.x - 2, r.y - 2 + i);
        put(r.x + r.w + 1 - i, r.y - 2); put(r.x + r.w + 1, r.y - 2 + i);
      }
    }
    for (uint32_t i = 0; i < texts.Length(); i++) {
      Napi::Value tv = texts.Get(i);
      if (!tv.IsObject()) throwType(env, "render: texts[" + std::to_string(i) + "] must be {x, y, text, scale?, gray?}");
      auto t = tv.As<Napi::Object>();
      int x = getInt(env, t, "x", "text", -4096, 65536), y = getInt(env, t, "y", "text", -4096, 65536);
      Napi::Value sv = t.Get("text");
      if (!sv.IsString()) throwType(env, "render: texts[" + std::to_string(i) + "].text must be a string");
      int sc = t.Get("scale").IsUndefined() ? 1 : getInt(env, t, "scale", "text", 1, 16);
      int gray = t.Get("gray").IsUndefined() ? 210 : getInt(env, t, "gray", "text", 0, 255);
      drawText(img, W_, H_, x, y, sv.As<Napi::String>().Utf8Value(), sc, (uint8_t)gray);
    }
  }
};

void InitPhantom(Napi::Env env, Napi::Object exports) {
  exports.Set("PhantomRenderer", PhantomRenderer::Define(env));
}

}  // namespace sono
