// The radiomics engine: PyRadiomics' 2D feature classes, one file per class as in PyRadiomics
// (firstorder, shape2d, glcm, glrlm, glszm, gldm, ngtdm). Pure C++, no N-API: extract.cc binds it.
//
// A Region is one ROI cropped to its bounding box (as PyRadiomics' featureextractor crops image
// and mask before the feature classes see them), with the raw 8-bit intensities, the
// discretised gray levels (bins 1..Ng, 0 outside the ROI, on a padded canvas) and the list of
// levels present.
// Neighbourhood offsets ("angles") are generated exactly as PyRadiomics' C extension does, from
// the bounding-box size, so edge cases (one-row ROIs, distances larger than the ROI) agree.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace sono {
namespace radiomics {

enum FeatureClass { kFirstOrder = 0, kShape2D, kGLCM, kGLRLM, kGLSZM, kGLDM, kNGTDM, kClassCount };

struct Settings {
  double binWidth = 25;
  int binCount = 0;  // > 0: fixed bin count, overrides binWidth
  std::vector<int> distances{1};
  bool symmetricalGLCM = true;
  double gldmA = 0;
  double voxelArrayShift = 0;
  int minimumROIDimensions = 2;
  int minimumROISize = 0;  // 0: no minimum
  double spacingX = 1, spacingY = 1;
  bool ibsi = false;
  int threads = 2;  // regions of one call may run on this many threads (1 or 2)
  std::array<bool, kClassCount> classes{true, true, true, true, true, true, true};
};

constexpr double kEps = 2.220446049250313e-16;  // numpy.spacing(1)

struct Region {
  int x0 = 0, y0 = 0, w = 0, h = 0;  // bounding box in the source image
  int Np = 0;                        // ROI pixels
  std::array<double, 256> hist{};    // histogram of raw intensities in the ROI
  int Ng = 0;                        // highest gray level in the ROI (PyRadiomics' Ng)
  std::vector<int> levels;           // gray levels present, ascending
  std::vector<int> index;            // level -> position in `levels` (size Ng+1, -1 if absent)
  std::array<int, 256> binOf{};      // raw intensity -> gray level
  // Gray levels on a canvas padded by `pad` pixels of 0 on every side (pad >= the largest
  // neighbour distance), so neighbourhood kernels index without bounds checks. A pixel is in
  // the ROI exactly when its level is not 0.
  int pad = 1, pw = 0, ph = 0;
  std::vector<int32_t> plevel;
  // Runs of consecutive ROI pixels per box row: runs runBegin[y] .. runBegin[y+1]-1 of row y
  // are the columns [runX0[k], runX1[k]). Pixel loops visit only these (rings skip the lesion).
  std::vector<int32_t> runX0, runX1, runBegin;
  inline size_t pat(int x, int y) const { return (size_t)(y + pad) * pw + x + pad; }
};

struct Offset { int dy, dx; };

// Per region code of a pane: pixel count, bounding box and intensity range. One pass over the
// pane serves all its regions (lesion and nested rings) instead of one pass each.
struct CodeStats {
  struct Entry { int count = 0, x0 = 1 << 30, x1 = -1, y0 = 1 << 30, y1 = -1, vmin = 255, vmax = 0; };
  std::vector<Entry> byCode;  // index = code
};
void summarizeCodes(const uint8_t* image, int width, int paneX, int paneY, int paneW, int paneH, const uint8_t* codes, int maxCode,
                    CodeStats& out);

// Builds the region of `image` (width x height) whose codes lie in [minCode, maxCode], reading
// codes from a pane-sized buffer placed at (paneX, paneY); `stats` is that pane's summary. Returns
// an empty string, or why the ROI is refused (PyRadiomics' checkMask rules), in which case no
// features are computed.
std::string buildRegion(const uint8_t* image, int width, int paneX, int paneY, int paneW, int paneH, const uint8_t* codes,
                        int minCode, int maxCode, const CodeStats& stats, const Settings& s, Region& r);

// Offsets in PyRadiomics' order for the given distances and bounding box; `bidirectional` adds
// the mirrored offsets (GLSZM/GLDM/NGTDM neighbourhoods), otherwise one per direction pair.
std::vector<Offset> generateOffsets(int h, int w, const std::vector<int>& distances, bool bidirectional);

// The offsets as steps on the padded canvas of `r`.
inline std::vector<long> paddedSteps(const std::vector<Offset>& offsets, int pw) {
  std::vector<long> steps;
  for (const Offset& o : offsets) steps.push_back((long)o.dy * pw + o.dx);
  return steps;
}

// Sums over the gray-level marginal pg (counts per present level) that GLRLM, GLSZM and GLDM
// share: sum pg^2, sum pg/i^2, sum pg*i^2, and the variance of i under pg/n.
struct GrayLevelSums { double squares = 0, low = 0, high = 0, variance = 0; };
inline GrayLevelSums grayLevelSums(const std::vector<double>& pg, const std::vector<int>& levels, double n) {
  GrayLevelSums s;
  double mean = 0;
  for (size_t i = 0; i < pg.size(); i++) {
    const double gi = levels[i];
    s.squares += pg[i] * pg[i]; s.low += pg[i] / (gi * gi); s.high += pg[i] * gi * gi; mean += pg[i] / n * gi;
  }
  for (size_t i = 0; i < pg.size(); i++) s.variance += pg[i] / n * (levels[i] - mean) * (levels[i] - mean);
  return s;
}

// Householder reduction of a symmetric n x n matrix (row-major, both triangles; destroyed) to
// a tridiagonal matrix with diagonal d and sub-diagonal e (e[i] between rows i and i+1).
void tridiagonalize(std::vector<double>& a, int n, std::vector<double>& d, std::vector<double>& e);
// The k-th smallest eigenvalue (0-based) of that tridiagonal matrix, by Sturm bisection.
double tridiagonalEigenvalue(const std::vector<double>& d, const std::vector<double>& e, int k);

// Per-class feature counts and names (including deprecated ones), in output order.
extern const char* const kFirstOrderNames[];
extern const char* const kShape2DNames[];
extern const char* const kGLCMNames[];
extern const char* const kGLRLMNames[];
extern const char* const kGLSZMNames[];
extern const char* const kGLDMNames[];
extern const char* const kNGTDMNames[];
constexpr int kFirstOrderCount = 19, kShape2DCount = 10, kGLCMCount = 24, kGLRLMCount = 16, kGLSZMCount = 16, kGLDMCount = 14,
              kNGTDMCount = 5;
constexpr int kFeatureCount = kFirstOrderCount + kShape2DCount + kGLCMCount + kGLRLMCount + kGLSZMCount + kGLDMCount + kNGTDMCount;

// Each class writes its features into out[0..count) (NaN where PyRadiomics gives NaN).
void firstOrder(const Region& r, const Settings& s, double* out);
void shape2D(const Region& r, const Settings& s, double* out);
void glcm(const Region& r, const Settings& s, double* out);
void glrlm(const Region& r, const Settings& s, double* out);
void glszm(const Region& r, const Settings& s, double* out);
void gldm(const Region& r, const Settings& s, double* out);
void ngtdm(const Region& r, const Settings& s, double* out);

// All enabled classes of one region into out[0..kFeatureCount); disabled classes stay NaN.
void computeAll(const Region& r, const Settings& s, double* out);

}  // namespace radiomics
}  // namespace sono
