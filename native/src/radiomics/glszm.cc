// Gray Level Size Zone Matrix (PyRadiomics `glszm`): connected zones of equal gray level,
// 8-connected in 2D (the distance-1 neighbourhood of the ROI's bounding box), counted by gray
// level and zone size.
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kGLSZMNames[] = {"SmallAreaEmphasis", "LargeAreaEmphasis", "GrayLevelNonUniformity",
                                   "GrayLevelNonUniformityNormalized", "SizeZoneNonUniformity",
                                   "SizeZoneNonUniformityNormalized", "ZonePercentage", "GrayLevelVariance", "ZoneVariance",
                                   "ZoneEntropy", "LowGrayLevelZoneEmphasis", "HighGrayLevelZoneEmphasis",
                                   "SmallAreaLowGrayLevelEmphasis", "SmallAreaHighGrayLevelEmphasis",
                                   "LargeAreaLowGrayLevelEmphasis", "LargeAreaHighGrayLevelEmphasis"};

void glszm(const Region& r, const Settings& s, double* out) {
  const int L = (int)r.levels.size();
  // Zones = 8-connected components of equal gray level (PyRadiomics' distance-1 neighbourhood;
  // in a one-row box the diagonals do not exist, which 8-connectivity already implies). Two-pass
  // union-find labelling over the padded canvas: each pixel joins its W, NW, N and NE neighbours.
  const int32_t* lv = r.plevel.data();
  // Per-thread scratch reused across calls (large per-call allocations would be fresh pages).
  thread_local std::vector<int32_t> tlsParent;
  thread_local std::vector<uint32_t> tlsSize;
  thread_local std::vector<uint8_t> tlsEq;
  std::vector<int32_t>& parent = tlsParent;  // bound once: each thread_local access costs a TLS lookup
  std::vector<uint32_t>& size = tlsSize;
  std::vector<uint8_t>& eq = tlsEq;
  // Only ROI pixels are ever read, and each is written before use: no clearing needed.
  parent.resize(r.plevel.size());
  size.resize(r.plevel.size());
  auto find = [&](int32_t a) {
    while (parent[a] != a) { parent[a] = parent[parent[a]]; a = parent[a]; }
    return a;
  };
  auto unite = [&](int32_t a, int32_t b) {
    a = find(a); b = find(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent[b] = a;  // the earlier pixel stays root
  };
  const long pw = r.pw;
  const long back[4] = {-1, -pw - 1, -pw, -pw + 1};
  long join[16];  // neighbour to join for each equality pattern: N, else NE, else NW, else W
  for (unsigned m = 0; m < 16; m++) join[m] = (m & 4) ? back[2] : (m & 8) ? back[3] : (m & 2) ? back[1] : (m & 1) ? back[0] : 0;
  eq.assign(r.w, 0);
  thread_local std::vector<int32_t> tlsRoots;
  std::vector<int32_t>& rootList = tlsRoots;
  rootList.resize((size_t)r.Np + 1);
  int32_t* roots = rootList.data();
  size_t nroots = 0;
  for (int y = 0; y < r.h; y++) {
    const size_t row = r.pat(0, y);
    const int32_t* __restrict c = lv + row;
    uint8_t* __restrict e = eq.data();
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++)  // vectorised per run: which already-visited neighbours share the level
      e[x] = (uint8_t)((c[x + back[0]] == c[x]) | (c[x + back[1]] == c[x]) << 1 | (c[x + back[2]] == c[x]) << 2 |
                       (c[x + back[3]] == c[x]) << 3);
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
      const int32_t i = (int32_t)(row + x);
      // Decision tree for 8-connectivity (Wu et al.): neighbours that touch each other are
      // already in one zone, so a pixel joins one neighbour (N, else NE, else NW, else W) and at
      // most one union is needed (NE with NW or W when N differs). The join is a table lookup,
      // not a branch: in speckle the pattern is unpredictable. Joining takes the neighbour's
      // parent rather than the neighbour, so chains do not grow.
      const unsigned m = e[x];  // bit 0 W, 1 NW, 2 N, 3 NE
      const int32_t j = i + (int32_t)join[m];
      parent[i] = m ? parent[j] : i;
      roots[nroots] = i;  // a pixel that starts a zone; a later union may still absorb it
      nroots += m == 0;
      if ((m & 12) == 8 && (m & 3)) unite(i + (int32_t)back[3], i + (int32_t)back[(m & 2) ? 1 : 0]);
    }
  }
  // Zone sizes. Every parent lies earlier in raster order (a join points back to W/NW/N/NE, a
  // union to the earlier root), so one raster pass that sets parent = grandparent leaves every
  // pixel pointing at its root; each pixel then adds one to its root.
  for (size_t k = 0; k < nroots; k++) size[roots[k]] = 0;
  for (int y = 0; y < r.h; y++) {
    const size_t row = r.pat(0, y);
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++)
    {
      const int32_t root = parent[parent[row + x]];
      parent[row + x] = root;
      size[root]++;
    }
  }
  // Zone counts by (level, size): dense for small zones, a sorted list for the rare large ones.
  constexpr uint32_t kDense = 64;
  std::vector<uint32_t> dense((size_t)L * (kDense + 1), 0);
  std::vector<uint64_t> large;  // (level index << 32) | size
  std::vector<double> pg(L, 0.0);
  double zoneCount = 0;
  uint32_t maxSize = 0;
  for (size_t k = 0; k < nroots; k++) {
    const int32_t i = roots[k];
    if (parent[i] != i) continue;  // merged into an earlier zone
    const uint32_t zs = size[i];
    const int li = r.index[lv[i]];
    pg[li] += 1;
    zoneCount += 1;
    maxSize = std::max(maxSize, zs);
    if (zs <= kDense) dense[(size_t)li * (kDense + 1) + zs]++;
    else large.push_back(((uint64_t)li << 32) | zs);
  }
  std::sort(large.begin(), large.end());
  double nz = zoneCount == 0 ? 1 : zoneCount;
  std::vector<double> ps(maxSize + 1, 0.0);
  for (int li = 0; li < L; li++)
    for (uint32_t j = 1; j <= std::min(kDense, maxSize); j++) ps[j] += dense[(size_t)li * (kDense + 1) + j];
  for (uint64_t z : large) ps[(uint32_t)z] += 1;
  // Visits every non-empty matrix cell (level index, size, count).
  auto forEachCell = [&](auto&& fn) {
    for (int li = 0; li < L; li++)
      for (uint32_t j = 1; j <= kDense; j++)
        if (uint32_t c = dense[(size_t)li * (kDense + 1) + j]) fn(li, (double)j, (double)c);
    for (size_t a = 0; a < large.size();) {
      size_t b = a;
      while (b < large.size() && large[b] == large[a]) b++;
      fn((int)(large[a] >> 32), (double)(uint32_t)large[a], (double)(b - a));
      a = b;
    }
  };

  double sae = 0, lae = 0, szn = 0, uj = 0;
  for (uint32_t j = 1; j <= maxSize; j++) {
    if (!ps[j]) continue;
    double jj = j;
    sae += ps[j] / (jj * jj); lae += ps[j] * jj * jj; szn += ps[j] * ps[j]; uj += ps[j] / nz * jj;
  }
  double zv = 0;
  for (uint32_t j = 1; j <= maxSize; j++) if (ps[j]) zv += ps[j] / nz * (j - uj) * (j - uj);
  const GrayLevelSums gs = grayLevelSums(pg, r.levels, nz);
  const double gln = gs.squares, lgl = gs.low, hgl = gs.high, glv = gs.variance;
  double ze = 0, sal = 0, sah = 0, lal = 0, lah = 0;
  forEachCell([&](int li, double j, double v) {
    double pv = v / nz, gi = r.levels[li], i2 = gi * gi, j2 = j * j;
    ze -= pv * std::log2(pv + kEps);
    sal += v / (i2 * j2); sah += v * i2 / j2; lal += v * j2 / i2; lah += v * i2 * j2;
  });
  out[0] = sae / nz; out[1] = lae / nz; out[2] = gln / nz; out[3] = gln / (nz * nz); out[4] = szn / nz; out[5] = szn / (nz * nz);
  out[6] = nz / r.Np; out[7] = glv; out[8] = zv; out[9] = ze; out[10] = lgl / nz; out[11] = hgl / nz;
  out[12] = sal / nz; out[13] = sah / nz; out[14] = lal / nz; out[15] = lah / nz;
}

}  // namespace radiomics
}  // namespace sono
