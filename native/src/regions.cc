// Region kernels: moving the lesion mask with the tracked motion, peritumoral rings from an
// exact Euclidean distance transform with anisotropic pixel spacing, and contour tracing.
#include "common.h"
#include <algorithm>
#include <limits>

namespace sono {
namespace {

// Felzenszwalb-Huttenlocher 1D squared distance transform with sample spacing `w2` (squared).
void dt1d(const double* f, int n, double w2, double* d, int* v, double* z) {
  const double INF = std::numeric_limits<double>::infinity();
  int k = -1;
  for (int q = 0; q < n; q++) {
    if (!std::isfinite(f[q])) continue;
    if (k < 0) { k = 0; v[0] = q; z[0] = -INF; z[1] = INF; continue; }
    double s;
    while (true) {
      int p = v[k];
      s = ((f[q] + w2 * q * q) - (f[p] + w2 * p * p)) / (2.0 * w2 * (q - p));
      if (s <= z[k]) { k--; continue; }  // z[0] = -inf ends this at k = 0
      break;
    }
    k++;
    v[k] = q; z[k] = s; z[k + 1] = INF;
  }
  if (k < 0) { for (int q = 0; q < n; q++) d[q] = INF; return; }
  k = 0;
  for (int q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    double dq = q - v[k];
    d[q] = w2 * dq * dq + f[v[k]];
  }
}

}  // namespace

// Squared Euclidean distance (in mm^2) from every pixel of `box` to the nearest foreground
// pixel (mask != 0) of the full w x h mask, for pixels inside `box` only.
void squaredDistanceMm(const uint8_t* mask, int w, int h, const Rect& box, double sx, double sy, std::vector<double>& out) {
  const double INF = std::numeric_limits<double>::infinity();
  int bw = box.w, bh = box.h;
  out.assign((size_t)bw * bh, INF);
  int n = std::max(bw, bh);
  std::vector<double> f(n), d(n), z(n + 2);
  std::vector<int> v(n);
  // Columns (y spacing).
  for (int x = 0; x < bw; x++) {
    for (int y = 0; y < bh; y++) f[y] = mask[(size_t)(box.y + y) * w + box.x + x] ? 0.0 : INF;
    dt1d(f.data(), bh, sy * sy, d.data(), v.data(), z.data());
    for (int y = 0; y < bh; y++) out[(size_t)y * bw + x] = d[y];
  }
  // Rows (x spacing).
  for (int y = 0; y < bh; y++) {
    double* row = &out[(size_t)y * bw];
    for (int x = 0; x < bw; x++) f[x] = row[x];
    dt1d(f.data(), bw, sx * sx, d.data(), v.data(), z.data());
    for (int x = 0; x < bw; x++) row[x] = d[x];
  }
}

namespace {

// Bounding box of the pixels whose value lies in [lo, hi] (default: every non-zero pixel).
bool boundingBox(const uint8_t* m, int w, int h, Rect& r, int lo = 1, int hi = 255) {
  int x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (int y = 0; y < h; y++) {
    const uint8_t* row = m + (size_t)y * w;
    for (int x = 0; x < w; x++)
      if (row[x] >= lo && row[x] <= hi) { x0 = std::min(x0, x); x1 = std::max(x1, x); y0 = std::min(y0, y); y1 = y; }
  }
  if (x1 < 0) return false;
  r = Rect{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  return true;
}

// warpMask(src, w, h, {fromX, fromY, toX, toY, scale}, dst): dst(p) = src(from + (p - to)/scale).
Napi::Value WarpMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throwType(env, "warpMask(src, width, height, {fromX, fromY, toX, toY, scale}, dst)");
  int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  GrayView src = grayArg(env, info[0], w, h, "warpMask: src");
  auto t = argObject(info, 3, "warpMask: transform");
  double fx = getNumber(env, t, "fromX", "transform"), fy = getNumber(env, t, "fromY", "transform");
  double tx = getNumber(env, t, "toX", "transform"), ty = getNumber(env, t, "toY", "transform");
  double s = getNumber(env, t, "scale", "transform");
  if (s <= 0.05 || s > 20) throwRange(env, "warpMask: transform.scale must be in (0.05, 20]");
  auto [dst, dn] = bytesOf(env, info[4], "warpMask: dst");
  if (dn != (size_t)w * h) throwRange(env, "warpMask: dst must hold width*height bytes");
  if (dst == src.data) throwRange(env, "warpMask: dst must not be the src buffer");
  std::fill(dst, dst + dn, 0);
  Rect bb;
  if (!boundingBox(src.data, w, h, bb)) return Napi::Number::New(env, 0);
  // Destination box: the source box mapped forward.
  int x0 = std::max(0, (int)std::floor(tx + (bb.x - fx) * s) - 1), x1 = std::min(w - 1, (int)std::ceil(tx + (bb.x + bb.w - fx) * s) + 1);
  int y0 = std::max(0, (int)std::floor(ty + (bb.y - fy) * s) - 1), y1 = std::min(h - 1, (int)std::ceil(ty + (bb.y + bb.h - fy) * s) + 1);
  size_t count = 0;
  for (int y = y0; y <= y1; y++) {
    int sy = (int)std::floor(fy + (y - ty) / s + 0.5);
    if (sy < 0 || sy >= h) continue;
    for (int x = x0; x <= x1; x++) {
      int sx = (int)std::floor(fx + (x - tx) / s + 0.5);
      if (sx < 0 || sx >= w) continue;
      if (src.data[(size_t)sy * w + sx]) { dst[(size_t)y * w + x] = 255; count++; }
    }
  }
  return Napi::Number::New(env, (double)count);
}

// ringCodes(mask, w, h, {spacingX, spacingY, radiiMm: number[]}, out[, sector]) -> pixel counts
// out: 0 = none, 1 = lesion, k + 2 = within radiiMm[k] of the lesion (smallest such k).
// Ring k of the lesion is the set of codes 2..k+2. Radii must increase.
Napi::Value RingCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throwType(env, "ringCodes(mask, width, height, {spacingX, spacingY, radiiMm}, out[, sector])");
  int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  GrayView m = grayArg(env, info[0], w, h, "ringCodes: mask");
  auto o = argObject(info, 3, "ringCodes: options");
  double sx = getNumber(env, o, "spacingX", "ringCodes"), sy = getNumber(env, o, "spacingY", "ringCodes");
  if (sx <= 0 || sy <= 0) throwRange(env, "ringCodes: spacingX and spacingY must be > 0 (mm per pixel)");
  Napi::Value rv = o.Get("radiiMm");
  if (!rv.IsArray()) throwType(env, "ringCodes.radiiMm must be an array of numbers");
  auto ra = rv.As<Napi::Array>();
  if (ra.Length() > 250) throwRange(env, "ringCodes.radiiMm: at most 250 rings");
  std::vector<double> radii;
  for (uint32_t i = 0; i < ra.Length(); i++) {
    Napi::Value e = ra.Get(i);
    if (!e.IsNumber()) throwType(env, "ringCodes.radiiMm[" + std::to_string(i) + "] must be a number");
    double r = e.As<Napi::Number>().DoubleValue();
    if (!(r > 0) || !std::isfinite(r)) throwRange(env, "ringCodes.radiiMm[" + std::to_string(i) + "] must be a positive finite distance in mm");
    if (!radii.empty() && r <= radii.back()) throwRange(env, "ringCodes.radiiMm must be strictly increasing");
    radii.push_back(r);
  }
  auto [out, on] = bytesOf(env, info[4], "ringCodes: out");
  if (on != (size_t)w * h) throwRange(env, "ringCodes: out must hold width*height bytes");
  const uint8_t* sector = nullptr;
  if (info.Length() > 5 && isGiven(info[5])) sector = grayArg(env, info[5], w, h, "ringCodes: sector").data;
  std::fill(out, out + on, 0);
  std::vector<double> counts(radii.size() + 1, 0.0);
  Rect bb;
  Napi::Array result = Napi::Array::New(env);
  if (!boundingBox(m.data, w, h, bb)) {
    for (size_t i = 0; i < counts.size(); i++) result.Set((uint32_t)i, 0.0);
    return result;
  }
  if (radii.empty()) {  // no rings: the codes are the mask itself (1 inside), no distance transform
    for (int y = bb.y; y < bb.y + bb.h; y++)
      for (int x = bb.x; x < bb.x + bb.w; x++) {
        size_t p = (size_t)y * w + x;
        if (m.data[p] && !(sector && !sector[p])) { out[p] = 1; counts[0]++; }
      }
    result.Set((uint32_t)0, counts[0]);
    return result;
  }
  double rmax = radii.back();
  int mx = (int)std::ceil(rmax / sx) + 1, my = (int)std::ceil(rmax / sy) + 1;
  Rect box{std::max(0, bb.x - mx), std::max(0, bb.y - my), 0, 0};
  box.w = std::min(w, bb.x + bb.w + mx) - box.x;
  box.h = std::min(h, bb.y + bb.h + my) - box.y;
  std::vector<double> d2;
  squaredDistanceMm(m.data, w, h, box, sx, sy, d2);
  std::vector<double> r2(radii.size());
  for (size_t k = 0; k < radii.size(); k++) r2[k] = radii[k] * radii[k] * (1 + 1e-12);
  for (int y = 0; y < box.h; y++)
    for (int x = 0; x < box.w; x++) {
      size_t p = (size_t)(box.y + y) * w + box.x + x;
      if (sector && !sector[p]) continue;
      double d = d2[(size_t)y * box.w + x];
      if (d == 0) { out[p] = 1; counts[0]++; continue; }
      for (size_t k = 0; k < r2.size(); k++)
        if (d <= r2[k]) { out[p] = (uint8_t)(k + 2); counts[k + 1]++; break; }
    }
  // Cumulative counts per ring (ring k holds codes 2..k+2).
  for (size_t k = 2; k < counts.size(); k++) counts[k] += counts[k - 1];
  for (size_t i = 0; i < counts.size(); i++) result.Set((uint32_t)i, counts[i]);
  return result;
}

// contour(codes, w, h, minCode, maxCode) -> Int32Array [x0, y0, x1, y1, ...]: the outer
// boundary (Moore-neighbour tracing, 8-connected) of the largest connected component of
// pixels with minCode <= code <= maxCode. Empty when there is none.
Napi::Value Contour(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throwType(env, "contour(codes, width, height, minCode, maxCode)");
  int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  GrayView m = grayArg(env, info[0], w, h, "contour: codes");
  if (!info[3].IsNumber() || !info[4].IsNumber()) throwType(env, "contour: minCode and maxCode must be numbers");
  int lo = info[3].As<Napi::Number>().Int32Value(), hi = info[4].As<Napi::Number>().Int32Value();
  if (lo < 1 || hi > 255 || lo > hi) throwRange(env, "contour: need 1 <= minCode <= maxCode <= 255");
  // Work inside the bounding box of the selected codes only.
  Rect bb;
  if (!boundingBox(m.data, w, h, bb, lo, hi)) return Napi::Int32Array::New(env, 0);
  const int ox = bb.x, oy = bb.y, W = bb.w, H = bb.h;
  // Foreground with a one-pixel empty border (no bounds checks), then label 8-connected
  // components by flood fill and keep the largest.
  const int PW = W + 2, PH = H + 2;
  std::vector<int32_t> label((size_t)PW * PH, 0);
  for (int y = 0; y < H; y++) {
    const uint8_t* row = m.data + (size_t)(y + oy) * w + ox;
    int32_t* lr = &label[(size_t)(y + 1) * PW + 1];
    for (int x = 0; x < W; x++) lr[x] = (row[x] >= lo && row[x] <= hi) ? -1 : 0;
  }
  const int nb[8] = {1, -1, PW, -PW, PW + 1, PW - 1, -PW + 1, -PW - 1};
  std::vector<int32_t> stack;
  stack.reserve(1024);
  int nextLabel = 0, bestLabel = 0; size_t bestSize = 0; int bestStart = -1;
  for (int p = PW; p < PW * (PH - 1); p++) {
    if (label[p] != -1) continue;
    int L = ++nextLabel;
    size_t size = 0;
    label[p] = L; stack.push_back(p);
    while (!stack.empty()) {
      int q = stack.back(); stack.pop_back(); size++;
      for (int k = 0; k < 8; k++) {
        int np = q + nb[k];
        if (label[np] == -1) { label[np] = L; stack.push_back(np); }
      }
    }
    if (size > bestSize) { bestSize = size; bestLabel = L; bestStart = p; }
  }
  static const int DX[8] = {1, 1, 0, -1, -1, -1, 0, 1}, DY[8] = {0, 1, 1, 1, 0, -1, -1, -1};
  auto in = [&](int x, int y) { return label[(size_t)(y + 1) * PW + x + 1] == bestLabel; };  // border is 0
  auto dirOf = [&](int dx, int dy) { for (int d = 0; d < 8; d++) if (DX[d] == dx && DY[d] == dy) return d; return 4; };
  int sx = bestStart % PW - 1, sy = bestStart / PW - 1;
  std::vector<int32_t> pts{sx, sy};
  int cx = sx, cy = sy, back = 4;  // entered from the west (raster start: west is background)
  const int startBack = back;
  size_t limit = 4 * bestSize + 16;
  for (size_t step = 0; step < limit; step++) {
    bool found = false;
    for (int i = 1; i <= 8; i++) {
      int d = (back + i) % 8;
      int nx = cx + DX[d], ny = cy + DY[d];
      if (in(nx, ny)) {
        int pd = (back + i - 1) % 8;
        int bx = cx + DX[pd], by = cy + DY[pd];
        back = dirOf(bx - nx, by - ny);
        cx = nx; cy = ny; found = true;
        break;
      }
    }
    if (!found) break;  // single pixel
    if (cx == sx && cy == sy && back == startBack) break;
    if (cx == sx && cy == sy) {
      // Jacob's criterion: stop when the start is re-entered the way it was first left.
      if (pts.size() >= 4) {
        // check the next move would repeat the first one
        int b2 = back; bool rep = false;
        for (int i = 1; i <= 8; i++) {
          int d = (b2 + i) % 8;
          if (in(cx + DX[d], cy + DY[d])) { rep = (cx + DX[d] == pts[2] && cy + DY[d] == pts[3]); break; }
        }
        if (rep) break;
      }
    }
    pts.push_back(cx); pts.push_back(cy);
  }
  auto arr = Napi::Int32Array::New(env, pts.size());
  for (size_t i = 0; i < pts.size(); i += 2) { arr[i] = pts[i] + ox; arr[i + 1] = pts[i + 1] + oy; }
  return arr;
}

}  // namespace

// regionIntensity(frame, w, h, paneRect, codes, nCodes, lut: Float32Array(256)[, reference {cx, cy, rx, ry}])
//   -> Float64Array [sum, count, saturated] for code 1..nCodes, then for the reference ellipse.
// The time-intensity sample of one frame: every pixel of the pane whose code is c adds lut[value]
// (e.g. the display's log compression undone) to code c; pixels at 255 are counted as saturated.
// The reference region is an ellipse in pane coordinates (pixels), clipped to the pane.
Napi::Value RegionIntensity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7)
    throwType(env, "regionIntensity(frame, width, height, paneRect, codes, nCodes, lut[, reference])");
  int w = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  int h = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  GrayView f = grayArg(env, info[0], w, h, "regionIntensity: frame");
  Rect r = rectArg(env, info[3], "regionIntensity: paneRect");
  checkRectInside(env, r, w, h, "regionIntensity: paneRect");
  GrayView codes = grayArg(env, info[4], r.w, r.h, "regionIntensity: codes (pane-sized)");
  if (!info[5].IsNumber()) throwType(env, "regionIntensity: nCodes must be a number");
  int nCodes = info[5].As<Napi::Number>().Int32Value();
  if (nCodes < 1 || nCodes > 254) throwRange(env, "regionIntensity: nCodes must be in [1, 254]");
  auto [lut, lutLen] = floatsOf(env, info[6], "regionIntensity: lut");
  if (lutLen != 256) throwRange(env, "regionIntensity: lut must hold 256 values (one per gray level)");
  bool hasRef = info.Length() > 7 && isGiven(info[7]);
  double cx = 0, cy = 0, rx = 0, ry = 0;
  if (hasRef) {
    auto o = argObject(info, 7, "regionIntensity: reference");
    cx = getNumber(env, o, "cx", "regionIntensity.reference");
    cy = getNumber(env, o, "cy", "regionIntensity.reference");
    rx = getNumber(env, o, "rx", "regionIntensity.reference");
    ry = getNumber(env, o, "ry", "regionIntensity.reference");
    if (!(rx > 0) || !(ry > 0)) throwRange(env, "regionIntensity.reference: rx and ry must be > 0 (pixels)");
  }
  const size_t n = (size_t)nCodes + 1;
  std::vector<double> acc(3 * (n + 1), 0.0);  // index 0 unused (code 0 = outside every region)
  for (int y = 0; y < r.h; y++) {
    const uint8_t* row = f.data + (size_t)(r.y + y) * w + r.x;
    const uint8_t* crow = codes.data + (size_t)y * r.w;
    for (int x = 0; x < r.w; x++) {
      int c = crow[x];
      if (c == 0 || c > nCodes) continue;
      uint8_t v = row[x];
      acc[3 * c] += lut[v];
      acc[3 * c + 1] += 1;
      acc[3 * c + 2] += v == 255;
    }
  }
  if (hasRef) {
    int y0 = std::max(0, (int)std::floor(cy - ry)), y1 = std::min(r.h - 1, (int)std::ceil(cy + ry));
    int x0 = std::max(0, (int)std::floor(cx - rx)), x1 = std::min(r.w - 1, (int)std::ceil(cx + rx));
    double* a = &acc[3 * n];
    for (int y = y0; y <= y1; y++) {
      const uint8_t* row = f.data + (size_t)(r.y + y) * w + r.x;
      double dy = (y - cy) / ry;
      for (int x = x0; x <= x1; x++) {
        double dx = (x - cx) / rx;
        if (dx * dx + dy * dy > 1.0) continue;
        uint8_t v = row[x];
        a[0] += lut[v]; a[1] += 1; a[2] += v == 255;
      }
    }
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, 3 * (size_t)(nCodes + 1));
  for (int c = 1; c <= nCodes; c++)
    for (int k = 0; k < 3; k++) out[3 * (c - 1) + k] = acc[3 * c + k];
  for (int k = 0; k < 3; k++) out[3 * (size_t)nCodes + k] = acc[3 * n + k];
  return out;
}

void InitRegions(Napi::Env env, Napi::Object exports) {
  exports.Set("regionIntensity", Napi::Function::New(env, RegionIntensity, "regionIntensity"));
  exports.Set("warpMask", Napi::Function::New(env, WarpMask, "warpMask"));
  exports.Set("ringCodes", Napi::Function::New(env, RingCodes, "ringCodes"));
  exports.Set("contour", Napi::Function::New(env, Contour, "contour"));
}

}  // namespace sono
