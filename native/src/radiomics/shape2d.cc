// Shape 2D (PyRadiomics `shape2D`): size and shape of the ROI from its perimeter mesh, built by
// marching squares over the mask padded with one ring of background (vertices halfway between an
// ROI pixel and a background pixel, the same line table as PyRadiomics' cshape.c), and from a
// principal component analysis of the pixel centres in mm.
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kShape2DNames[] = {"MeshSurface", "PixelSurface", "Perimeter", "PerimeterSurfaceRatio", "Sphericity",
                                     "SphericalDisproportion", "MaximumDiameter", "MajorAxisLength", "MinorAxisLength",
                                     "Elongation"};

namespace {

const int kGrid[4][2] = {{0, 0}, {0, 1}, {1, 1}, {1, 0}};
const int kLines[16][5] = {{-1, -1, -1, -1, -1}, {3, 0, -1, -1, -1}, {0, 1, -1, -1, -1}, {3, 1, -1, -1, -1},
                           {1, 2, -1, -1, -1},   {1, 2, 3, 0, -1},   {0, 2, -1, -1, -1}, {3, 2, -1, -1, -1},
                           {2, 3, -1, -1, -1},   {2, 0, -1, -1, -1}, {0, 1, 2, 3, -1},   {2, 1, -1, -1, -1},
                           {1, 3, -1, -1, -1},   {1, 0, -1, -1, -1}, {0, 3, -1, -1, -1}, {-1, -1, -1, -1, -1}};
const double kVert[4][2] = {{0, 0.5}, {0.5, 1}, {1, 0.5}, {0.5, 0}};

struct Pt { double y, x; };

inline double cross(const Pt& o, const Pt& a, const Pt& b) { return (a.y - o.y) * (b.x - o.x) - (a.x - o.x) * (b.y - o.y); }

// Largest distance between mesh vertices. The farthest pair lies on the convex hull, so only hull
// vertices are compared; distances use PyRadiomics' expression, so the maximum is the same double.
double meshDiameter(std::vector<Pt>& pts) {
  if (pts.size() < 2) return 0;
  std::sort(pts.begin(), pts.end(), [](const Pt& a, const Pt& b) { return a.y < b.y || (a.y == b.y && a.x < b.x); });
  std::vector<Pt> hull(2 * pts.size());
  size_t k = 0;
  for (size_t i = 0; i < pts.size(); i++) {
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
    hull[k++] = pts[i];
  }
  for (size_t i = pts.size() - 1, lower = k + 1; i-- > 0;) {
    while (k >= lower && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
    hull[k++] = pts[i];
  }
  hull.resize(k > 1 ? k - 1 : k);
  double best = 0;
  for (size_t i = 0; i < hull.size(); i++)
    for (size_t j = i + 1; j < hull.size(); j++) {
      double a0 = hull[i].y - hull[j].y, a1 = hull[i].x - hull[j].x;
      a0 *= a0; a1 *= a1;
      double d = a0 + a1;
      if (d > best) best = d;
    }
  return std::sqrt(best);
}

}  // namespace

void shape2D(const Region& r, const Settings& s, double* out) {
  // Marching squares over the mask padded by one background pixel (PyRadiomics pads the same
  // way); square (iy, ix) has its top-left corner at padded pixel (iy, ix) = box pixel (iy-1, ix-1).
  const int H = r.h + 2;
  const int32_t* lv = r.plevel.data();
  const double sp[2] = {s.spacingY, s.spacingX};
  double perimeter = 0, surface = 0;
  std::vector<Pt> vertices;
  auto square = [&](int iy, int ix, const int32_t* top, const int32_t* bot) {
    // corner bits in kGrid order: (0,0) (0,1) (1,1) (1,0)
    int sq = (top[ix] != 0) | (top[ix + 1] != 0) << 1 | (bot[ix + 1] != 0) << 2 | (bot[ix] != 0) << 3;
    if (sq == 0 || sq == 0xF) return;
    for (int t = 0; kLines[sq][t * 2] >= 0; t++) {
      double a[2], b[2];
      for (int d = 0; d < 2; d++) {
        a[d] = ((d == 0 ? iy : ix) + kVert[kLines[sq][t * 2]][d]) * sp[d];
        b[d] = ((d == 0 ? iy : ix) + kVert[kLines[sq][t * 2 + 1]][d]) * sp[d];
      }
      surface += a[0] * b[1] - b[0] * a[1];
      double d0 = a[0] - b[0], d1 = a[1] - b[1];
      perimeter += std::sqrt(d0 * d0 + d1 * d1);
    }
    if (sq > 7) sq ^= 0xF;
    if (sq & 1) vertices.push_back({(iy + kVert[3][0]) * sp[0], (ix + kVert[3][1]) * sp[1]});
    if (sq & 4) vertices.push_back({(iy + kVert[2][0]) * sp[0], (ix + kVert[2][1]) * sp[1]});
  };
  // Only squares on the outline can hold lines. For the row pair above and below square row iy,
  // the columns where either row enters or leaves a run cut the row into segments; inside a
  // segment both rows are constant, so its squares are empty or full unless the two rows differ.
  auto inRow = [&](int y, int x) { return lv[r.pat(x, y)] != 0; };  // y in [-1, h], x in [0, w]: inside the padding
  std::vector<int> cuts;
  for (int iy = 0; iy < H - 1; iy++) {
    const int32_t* top = lv + r.pat(-1, iy - 1);  // padded pixel (iy, 0) and the row below it
    const int32_t* bot = top + r.pw;
    cuts.clear();
    for (int y : {iy - 1, iy})
      if (y >= 0 && y < r.h)
        for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) { cuts.push_back(r.runX0[ri]); cuts.push_back(r.runX1[ri]); }
    if (cuts.empty()) continue;
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (size_t k = 0; k < cuts.size(); k++) {
      const int a = cuts[k];
      square(iy, a, top, bot);  // square a spans box columns a-1 and a: across the cut
      if (k + 1 < cuts.size() && inRow(iy - 1, a) != inRow(iy, a))
        for (int ix = a + 1; ix < cuts[k + 1]; ix++) square(iy, ix, top, bot);
    }
  }
  surface /= 2;
  double diameter = meshDiameter(vertices);

  // Principal components of the pixel centres (mm), population covariance. Integer sums over the
  // pixel grid are exact (products in 128 bits); spacing scales the moments afterwards.
  int64_t n1 = 0, sy = 0, sx = 0, syy = 0, sxx = 0, sxy = 0;
  auto sumSq = [](int64_t v) { return v * (v + 1) * (2 * v + 1) / 6; };  // 0^2 + ... + v^2
  for (int y = 0; y < r.h; y++) {
    int64_t cnt = 0, rx = 0, rxx = 0;
    for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) {
      const int64_t x0 = r.runX0[ri], x1 = r.runX1[ri], len = x1 - x0;
      cnt += len;
      rx += (x0 + x1 - 1) * len / 2;
      rxx += sumSq(x1 - 1) - (x0 > 0 ? sumSq(x0 - 1) : 0);
    }
    n1 += cnt; sy += cnt * y; syy += cnt * y * y; sx += rx; sxx += rxx; sxy += rx * y;
  }
  const double n = (double)n1;
  const double cyy = (double)((__int128)syy * n1 - (__int128)sy * sy) / (n * n) * s.spacingY * s.spacingY;
  const double cxx = (double)((__int128)sxx * n1 - (__int128)sx * sx) / (n * n) * s.spacingX * s.spacingX;
  const double cxy = (double)((__int128)sxy * n1 - (__int128)sx * sy) / (n * n) * s.spacingX * s.spacingY;
  double half = (cyy + cxx) / 2, root = std::sqrt(((cyy - cxx) / 2) * ((cyy - cxx) / 2) + cxy * cxy);
  double lmajor = half + root, lminor = half - root;
  if (lminor < 0 && lminor > -1e-10) lminor = 0;  // machine precision, as PyRadiomics
  if (lmajor < 0 && lmajor > -1e-10) lmajor = 0;

  out[0] = surface;
  out[1] = n * s.spacingX * s.spacingY;
  out[2] = perimeter;
  out[3] = perimeter / surface;
  out[4] = 2 * std::sqrt(M_PI * surface) / perimeter;
  out[5] = 1.0 / out[4];
  out[6] = diameter;
  out[7] = lmajor < 0 ? NAN : 4 * std::sqrt(lmajor);
  out[8] = lminor < 0 ? NAN : 4 * std::sqrt(lminor);
  out[9] = (lminor < 0 || lmajor < 0) ? NAN : std::sqrt(lminor / lmajor);
}

}  // namespace radiomics
}  // namespace sono
