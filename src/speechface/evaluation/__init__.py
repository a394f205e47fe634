"""Held-out evaluation and calibration of trained components (training and the CLI use it).

In: models and held-out data (:mod:`speechface.data`). Out: tables (MAE/CCC with confidence
intervals), figures, calibrated models.

- :mod:`~speechface.evaluation.estimators`: speech estimators on held-out clips or real OpenFace
  tracks (Table-1 style), with :mod:`~speechface.evaluation.metrics`;
- :mod:`~speechface.evaluation.calibration`: per-dimension output calibration;
- :mod:`~speechface.evaluation.translators`: face translators (AU fidelity, preservation,
  video-frame pairs) and their figures;
- :mod:`~speechface.evaluation.emotion`: speech emotion students on RAVDESS actors, face
  expression recognisers on FER+.
"""

from .emotion import evaluate_ferplus, evaluate_ravdess
from .estimators import evaluate_estimators, openface_clips, predict_clip
from .translators import (
    au_sweep_figure,
    evaluate_pairs,
    evaluate_translator,
    pairs_figure,
    save_image_rows,
)

__all__ = ["evaluate_estimators", "openface_clips", "predict_clip", "evaluate_translator",
           "au_sweep_figure", "evaluate_pairs", "pairs_figure", "save_image_rows",
           "evaluate_ravdess", "evaluate_ferplus"]
