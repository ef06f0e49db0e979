#!/bin/sh
# Refits the shipped model models/busi-malignancy from ../shared/data/busi with `sonomics fit`
# (seeded: the same data and code give the same card; test/fit.test.ts checks that).
set -e
cd "$(dirname "$0")/.."
npm run build >/dev/null
node bin/sonomics.js fit --cohort ../shared/data/busi/labels.csv --label-column malignant --out models/busi-malignancy \
  --id busi-malignancy --version 1.0.0 --task "Breast lesion malignancy from B-mode radiomics" \
  --cohort-name "BUSI development split (Al-Dhabyani et al. 2020, CC0)" \
  --caveat "Trained on one public dataset (BUSI, one centre, one vendor family); not validated on any other cohort or scanner." \
  --caveat "BUSI images carry burned-in calipers, text and ROI marks, and the dataset has near-duplicate images: cross-validated performance is likely optimistic." \
  --caveat "Pixel spacing of BUSI is unknown: rings are in pixels and texture scale differs on other scanners." \
  --seed 20261122 "$@"
