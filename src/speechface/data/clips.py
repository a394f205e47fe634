"""Utterances in memory for the speech recipes: :class:`TrainClip` and its readers.

- :func:`load_training_clips`: prepared shards (``speechface prepare av``) -> clips with
  features, per-frame targets of one space and a validity mask;
- :func:`load_ravdess_clips`: RAVDESS utterances with one-hot EMOTION8 targets;
- :func:`split_groups`: a group-disjoint (speaker-disjoint) train/validation split.

Used by :mod:`speechface.training`, :mod:`speechface.evaluation` and
:mod:`speechface.evaluation.calibration` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from ..spaces.space import EMOTION8

__all__ = ["TrainClip", "load_training_clips", "split_groups", "load_ravdess_clips"]


@dataclass
class TrainClip:
    """One utterance ready for training: features ``(T, F)``, targets ``(T, D)``, mask ``(T,)``."""

    name: str
    group: str
    features: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    audio: torch.Tensor | None = None


def load_training_clips(data: str | list[str], space: str, feature: str | None,
                        feature_args: dict[str, Any] | None = None, *,
                        keep_audio: bool = False) -> list[TrainClip]:
    """Read prepared shards into memory as :class:`TrainClip` s.

    Features stored in the shards are used when they were made by the requested extractor with
    the same settings; otherwise they are recomputed from the shard's 16 kHz audio. Recomputed
    features of an expensive extractor (one with ``cache_features = True``, e.g. ``whisper``)
    are cached in ``<shard folder>/.feature_cache/<config hash>/<clip>.npy`` and reused while the
    clip's ``.npz`` is unchanged (same size and modification time).
    """
    from ..core.registry import FEATURES
    from .shards import list_clips, read_clip

    roots = [data] if isinstance(data, (str, Path)) else list(data)
    fx = FEATURES.create(feature or "logmel", **(feature_args or {}))
    fx_cfg = {"name": fx.registry_name, "args": fx.config()}
    key = f"targets_{space}"
    clips: list[TrainClip] = []
    for root in roots:
        for rec in list_clips(root):
            arrays, _ = read_clip(root, rec["name"])
            if key == "targets_blendshapes52" and key not in arrays and "blendshapes" in arrays:
                from ..spaces.blendshapes import mediapipe_to_arkit52  # MediaPipe order -> ARKit-52

                arrays = {**arrays, key: mediapipe_to_arkit52(arrays["blendshapes"])}
            if key not in arrays:
                raise DataError(f"{root}: clip {rec['name']} has no {key!r} (have: "
                                f"{', '.join(sorted(arrays))}); prepare it with a teacher for {space}")
            stored = dict(rec.get("features") or {})
            same = stored.pop("name", None) == fx_cfg["name"] and stored == fx_cfg["args"]
            if same and "features" in arrays:
                feats = torch.from_numpy(arrays["features"]).float()
            else:
                feats = _computed_features(fx, fx_cfg, Path(root), str(rec["name"]), arrays["audio"])
            t = min(feats.shape[-1], len(arrays[key]))
            clips.append(TrainClip(
                name=str(rec["name"]),
                group=str(rec.get("speaker", rec.get("group", rec["name"]))),
                features=feats[:, :t].T.contiguous(),
                targets=torch.from_numpy(np.asarray(arrays[key][:t], dtype=np.float32)),
                mask=torch.from_numpy(np.asarray(arrays["mask"][:t], dtype=bool)),
                audio=torch.from_numpy(arrays["audio"]).float() if keep_audio else None,
            ))
    if not clips:
        raise DataError(f"no prepared clips found in {', '.join(map(str, roots))}")
    return clips


def _computed_features(fx: Any, fx_cfg: dict[str, Any], root: Path, name: str,
                       audio: np.ndarray) -> torch.Tensor:
    """``fx(audio)``, through the on-disk cache for extractors that ask for one."""
    if not getattr(fx, "cache_features", False):
        with torch.no_grad():
            return fx(torch.from_numpy(audio).float())
    import hashlib
    import json
    import os

    src = root / f"{name}.npz"
    st = src.stat()
    digest = hashlib.sha256(json.dumps(fx_cfg, sort_keys=True).encode()).hexdigest()[:16]
    path = root / ".feature_cache" / digest / f"{name}.{st.st_size}.{int(st.st_mtime)}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            return torch.from_numpy(cached).float()
        except (OSError, ValueError):
            pass  # unreadable cache entry: recompute and rewrite it
    with torch.no_grad():
        feats = fx(torch.from_numpy(audio).float())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, feats.numpy().astype(np.float32))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only shard folder: no cache
    return feats


def split_groups(clips: list[TrainClip], val_groups: list[str] | None, val_fraction: float,
                 seed: int) -> tuple[list[TrainClip], list[TrainClip]]:
    """Group-disjoint train/validation split (a group = a speaker or a clip)."""
    groups = sorted({c.group for c in clips})
    if val_groups is None:
        rng = np.random.default_rng(seed)
        n_val = max(1, round(len(groups) * val_fraction))
        val_groups = list(rng.permutation(groups)[:n_val])
    unknown = set(val_groups) - set(groups)
    if unknown:
        raise DataError(f"validation groups not in the data: {', '.join(sorted(unknown))}")
    val = [c for c in clips if c.group in set(val_groups)]
    train = [c for c in clips if c.group not in set(val_groups)]
    if not train or not val:
        raise DataError(f"split left {len(train)} training and {len(val)} validation clips; "
                        f"need both (groups: {len(groups)})")
    return train, val


def load_ravdess_clips(root: str | Path, actors: list[int] | None = None, *,
                       feature: str = "logmel", feature_args: dict[str, Any] | None = None,
                       keep_audio: bool = False, augment_copies: int = 0,
                       augment_settings: Any = None, seed: int = 0) -> list[TrainClip]:
    """RAVDESS utterances as :class:`TrainClip` s with one-hot EMOTION8 targets on every frame.

    Args:
        root: the RAVDESS folder (``Actor_XX/*.flac``).
        actors: actor numbers to load (default all).
        feature, feature_args: the feature extractor (must match the model's).
        keep_audio: also keep the 16 kHz waveform.
        augment_copies: also this many transformed copies of every utterance
            (:func:`speechface.data.augment.augment_audio`: speed, equalisation or a telephone
            band, reverberation, noise, level; seeded by ``seed``), named ``<stem>__aug<k>``
            in the same actor group: RAVDESS is one studio and one level per emotion, and a model
            trained on it alone reads other microphones, rooms and levels as other emotions.
        augment_settings: the transforms' ranges (:class:`speechface.data.augment.AugmentSettings`;
            None: its defaults).

    Returns:
        Clips named by the RAVDESS file stem, grouped by actor (``"Actor_05"``); every frame is
        valid (the label is the utterance's, silence included, as at inference).

    Example:
        >>> clips = load_ravdess_clips("../shared/data/ravdess", actors=[1])   # doctest: +SKIP
        >>> clips[0].targets.shape, clips[0].group                              # doctest: +SKIP
        (torch.Size([83, 8]), 'Actor_01')
    """
    from ..audio.waveform import load_audio
    from ..core.registry import FEATURES
    from .ravdess import RavdessDataset

    ds = RavdessDataset(root, actors=actors, with_audio=False, vocal_channel="speech")
    fx = FEATURES.create(feature, **(feature_args or {}))
    if augment_copies < 0:
        raise ValueError(f"augment_copies must be >= 0, got {augment_copies}")
    rng = np.random.default_rng(seed)
    clips: list[TrainClip] = []
    for item in ds.items:
        wave = load_audio(item.path, target_rate=int(getattr(fx, "sample_rate", 16000)))
        versions = [(item.info.name, wave)]
        if augment_copies:
            from .augment import augment_audio

            for k in range(augment_copies):
                aug, _ = augment_audio(wave.numpy(), rng, augment_settings)
                versions.append((f"{item.info.name}__aug{k}", torch.from_numpy(aug)))
        for name, w in versions:
            with torch.no_grad():
                feats = fx(w).T.contiguous()
            t = feats.shape[0]
            if t < 1:
                raise DataError(f"{item.path}: too short for one feature frame")
            y = torch.zeros(t, EMOTION8.dim)
            y[:, item.emotion8] = 1.0
            clips.append(TrainClip(name=name, group=f"Actor_{item.actor:02d}",
                                   features=feats, targets=y,
                                   mask=torch.ones(t, dtype=torch.bool),
                                   audio=w if keep_audio else None))
    return clips
