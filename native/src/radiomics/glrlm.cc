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
  // Runs are counted without detecting their ends: N(i, j) counts the pixels of level i that are
  // the j-th pixel of their run along the angle. Every run of length >= j has exactly one such
  // pixel, so the runs of length exactly j number N(i, j) - N(i, j + 1). Each line (row, column
  // or diagonal x - y / x + y) keeps the length of its open run; a pixel continues it when the
  // previous pixel along the angle has its level (pixels outside the ROI are level 0).
  // Per-thread scratch reused across calls, bound once (each thread_local access costs a TLS lookup).
  thread_local std::vector<int32_t> tlsRunLength;
  thread_local std::vector<uint32_t> tlsN;
  std::vector<int32_t>& runLength = tlsRunLength;
  std::vector<uint32_t>& Nv = tlsN;
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
  runLength.assign(lines, 0);
  int32_t* len = runLength.data();
  const size_t stride = (size_t)maxRun + 1, table = (size_t)L * stride;
  Nv.assign(na * table, 0);
  uint32_t* N = Nv.data();
  const int* index = r.index.data();
  const int32_t* lv = r.plevel.data();
  const bool standard = na == 4 && offsets[0].dy == 1 && offsets[0].dx == 1 && offsets[1].dy == 1 && offsets[1].dx == 0 &&
                        offsets[2].dy == 1 && offsets[2].dx == -1 && offsets[3].dy == 0 && offsets[3].dx == 1;
  for (int y = 0; y < r.h; y++) {
    const int32_t* c = lv + r.pat(0, y);
    if (standard) {  // the usual 2D box: 45, 90, 135 and 0 degrees, unrolled
      const int32_t* up = c - r.pw;
      int32_t* lD = len + lineOffset[0] + (r.h - 1 - y);  // line x - y + h - 1
      int32_t* lV = len + lineOffset[1];                  // line x
      int32_t* lA = len + lineOffset[2] + y;              // line x + y
      uint32_t *N0 = N, *N1 = N + table, *N2 = N + 2 * table, *N3 = N + 3 * table;
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) {
        int h = 0;
        for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
          const int v = c[x];
          const size_t row = (size_t)index[v] * stride - 1;
          const int d0 = up[x - 1] == v ? lD[x] + 1 : 1, d1 = up[x] == v ? lV[x] + 1 : 1, d2 = up[x + 1] == v ? lA[x] + 1 : 1;
          lD[x] = d0; lV[x] = d1; lA[x] = d2;
          h = c[x - 1] == v ? h + 1 : 1;
          N0[row + d0]++; N1[row + d1]++; N2[row + d2]++; N3[row + h]++;
        }
      }
    } else {  // degenerate boxes (one row or one column): fewer angles, same counting
      int base[4];
      for (int a = 0; a < na; a++) {
        const Offset& o = offsets[a];
        base[a] = lineOffset[a] + (rows[a] ? y : (o.dx == 0 ? 0 : (o.dx == o.dy ? r.h - 1 - y : y)));
      }
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++)
        for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
          const int v = c[x];
          const size_t row = (size_t)index[v] * stride - 1;
          for (int a = 0; a < na; a++) {
            int32_t& l = len[base[a] + (rows[a] ? 0 : x)];
            l = c[x - st[a]] == v ? l + 1 : 1;
            N[a * table + row + l]++;
          }
        }
    }
  }
  // P(a)(i, j - 1) = runs of level i and length j along angle a; the longest run per angle.
  std::vector<std::vector<double>> mats(na);
  int longest[4] = {0, 0, 0, 0};
  for (int a = 0; a < na; a++) {
    std::vector<double>& P = mats[a];
    P.assign((size_t)L * maxRun, 0.0);
    for (int i = 0; i < L; i++) {
      const uint32_t* n = N + a * table + (size_t)i * stride;
      double* row = &P[(size_t)i * maxRun];
      for (int j = 0; j < maxRun; j++) {
        row[j] = n[j] - n[j + 1];
        if (row[j] != 0 && j + 1 > longest[a]) longest[a] = j + 1;
      }
    }
  }
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
          if (!lv[r.pat(x, y)]) continue;
          const Offset& o = offsets[a];
          const int l = lineOffset[a] + (rows[a] ? y : (o.dx == 0 ? x : (o.dx == o.dy ? x - y + r.h - 1 : x + y)));
          touched += !used[l];
          used[l] = 1;
        }
      multiElement = touched < r.Np;
    }
    if (!multiElement) std::fill(mats[a].begin(), mats[a].end(), 0.0);
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
