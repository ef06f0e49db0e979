// Neighbouring Gray Tone Difference Matrix (PyRadiomics `ngtdm`): per gray level, the number of
// pixels and the sum of |level - mean level of its ROI neighbours| (requested distances, both
// directions). PyRadiomics counts a pixel without ROI neighbours with difference 0; IBSI leaves
// it out (IBSI mode).
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kNGTDMNames[] = {"Coarseness", "Contrast", "Busyness", "Complexity", "Strength"};

void ngtdm(const Region& r, const Settings& s, double* out) {
  const int L = (int)r.levels.size();
  const std::vector<long> nb = paddedSteps(generateOffsets(r.h, r.w, s.distances, true), r.pw);
  std::vector<double> n(L, 0.0), sdiff(L, 0.0);
  const int32_t* lv = r.plevel.data();
  std::vector<int32_t> cnt(r.w);
  const bool eight = nb.size() == 8 && s.distances.size() == 1 && s.distances[0] == 1;
  std::vector<int32_t> sum(r.w);  // levels <= 65536, at most 16640 neighbours: fits int32
  for (int y = 0; y < r.h; y++) {
    const int32_t* __restrict c = lv + r.pat(0, y);
    int32_t* __restrict k = cnt.data();
    int32_t* __restrict sm = sum.data();
    if (eight) {  // the 8 neighbours at distance 1: one stencil pass the compiler vectorises
      const int32_t* __restrict up = c - r.pw;
      const int32_t* __restrict dn = c + r.pw;
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
        const int n0 = up[x - 1], n1 = up[x], n2 = up[x + 1], n3 = c[x - 1], n4 = c[x + 1], n5 = dn[x - 1], n6 = dn[x], n7 = dn[x + 1];
        k[x] = (n0 != 0) + (n1 != 0) + (n2 != 0) + (n3 != 0) + (n4 != 0) + (n5 != 0) + (n6 != 0) + (n7 != 0);
        sm[x] = n0 + n1 + n2 + n3 + n4 + n5 + n6 + n7;
      }
    } else {
      std::fill(cnt.begin(), cnt.end(), 0);
      std::fill(sum.begin(), sum.end(), 0);
      for (long st : nb) {
        const int32_t* __restrict nbr = c + st;
        for (int x = 0; x < r.w; x++) { k[x] += nbr[x] != 0; sm[x] += nbr[x]; }
      }
    }
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
      const int gl = c[x];
      if (k[x] == 0 && s.ibsi) continue;
      double diff = k[x] == 0 ? 0 : std::fabs((double)gl - (double)sm[x] / k[x]);
      int li = r.index[gl];
      n[li] += 1;
      sdiff[li] += diff;
    }
  }
  // Keep the gray levels with pixels.
  std::vector<double> p, si, iv;
  double nvp = 0;
  for (int k = 0; k < L; k++) nvp += n[k];
  for (int k = 0; k < L; k++)
    if (n[k] > 0) { p.push_back(n[k] / nvp); si.push_back(sdiff[k]); iv.push_back(r.levels[k]); }
  const size_t G = p.size();
  if (G == 0) { for (int k = 0; k < kNGTDMCount; k++) out[k] = NAN; return; }
  double ps = 0, sumS = 0;
  for (size_t a = 0; a < G; a++) { ps += p[a] * si[a]; sumS += si[a]; }
  double contrastSum = 0, absdiff = 0, complexity = 0, strength = 0;
  for (size_t a = 0; a < G; a++)
    for (size_t b = 0; b < G; b++) {
      double d = iv[a] - iv[b];
      contrastSum += p[a] * p[b] * d * d;
      absdiff += std::fabs(iv[a] * p[a] - iv[b] * p[b]);
      complexity += std::fabs(d) * ((p[a] * si[a] + p[b] * si[b]) / (p[a] + p[b]));
      strength += (p[a] + p[b]) * d * d;
    }
  out[0] = ps == 0 ? 1e6 : 1 / ps;
  out[1] = G <= 1 ? 0 : (contrastSum / ((double)G * (G - 1))) * (sumS / nvp);
  out[2] = absdiff == 0 ? 0 : ps / absdiff;
  out[3] = complexity / nvp;
  out[4] = sumS == 0 ? 0 : strength / sumS;
}

}  // namespace radiomics
}  // namespace sono
