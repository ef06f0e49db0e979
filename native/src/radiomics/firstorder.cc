// First order (PyRadiomics `firstorder`): statistics of the raw intensities in the ROI. With 8-bit
// input every feature is a function of the 256-bin histogram. Conventions follow PyRadiomics:
// population moments, Kurtosis not excess (IBSI mode: excess), numpy's linear percentiles,
// Entropy/Uniformity on the discretised gray levels, voxelArrayShift added for Energy,
// TotalEnergy and RootMeanSquared, TotalEnergy scaled by the pixel area.
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kFirstOrderNames[] = {"Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum",
                                        "Mean", "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation",
                                        "RobustMeanAbsoluteDeviation", "RootMeanSquared", "StandardDeviation", "Skewness",
                                        "Kurtosis", "Variance", "Uniformity"};

namespace {

// k-th order statistic (0-based) from the histogram.
inline double orderStat(const std::array<double, 256>& h, double k) {
  double c = 0;
  for (int v = 0; v < 256; v++) {
    c += h[v];
    if (c > k) return v;
  }
  return 255;
}

// numpy.percentile(values, q) with linear interpolation.
inline double percentile(const std::array<double, 256>& h, double n, double q) {
  double pos = q / 100.0 * (n - 1);
  double lo = std::floor(pos), frac = pos - lo;
  double a = orderStat(h, lo);
  if (frac == 0) return a;
  double b = orderStat(h, lo + 1);
  return a + frac * (b - a);
}

}  // namespace

void firstOrder(const Region& r, const Settings& s, double* out) {
  const auto& h = r.hist;
  double n = r.Np;
  int vmin = 0, vmax = 255;
  while (h[vmin] == 0) vmin++;
  while (h[vmax] == 0) vmax--;
  double sum = 0, energy = 0;
  for (int v = vmin; v <= vmax; v++) {
    sum += h[v] * v;
    energy += h[v] * (v + s.voxelArrayShift) * (v + s.voxelArrayShift);
  }
  double mean = sum / n;
  double m2 = 0, m3 = 0, m4 = 0, mad = 0;
  for (int v = vmin; v <= vmax; v++) {
    if (!h[v]) continue;
    double d = v - mean, d2 = d * d;
    m2 += h[v] * d2; m3 += h[v] * d2 * d; m4 += h[v] * d2 * d2; mad += h[v] * std::fabs(d);
  }
  m2 /= n; m3 /= n; m4 /= n; mad /= n;
  double p10 = percentile(h, n, 10), p90 = percentile(h, n, 90);
  double p25 = percentile(h, n, 25), p75 = percentile(h, n, 75), med = percentile(h, n, 50);
  // Robust MAD: the values within [p10, p90].
  double rn = 0, rs = 0;
  for (int v = vmin; v <= vmax; v++) if (v >= p10 && v <= p90) { rn += h[v]; rs += h[v] * v; }
  double rmean = rn > 0 ? rs / rn : NAN, rmad = 0;
  for (int v = vmin; v <= vmax; v++) if (v >= p10 && v <= p90) rmad += h[v] * std::fabs(v - rmean);
  rmad = rn > 0 ? rmad / rn : NAN;
  // Entropy and Uniformity of the discretised gray levels.
  std::vector<double> bins(r.Ng + 1, 0.0);
  for (int v = vmin; v <= vmax; v++) if (h[v]) bins[r.binOf[v]] += h[v];
  double entropy = 0, uniformity = 0;
  for (double c : bins) {
    if (!c) continue;
    double p = c / n;
    entropy -= p * std::log2(p + kEps);
    uniformity += p * p;
  }
  out[0] = energy;
  out[1] = energy * s.spacingX * s.spacingY;
  out[2] = entropy;
  out[3] = vmin;
  out[4] = p10;
  out[5] = p90;
  out[6] = vmax;
  out[7] = mean;
  out[8] = med;
  out[9] = p75 - p25;
  out[10] = vmax - vmin;
  out[11] = mad;
  out[12] = rmad;
  out[13] = std::sqrt(energy / n);
  out[14] = std::sqrt(m2);
  out[15] = m2 > 0 ? m3 / std::pow(m2, 1.5) : 0;
  out[16] = m2 > 0 ? m4 / (m2 * m2) - (s.ibsi ? 3 : 0) : 0;  // flat region: 0, as PyRadiomics
  out[17] = m2;
  out[18] = uniformity;
}

}  // namespace radiomics
}  // namespace sono
