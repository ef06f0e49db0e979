// Shared helpers for the sonomics addon: argument checking that throws JS errors naming the
// problem, and the plain data types the kernels work on. Kernels themselves never touch N-API.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>
#include <vector>
#include <cmath>

namespace sono {

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

// A read-only view of an 8-bit gray image (a whole frame).
struct GrayView {
  const uint8_t* data = nullptr;
  int width = 0, height = 0;
  inline uint8_t at(int x, int y) const { return data[(size_t)y * width + x]; }
};

[[noreturn]] inline void throwType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] inline void throwRange(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

inline Napi::Object argObject(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) throwType(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

// An optional argument or option is given when it is neither undefined nor null.
inline bool isGiven(const Napi::Value& v) { return !v.IsUndefined() && !v.IsNull(); }

inline double getNumber(Napi::Env env, const Napi::Object& o, const char* key, const char* ctx) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throwType(env, std::string(ctx) + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throwRange(env, std::string(ctx) + "." + key + " must be finite");
  return d;
}

inline double getNumberOr(Napi::Env env, const Napi::Object& o, const char* key, const char* ctx, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  return getNumber(env, o, key, ctx);
}

inline int getInt(Napi::Env env, const Napi::Object& o, const char* key, const char* ctx, int lo, int hi) {
  double d = getNumber(env, o, key, ctx);
  if (d != std::floor(d) || d < lo || d > hi)
    throwRange(env, std::string(ctx) + "." + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return (int)d;
}

// Accepts a Buffer or a Uint8Array / Uint8ClampedArray.
inline std::pair<uint8_t*, size_t> bytesOf(Napi::Env env, Napi::Value v, const std::string& name) {
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array && ta.TypedArrayType() != napi_uint8_clamped_array)
      throwType(env, name + " must be a Buffer or Uint8Array of 8-bit pixels");
    auto u8 = v.As<Napi::Uint8Array>();
    return {u8.Data(), u8.ByteLength()};
  }
  throwType(env, name + " must be a Buffer or Uint8Array of 8-bit pixels");
}

inline std::pair<float*, size_t> floatsOf(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throwType(env, name + " must be a Float32Array");
  auto f = v.As<Napi::Float32Array>();
  return {f.Data(), f.ElementLength()};
}

inline GrayView grayArg(Napi::Env env, Napi::Value buf, int width, int height, const std::string& name) {
  if (width <= 0 || height <= 0) throwRange(env, name + ": width and height must be positive");
  auto [p, n] = bytesOf(env, buf, name);
  if (n != (size_t)width * height)
    throwRange(env, name + ": buffer has " + std::to_string(n) + " bytes, expected width*height = " + std::to_string((size_t)width * height));
  return GrayView{p, width, height};
}

inline Rect rectArg(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsObject()) throwType(env, name + " must be an object {x, y, width, height}");
  auto o = v.As<Napi::Object>();
  Rect r;
  r.x = getInt(env, o, "x", name.c_str(), 0, 1 << 20);
  r.y = getInt(env, o, "y", name.c_str(), 0, 1 << 20);
  r.w = getInt(env, o, "width", name.c_str(), 1, 1 << 20);
  r.h = getInt(env, o, "height", name.c_str(), 1, 1 << 20);
  return r;
}

inline void checkRectInside(Napi::Env env, const Rect& r, int width, int height, const std::string& name) {
  if (r.x + r.w > width || r.y + r.h > height)
    throwRange(env, name + " (" + std::to_string(r.x) + "," + std::to_string(r.y) + " " + std::to_string(r.w) + "x" +
                        std::to_string(r.h) + ") lies outside the " + std::to_string(width) + "x" + std::to_string(height) + " frame");
}

// splitmix64-based stateless hash: deterministic per (seed, index) pseudo-random numbers.
inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct Rng {  // xoshiro256** seeded with splitmix64
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (int i = 0; i < 4; i++) { seed = mix64(seed + i); s[i] = seed; }
  }
  static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  inline uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
  }
  inline double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  inline double normal() {  // Box-Muller
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// Separable Gaussian blur of a float image in place (sigma in pixels, per axis).
void gaussianBlur(std::vector<float>& img, int w, int h, double sigmaX, double sigmaY);

// Registration functions, one per kernel file.
void InitPhantom(Napi::Env env, Napi::Object exports);
void InitTracker(Napi::Env env, Napi::Object exports);
void InitRegions(Napi::Env env, Napi::Object exports);
void InitRadiomics(Napi::Env env, Napi::Object exports);
void InitPixels(Napi::Env env, Napi::Object exports);
void InitSegment(Napi::Env env, Napi::Object exports);

}  // namespace sono
