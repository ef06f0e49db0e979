// Gray Level Co-occurrence Matrix (PyRadiomics `glcm`). One matrix per angle (offsets of the
// requested distances, one per direction pair), made symmetrical when asked, rows and columns of
// gray levels absent from the ROI removed, empty angles dropped; each feature is computed per
// angle and averaged (nanmean), as PyRadiomics does without distance weighting.
#include "radiomics/radiomics.h"
#include <algorithm>

namespace sono {
namespace radiomics {

const char* const kGLCMNames[] = {"Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency",
                                  "Contrast", "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance",
                                  "JointEnergy", "JointEntropy", "Imc1", "Imc2", "Idm", "MCC", "Idmn", "Id", "Idn",
                                  "InverseVariance", "MaximumProbability", "SumAverage", "SumEntropy", "SumSquares"};

namespace {

enum { AC, JA, CP, CS, CT, CON, CORR, DA, DE, DV, JE, JENT, IMC1, IMC2, IDM, MCC, IDMN, ID, IDN, IV, MP, SA, SE, SS };

}  // namespace

void glcm(const Region& r, const Settings& s, double* out) {
  const int L = (int)r.levels.size();
  const int Ng = r.Ng;
  std::vector<Offset> offsets = generateOffsets(r.h, r.w, s.distances, false);
  // Compact level index on the padded canvas, L for pixels outside the ROI: every ROI pixel adds
  // to an (L+1) x (L+1) count matrix per angle without checking its neighbour; column L (a
  // neighbour outside the ROI) is ignored.
  const int L1 = L + 1;
  thread_local std::vector<int32_t> tlsPc;  // per-thread scratch reused across calls
  thread_local std::vector<uint32_t> tlsCounts;
  std::vector<int32_t>& pc = tlsPc;  // bound once: each thread_local access costs a TLS lookup
  std::vector<uint32_t>& counts = tlsCounts;
  pc.resize(r.plevel.size());
  std::vector<int32_t> toCompact(r.index.begin(), r.index.end());
  toCompact[0] = L;  // level 0 (outside the ROI) -> the ignored row/column
  for (size_t i = 0; i < pc.size(); i++) pc[i] = toCompact[r.plevel[i]];
  std::vector<double> g(L);
  for (int k = 0; k < L; k++) g[k] = r.levels[k];
  const size_t na = offsets.size();
  std::vector<long> steps = paddedSteps(offsets, r.pw);
  counts.assign(na * L1 * L1, 0);
  for (int y = 0; y < r.h; y++) {
    const int32_t* c = &pc[r.pat(0, y)];
    if (na == 4) {  // the usual box: four independent increments per pixel
      uint32_t *C0 = &counts[0], *C1 = C0 + L1 * L1, *C2 = C1 + L1 * L1, *C3 = C2 + L1 * L1;
      const int32_t *n0 = c + steps[0], *n1 = c + steps[1], *n2 = c + steps[2], *n3 = c + steps[3];
      for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) {
        const int row = c[x] * L1;
        C0[row + n0[x]]++; C1[row + n1[x]]++; C2[row + n2[x]]++; C3[row + n3[x]]++;
      }
    } else {
      for (size_t a = 0; a < na; a++) {
        uint32_t* C = &counts[a * L1 * L1];
        const int32_t* n = c + steps[a];
        for (int ri = r.runBegin[y]; ri < r.runBegin[y + 1]; ri++) for (int x = r.runX0[ri], x1 = r.runX1[ri]; x < x1; x++) C[c[x] * L1 + n[x]]++;
      }
    }
  }
  std::vector<std::vector<double>> mats;
  for (size_t a = 0; a < na; a++) {
    std::vector<double> P((size_t)L * L);
    const uint32_t* C = &counts[a * L1 * L1];
    for (int i = 0; i < L; i++)
      for (int j = 0; j < L; j++) P[(size_t)i * L + j] = C[i * L1 + j];
    if (s.symmetricalGLCM)
      for (int i = 0; i < L; i++)
        for (int j = i; j < L; j++) {
          double v = P[(size_t)i * L + j] + P[(size_t)j * L + i];
          P[(size_t)i * L + j] = P[(size_t)j * L + i] = v;
        }
    mats.push_back(std::move(P));
  }
  // Drop empty angles when there is more than one.
  if (mats.size() > 1) {
    std::vector<std::vector<double>> kept;
    for (auto& P : mats) {
      double sum = 0;
      for (double v : P) sum += v;
      if (sum != 0) kept.push_back(std::move(P));
    }
    mats.swap(kept);
  }
  const int Na = (int)mats.size();
  std::vector<std::array<double, kGLCMCount>> per(Na);
  std::vector<double> px(L), py(L), pxSuby(Ng), pxAddy(2 * Ng + 1), S, diag, sub;
  bool mccFlat = L < 2;
  for (int a = 0; a < Na; a++) {
    std::vector<double>& p = mats[a];
    double sum = 0;
    for (double v : p) sum += v;
    for (double& v : p) v = sum == 0 ? NAN : v / sum;
    auto& f = per[a];
    std::fill(px.begin(), px.end(), 0.0);
    std::fill(py.begin(), py.end(), 0.0);
    std::fill(pxSuby.begin(), pxSuby.end(), 0.0);
    std::fill(pxAddy.begin(), pxAddy.end(), 0.0);
    double ux = 0, uy = 0, ac = 0, con = 0, je = 0, hxy = 0, mp = 0;
    for (int i = 0; i < L; i++)
      for (int j = 0; j < L; j++) {
        double v = p[(size_t)i * L + j];
        px[i] += v; py[j] += v;
        ux += v * g[i]; uy += v * g[j];
        ac += v * g[i] * g[j];
        con += v * (g[i] - g[j]) * (g[i] - g[j]);
        je += v * v;
        if (v != 0 || std::isnan(v)) hxy -= v * std::log2(v + kEps);  // zero cells add 0
        if (v > mp || std::isnan(v)) mp = v;
        pxSuby[(size_t)std::abs(r.levels[i] - r.levels[j])] += v;
        pxAddy[(size_t)(r.levels[i] + r.levels[j])] += v;
      }
    double cp = 0, cs = 0, ct = 0, sx2 = 0, sy2 = 0, corm = 0;
    for (int i = 0; i < L; i++)
      for (int j = 0; j < L; j++) {
        double v = p[(size_t)i * L + j];
        double t = g[i] + g[j] - ux - uy, t2 = t * t;
        ct += v * t2; cs += v * t2 * t; cp += v * t2 * t2;
        sx2 += v * (g[i] - ux) * (g[i] - ux);
        sy2 += v * (g[j] - uy) * (g[j] - uy);
        corm += v * (g[i] - ux) * (g[j] - uy);
      }
    double sigx = std::sqrt(sx2), sigy = std::sqrt(sy2);
    double da = 0, de = 0, idm = 0, idmn = 0, id = 0, idn = 0, iv = 0;
    for (int k = 0; k < Ng; k++) {
      double v = pxSuby[k];
      da += k * v;
      de -= v * std::log2(v + kEps);
      idm += v / (1.0 + (double)k * k);
      idmn += v / (1.0 + ((double)k * k) / ((double)Ng * Ng));
      id += v / (1.0 + k);
      idn += v / (1.0 + (double)k / Ng);
      if (k > 0) iv += v / ((double)k * k);
    }
    double dv = 0;
    for (int k = 0; k < Ng; k++) dv += pxSuby[k] * (k - da) * (k - da);
    double sa = 0, se = 0;
    for (int k = 2; k <= 2 * Ng; k++) {
      double v = pxAddy[k];
      sa += k * v;
      se -= v * std::log2(v + kEps);
    }
    double hx = 0, hy = 0;
    for (int i = 0; i < L; i++) { hx -= px[i] * std::log2(px[i] + kEps); hy -= py[i] * std::log2(py[i] + kEps); }
    // HXY1 = -sum p(i,j) log2(px(i) py(j) + eps) and HXY2 = -sum px(i) py(j) log2(px(i) py(j) + eps)
    // both equal HX + HY up to the eps terms (the marginals sum to 1), which move them by less than
    // 1e-9 relative; this saves two logarithms per matrix cell.
    // A single gray level (flat region): PyRadiomics' three entropies are the same number.
    const double hxy1 = L == 1 ? hxy : hx + hy, hxy2 = hxy1;
    double div = std::fmax(hx, hy);
    double imc1 = div != 0 ? (hxy - hxy1) / div : 0;
    if (std::isnan(div)) imc1 = NAN;
    double imc2 = hxy2 == hxy ? 0 : std::sqrt(1 - std::exp(-2 * (hxy2 - hxy)));
    // MCC: second largest eigenvalue of Q(i,j) = sum_k p(i,k) p(j,k) / (px(i) py(k)), computed on
    // the symmetric matrix D^1/2 Q D^-1/2 (same eigenvalues).
    double mcc = NAN;
    if (!mccFlat && sum != 0) {
      std::vector<double> B((size_t)L * L, 0.0), rx(L), ry(L);
      for (int i = 0; i < L; i++) {
        rx[i] = px[i] > 0 ? 1 / std::sqrt(px[i]) : 0;
        ry[i] = py[i] > 0 ? 1 / std::sqrt(py[i]) : 0;
      }
      for (int i = 0; i < L; i++)
        for (int k = 0; k < L; k++) B[(size_t)i * L + k] = p[(size_t)i * L + k] * rx[i] * ry[k];
      if (s.symmetricalGLCM) {
        // P symmetric: B = D^-1/2 P D^-1/2 is symmetric and S = B B^T = B^2, so the eigenvalues
        // of S are the squares of B's.
        S = B;
      } else {
        S.assign((size_t)L * L, 0.0);
        for (int i = 0; i < L; i++)
          for (int j = 0; j <= i; j++) {
            double acc = 0;
            const double* bi = &B[(size_t)i * L];
            const double* bj = &B[(size_t)j * L];
            for (int k = 0; k < L; k++) acc += bi[k] * bj[k];
            S[(size_t)i * L + j] = S[(size_t)j * L + i] = acc;
          }
      }
      tridiagonalize(S, L, diag, sub);
      double l2;
      if (s.symmetricalGLCM) {  // S's eigenvalues are B's squared; B's largest is 1
        const double second = tridiagonalEigenvalue(diag, sub, L - 2), smallest = tridiagonalEigenvalue(diag, sub, 0);
        l2 = std::max(second * second, smallest * smallest);
      } else {
        l2 = tridiagonalEigenvalue(diag, sub, L - 2);
      }
      if (l2 < 0 && l2 > -1e-12) l2 = 0;
      mcc = std::sqrt(l2);
    }
    f[AC] = ac; f[JA] = ux; f[CP] = cp; f[CS] = cs; f[CT] = ct; f[CON] = con;
    f[CORR] = sigx * sigy == 0 ? 1 : corm / (sigx * sigy + kEps);
    f[DA] = da; f[DE] = de; f[DV] = dv; f[JE] = je; f[JENT] = hxy; f[IMC1] = imc1; f[IMC2] = imc2; f[IDM] = idm;
    f[MCC] = mcc; f[IDMN] = idmn; f[ID] = id; f[IDN] = idn; f[IV] = iv; f[MP] = mp; f[SA] = sa; f[SE] = se; f[SS] = sx2;
  }
  for (int k = 0; k < kGLCMCount; k++) {
    double acc = 0;
    int n = 0;
    for (int a = 0; a < Na; a++) {
      double v = per[a][k];
      if (k == JA) { acc += v; n++; continue; }  // PyRadiomics uses mean (not nanmean) here
      if (!std::isnan(v)) { acc += v; n++; }
    }
    out[k] = n ? acc / n : NAN;
  }
  if (mccFlat) out[MCC] = 1;
}

}  // namespace radiomics
}  // namespace sono
