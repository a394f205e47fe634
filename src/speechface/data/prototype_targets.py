"""RAVDESS utterances labelled with the FACS prototype of their acted emotion (utterance AUs).

The utterance-level system (``lstm_mfcc``: 39 MFCCs -> one AU vector per utterance) needs one AU
vector per utterance. RAVDESS has no face tracks for most clips, but every clip carries its acted
emotion and intensity in its name, so the target is defensible by construction:

``target = intensity_scale[intensity] * prototype(emotion)``

where ``prototype`` is :data:`speechface.spaces.EMOTION_AU_PROTOTYPES` (the EMFACS prototypes at
intensity 3 of 5: happiness AU06+AU12, sadness AU01+AU04+AU15, surprise AU01+AU02+AU05+AU26, fear
AU01+AU02+AU04+AU05+AU07+AU20+AU26, anger AU04+AU05+AU07+AU23, disgust AU09+AU10+AU15; neutral and
calm: all 0) and ``intensity_scale`` is ``normal: 0.6, strong: 1.0``. The target is written on
every frame (``mask`` all true), so the frame-mean target the estimator trainer computes for an
utterance-level network equals it. Landmarks and blendshapes are zeros (not labelled).

Example:
    >>> from speechface.data.prototype_targets import prepare_ravdess_prototypes  # doctest: +SKIP
    >>> prepare_ravdess_prototypes("../shared/data/ravdess", "prepared/ravdess_proto",
    ...                            actors=range(1, 23))                             # doctest: +SKIP

Command line::

    speechface prepare prototypes ../shared/data/ravdess -o prepared/ravdess_proto \\
        --exclude-actors 3 8 15 22
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..spaces.space import AU_NAMES, EMOTION_AU_PROTOTYPES
from .ravdess import RavdessDataset
from .shards import SAMPLES_PER_FRAME, rebuild_manifest, write_clip

__all__ = ["INTENSITY_SCALE", "prototype_target", "prepare_ravdess_prototypes", "TEACHER"]

#: Fraction of the prototype for RAVDESS's two intensities.
INTENSITY_SCALE = {"normal": 0.6, "strong": 1.0}
#: Recorded in every record's ``teacher`` field.
TEACHER = "facs_prototype_of_acted_emotion_v1"


def prototype_target(emotion8_label: str, intensity: str) -> np.ndarray:
    """``(17,)`` AU intensities for an acted emotion (an EMOTION8 label) at a RAVDESS intensity.

    Example:
        >>> prototype_target("happiness", "strong")[[4, 8]]   # AU06, AU12
        array([3., 3.], dtype=float32)
    """
    if emotion8_label not in EMOTION_AU_PROTOTYPES:
        raise DataError(f"unknown emotion {emotion8_label!r}")
    if intensity not in INTENSITY_SCALE:
        raise DataError(f"unknown intensity {intensity!r}; expected {sorted(INTENSITY_SCALE)}")
    out = np.zeros(len(AU_NAMES), np.float32)
    for au, v in EMOTION_AU_PROTOTYPES[emotion8_label].items():
        out[list(AU_NAMES).index(au)] = v * INTENSITY_SCALE[intensity]
    return out


def prepare_ravdess_prototypes(root: str | Path, out: str | Path, *,
                               actors: Iterable[int] | None = None,
                               exclude_actors: Iterable[int] = ()) -> list[dict[str, Any]]:
    """Write one shard clip per RAVDESS speech utterance with its prototype target.

    Clips are named ``ravdess__<file stem>`` and grouped by actor (``Actor_NN``), so
    ``val_groups: [Actor_05, ...]`` keeps actors out of training.

    Returns:
        The merged manifest records of ``out``.
    """
    excluded = {int(a) for a in exclude_actors}
    ds = RavdessDataset(root, actors=actors, with_audio=True)
    n = 0
    for i in range(len(ds)):
        item = ds[i]
        actor = int(item["actor"])
        if actor in excluded or item.get("vocal_channel", "speech") != "speech":
            continue
        audio = np.asarray(item["audio"], np.float32)
        if audio.ndim > 1:
            audio = audio.mean(-1)
        if int(item["sample_rate"]) != 16000:
            import torch

            from ..audio.waveform import resample

            audio = resample(torch.from_numpy(audio), int(item["sample_rate"]), 16000).numpy()
        frames = len(audio) // SAMPLES_PER_FRAME
        if frames < 2:
            continue
        target = prototype_target(item["emotion8_label"], item["intensity"])
        arrays = {"audio": audio, "features": np.zeros((0, frames), np.float32),
                  "targets_au17": np.tile(target, (frames, 1)),
                  "targets_landmarks68": np.zeros((frames, 136), np.float32),
                  "blendshapes": np.zeros((frames, 52), np.float32),
                  "mask": np.ones(frames, bool)}
        write_clip(out, f"ravdess__{item['name']}", arrays,
                   {"speaker": f"Actor_{actor:02d}", "teacher": TEACHER, "targets": ["au17"],
                    "emotion": item["emotion"], "intensity": item["intensity"]})
        n += 1
    if n == 0:
        raise DataError(f"{root}: no RAVDESS speech clips for the chosen actors")
    return rebuild_manifest(out)
