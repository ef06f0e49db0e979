// Gray Level Dependence Matrix (PyRadiomics `gldm`): for each ROI pixel, the number of ROI
// neighbours (at the requested distances, both directions) whose gray level differs by at most
// gldm_a; the matrix counts pixels by gray level and dependence size (dependents + 1).
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kGLDMNames[] = {"SmallDependenceEmphasis", "LargeDependenceEmphasis", "GrayLevelNonUniformity",
                                  "DependenceNonUniformity", "DependenceNonUniformityNormalized", "GrayLevelVariance",
                                  "DependenceVariance", "DependenceEntropy", "LowGrayLevelEmphasis", "HighGrayLevelEmphasis",
                                  "SmallDependenceLowGrayLevelEmphasis", "SmallDependenceHighGrayLevelEmphasis",
                                  "LargeDependenceLowGrayLevelEmphasis", "LargeDependenceHighGrayLevelEmphasis"};

void gldm(const Region& r, const Settings& s, double* out) {
  const int L = (int)r.levels.size();
  const std::vector<long> nb = paddedSteps(generateOffsets(r.h, r.w, s.distances, true), r.pw);
  const int D = (int)nb.size() + 1;  // dependence sizes 1..D
  std::vector<double> P((size_t)L * D, 0.0);
  const int32_t* lv = r.plevel.data();
  const int a = (int)std::floor(std::min(s.gldmA, 1e9));  // |i - j| <= gldm_a on integer levels
  std::vector<int32_t> dep(r.w);
  const bool eight = nb.size() == 8 && s.distances.size() == 1 && s.distances[0] == 1;
  for (int y = 0; y < r.h; y++) {
    const int32_t* __restrict c = lv + r.pat(0, y);
    int32_t* __restrict d = dep.data();
    if (eight) {  // the 8 neighbours at distance 1: one stencil pass the compiler vectorises
      const int32_t* __restrict up = c - r.pw;
      const int32_t* __restrict dn = c + r.pw;
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
        const int v = c[x];
        auto one = [v, a](int n) { int df = v - n; return (int)((n != 0) & ((df < 0 ? -df : df) <= a)); };
        d[x] = one(up[x - 1]) + one(up[x]) + one(up[x + 1]) + one(c[x - 1]) + one(c[x + 1]) + one(dn[x - 1]) + one(dn[x]) + one(dn[x + 1]);
      }
    } else {
      std::fill(dep.begin(), dep.end(), 0);
      for (long st : nb) {
        const int32_t* __restrict nbr = c + st;
        for (int x = 0; x < r.w; x++) {
          int diff = c[x] - nbr[x];
          d[x] += (nbr[x] != 0) & ((diff < 0 ? -diff : diff) <= a);
        }
      }
    }
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++)
      P[(size_t)r.index[c[x]] * D + d[x]] += 1;
  }
  const double nz = r.Np;
  std::vector<double> pg(L, 0.0), pd(D, 0.0);
  for (int i = 0; i < L; i++)
    for (int j = 0; j < D; j++) { double v = P[(size_t)i * D + j]; pg[i] += v; pd[j] += v; }
  double sde = 0, lde = 0, dn = 0, uj = 0;
  for (int j = 0; j < D; j++) {
    double jj = j + 1.0;
    sde += pd[j] / (jj * jj); lde += pd[j] * jj * jj; dn += pd[j] * pd[j]; uj += pd[j] / nz * jj;
  }
  double dv = 0;
  for (int j = 0; j < D; j++) dv += pd[j] / nz * (j + 1.0 - uj) * (j + 1.0 - uj);
  const GrayLevelSums gs = grayLevelSums(pg, r.levels, nz);
  const double gln = gs.squares, lgl = gs.low, hgl = gs.high, glv = gs.variance;
  double de = 0, sdl = 0, sdh = 0, ldl = 0, ldh = 0;
  for (int i = 0; i < L; i++) {
    double gi = r.levels[i], i2 = gi * gi;
    for (int j = 0; j < D; j++) {
      double v = P[(size_t)i * D + j];
      if (!v) continue;
      double pv = v / nz, j2 = (j + 1.0) * (j + 1.0);
      de -= pv * std::log2(pv + kEps);
      sdl += v / (i2 * j2); sdh += v * i2 / j2; ldl += v * j2 / i2; ldh += v * i2 * j2;
    }
  }
  out[0] = sde / nz; out[1] = lde / nz; out[2] = gln / nz; out[3] = dn / nz; out[4] = dn / (nz * nz); out[5] = glv; out[6] = dv;
  out[7] = de; out[8] = lgl / nz; out[9] = hgl / nz; out[10] = sdl / nz; out[11] = sdh / nz; out[12] = ldl / nz; out[13] = ldh / nz;
}

}  // namespace radiomics
}  // namespace sono
