// Regions, discretisation and neighbourhood offsets shared by all feature classes.
//
// Discretisation reproduces PyRadiomics (imageoperations.getBinEdges + numpy.digitize) bit for
// bit on 8-bit input: with binWidth the edges are numpy.arange(min - min % w, max + 2w, w)
// (edges at multiples of w); with binCount they are numpy.histogram's linspace over [min, max]
// with the top edge raised by 1. A gray level is the number of edges <= the intensity. The IBSI
// mode uses IBSI's fixed bin size / fixed bin number formulas instead (docs/radiomics.md).
#include "radiomics/radiomics.h"
#include <algorithm>
#include <cstring>

namespace sono {
namespace radiomics {

namespace {

// numpy.arange(start, stop, step) for doubles: length ceil((stop - start) / step), element i
// computed as start + i * delta with delta = (start + step) - start (numpy's fill function).
std::vector<double> numpyArange(double start, double stop, double step) {
  double len = std::ceil((stop - start) / step);
  std::vector<double> e;
  if (!(len > 0)) return e;
  size_t n = (size_t)len;
  e.resize(n);
  e[0] = start;
  if (n > 1) e[1] = start + step;
  double delta = (start + step) - start;
  for (size_t i = 2; i < n; i++) e[i] = start + (double)i * delta;
  return e;
}

// numpy.histogram(values, bins=count)[1] with the top edge + 1 (PyRadiomics' binCount edges).
std::vector<double> histogramEdges(double lo, double hi, int count) {
  if (lo == hi) { lo -= 0.5; hi += 0.5; }
  std::vector<double> e(count + 1);
  double step = (hi - lo) / count;
  for (int i = 0; i < count; i++) e[i] = (double)i * step + lo;
  e[count] = hi;
  e[count] += 1;
  return e;
}

// Python's float modulo (result has the divisor's sign).
inline double pyMod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

}  // namespace

void summarizeCodes(const uint8_t* image, int width, int paneX, int paneY, int paneW, int paneH, const uint8_t* codes, int maxCode,
                    CodeStats& out) {
  // Region codes come in long runs (a lesion, then ring bands), so the pane is read run by run:
  // zeros skipped a word at a time, each run's statistics updated once, its intensity range
  // taken by a tight loop over the run.
  out.byCode.assign(maxCode + 1, CodeStats::Entry());
  CodeStats::Entry* e = out.byCode.data();
  for (int y = 0; y < paneH; y++) {
    const uint8_t* c = codes + (size_t)y * paneW;
    const uint8_t* img = image + (size_t)(paneY + y) * width + paneX;
    int x = 0;
    while (x < paneW) {
      uint64_t word;
      while (x + 8 <= paneW && (std::memcpy(&word, c + x, 8), word == 0)) x += 8;
      while (x < paneW && c[x] == 0) x++;
      if (x == paneW) break;
      const int code = c[x], first = x;
      while (x < paneW && c[x] == code) x++;
      if (code > maxCode) continue;
      uint8_t mn = 255, mx = 0;
      for (int k = first; k < x; k++) { mn = std::min(mn, img[k]); mx = std::max(mx, img[k]); }
      CodeStats::Entry& t = e[code];
      t.count += x - first;
      t.x0 = std::min(t.x0, first);
      t.x1 = std::max(t.x1, x - 1);
      t.y0 = std::min(t.y0, y);
      t.y1 = y;  // rows are visited in order
      t.vmin = std::min(t.vmin, (int)mn);
      t.vmax = std::max(t.vmax, (int)mx);
    }
  }
}

std::string buildRegion(const uint8_t* image, int width, int paneX, int paneY, int paneW, int paneH, const uint8_t* codes,
                        int minCode, int maxCode, const CodeStats& stats, const Settings& s, Region& r) {
  // The region's box, pixel count and intensity range: the union of its codes' summaries.
  int x0 = paneW, y0 = paneH, x1 = -1, y1 = -1, np = 0, vmin = 255, vmax = 0;
  for (int code = minCode; code <= maxCode && code < (int)stats.byCode.size(); code++) {
    const CodeStats::Entry& t = stats.byCode[code];
    if (!t.count) continue;
    np += t.count;
    x0 = std::min(x0, t.x0); x1 = std::max(x1, t.x1); y0 = std::min(y0, t.y0); y1 = std::max(y1, t.y1);
    vmin = std::min(vmin, t.vmin); vmax = std::max(vmax, t.vmax);
  }
  r.Np = np;
  if (np == 0) return "mask is empty: no pixels in this region";
  r.x0 = x0; r.y0 = y0; r.w = x1 - x0 + 1; r.h = y1 - y0 + 1;
  int ndims = (r.w > 1) + (r.h > 1);
  if (ndims == 0) return "mask only contains 1 segmented pixel: features cannot be extracted for a single pixel";
  if (ndims < s.minimumROIDimensions)
    return "mask has too few dimensions (number of dimensions " + std::to_string(ndims) + ", minimum required " +
           std::to_string(s.minimumROIDimensions) + ")";
  if (s.minimumROISize > 0 && np < s.minimumROISize)
    return "ROI is too small (minimum size " + std::to_string(s.minimumROISize) + ", ROI size " + std::to_string(np) + ")";

  // Discretisation: the bin of every intensity in [vmin, vmax].
  r.binOf.fill(0);
  if (s.ibsi) {
    for (int v = vmin; v <= vmax; v++) {
      if (s.binCount > 0)
        r.binOf[v] = vmax == vmin ? 1 : std::min(s.binCount, (int)std::floor(s.binCount * (double)(v - vmin) / (vmax - vmin)) + 1);
      else
        r.binOf[v] = (int)std::floor((v - vmin) / s.binWidth) + 1;
    }
  } else {
    std::vector<double> edges;
    if (s.binCount > 0) {
      edges = histogramEdges(vmin, vmax, s.binCount);
    } else {
      double lo = vmin - pyMod(vmin, s.binWidth);
      edges = numpyArange(lo, vmax + 2 * s.binWidth, s.binWidth);
      if (edges.size() == 1) edges = {edges[0] - 0.5, edges[0] + 0.5};
    }
    for (int v = vmin; v <= vmax; v++)
      r.binOf[v] = (int)(std::upper_bound(edges.begin(), edges.end(), (double)v) - edges.begin());
  }

  // One pass over the box: histogram, gray levels on the padded canvas, runs per row.
  int maxd = 1;
  for (int d : s.distances) maxd = std::max(maxd, d);
  r.pad = maxd;
  r.pw = r.w + 2 * maxd;
  r.ph = r.h + 2 * maxd;
  // Pixel indices on the canvas are 32-bit (zone labelling); no ultrasound frame comes near this.
  if ((size_t)r.pw * r.ph > ((size_t)1 << 28))
    return "ROI bounding box too large: " + std::to_string((size_t)r.pw * r.ph) + " pixels with padding (limit 268435456)";
  r.plevel.assign((size_t)r.pw * r.ph, 0);
  r.hist.fill(0);
  r.runX0.clear();
  r.runX1.clear();
  r.runBegin.assign(r.h + 1, 0);
  uint32_t counts[256] = {0};
  for (int y = 0; y < r.h; y++) {
    const uint8_t* c = codes + (size_t)(y + y0) * paneW + x0;
    const uint8_t* img = image + (size_t)(paneY + y + y0) * width + paneX + x0;
    int32_t* out = &r.plevel[r.pat(0, y)];
    r.runBegin[y] = (int32_t)r.runX0.size();
    bool prev = false;
    for (int x = 0; x < r.w; x++) {
      const bool in = c[x] >= minCode && c[x] <= maxCode;
      if (in) { counts[img[x]]++; out[x] = r.binOf[img[x]]; }
      if (in != prev) { (in ? r.runX0 : r.runX1).push_back(x); prev = in; }
    }
    if (prev) r.runX1.push_back(r.w);
  }
  r.runBegin[r.h] = (int32_t)r.runX0.size();
  for (int v = 0; v < 256; v++) r.hist[v] = counts[v];

  r.Ng = 0;
  for (int v = vmin; v <= vmax; v++) if (r.hist[v] > 0) r.Ng = std::max(r.Ng, r.binOf[v]);
  r.index.assign(r.Ng + 1, -1);
  for (int v = vmin; v <= vmax; v++) if (r.hist[v] > 0) r.index[r.binOf[v]] = 0;
  r.levels.clear();
  for (int g = 1; g <= r.Ng; g++) if (r.index[g] == 0) { r.index[g] = (int)r.levels.size(); r.levels.push_back(g); }
  return "";
}

std::vector<Offset> generateOffsets(int h, int w, const std::vector<int>& distances, bool bidirectional) {
  // get_angle_count: per distance d, (2d+1)^2 - (2d-1)^2 offsets, limited by the box size.
  int size[2] = {h, w};
  long total = 0;
  int maxd = 0;
  for (int d : distances) {
    maxd = std::max(maxd, d);
    long a = 1, b = 1;
    for (int k = 0; k < 2; k++) {
      if (d < size[k]) { a *= 2 * d + 1; b *= 2 * d - 1; }
      else { a *= 2 * (size[k] - 1) + 1; b *= 2 * (size[k] - 1) + 1; }
    }
    total += a - b;
  }
  long want = bidirectional ? total : total / 2;
  std::vector<Offset> out;
  int span = 2 * maxd + 1;
  // build_angles: offsets enumerated from (+maxd, +maxd) downwards, the first `want` valid ones.
  for (long idx = 0; idx < (long)span * span && (long)out.size() < want; idx++) {
    int dy = maxd - (int)((idx / span) % span), dx = maxd - (int)(idx % span);
    if (dy >= h || dy <= -h || dx >= w || dx <= -w) continue;
    int dist = std::max(std::abs(dy), std::abs(dx));
    if (dist < 1) continue;
    if (std::find(distances.begin(), distances.end(), dist) != distances.end()) out.push_back({dy, dx});
  }
  return out;
}

void tridiagonalize(std::vector<double>& a, int n, std::vector<double>& d, std::vector<double>& e) {
  // Householder reduction on the full symmetric matrix (LAPACK dsytd2's steps with rank-2
  // updates of both triangles, so every loop runs along contiguous rows).
  d.assign(n, 0.0);
  e.assign(n, 0.0);
  std::vector<double> v(n), w(n);
  double* A = a.data();
  for (int k = 0; k + 2 < n; k++) {
    const int m = n - k - 1;  // size of the trailing block A[k+1.., k+1..]
    const double alpha = A[(size_t)(k + 1) * n + k];
    double xnorm2 = 0;
    for (int i = k + 2; i < n; i++) xnorm2 += A[(size_t)i * n + k] * A[(size_t)i * n + k];
    d[k] = A[(size_t)k * n + k];
    if (xnorm2 == 0) { e[k] = alpha; continue; }
    const double beta = -std::copysign(std::sqrt(alpha * alpha + xnorm2), alpha);
    const double tau = (beta - alpha) / beta, scale = 1 / (alpha - beta);
    v[0] = 1;
    for (int i = 1; i < m; i++) v[i] = A[(size_t)(k + 1 + i) * n + k] * scale;
    e[k] = beta;
    double vp = 0;
    for (int i = 0; i < m; i++) {  // w = tau * A22 v
      const double* row = A + (size_t)(k + 1 + i) * n + (k + 1);
      double acc = 0;
      for (int j = 0; j < m; j++) acc += row[j] * v[j];
      w[i] = tau * acc;
      vp += w[i] * v[i];
    }
    const double c = 0.5 * tau * vp;
    for (int i = 0; i < m; i++) w[i] -= c * v[i];
    for (int i = 0; i < m; i++) {  // A22 -= v w' + w v'
      double* row = A + (size_t)(k + 1 + i) * n + (k + 1);
      const double vi = v[i], wi = w[i];
      for (int j = 0; j < m; j++) row[j] -= vi * w[j] + wi * v[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = A[(size_t)(n - 2) * n + (n - 2)];
    e[n - 2] = A[(size_t)(n - 1) * n + (n - 2)];
  }
  if (n >= 1) d[n - 1] = A[(size_t)(n - 1) * n + (n - 1)];
  if (n > 0) e[n - 1] = 0;
}

double tridiagonalEigenvalue(const std::vector<double>& d, const std::vector<double>& e, int k) {
  // Bisection on Sturm counts: count(x) = number of eigenvalues below x. Exact to rounding, and
  // O(n) per step with no square roots; we need one or two eigenvalues, not all of them.
  const int n = (int)d.size();
  double lo = d[0], hi = d[0];
  for (int i = 0; i < n; i++) {  // Gershgorin bounds
    const double r = (i > 0 ? std::fabs(e[i - 1]) : 0) + (i + 1 < n ? std::fabs(e[i]) : 0);
    lo = std::min(lo, d[i] - r);
    hi = std::max(hi, d[i] + r);
  }
  const double tiny = 2.2250738585072014e-308;
  auto below = [&](double x) {
    int count = 0;
    double q = d[0] - x;
    if (q < 0) count++;
    for (int i = 1; i < n; i++) {
      if (std::fabs(q) < tiny) q = q < 0 ? -tiny : tiny;
      q = (d[i] - x) - e[i - 1] * e[i - 1] / q;
      if (q < 0) count++;
    }
    return count;
  };
  for (int it = 0; it < 200; it++) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi || hi - lo < 4e-16 * std::max(1.0, std::fabs(mid))) break;  // as narrow as doubles allow
    if (below(mid) > k) hi = mid; else lo = mid;
  }
  return 0.5 * (lo + hi);
}

void computeAll(const Region& r, const Settings& s, double* out) {
  using Fn = void (*)(const Region&, const Settings&, double*);
  static const Fn fns[kClassCount] = {firstOrder, shape2D, glcm, glrlm, glszm, gldm, ngtdm};
  static const int counts[kClassCount] = {kFirstOrderCount, kShape2DCount, kGLCMCount, kGLRLMCount, kGLSZMCount, kGLDMCount, kNGTDMCount};
  int off = 0;
  for (int c = 0; c < kClassCount; c++) {
    if (s.classes[c]) fns[c](r, s, out + off);
    else std::fill(out + off, out + off + counts[c], NAN);
    off += counts[c];
  }
}

}  // namespace radiomics
}  // namespace sono
