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
  const int na = (int)offsets.size();  // at most 4 (distance 1, one per direction pair)
  // Per-thread scratch reused across calls, bound once (each thread_local access costs a TLS lookup).
  thread_local std::vector<int32_t> tlsStart;
  thread_local std::vector<uint32_t> tlsC;
  std::vector<int32_t>& start = tlsStart;
  std::vector<uint32_t>& C = tlsC;
  const size_t cells = (size_t)L * maxRun + 8;  // + 8 scratch cells per angle
  C.assign(cells * na, 0);
  // Lines: rows (dy 0), columns (dx 0), or diagonals x - y / x + y; each keeps where its open run started.
  int lineOffset[4], lines = 0;
  long st[4];
  bool rows[4];
  for (int a = 0; a < na; a++) {
    const Offset& o = offsets[a];
    st[a] = (long)o.dy * r.pw + o.dx;
    rows[a] = o.dy == 0;
    lineOffset[a] = lines;
    lines += rows[a] ? r.h : (o.dx == 0 ? r.w : r.w + r.h - 1);
  }
  start.assign(lines, 0);
  int32_t* startp = start.data();
  uint32_t* Cp = C.data();
  const int* index = r.index.data();
  const int32_t* lv = r.plevel.data();
  // One row-major sweep over the padded canvas for all angles.
  const size_t dummy = cells - 8;
  const bool standard = na == 4 && offsets[0].dy == 1 && offsets[0].dx == 1 && offsets[1].dy == 1 && offsets[1].dx == 0 &&
                        offsets[2].dy == 1 && offsets[2].dx == -1 && offsets[3].dy == 0 && offsets[3].dx == 1;
  if (standard) {  // the usual 2D box: 45, 90, 135 and 0 degrees, unrolled
    // No run ends to detect: N(i, j) counts the pixels of level i that are the j-th pixel of
    // their run along the angle. Every run of length >= j has exactly one such pixel, so the runs
    // of length exactly j number N(i, j) - N(i, j + 1). Each line keeps the run length so far.
    const size_t stride = (size_t)maxRun + 1;
    thread_local std::vector<uint32_t> tlsN;
    std::vector<uint32_t>& Nv = tlsN;
    Nv.assign(4 * (size_t)L * stride, 0);
    uint32_t *N0 = Nv.data(), *N1 = N0 + L * stride, *N2 = N1 + L * stride, *N3 = N2 + L * stride;
    int32_t* sV = startp + lineOffset[1];
    for (int y = 0; y < r.h; y++) {
      const int32_t* c = lv + r.pat(0, y);
      const int32_t* up = c - r.pw;
      int32_t* sD = startp + lineOffset[0] + (r.h - 1 - y);  // line x - y + h - 1
      int32_t* sA = startp + lineOffset[2] + y;              // line x + y
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) {
        int h = 0;
        for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
          const int v = c[x];
          const size_t row = (size_t)index[v] * stride - 1;
          const int d0 = up[x - 1] == v ? sD[x] + 1 : 1, d1 = up[x] == v ? sV[x] + 1 : 1, d2 = up[x + 1] == v ? sA[x] + 1 : 1;
          sD[x] = d0; sV[x] = d1; sA[x] = d2;
          h = c[x - 1] == v ? h + 1 : 1;
          N0[row + d0]++; N1[row + d1]++; N2[row + d2]++; N3[row + h]++;
        }
      }
    }
    const uint32_t* Ns[4] = {N0, N1, N2, N3};
    for (int a = 0; a < 4; a++)
      for (int i = 0; i < L; i++) {
        const uint32_t* n = Ns[a] + (size_t)i * stride;
        uint32_t* out = Cp + a * cells + (size_t)i * maxRun;
        for (int j = 0; j < maxRun; j++) out[j] = n[j] - n[j + 1];
      }
  } else {  // degenerate boxes (one row or one column): fewer angles. A run starts where the
    // previous pixel along the offset has another level and ends where the next one does; a
    // pixel that ends no run adds to a scratch cell (8 slots, so increments do not chain).
    for (int y = 0; y < r.h; y++) {
      const int32_t* c = lv + r.pat(0, y);
      int base[4];
      for (int a = 0; a < na; a++) {
        const Offset& o = offsets[a];
        base[a] = lineOffset[a] + (rows[a] ? y : (o.dx == 0 ? 0 : (o.dx == o.dy ? r.h - 1 - y : y)));
      }
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
        const int v = c[x];
        if (!v) continue;
        const size_t row = (size_t)index[v] * maxRun;
        for (int a = 0; a < na; a++) {
          const int l = base[a] + (rows[a] ? 0 : x);
          const int pos = rows[a] ? x : y;
          if (c[x - st[a]] != v) startp[l] = pos;
          const int len = pos - startp[l] + 1;
          Cp[a * cells + (c[x + st[a]] != v ? row + (len - 1) : dummy + (x & 7))]++;
        }
      }
    }
  }
  int longest[4] = {0, 0, 0, 0};
  for (int a = 0; a < na; a++)
    for (int i = 0; i < L; i++)
      for (int j = maxRun - 1; j >= longest[a]; j--)
        if (Cp[a * cells + (size_t)i * maxRun + j]) { longest[a] = j + 1; break; }
  std::vector<std::vector<double>> mats;
  std::vector<int> maxLen;
  for (int a = 0; a < na; a++) {
    // PyRadiomics drops an angle along which no line holds more than one ROI pixel. A run longer
    // than 1 settles it; otherwise count the lines the ROI touches.
    bool multiElement = longest[a] > 1;
    if (!multiElement) {
      std::vector<uint8_t> used(lines, 0);
      int touched = 0;
      for (int y = 0; y < r.h; y++)
        for (int x = 0; x < r.w; x++) {
          if (!r.mask[r.at(x, y)]) continue;
          const Offset& o = offsets[a];
          const int l = lineOffset[a] + (rows[a] ? y : (o.dx == 0 ? x : (o.dx == o.dy ? x - y + r.h - 1 : x + y)));
          touched += !used[l];
          used[l] = 1;
        }
      multiElement = touched < r.Np;
    }
    std::vector<double> P(Cp + a * cells, Cp + a * cells + (size_t)L * maxRun);
    if (!multiElement) std::fill(P.begin(), P.end(), 0.0);
    mats.push_back(std::move(P));
    maxLen.push_back(multiElement ? longest[a] : 0);
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
    double sre = 0, lre = 0, rln = 0, np = 0;
    for (int j = 0; j < J; j++) {
      double jj = j + 1.0;
      sre += pr[j] / (jj * jj); lre += pr[j] * jj * jj; rln += pr[j] * pr[j]; np += pr[j] * jj;
    }
    const GrayLevelSums gs = grayLevelSums(pg, r.levels, nr);
    const double glnS = gs.squares, lgl = gs.low, hgl = gs.high, glv = gs.variance;
    double uj = 0, rv = 0;
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
