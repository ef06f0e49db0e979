// Entry point of the sonomics native addon. Each kernel family registers its own exports.
#include "common.h"

namespace sono {

void gaussianBlur(std::vector<float>& img, int w, int h, double sigmaX, double sigmaY) {
  auto kernel = [](double sigma) {
    int r = std::max(1, (int)std::ceil(3 * sigma));
    std::vector<float> k(2 * r + 1);
    double sum = 0;
    for (int i = -r; i <= r; i++) { k[i + r] = (float)std::exp(-0.5 * i * i / (sigma * sigma)); sum += k[i + r]; }
    for (auto& v : k) v = (float)(v / sum);
    return k;
  };
  std::vector<float> tmp((size_t)w * h);
  if (sigmaX > 0) {
    auto k = kernel(sigmaX);
    int r = (int)k.size() / 2;
    for (int y = 0; y < h; y++) {
      const float* row = &img[(size_t)y * w];
      float* out = &tmp[(size_t)y * w];
      for (int x = 0; x < w; x++) {
        float s = 0;
        for (int i = -r; i <= r; i++) {
          int xx = x + i; xx = xx < 0 ? -xx : (xx >= w ? 2 * w - 2 - xx : xx);
          if (xx < 0) xx = 0;
          s += k[i + r] * row[xx];
        }
        out[x] = s;
      }
    }
    img.swap(tmp);
  }
  if (sigmaY > 0) {
    auto k = kernel(sigmaY);
    int r = (int)k.size() / 2;
    for (int y = 0; y < h; y++) {
      float* out = &tmp[(size_t)y * w];
      for (int x = 0; x < w; x++) out[x] = 0;
      for (int i = -r; i <= r; i++) {
        int yy = y + i; yy = yy < 0 ? -yy : (yy >= h ? 2 * h - 2 - yy : yy);
        if (yy < 0) yy = 0;
        const float* row = &img[(size_t)yy * w];
        float kk = k[i + r];
        for (int x = 0; x < w; x++) out[x] += kk * row[x];
      }
    }
    img.swap(tmp);
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitPhantom(env, exports);
  InitTracker(env, exports);
  InitRegions(env, exports);
  InitRadiomics(env, exports);
  InitPixels(env, exports);
  InitSegment(env, exports);
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  return exports;
}

}  // namespace sono

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return sono::Init(env, exports); }
NODE_API_MODULE(sonomics, InitAll)
