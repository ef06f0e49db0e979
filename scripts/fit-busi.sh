#!/bin/sh
# Refits the shipped model models/busi-malignancy from ../shared/data/busi with `sonomics fit`
# (seeded: the same data and code give the same card; test/fit.test.ts checks that).
# --masks tap: the features come from masks segmented from one tap (the shipped segmenter's
# out-of-fold models), as live, not from the expert outlines: on the expert outlines the
# cross-validated AUC is 0.968 but it falls to 0.799 when the card meets tap masks, while a card
# fitted on tap masks keeps 0.841 (npm run bench:segment, docs/segmentation.md).
set -e
cd "$(dirname "$0")/.."
npm run build >/dev/null
node bin/sonomics.js fit --cohort ../shared/data/busi/labels.csv --label-column malignant --out models/busi-malignancy \
  --id busi-malignancy --version 1.0.0 --task "Breast lesion malignancy from B-mode radiomics" \
  --cohort-name "BUSI development split (Al-Dhabyani et al. 2020, CC0)" \
  --caveat "Trained on one public dataset (BUSI, one centre, one vendor family); not validated on any other cohort or scanner." \
  --caveat "BUSI images carry burned-in calipers, text and ROI marks, and the dataset has near-duplicate images: cross-validated performance is likely optimistic." \
  --caveat "Pixel spacing of BUSI is unknown: rings are in pixels and texture scale differs on other scanners." \
  --caveat "Fitted on lesion masks segmented from one tap (models/segmenter), as the live system makes them; the expert outlines only placed the tap." \
  --masks tap --seed 20261122 "$@"
