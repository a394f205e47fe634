"""Held-out reports of emotion models: speech students on RAVDESS, face recognisers on FER+."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..data.ferplus import FerPlus
from ..spaces.space import EMOTION8

if TYPE_CHECKING:
    from ..teachers.expression import ExpressionRecognizer

__all__ = ["evaluate_ravdess", "evaluate_ferplus", "SEVEN"]

#: The seven EMOTION8 classes that occur in RAVDESS (all but contempt), by index.
SEVEN = tuple(range(7))


def evaluate_ravdess(model: Any, root: str | Path, actors: list[int], *, batch_size: int = 16,
                     confusion_png: str | Path | None = None, title: str | None = None
                     ) -> dict[str, Any]:
    """Utterance-level emotion metrics of a speech model on RAVDESS actors.

    Each clip goes through ``model.predict_batch``; its utterance prediction is the mean of the
    per-frame probabilities (:meth:`Prediction.mean`). Metrics:

    - ``accuracy_8``: argmax over all 8 outputs (a contempt prediction is simply wrong);
    - ``accuracy_7`` / ``macro_f1_7``: argmax over the 7 classes RAVDESS has (calm counted as
      neutral), macro-F1 over those 7;
    - ``chance_uniform_7`` (1/7) and ``chance_majority`` (share of the most frequent class);
    - ``confusion_7`` (rows = true, columns = predicted) and per-class recall.

    Args:
        model: an :class:`~speechface.EmotionEstimator` (or any ``SpeechEstimator`` of emotion8).
        root: the RAVDESS folder.
        actors: the held-out actors to score.
        confusion_png: also save the 7-way confusion matrix picture here.

    Example:
        >>> evaluate_ravdess(est, "../shared/data/ravdess", [3, 8, 15, 22])["accuracy_7"]  # doctest: +SKIP
        0.47
    """
    from ..data.ravdess import RavdessDataset
    from .metrics import accuracy, confusion_matrix, macro_f1, plot_confusion

    if model.space.name != EMOTION8.name:
        raise DataError(f"model predicts {model.space.name}, not emotion8")
    ds = RavdessDataset(root, actors=actors, with_audio=False, vocal_channel="speech")
    preds = model.predict_batch([str(p) for p in ds.paths], batch_size=batch_size)
    probs = np.stack([p.values.mean(0) for p in preds])
    true = ds.emotion8_labels()
    pred8 = probs.argmax(1)
    pred7 = probs[:, list(SEVEN)].argmax(1)
    cm = confusion_matrix(pred7, true, 7)
    counts = np.bincount(true, minlength=7)
    labels7 = list(EMOTION8.labels[:7])
    out = {
        "actors": sorted(int(a) for a in actors),
        "n_clips": int(len(true)),
        "accuracy_8": accuracy(pred8, true),
        "accuracy_7": accuracy(pred7, true),
        "macro_f1_7": macro_f1(pred7, true, 7),
        "macro_f1_8": macro_f1(pred8, true, 8),
        "chance_uniform_7": 1.0 / 7.0,
        "chance_majority": float(counts.max() / counts.sum()),
        "predicted_contempt": int((pred8 == 7).sum()),
        "labels_7": labels7,
        "confusion_7": cm.tolist(),
        "recall_7": {lab: float(cm[i, i] / max(cm[i].sum(), 1)) for i, lab in enumerate(labels7)},
    }
    if confusion_png is not None:
        plot_confusion(cm, labels7, confusion_png, title=title)
        out["confusion_png"] = str(confusion_png)
    return out


@torch.no_grad()
def evaluate_ferplus(model: ExpressionRecognizer, fer: FerPlus, batch_size: int = 512,
                     amp: bool = False) -> dict[str, Any]:
    """Majority-vote metrics of a recogniser on a decoded FER+ split.

    Args:
        model: the recogniser (its pixel normalisation and input size are used).
        fer: a split from :func:`~speechface.data.ferplus.load_ferplus`.
        batch_size: images per forward pass.
        amp: bfloat16 autocast.

    Returns:
        ``{"accuracy", "macro_f1", "n", "confusion" (8x8 list, row = true), "accuracy_paper",
        "n_paper", "loss" (cross-entropy to the vote distribution), "probs" (N, 8) array}``.
        ``accuracy``/``macro_f1``/``confusion`` use the most-voted emotion of every image whose
        top vote is an emotion; ``accuracy_paper`` follows the FER+ paper's test protocol
        (single votes removed, top emotion with more than half of all votes).

    Example:
        >>> m = evaluate_ferplus(fer_model, load_ferplus(npz, "valid"))     # doctest: +SKIP
        >>> round(m["accuracy"], 3)                                          # doctest: +SKIP
    """
    from .metrics import accuracy, confusion_matrix, macro_f1

    was = model.training
    model.eval()
    device = model.device
    size = model.input_size
    logits = []
    imgs = torch.from_numpy(np.ascontiguousarray(fer.images))
    for i in range(0, len(imgs), batch_size):
        x = model.normalize(imgs[i:i + batch_size].to(device))
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits.append(model(x).float().cpu())
    model.train(was)
    logit = torch.cat(logits)
    probs = logit.softmax(-1).numpy()
    labels, keep = fer.majority(drop_unknown=True)
    pred = probs[keep].argmax(1)
    lab_p, keep_p = fer.majority(min_votes=2, strict=True, drop_unknown=True)
    dist, keep_d = fer.distributions("crossentropy", drop_unknown=True)
    loss = float(-(torch.from_numpy(dist) * logit[torch.from_numpy(keep_d)].log_softmax(-1))
                 .sum(-1).mean())
    return {
        "accuracy": accuracy(pred, labels),
        "macro_f1": macro_f1(pred, labels, 8),
        "n": int(keep.sum()),
        "confusion": confusion_matrix(pred, labels, 8).tolist(),
        "accuracy_paper": accuracy(probs[keep_p].argmax(1), lab_p),
        "n_paper": int(keep_p.sum()),
        "loss": loss,
        "probs": probs,
    }
