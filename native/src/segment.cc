// One-tap segmentation kernels: the network's input crop around a tap (image plane plus the tap
// as a Gaussian heatmap), the network's output mapped back to a lesion mask (the component at
// the tap, holes filled), and the mask geometry the evaluation needs (distance transform, grow or
// shrink by a radius, boundary-to-boundary distances). One call per pass with whole buffers.
#include "common.h"
#include <algorithm>
#include <cmath>
#include <limits>

namespace sono {

void squaredDistanceMm(const uint8_t* mask, int w, int h, const Rect& box, double sx, double sy, std::vector<double>& out);

namespace {

// A square crop of side `side` image pixels centred at (cx, cy), sampled on size x size points:
// sample i sits at x0 + i * step (pixel-index coordinates: pixel k's centre is at k).
struct Crop {
  double cx, cy, side, step, x0, y0;
  int size;
};

Crop cropArg(Napi::Env env, Napi::Value v, int size, const char* ctx) {
  if (!v.IsObject()) throwType(env, std::string(ctx) + ": crop must be an object {cx, cy, side}");
  Napi::Object o = v.As<Napi::Object>();
  Crop c{};
  c.cx = getNumber(env, o, "cx", ctx);
  c.cy = getNumber(env, o, "cy", ctx);
  c.side = getNumber(env, o, "side", ctx);
  if (!(c.side >= 2 && c.side <= 1e5) || !std::isfinite(c.cx) || !std::isfinite(c.cy) || std::fabs(c.cx) > 1e6 || std::fabs(c.cy) > 1e6)
    throwRange(env, std::string(ctx) + ": crop needs finite cx, cy and a side of 2..100000 pixels");
  c.size = size;
  c.step = c.side / size;
  c.x0 = c.cx - c.side / 2 + c.step / 2;
  c.y0 = c.cy - c.side / 2 + c.step / 2;
  return c;
}

// Bilinear sample of src at (x, y), zero outside the image.
inline double bilinearZero(const uint8_t* src, int w, int h, double x, double y) {
  int xf = (int)std::floor(x), yf = (int)std::floor(y);
  double ax = x - xf, ay = y - yf, v = 0;
  for (int dy = 0; dy < 2; dy++) {
    int yy = yf + dy;
    if (yy < 0 || yy >= h) continue;
    for (int dx = 0; dx < 2; dx++) {
      int xx = xf + dx;
      if (xx < 0 || xx >= w) continue;
      v += src[(size_t)yy * w + xx] * (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
    }
  }
  return v;
}

// The crop sampled into out (size*size, row-major), optionally mirrored left-right.
void sampleCrop(const uint8_t* src, int w, int h, const Crop& c, bool flip, float* out) {
  int S = c.size;
  for (int j = 0; j < S; j++) {
    double y = c.y0 + j * c.step;
    for (int i = 0; i < S; i++) {
      int ii = flip ? S - 1 - i : i;
      out[(size_t)j * S + i] = (float)bilinearZero(src, w, h, c.x0 + ii * c.step, y);
    }
  }
}

int sizeArg(Napi::Env env, const Napi::Object& o, const char* ctx) { return getInt(env, o, "size", ctx, 8, 1024); }

}  // namespace

// cropSample(src, width, height, crop {cx, cy, side}, out Float32Array(size*size), {size, flip?})
// Raw bilinear values (0 outside the image): masks for training targets.
Napi::Value CropSample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* ctx = "cropSample";
  if (info.Length() < 6) throwType(env, "cropSample(src, width, height, crop, out, options) expects 6 arguments");
  int w = info[1].As<Napi::Number>().Int32Value(), h = info[2].As<Napi::Number>().Int32Value();
  GrayView g = grayArg(env, info[0], w, h, "cropSample.src");
  Napi::Object o = argObject(info, 5, "cropSample.options");
  int S = sizeArg(env, o, ctx);
  Crop c = cropArg(env, info[3], S, ctx);
  auto [out, n] = floatsOf(env, info[4], "cropSample.out");
  if (n != (size_t)S * S) throwRange(env, "cropSample.out must hold size*size = " + std::to_string(S * S) + " floats (got " + std::to_string(n) + ")");
  bool flip = o.Has("flip") && o.Get("flip").ToBoolean().Value();
  sampleCrop(g.data, w, h, c, flip, out);
  return env.Undefined();
}

// tapInput(src, width, height, crop, tap {x, y}, out, {size, sigma, layout 'nchw'|'nhwc', flip?, gain?, gamma?})
// Channel 0: the crop, (v/255)^gamma * gain, standardised over the crop (mean 0, sd 1).
// Channel 1: exp(-d^2 / 2 sigma^2), d the distance in samples from the tap.
Napi::Value TapInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* ctx = "tapInput";
  if (info.Length() < 7) throwType(env, "tapInput(src, width, height, crop, tap, out, options) expects 7 arguments");
  int w = info[1].As<Napi::Number>().Int32Value(), h = info[2].As<Napi::Number>().Int32Value();
  GrayView g = grayArg(env, info[0], w, h, "tapInput.src");
  Napi::Object o = argObject(info, 6, "tapInput.options");
  int S = sizeArg(env, o, ctx);
  Crop c = cropArg(env, info[3], S, ctx);
  Napi::Object tap = argObject(info, 4, "tapInput.tap");
  double tx = getNumber(env, tap, "x", "tapInput.tap"), ty = getNumber(env, tap, "y", "tapInput.tap");
  auto [out, n] = floatsOf(env, info[5], "tapInput.out");
  if (n != (size_t)2 * S * S) throwRange(env, "tapInput.out must hold 2*size*size = " + std::to_string(2 * S * S) + " floats (got " + std::to_string(n) + ")");
  double sigma = getNumber(env, o, "sigma", ctx);
  if (!(sigma > 0 && sigma < 1e4)) throwRange(env, "tapInput.sigma must be a positive number of samples");
  std::string layout = o.Has("layout") ? o.Get("layout").ToString().Utf8Value() : "nchw";
  if (layout != "nchw" && layout != "nhwc") throwRange(env, "tapInput.layout must be 'nchw' or 'nhwc' (got '" + layout + "')");
  bool flip = o.Has("flip") && o.Get("flip").ToBoolean().Value();
  double gain = getNumberOr(env, o, "gain", ctx, 1), gamma = getNumberOr(env, o, "gamma", ctx, 1);
  if (!(gain > 0 && gain < 100) || !(gamma > 0 && gamma < 100)) throwRange(env, "tapInput: gain and gamma must be positive");

  size_t N = (size_t)S * S;
  std::vector<float> im(N);
  sampleCrop(g.data, w, h, c, flip, im.data());
  double sum = 0;
  for (size_t k = 0; k < N; k++) {
    double v = im[k] / 255.0;
    if (gamma != 1) v = std::pow(v, gamma);
    v *= gain;
    im[k] = (float)v;
    sum += v;
  }
  double mean = sum / N, ss = 0;
  for (size_t k = 0; k < N; k++) ss += (im[k] - mean) * (im[k] - mean);
  double sd = std::sqrt(ss / N) + 1e-3;
  double tu = (tx - c.x0) / c.step, tv = (ty - c.y0) / c.step;
  if (flip) tu = S - 1 - tu;
  double k2 = 1.0 / (2 * sigma * sigma);
  bool nchw = layout == "nchw";
  for (int j = 0; j < S; j++) {
    for (int i = 0; i < S; i++) {
      size_t k = (size_t)j * S + i;
      float a = (float)((im[k] - mean) / sd);
      float b = (float)std::exp(-((i - tu) * (i - tu) + (j - tv) * (j - tv)) * k2);
      if (nchw) { out[k] = a; out[N + k] = b; }
      else { out[2 * k] = a; out[2 * k + 1] = b; }
    }
  }
  return env.Undefined();
}

// tapMask(logits, crop, width, height, tap {x, y}, out Uint8Array(width*height), {size, threshold?, snapRadius?, flipped?, within?})
// The logits (size*size; `flipped` a second, mirrored pass averaged in) bilinearly over the crop's
// pixels, above threshold, and inside `within` {x0, y0, x1, y1} (image pixels, inclusive) when
// given; the 4-connected component at the tap (or at the nearest such pixel within snapRadius
// pixels), holes filled. out is 255 inside, 0 elsewhere.
// Returns {area, x0, y0, x1, y1, tapLogit, atX, atY}; area 0 when nothing lies at the tap.
Napi::Value TapMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* ctx = "tapMask";
  if (info.Length() < 7) throwType(env, "tapMask(logits, crop, width, height, tap, out, options) expects 7 arguments");
  Napi::Object o = argObject(info, 6, "tapMask.options");
  int S = sizeArg(env, o, ctx);
  auto [lg, nl] = floatsOf(env, info[0], "tapMask.logits");
  if (nl != (size_t)S * S) throwRange(env, "tapMask.logits must hold size*size = " + std::to_string(S * S) + " floats (got " + std::to_string(nl) + ")");
  Crop c = cropArg(env, info[1], S, ctx);
  if (!info[2].IsNumber() || !info[3].IsNumber()) throwType(env, "tapMask: width and height must be numbers");
  int w = info[2].As<Napi::Number>().Int32Value(), h = info[3].As<Napi::Number>().Int32Value();
  if (w <= 0 || h <= 0 || (int64_t)w * h > (int64_t)1 << 28) throwRange(env, "tapMask: width and height must be positive");
  Napi::Object tap = argObject(info, 4, "tapMask.tap");
  double tx = getNumber(env, tap, "x", "tapMask.tap"), ty = getNumber(env, tap, "y", "tapMask.tap");
  auto [out, no] = bytesOf(env, info[5], "tapMask.out");
  if (no != (size_t)w * h) throwRange(env, "tapMask.out must hold width*height bytes");
  double thr = getNumberOr(env, o, "threshold", ctx, 0), snap = getNumberOr(env, o, "snapRadius", ctx, 0);
  // The rectangle the mask must lie in (default: the whole image).
  double wx0 = -INFINITY, wy0 = -INFINITY, wx1 = INFINITY, wy1 = INFINITY;
  if (Napi::Value within = o.Get("within"); isGiven(within)) {
    if (!within.IsObject()) throwType(env, "tapMask.options.within must be an object {x0, y0, x1, y1}");
    Napi::Object r = within.As<Napi::Object>();
    wx0 = getNumber(env, r, "x0", "tapMask.options.within"); wy0 = getNumber(env, r, "y0", "tapMask.options.within");
    wx1 = getNumber(env, r, "x1", "tapMask.options.within"); wy1 = getNumber(env, r, "y1", "tapMask.options.within");
    if (!(wx1 >= wx0 && wy1 >= wy0)) throwRange(env, "tapMask.options.within is empty: x1 must be >= x0 and y1 >= y0");
  }
  std::vector<float> avg;
  const float* L = lg;
  if (Napi::Value flipped = o.Get("flipped"); isGiven(flipped)) {
    auto [fl, nf] = floatsOf(env, flipped, "tapMask.flipped");
    if (nf != nl) throwRange(env, "tapMask.flipped must hold as many floats as logits");
    avg.resize(nl);
    for (int j = 0; j < S; j++)
      for (int i = 0; i < S; i++) avg[(size_t)j * S + i] = 0.5f * (lg[(size_t)j * S + i] + fl[(size_t)j * S + (S - 1 - i)]);
    L = avg.data();
  }
  std::fill(out, out + no, 0);
  auto logitAt = [&](double px, double py) {
    double u = std::min<double>(S - 1, std::max(0.0, (px - c.x0) / c.step));
    double v = std::min<double>(S - 1, std::max(0.0, (py - c.y0) / c.step));
    int uf = std::min(S - 2, (int)std::floor(u)), vf = std::min(S - 2, (int)std::floor(v));
    double au = u - uf, av = v - vf;
    const float* r0 = L + (size_t)vf * S + uf;
    const float* r1 = r0 + S;
    return (r0[0] * (1 - au) + r0[1] * au) * (1 - av) + (r1[0] * (1 - au) + r1[1] * au) * av;
  };
  // The crop's pixels inside the image.
  int X0 = std::max(0, (int)std::floor(c.cx - c.side / 2)), X1 = std::min(w - 1, (int)std::ceil(c.cx + c.side / 2));
  int Y0 = std::max(0, (int)std::floor(c.cy - c.side / 2)), Y1 = std::min(h - 1, (int)std::ceil(c.cy + c.side / 2));
  Napi::Object res = Napi::Object::New(env);
  double tapLogit = logitAt(tx, ty);
  res.Set("tapLogit", tapLogit);
  auto empty = [&]() {
    res.Set("area", 0); res.Set("x0", -1); res.Set("y0", -1); res.Set("x1", -1); res.Set("y1", -1);
    return res;
  };
  if (X0 > X1 || Y0 > Y1) return empty();
  int bw = X1 - X0 + 1, bh = Y1 - Y0 + 1;
  std::vector<uint8_t> fg((size_t)bw * bh);
  for (int y = 0; y < bh; y++)
    for (int x = 0; x < bw; x++) {
      int X = X0 + x, Y = Y0 + y;
      fg[(size_t)y * bw + x] = X >= wx0 && X <= wx1 && Y >= wy0 && Y <= wy1 && logitAt(X, Y) > thr ? 1 : 0;
    }
  // The seed: the tap's pixel, else the nearest foreground pixel within snapRadius.
  int sx = (int)std::lround(tx) - X0, sy = (int)std::lround(ty) - Y0, seed = -1;
  double best = snap * snap + 1e-9;
  int R = (int)std::ceil(snap);
  for (int dy = -R; dy <= R; dy++)
    for (int dx = -R; dx <= R; dx++) {
      int x = sx + dx, y = sy + dy;
      if (x < 0 || y < 0 || x >= bw || y >= bh || !fg[(size_t)y * bw + x]) continue;
      double d2 = (double)dx * dx + (double)dy * dy;
      if (d2 < best) { best = d2; seed = y * bw + x; }
    }
  if (seed < 0) return empty();
  // The seed's 4-connected component (2), then the background reachable from the crop's edge (3).
  std::vector<int> stack;
  stack.reserve(1024);
  auto flood = [&](int start, uint8_t from, uint8_t to) {
    if (fg[start] != from) return;
    fg[start] = to;
    stack.push_back(start);
    while (!stack.empty()) {
      int p = stack.back();
      stack.pop_back();
      int x = p % bw, y = p / bw;
      if (x > 0 && fg[p - 1] == from) { fg[p - 1] = to; stack.push_back(p - 1); }
      if (x < bw - 1 && fg[p + 1] == from) { fg[p + 1] = to; stack.push_back(p + 1); }
      if (y > 0 && fg[p - bw] == from) { fg[p - bw] = to; stack.push_back(p - bw); }
      if (y < bh - 1 && fg[p + bw] == from) { fg[p + bw] = to; stack.push_back(p + bw); }
    }
  };
  flood(seed, 1, 2);
  for (auto& v : fg) if (v == 1) v = 0;  // other components are background
  for (int x = 0; x < bw; x++) { flood(x, 0, 3); flood((bh - 1) * bw + x, 0, 3); }
  for (int y = 0; y < bh; y++) { flood(y * bw, 0, 3); flood(y * bw + bw - 1, 0, 3); }
  int area = 0, mx0 = w, my0 = h, mx1 = -1, my1 = -1;
  for (int y = 0; y < bh; y++)
    for (int x = 0; x < bw; x++) {
      if (fg[(size_t)y * bw + x] == 3) continue;  // reachable background; the rest is the component and its holes
      int X = X0 + x, Y = Y0 + y;
      out[(size_t)Y * w + X] = 255;
      area++;
      mx0 = std::min(mx0, X); mx1 = std::max(mx1, X); my0 = std::min(my0, Y); my1 = std::max(my1, Y);
    }
  res.Set("area", area); res.Set("x0", mx0); res.Set("y0", my0); res.Set("x1", mx1); res.Set("y1", my1);
  res.Set("atX", X0 + seed % bw); res.Set("atY", Y0 + seed / bw);
  return res;
}

namespace {

// Euclidean distance (pixels) from every pixel with mask != 0 to the nearest pixel with mask == 0,
// the outside of the image counting as 0 (so a mask touching the edge is 1 pixel deep there).
void insideDistance(const uint8_t* m, int w, int h, std::vector<double>& d) {
  int W = w + 2, H = h + 2;
  std::vector<uint8_t> bg((size_t)W * H, 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) bg[(size_t)(y + 1) * W + x + 1] = m[(size_t)y * w + x] ? 0 : 1;
  std::vector<double> d2;
  squaredDistanceMm(bg.data(), W, H, Rect{0, 0, W, H}, 1, 1, d2);
  d.resize((size_t)w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) d[(size_t)y * w + x] = std::sqrt(d2[(size_t)(y + 1) * W + x + 1]);
}

}  // namespace

// maskDistance(mask, width, height, out Float32Array(width*height)) -> {x, y, distance}
// Distance of each lesion pixel to the nearest outside pixel (0 outside); returns the deepest
// pixel (the first in raster order among equals): the point "farthest from the border".
Napi::Value MaskDistance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throwType(env, "maskDistance(mask, width, height, out) expects 4 arguments");
  int w = info[1].As<Napi::Number>().Int32Value(), h = info[2].As<Napi::Number>().Int32Value();
  GrayView g = grayArg(env, info[0], w, h, "maskDistance.mask");
  auto [out, n] = floatsOf(env, info[3], "maskDistance.out");
  if (n != (size_t)w * h) throwRange(env, "maskDistance.out must hold width*height floats");
  std::vector<double> d;
  insideDistance(g.data, w, h, d);
  size_t bi = 0;
  double best = -1;
  for (size_t k = 0; k < d.size(); k++) {
    out[k] = (float)d[k];
    if (d[k] > best) { best = d[k]; bi = k; }
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("x", (double)(bi % w)); r.Set("y", (double)(bi / w)); r.Set("distance", best);
  return r;
}

// morphMask(mask, width, height, radius, out): grow (radius > 0) or shrink (radius < 0) by a
// Euclidean disc of |radius| pixels; out is 255 inside. Returns the new area.
Napi::Value MorphMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throwType(env, "morphMask(mask, width, height, radius, out) expects 5 arguments");
  int w = info[1].As<Napi::Number>().Int32Value(), h = info[2].As<Napi::Number>().Int32Value();
  GrayView g = grayArg(env, info[0], w, h, "morphMask.mask");
  double r = info[3].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(r) || std::fabs(r) > 1e4) throwRange(env, "morphMask.radius must be a finite number of pixels");
  auto [out, n] = bytesOf(env, info[4], "morphMask.out");
  if (n != (size_t)w * h) throwRange(env, "morphMask.out must hold width*height bytes");
  int area = 0;
  if (r >= 0) {
    std::vector<double> d2;
    squaredDistanceMm(g.data, w, h, Rect{0, 0, w, h}, 1, 1, d2);
    for (size_t k = 0; k < n; k++) { out[k] = d2[k] <= r * r + 1e-9 ? 255 : 0; area += out[k] ? 1 : 0; }
  } else {
    std::vector<double> d;
    insideDistance(g.data, w, h, d);
    for (size_t k = 0; k < n; k++) { out[k] = d[k] > -r + 1e-9 ? 255 : 0; area += out[k] ? 1 : 0; }
  }
  return Napi::Number::New(env, area);
}

// surfaceDistances(a, b, width, height) -> Float64Array: for every boundary pixel of a (inside,
// with a 4-neighbour outside), the distance to the nearest boundary pixel of b. Empty when a is.
Napi::Value SurfaceDistances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throwType(env, "surfaceDistances(a, b, width, height) expects 4 arguments");
  int w = info[2].As<Napi::Number>().Int32Value(), h = info[3].As<Napi::Number>().Int32Value();
  GrayView a = grayArg(env, info[0], w, h, "surfaceDistances.a");
  GrayView b = grayArg(env, info[1], w, h, "surfaceDistances.b");
  auto boundary = [&](const uint8_t* m, std::vector<uint8_t>& bd) {
    bd.assign((size_t)w * h, 0);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        size_t k = (size_t)y * w + x;
        if (!m[k]) continue;
        bool edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !m[k - 1] || !m[k + 1] || !m[k - w] || !m[k + w];
        bd[k] = edge ? 1 : 0;
      }
  };
  std::vector<uint8_t> ba, bb;
  boundary(a.data, ba);
  boundary(b.data, bb);
  std::vector<double> d2;
  squaredDistanceMm(bb.data(), w, h, Rect{0, 0, w, h}, 1, 1, d2);
  std::vector<double> vals;
  for (size_t k = 0; k < ba.size(); k++) if (ba[k]) vals.push_back(std::sqrt(d2[k]));
  Napi::Float64Array r = Napi::Float64Array::New(env, vals.size());
  std::copy(vals.begin(), vals.end(), r.Data());
  return r;
}

void InitSegment(Napi::Env env, Napi::Object exports) {
  exports.Set("cropSample", Napi::Function::New(env, CropSample, "cropSample"));
  exports.Set("tapInput", Napi::Function::New(env, TapInput, "tapInput"));
  exports.Set("tapMask", Napi::Function::New(env, TapMask, "tapMask"));
  exports.Set("maskDistance", Napi::Function::New(env, MaskDistance, "maskDistance"));
  exports.Set("morphMask", Napi::Function::New(env, MorphMask, "morphMask"));
  exports.Set("surfaceDistances", Napi::Function::New(env, SurfaceDistances, "surfaceDistances"));
}

}  // namespace sono
