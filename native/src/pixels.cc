// Whole-frame pixel kernels for the capture stage: repeated-frame detection and the colour
// conversions a source needs to turn what it decoded (RGB, planar RGB, YBR_FULL, palette
// indices, 16-bit monochrome) into the 8-bit gray plane (and RGB) a Frame carries.
// One call per frame, whole buffers, no per-pixel crossings.
#include "common.h"
#include <algorithm>
#include <limits>

namespace sono {

// Largest block mean absolute difference between two frames, over the given rects, in
// blockSize x blockSize blocks (partial blocks at rect edges count with their own area).
// A scanner that has not refreshed its image repeats it exactly (digital capture) or with
// capture noise (analog capture): every block stays near the noise floor. A real new image
// moves speckle everywhere the tissue moved, so at least one block jumps. Stops at the first
// block above `stopAbove` (then the result is that block's value, a lower bound of the max).
static double maxBlockMad(const uint8_t* a, const uint8_t* b, int width, const std::vector<Rect>& rects, int bs, double stopAbove) {
  double best = 0;
  std::vector<uint32_t> sums;
  for (const Rect& r : rects) {
    int nbx = (r.w + bs - 1) / bs;
    sums.assign(nbx, 0);
    for (int by = 0; by < r.h; by += bs) {
      int rows = std::min(bs, r.h - by);
      std::fill(sums.begin(), sums.end(), 0u);
      for (int yy = 0; yy < rows; yy++) {
        size_t off = (size_t)(r.y + by + yy) * width + r.x;
        const uint8_t* pa = a + off;
        const uint8_t* pb = b + off;
        for (int bx = 0; bx < nbx; bx++) {
          int x0 = bx * bs, n = std::min(bs, r.w - x0);
          uint32_t s = 0;
#pragma omp simd reduction(+ : s)
          for (int i = 0; i < n; i++) {
            int d = (int)pa[x0 + i] - (int)pb[x0 + i];
            s += (uint32_t)(d < 0 ? -d : d);
          }
          sums[bx] += s;
        }
      }
      for (int bx = 0; bx < nbx; bx++) {
        int n = std::min(bs, r.w - bx * bs) * rows;
        double mad = (double)sums[bx] / n;
        if (mad > best) {
          best = mad;
          if (best > stopAbove) return best;
        }
      }
    }
  }
  return best;
}

// frameDifference(prev, cur, width, height, rects | null, { blockSize?, stopAbove? }) -> number
static Napi::Value FrameDifference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[2].IsNumber() || !info[3].IsNumber()) throwType(env, "frameDifference(prev, cur, width, height, rects?, options?)");
  int width = info[2].As<Napi::Number>().Int32Value(), height = info[3].As<Napi::Number>().Int32Value();
  GrayView a = grayArg(env, info[0], width, height, "frameDifference: prev");
  GrayView b = grayArg(env, info[1], width, height, "frameDifference: cur");
  std::vector<Rect> rects;
  if (info.Length() > 4 && info[4].IsArray()) {
    auto arr = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Rect r = rectArg(env, arr.Get(i), "frameDifference: rects[" + std::to_string(i) + "]");
      checkRectInside(env, r, width, height, "frameDifference: rects[" + std::to_string(i) + "]");
      rects.push_back(r);
    }
  } else if (info.Length() > 4 && isGiven(info[4])) {
    throwType(env, "frameDifference: rects must be an array of {x, y, width, height} or null");
  }
  if (rects.empty()) rects.push_back(Rect{0, 0, width, height});
  int bs = 16;
  double stopAbove = std::numeric_limits<double>::infinity();
  if (info.Length() > 5 && info[5].IsObject()) {
    auto o = info[5].As<Napi::Object>();
    if (!o.Get("blockSize").IsUndefined()) bs = getInt(env, o, "blockSize", "frameDifference: options", 2, 256);
    if (!o.Get("stopAbove").IsUndefined()) {
      Napi::Value v = o.Get("stopAbove");
      if (!v.IsNumber() || std::isnan(v.As<Napi::Number>().DoubleValue())) throwType(env, "frameDifference: options.stopAbove must be a number");
      stopAbove = v.As<Napi::Number>().DoubleValue();
    }
  }
  return Napi::Number::New(env, maxBlockMad(a.data, b.data, width, rects, bs, stopAbove));
}

static inline uint8_t luma(int r, int g, int b) { return (uint8_t)((77 * r + 150 * g + 29 * b + 128) >> 8); }  // BT.601

static size_t pixelCount(Napi::Env env, const Napi::CallbackInfo& info, size_t wi, const char* fn) {
  if (info.Length() <= wi + 1 || !info[wi].IsNumber() || !info[wi + 1].IsNumber()) throwType(env, std::string(fn) + ": width and height must be numbers");
  int w = info[wi].As<Napi::Number>().Int32Value(), h = info[wi + 1].As<Napi::Number>().Int32Value();
  if (w <= 0 || h <= 0 || w > 65535 || h > 65535) throwRange(env, std::string(fn) + ": width and height must be in [1, 65535]");
  return (size_t)w * h;
}

static uint8_t* sized(Napi::Env env, Napi::Value v, size_t n, const std::string& name) {
  auto [p, len] = bytesOf(env, v, name);
  if (len != n) throwRange(env, name + " has " + std::to_string(len) + " bytes, expected " + std::to_string(n));
  return p;
}

// rgbToGray(src, width, height, layout: 'interleaved' | 'planar' | 'ybr_full', gray, rgb?)
// 'planar' (DICOM planar configuration 1) and 'ybr_full' are also written out as interleaved RGB.
static Napi::Value RgbToGray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = pixelCount(env, info, 1, "rgbToGray");
  if (info.Length() < 5 || !info[3].IsString()) throwType(env, "rgbToGray(src, width, height, layout, gray, rgb?)");
  std::string layout = info[3].As<Napi::String>().Utf8Value();
  const uint8_t* src = sized(env, info[0], n * 3, "rgbToGray: src");
  uint8_t* gray = sized(env, info[4], n, "rgbToGray: gray");
  uint8_t* rgb = nullptr;
  if (info.Length() > 5 && isGiven(info[5])) rgb = sized(env, info[5], n * 3, "rgbToGray: rgb");
  if (layout == "interleaved") {
    for (size_t i = 0; i < n; i++) gray[i] = luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
    if (rgb && rgb != src) std::copy(src, src + 3 * n, rgb);
  } else if (layout == "planar") {
    const uint8_t *R = src, *G = src + n, *B = src + 2 * n;
    for (size_t i = 0; i < n; i++) {
      gray[i] = luma(R[i], G[i], B[i]);
      if (rgb) { rgb[3 * i] = R[i]; rgb[3 * i + 1] = G[i]; rgb[3 * i + 2] = B[i]; }
    }
  } else if (layout == "ybr_full") {
    // DICOM PS3.3 C.7.6.3.1.2 (YBR_FULL, full-range BT.601); the gray plane is Y itself.
    for (size_t i = 0; i < n; i++) {
      double y = src[3 * i], cb = src[3 * i + 1] - 128.0, cr = src[3 * i + 2] - 128.0;
      gray[i] = src[3 * i];
      if (rgb) {
        auto c = [](double v) { return (uint8_t)std::clamp((int)std::lround(v), 0, 255); };
        rgb[3 * i] = c(y + 1.402 * cr);
        rgb[3 * i + 1] = c(y - 0.344136 * cb - 0.714136 * cr);
        rgb[3 * i + 2] = c(y + 1.772 * cb);
      }
    }
  } else {
    throwRange(env, "rgbToGray: layout must be 'interleaved', 'planar' or 'ybr_full' (got '" + layout + "')");
  }
  return env.Undefined();
}

// applyPalette(indices: Uint8Array | Uint16Array, width, height, lut, gray, rgb?)
// lut = { red, green, blue: Uint16Array (entries), firstMapped, bits } as DICOM's palette
// descriptor gives them; values below the first entry map to it, above the last to the last.
static Napi::Value ApplyPalette(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = pixelCount(env, info, 1, "applyPalette");
  if (info.Length() < 5 || !info[0].IsTypedArray() || !info[3].IsObject()) throwType(env, "applyPalette(indices, width, height, lut, gray, rgb?)");
  auto ta = info[0].As<Napi::TypedArray>();
  bool wide = ta.TypedArrayType() == napi_uint16_array;
  if (!wide && ta.TypedArrayType() != napi_uint8_array) throwType(env, "applyPalette: indices must be a Uint8Array or Uint16Array");
  if (ta.ElementLength() != n) throwRange(env, "applyPalette: indices has " + std::to_string(ta.ElementLength()) + " values, expected " + std::to_string(n));
  auto lut = info[3].As<Napi::Object>();
  const uint16_t* ch[3];
  size_t entries = 0;
  const char* names[3] = {"red", "green", "blue"};
  for (int c = 0; c < 3; c++) {
    Napi::Value v = lut.Get(names[c]);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
      throwType(env, std::string("applyPalette: lut.") + names[c] + " must be a Uint16Array");
    auto a = v.As<Napi::Uint16Array>();
    if (a.ElementLength() == 0) throwRange(env, std::string("applyPalette: lut.") + names[c] + " is empty");
    if (c == 0) entries = a.ElementLength();
    else if (a.ElementLength() != entries) throwRange(env, "applyPalette: the red, green and blue tables differ in length");
    ch[c] = a.Data();
  }
  int first = getInt(env, lut, "firstMapped", "applyPalette: lut", 0, 65535);
  int bits = getInt(env, lut, "bits", "applyPalette: lut", 8, 16);
  uint8_t* gray = sized(env, info[4], n, "applyPalette: gray");
  uint8_t* rgb = nullptr;
  if (info.Length() > 5 && isGiven(info[5])) rgb = sized(env, info[5], n * 3, "applyPalette: rgb");
  // Expand the table to every possible index once, then map.
  size_t range = wide ? 65536 : 256;
  std::vector<uint8_t> t3(range * 3), tg(range);
  int shift = bits - 8;
  for (size_t v = 0; v < range; v++) {
    long k = (long)v - first;
    k = std::clamp(k, 0L, (long)entries - 1);
    int r = ch[0][k] >> shift, g = ch[1][k] >> shift, b = ch[2][k] >> shift;
    r = std::min(r, 255); g = std::min(g, 255); b = std::min(b, 255);
    t3[3 * v] = (uint8_t)r; t3[3 * v + 1] = (uint8_t)g; t3[3 * v + 2] = (uint8_t)b;
    tg[v] = luma(r, g, b);
  }
  auto map = [&](const auto* idx) {
    for (size_t i = 0; i < n; i++) {
      gray[i] = tg[idx[i]];
      if (rgb) { rgb[3 * i] = t3[3 * idx[i]]; rgb[3 * i + 1] = t3[3 * idx[i] + 1]; rgb[3 * i + 2] = t3[3 * idx[i] + 2]; }
    }
  };
  if (wide) map(info[0].As<Napi::Uint16Array>().Data());
  else map(info[0].As<Napi::Uint8Array>().Data());
  return env.Undefined();
}

// monochromeTo8(src: Uint8Array | Uint16Array, width, height, { bitsStored, invert }, gray)
// Scales stored values to 8 bits (drops the low bits) and inverts MONOCHROME1.
static Napi::Value MonochromeTo8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = pixelCount(env, info, 1, "monochromeTo8");
  if (info.Length() < 5 || !info[0].IsTypedArray() || !info[3].IsObject()) throwType(env, "monochromeTo8(src, width, height, options, gray)");
  auto o = info[3].As<Napi::Object>();
  int bitsStored = getInt(env, o, "bitsStored", "monochromeTo8: options", 1, 16);
  bool invert = o.Get("invert").ToBoolean().Value();
  uint8_t* gray = sized(env, info[4], n, "monochromeTo8: gray");
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.ElementLength() != n) throwRange(env, "monochromeTo8: src has " + std::to_string(ta.ElementLength()) + " values, expected " + std::to_string(n));
  uint32_t mask = bitsStored >= 16 ? 0xFFFFu : ((1u << bitsStored) - 1);
  auto emit = [&](size_t i, uint32_t v) {
    v &= mask;
    uint32_t g = bitsStored > 8 ? v >> (bitsStored - 8) : (bitsStored < 8 ? v * 255 / mask : v);
    gray[i] = (uint8_t)(invert ? 255 - g : g);
  };
  if (ta.TypedArrayType() == napi_uint16_array) {
    const uint16_t* s = info[0].As<Napi::Uint16Array>().Data();
    for (size_t i = 0; i < n; i++) emit(i, s[i]);
  } else if (ta.TypedArrayType() == napi_uint8_array) {
    if (bitsStored > 8) throwRange(env, "monochromeTo8: 8-bit samples cannot hold bitsStored > 8");
    const uint8_t* s = info[0].As<Napi::Uint8Array>().Data();
    for (size_t i = 0; i < n; i++) emit(i, s[i]);
  } else {
    throwType(env, "monochromeTo8: src must be a Uint8Array or Uint16Array");
  }
  return env.Undefined();
}

// ---- crop + resize + normalise for CNN inputs -------------------------------------------------
//
// One axis of a separable resampling: output sample j reads count[j] consecutive source pixels
// from first[j] with weights w[j * maxTaps + k].
struct AxisTaps {
  std::vector<int> first, count;
  std::vector<double> w;
  int maxTaps = 0;
};

// Source interval [x, x + len) (pixel edges; pixel i covers [i, i+1), centre i + 0.5) onto `out`
// samples. Source pixels are clamped to [lo, hi].
//  bilinear: pixel-centre alignment (OpenCV INTER_LINEAR, PyTorch align_corners=False):
//            u = x + (j + 0.5) * len / out - 0.5, taps floor(u) and floor(u) + 1 (clamped).
//  area:     the output sample's footprint [x + j*s, x + (j+1)*s) averaged with exact pixel
//            overlap weights (OpenCV INTER_AREA when downscaling), s = len / out.
static AxisTaps axisTaps(double x, double len, int out, int lo, int hi, bool area) {
  AxisTaps t;
  double s = len / out;
  t.first.resize(out);
  t.count.resize(out);
  if (!area) {
    t.maxTaps = 2;
    t.w.assign((size_t)out * 2, 0.0);
    for (int j = 0; j < out; j++) {
      double u = x + (j + 0.5) * s - 0.5;
      double fl = std::floor(u);
      int i0 = (int)fl;
      double f = u - fl;
      if (i0 + 1 <= lo) { t.first[j] = lo; t.count[j] = 1; t.w[2 * j] = 1.0; }
      else if (i0 >= hi) { t.first[j] = hi; t.count[j] = 1; t.w[2 * j] = 1.0; }
      else { t.first[j] = i0; t.count[j] = 2; t.w[2 * j] = 1.0 - f; t.w[2 * j + 1] = f; }
    }
    return t;
  }
  t.maxTaps = (int)std::ceil(s) + 2;
  t.w.assign((size_t)out * t.maxTaps, 0.0);
  for (int j = 0; j < out; j++) {
    double a = x + j * s, b = x + (j + 1) * s;
    a = std::max(a, (double)lo);
    b = std::min(b, (double)hi + 1);
    int i0 = (int)std::floor(a), i1 = std::max(i0 + 1, (int)std::ceil(b));  // pixels i0 .. i1-1
    i1 = std::min(i1, i0 + t.maxTaps);
    double span = b - a;
    t.first[j] = i0;
    t.count[j] = i1 - i0;
    for (int i = i0; i < i1; i++) {
      double ov = std::min(b, (double)i + 1) - std::max(a, (double)i);
      t.w[(size_t)j * t.maxTaps + (i - i0)] = span > 0 ? std::max(ov, 0.0) / span : (i == i0 ? 1.0 : 0.0);
    }
  }
  return t;
}

static std::vector<double> numberList(Napi::Env env, const Napi::Object& o, const char* key, size_t n, double dflt, const std::string& ctx) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return std::vector<double>(n, dflt);
  if (!v.IsArray()) throwType(env, ctx + "." + key + " must be an array of " + std::to_string(n) + " numbers (one per channel)");
  auto a = v.As<Napi::Array>();
  if (a.Length() != n) throwRange(env, ctx + "." + key + " has " + std::to_string(a.Length()) + " values, expected " + std::to_string(n) + " (one per channel)");
  std::vector<double> r(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber() || !std::isfinite(e.As<Napi::Number>().DoubleValue())) throwType(env, ctx + "." + key + "[" + std::to_string(i) + "] must be a finite number");
    r[i] = e.As<Napi::Number>().DoubleValue();
  }
  return r;
}

// cropResize(src, width, height, rect {x, y, width, height} (float, pixel edges), out: Float32Array,
//   { width, height, channels: 1 | 3, layout: 'nchw' | 'nhwc', scale?, mean?, std?, filter?: 'auto' | 'bilinear' })
// Resamples the rect of an 8-bit gray image to width x height and writes
// (pixel * scale - mean[c]) / std[c] for every channel c (gray replicated) into out, which must
// hold channels * width * height floats. filter 'auto' (default) averages pixel areas on an axis
// downscaled by more than 2x and is bilinear otherwise; 'bilinear' is bilinear on both axes.
// Returns the filter used per axis: { x: 'bilinear' | 'area', y: ... }.
static Napi::Value CropResize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsObject() || !info[5].IsObject())
    throwType(env, "cropResize(src, width, height, rect, out, options)");
  int width = info[1].As<Napi::Number>().Int32Value(), height = info[2].As<Napi::Number>().Int32Value();
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) throwRange(env, "cropResize: width and height must be in [1, 65535]");
  GrayView src = grayArg(env, info[0], width, height, "cropResize: src");
  auto ro = info[3].As<Napi::Object>();
  double rx = getNumber(env, ro, "x", "cropResize: rect"), ry = getNumber(env, ro, "y", "cropResize: rect");
  double rw = getNumber(env, ro, "width", "cropResize: rect"), rh = getNumber(env, ro, "height", "cropResize: rect");
  const double eps = 1e-9;
  if (!(rw > 0) || !(rh > 0)) throwRange(env, "cropResize: rect width and height must be > 0");
  if (rx < -eps || ry < -eps || rx + rw > width + eps * (1 + width) || ry + rh > height + eps * (1 + height))
    throwRange(env, "cropResize: rect (" + std::to_string(rx) + "," + std::to_string(ry) + " " + std::to_string(rw) + "x" + std::to_string(rh) +
                        ") lies outside the " + std::to_string(width) + "x" + std::to_string(height) + " image");
  auto o = info[5].As<Napi::Object>();
  const std::string ctx = "cropResize: options";
  int ow = getInt(env, o, "width", ctx.c_str(), 1, 8192), oh = getInt(env, o, "height", ctx.c_str(), 1, 8192);
  int ch = getInt(env, o, "channels", ctx.c_str(), 1, 3);
  if (ch == 2) throwRange(env, "cropResize: options.channels must be 1 or 3");
  Napi::Value lv = o.Get("layout");
  std::string layout = lv.IsUndefined() ? "nchw" : (lv.IsString() ? lv.As<Napi::String>().Utf8Value() : "");
  if (layout != "nchw" && layout != "nhwc") throwRange(env, "cropResize: options.layout must be 'nchw' or 'nhwc'");
  Napi::Value fv = o.Get("filter");
  std::string filter = fv.IsUndefined() ? "auto" : (fv.IsString() ? fv.As<Napi::String>().Utf8Value() : "");
  if (filter != "auto" && filter != "bilinear") throwRange(env, "cropResize: options.filter must be 'auto' or 'bilinear'");
  double scale = getNumberOr(env, o, "scale", ctx.c_str(), 1.0);
  std::vector<double> mean = numberList(env, o, "mean", ch, 0.0, ctx), sd = numberList(env, o, "std", ch, 1.0, ctx);
  for (int c = 0; c < ch; c++)
    if (sd[c] == 0) throwRange(env, "cropResize: options.std[" + std::to_string(c) + "] must not be 0");
  auto [out, outLen] = floatsOf(env, info[4], "cropResize: out");
  size_t plane = (size_t)ow * oh;
  if (outLen != plane * ch) throwRange(env, "cropResize: out has " + std::to_string(outLen) + " floats, expected channels*width*height = " + std::to_string(plane * ch));

  // Clamp range: the pixels the rect touches.
  rx = std::max(rx, 0.0); ry = std::max(ry, 0.0);
  rw = std::min(rw, width - rx); rh = std::min(rh, height - ry);
  int lox = (int)std::floor(rx), hix = std::min(width, (int)std::ceil(rx + rw)) - 1;
  int loy = (int)std::floor(ry), hiy = std::min(height, (int)std::ceil(ry + rh)) - 1;
  hix = std::max(hix, lox); hiy = std::max(hiy, loy);
  bool areaX = filter == "auto" && rw > 2.0 * ow, areaY = filter == "auto" && rh > 2.0 * oh;
  AxisTaps tx = axisTaps(rx, rw, ow, lox, hix, areaX), ty = axisTaps(ry, rh, oh, loy, hiy, areaY);

  // Horizontal pass over the rows the vertical taps read, then the vertical pass.
  int r0 = ty.first[0], r1 = r0;
  for (int j = 0; j < oh; j++) { r0 = std::min(r0, ty.first[j]); r1 = std::max(r1, ty.first[j] + ty.count[j] - 1); }
  std::vector<double> rows((size_t)(r1 - r0 + 1) * ow);
  for (int r = r0; r <= r1; r++) {
    const uint8_t* s = src.data + (size_t)r * width;
    double* d = &rows[(size_t)(r - r0) * ow];
    for (int j = 0; j < ow; j++) {
      const double* w = &tx.w[(size_t)j * tx.maxTaps];
      const uint8_t* p = s + tx.first[j];
      double acc = 0;
      for (int k = 0; k < tx.count[j]; k++) acc += w[k] * p[k];
      d[j] = acc;
    }
  }
  std::vector<double> line(ow);
  double mul[3], add[3];
  for (int c = 0; c < ch; c++) { mul[c] = scale / sd[c]; add[c] = -mean[c] / sd[c]; }
  for (int i = 0; i < oh; i++) {
    std::fill(line.begin(), line.end(), 0.0);
    const double* w = &ty.w[(size_t)i * ty.maxTaps];
    for (int k = 0; k < ty.count[i]; k++) {
      const double* row = &rows[(size_t)(ty.first[i] + k - r0) * ow];
      double wk = w[k];
#pragma omp simd
      for (int j = 0; j < ow; j++) line[j] += wk * row[j];
    }
    if (layout == "nchw") {
      for (int c = 0; c < ch; c++) {
        float* d = out + c * plane + (size_t)i * ow;
        double m = mul[c], a = add[c];
#pragma omp simd
        for (int j = 0; j < ow; j++) d[j] = (float)(line[j] * m + a);
      }
    } else {
      float* d = out + (size_t)i * ow * ch;
      for (int j = 0; j < ow; j++)
        for (int c = 0; c < ch; c++) d[(size_t)j * ch + c] = (float)(line[j] * mul[c] + add[c]);
    }
  }
  Napi::Object used = Napi::Object::New(env);
  used.Set("x", areaX ? "area" : "bilinear");
  used.Set("y", areaY ? "area" : "bilinear");
  return used;
}

void InitPixels(Napi::Env env, Napi::Object exports) {
  exports.Set("frameDifference", Napi::Function::New(env, FrameDifference, "frameDifference"));
  exports.Set("rgbToGray", Napi::Function::New(env, RgbToGray, "rgbToGray"));
  exports.Set("applyPalette", Napi::Function::New(env, ApplyPalette, "applyPalette"));
  exports.Set("monochromeTo8", Napi::Function::New(env, MonochromeTo8, "monochromeTo8"));
  exports.Set("cropResize", Napi::Function::New(env, CropResize, "cropResize"));
}

}  // namespace sono
