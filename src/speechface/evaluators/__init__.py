"""Held-out evaluation of trained components, shared by the training recipes and the CLI.

- :mod:`~speechface.evaluators.translators`: face translators (AU fidelity, preservation,
  video-frame pairs) and their figures;
- :mod:`~speechface.evaluators.emotion`: speech emotion students on RAVDESS actors, face
  expression recognisers on FER+.

The speech estimators' tables (MAE/CCC with confidence intervals, OpenFace tracks) live in
:mod:`speechface.evaluation`, output calibration in :mod:`speechface.calibration`.
"""

from .emotion import evaluate_ferplus, evaluate_ravdess
from .translators import (
    au_sweep_figure,
    evaluate_pairs,
    evaluate_translator,
    pairs_figure,
    save_image_rows,
)

__all__ = ["evaluate_translator", "au_sweep_figure", "evaluate_pairs", "pairs_figure",
           "save_image_rows", "evaluate_ravdess", "evaluate_ferplus"]
