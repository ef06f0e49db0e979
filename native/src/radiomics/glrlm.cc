// Gray Level Run Length Matrix (PyRadiomics `glrlm`). Runs of equal gray level along each of the
// distance-1 angles, broken by pixels outside the ROI; an angle along which no line holds more
// than one ROI pixel is dropped (PyRadiomics zeroes it, then deletes empty angles). Features are
// computed per angle and averaged (nanmean).
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kGLRLMNames[] = {"ShortRunEmphasis", "LongRunEmphasis", "GrayLevelNonUniformity",
                                   "GrayLevelNonUniformityNormalized", "RunLengthNonUniformity",
                                   "RunLengthNonUniformityNormalized", "RunPercentage", "GrayLevelVariance", "RunVariance",
                                   "RunEntropy", "LowGrayLevelRunEmphasis", "HighGrayLevelRunEmphasis",
                                   "ShortRunLowGrayLevelEmphasis", "ShortRunHighGrayLevelEmphasis",
                                   "LongRunLowGrayLevelEmphasis", "LongRunHighGrayLevelEmphasis"};

void glrlm(const Region& r, const Settings& s, double* out) {
  const int L = (int)r.levels.size();
  const int maxRun = std::max(r.w, r.h);
  std::vector<Offset> offsets = generateOffsets(r.h, r.w, {1}, false);
  std::vector<std::vector<double>> mats;
  std::vector<int> maxLen;
  // Per-thread scratch reused across calls, bound once (each thread_local access costs a TLS lookup).
  thread_local std::vector<int32_t> tlsStart;
  thread_local std::vector<uint8_t> tlsSeen;
  thread_local std::vector<uint32_t> tlsC;
  std::vector<int32_t>& start = tlsStart;
  std::vector<uint8_t>& seen = tlsSeen;
  std::vector<uint32_t>& C = tlsC;
  const int* index = r.index.data();
  const int32_t* lv = r.plevel.data();
  for (const Offset& o : offsets) {
    // One row-major sweep over the padded canvas. A run starts where the previous pixel along the
    // offset has another level and ends where the next one does; the line (row, column or
    // diagonal) remembers where its open run started. Lines: rows (dy 0), columns (dx 0), or
    // diagonals x - y / x + y (distance-1 offsets).
    C.assign((size_t)L * maxRun + 8, 0);
    const long st = (long)o.dy * r.pw + o.dx;
    const int lines = o.dy == 0 ? r.h : (o.dx == 0 ? r.w : r.w + r.h - 1);
    start.assign(lines, 0);
    seen.assign(lines, 0);
    bool multiElement = false;
    int longest = 0;
    // Branch-free inner loop (speckle makes run ends unpredictable): pixels outside the ROI and
    // pixels that end no run add to scratch cells past the matrix, spread over 8 slots so the
    // increments do not chain on one address.
    const size_t scratch = (size_t)L * maxRun;
    const bool rows = o.dy == 0;
    int32_t* startp = start.data();
    uint8_t* seenp = seen.data();
    uint32_t* Cp = C.data();
    for (int y = 0; y < r.h; y++) {
      const int32_t* c = lv + r.pat(0, y);
      const int base = rows ? y : (o.dx == 0 ? 0 : (o.dx == o.dy ? r.h - 1 - y : y));
      const int slope = rows ? 0 : 1;
      uint8_t any = 0;
      for (int x = 0; x < r.w; x++) {
        const int v = c[x];
        const int l = base + slope * x;
        const int pos = rows ? x : y;
        const bool in = v != 0;
        any |= seenp[l] & in;
        seenp[l] |= in;
        if (in & (c[x - st] != v)) startp[l] = pos;
        const int len = pos - startp[l] + 1;
        const bool end = in & (c[x + st] != v);
        const size_t cell = end ? (size_t)index[v] * maxRun + (len - 1) : scratch + (x & 7);
        Cp[cell]++;
        longest = std::max(longest, end ? len : 0);
      }
      multiElement |= any != 0;
    }
    std::vector<double> P(C.begin(), C.begin() + (size_t)L * maxRun);
    if (!multiElement) std::fill(P.begin(), P.end(), 0.0);
    mats.push_back(std::move(P));
    maxLen.push_back(multiElement ? longest : 0);
  }
  std::vector<int> keep;
  for (size_t a = 0; a < mats.size(); a++) {
    bool empty = true;
    for (double v : mats[a]) if (v) { empty = false; break; }
    if (!empty || mats.size() == 1) keep.push_back((int)a);
  }
  std::vector<double> g(L);
  for (int k = 0; k < L; k++) g[k] = r.levels[k];
  std::vector<std::array<double, kGLRLMCount>> per;
  std::vector<double> pg(L), pr(maxRun);
  for (int a : keep) {
    const std::vector<double>& P = mats[a];
    const int J = std::max(1, maxLen[a]);
    std::fill(pg.begin(), pg.end(), 0.0);
    std::fill(pr.begin(), pr.end(), 0.0);
    double nr = 0;
    for (int i = 0; i < L; i++)
      for (int j = 0; j < J; j++) {
        double v = P[(size_t)i * maxRun + j];
        pg[i] += v; pr[j] += v; nr += v;
      }
    if (nr == 0) nr = NAN;
    std::array<double, kGLRLMCount> f{};
    double sre = 0, lre = 0, rln = 0, np = 0, glnS = 0;
    for (int j = 0; j < J; j++) {
      double jj = j + 1.0;
      sre += pr[j] / (jj * jj); lre += pr[j] * jj * jj; rln += pr[j] * pr[j]; np += pr[j] * jj;
    }
    double lgl = 0, hgl = 0;
    for (int i = 0; i < L; i++) { glnS += pg[i] * pg[i]; lgl += pg[i] / (g[i] * g[i]); hgl += pg[i] * g[i] * g[i]; }
    double ui = 0, uj = 0, glv = 0, rv = 0;
    for (int i = 0; i < L; i++) ui += pg[i] / nr * g[i];
    for (int i = 0; i < L; i++) glv += pg[i] / nr * (g[i] - ui) * (g[i] - ui);
    for (int j = 0; j < J; j++) uj += pr[j] / nr * (j + 1.0);
    for (int j = 0; j < J; j++) rv += pr[j] / nr * (j + 1.0 - uj) * (j + 1.0 - uj);
    double re = 0, srl = 0, srh = 0, lrl = 0, lrh = 0;
    for (int i = 0; i < L; i++) {
      double i2 = g[i] * g[i];
      for (int j = 0; j < J; j++) {
        double v = P[(size_t)i * maxRun + j];
        double pv = v / nr;
        re -= pv * std::log2(pv + kEps);
        if (!v) continue;
        double j2 = (j + 1.0) * (j + 1.0);
        srl += v / (i2 * j2); srh += v * i2 / j2; lrl += v * j2 / i2; lrh += v * i2 * j2;
      }
    }
    f[0] = sre / nr; f[1] = lre / nr; f[2] = glnS / nr; f[3] = glnS / (nr * nr); f[4] = rln / nr; f[5] = rln / (nr * nr);
    f[6] = nr / np; f[7] = glv; f[8] = rv; f[9] = re; f[10] = lgl / nr; f[11] = hgl / nr;
    f[12] = srl / nr; f[13] = srh / nr; f[14] = lrl / nr; f[15] = lrh / nr;
    per.push_back(f);
  }
  for (int k = 0; k < kGLRLMCount; k++) {
    double acc = 0;
    int n = 0;
    for (auto& f : per) if (!std::isnan(f[k])) { acc += f[k]; n++; }
    out[k] = n ? acc / n : NAN;
  }
}

}  // namespace radiomics
}  // namespace sono
