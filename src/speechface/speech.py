"""The user-facing speech estimators: audio in, a sequence of AUs / emotions / landmarks out.

A :class:`SpeechEstimator` bundles a feature extractor (log-mel or MFCC, 25 frames per
second), a feature normaliser, an estimator network and a conditioning space, plus an optional
per-dimension output calibration (``value = activate(raw * scale + bias)``).

>>> from speechface import AUEstimator                     # doctest: +SKIP
>>> est = AUEstimator.from_pretrained()                     # the packaged default, offline
>>> r = est.predict("speech.wav")                           # r.values: (frames, 17)
>>> r.to_csv("aus.csv")                                     # OpenFace-style columns
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from . import __version__
from .errors import ModelError
from .estimators import Estimator
from .hub import PretrainedMixin, config_errors, locate_pretrained, read_config
from .registry import ESTIMATORS, FEATURES
from .results import Prediction
from .spaces import Space

__all__ = ["SpeechEstimator", "AUEstimator", "EmotionEstimator", "LandmarkEstimator", "BlendshapeEstimator",
           "AudioInput"]

AudioInput = "str | os.PathLike[str] | np.ndarray | torch.Tensor"
S = TypeVar("S", bound="SpeechEstimator")
FORMAT = "speechface.estimator/1"


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was = module.training
    switch = any(m.training for m in module.modules())  # train()/eval() walk every module
    if switch:
        module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if switch:
            module.train(was)


class SpeechEstimator(PretrainedMixin, nn.Module):
    """Feature extractor + normaliser + estimator network + conditioning space.

    Build one with :meth:`create` (random weights) or :meth:`from_pretrained` (trained weights);
    the constructor is for code that already holds the parts.

    Args:
        network: a registered :class:`~speechface.estimators.Estimator`.
        features: a registered feature extractor module (``speechface.features``).
        name: model name reported in results and files.
        pretrained: whether the weights were trained (False for :meth:`create`).
        info: free-form metadata written to ``config.json`` (teacher, data, metrics, licence).
    """

    space_name: ClassVar[str | None] = None

    def __init__(self, network: Estimator, features: nn.Module, *, name: str | None = None,
                 pretrained: bool = False, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        if self.space_name is not None and network.space.name != self.space_name:
            raise ModelError(f"{type(self).__name__} predicts {self.space_name}, but the network "
                             f"predicts {network.space.name}; use "
                             f"{_CLASS_FOR_SPACE.get(network.space.name, 'SpeechEstimator')}")
        n_feat = int(features.n_features)
        if n_feat != network.in_features:
            raise ModelError(f"feature extractor gives {n_feat} features per frame but the "
                             f"network expects {network.in_features}")
        self.features = features
        self.network = network
        self.register_buffer("feature_mean", torch.zeros(n_feat))
        self.register_buffer("feature_std", torch.ones(n_feat))
        self.register_buffer("out_scale", torch.ones(network.out_dim))
        self.register_buffer("out_bias", torch.zeros(network.out_dim))
        self.name = name or f"{network.arch}.{network.space.name}"
        self.pretrained = pretrained
        self.info = dict(info or {})

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls: type[S], arch: str, *, space: str | None = None, feature: str | None = None,
               feature_args: dict[str, Any] | None = None, name: str | None = None,
               **model_args: Any) -> S:
        """A model with random weights from the registries (``pretrained`` is False).

        Args:
            arch: estimator architecture (``"cnn"``, ``"dcnn"``, ``"rnn"``, ``"mlp"``, ...).
            space: conditioning space (default: this class's space, else the network's default).
            feature: feature extractor (default: the architecture's, e.g. ``"logmel"``).
            feature_args: keyword arguments of the feature extractor.
            **model_args: keyword arguments of the architecture.

        Example:
            >>> est = AUEstimator.create("cnn")           # doctest: +SKIP
        """
        net_cls = ESTIMATORS.get(arch)
        space = space or cls.space_name or net_cls.default_space
        fx = FEATURES.create(feature or net_cls.default_feature, **(feature_args or {}))
        model_args.setdefault("in_features", int(fx.n_features))
        network = net_cls(space=space, **model_args)
        target = _class_for(network.space.name) if cls is SpeechEstimator else cls
        return target(network, fx, name=name, pretrained=False)

    @classmethod
    def from_pretrained(cls: type[S], name_or_path: str | os.PathLike[str] | None = None, *,
                        revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                        local_files_only: bool | None = None, token: str | None = None,
                        device: str | torch.device | None = None) -> S:
        """Load trained weights: a packaged model name, a local folder or a Hub repo id.

        With no argument, the packaged default model for this class's space is loaded (offline).

        Raises:
            ModelError: unknown name, missing/corrupt files, a config of another kind, or a
                model of another space than this class predicts.
        """
        from .pretrained import DEFAULT_MODELS

        if name_or_path is None:
            key = cls.space_name or "au17"
            if key not in DEFAULT_MODELS:
                raise ModelError(f"no packaged default model for {key} in this version; "
                                 f"pass a model folder or Hub repo id")
            name_or_path = DEFAULT_MODELS[key]
        folder = locate_pretrained(name_or_path, ESTIMATORS, "estimator", cls.__name__,
                                   revision=revision, cache_dir=cache_dir,
                                   local_files_only=local_files_only, token=token)
        model = cls._from_folder(folder)
        if device is not None:
            model.to(device)
        return model

    @classmethod
    def _from_folder(cls: type[S], folder: Path) -> S:
        from .hub import load_state

        cfg = read_config(folder, kind="estimator")
        where = folder / "config.json"
        space = cfg.get("space")
        target = cls
        if cls is SpeechEstimator:
            target = _class_for(space)
        elif cls.space_name is not None and space != cls.space_name:
            raise ModelError(f"{where}: this model predicts {space}, not {cls.space_name}; load it "
                             f"with {_CLASS_FOR_SPACE.get(space, 'SpeechEstimator')}")
        with config_errors(where, cfg.get("architecture")):
            net_cls = ESTIMATORS.get(cfg["architecture"])
            feat = cfg.get("feature", {"name": "logmel", "args": {}})
            fx = FEATURES.create(feat["name"], **feat.get("args", {}))
            network = net_cls(space=space, **cfg.get("model_args", {}))
        labels = cfg.get("labels")
        if labels is not None and list(labels) != list(network.space.labels):
            raise ModelError(f"{where}: label names do not match space {space!r}")
        try:
            model = target(network, fx, name=cfg.get("name"),
                           pretrained=bool(cfg.get("pretrained")), info=cfg.get("info"))
        except ModelError as e:  # e.g. a feature size that does not fit the network
            raise ModelError(f"{where}: {e}") from e
        load_state(model, folder)
        model.eval()
        return model

    def config(self) -> dict[str, Any]:
        """The ``config.json`` content of this model."""
        fx = self.features
        return {
            "format": FORMAT,
            "kind": "estimator",
            "speechface_version": __version__,
            "name": self.name,
            "architecture": self.network.arch,
            "model_args": {k: v for k, v in self.network.hparams.items() if k != "space"},
            "space": self.space.name,
            "labels": list(self.space.labels),
            "frame_level": self.network.frame_level,
            "feature": {"name": getattr(fx, "registry_name", "logmel"), "args": fx.config()},
            "sample_rate": self.sample_rate,
            "fps": self.fps,
            "pretrained": self.pretrained,
            "info": self.info,
        }

    def model_card(self) -> str:
        """A minimal model card; trained models ship a fuller one written by the trainer."""
        state = "trained" if self.pretrained else "untrained (random weights)"
        return (f"---\nlibrary_name: speechface\ntags: [speech, facial-action-units]\n---\n\n"
                f"# {self.name}\n\n{self.network.arch} estimator predicting {self.space.name} "
                f"from {self.config()['feature']['name']} features at {self.fps} fps; {state}.\n")

    # ------------------------------------------------------------------ properties
    @property
    def space(self) -> Space:
        return self.network.space

    @property
    def labels(self) -> tuple[str, ...]:
        return self.space.labels

    @property
    def sample_rate(self) -> int:
        return int(getattr(self.features, "sample_rate", 16000))

    @property
    def fps(self) -> int:
        return int(getattr(self.features, "fps", 25))

    @property
    def device(self) -> torch.device:
        return self.feature_mean.device

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the per-feature mean and standard deviation used to normalise inputs."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-5))

    def set_calibration(self, scale: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the per-dimension output calibration ``raw * scale + bias``."""
        self.out_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.out_bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    # ------------------------------------------------------------------ computation
    def load(self, audio: Any, sample_rate: int | None = None) -> torch.Tensor:
        """Load audio (file, array or tensor) as 1-D float32 at the model's sample rate."""
        from .audio import load_audio

        return load_audio(audio, sample_rate, target_rate=self.sample_rate)

    def featurize(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` -> normalised ``(..., frames, n_features)``."""
        feats = self.features(wave.to(self.device)).transpose(-1, -2)
        return (feats - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised features ``(batch, frames, n_features)`` -> raw outputs (calibrated)."""
        return self.network(x, lengths) * self.out_scale + self.out_bias

    def _result(self, values: torch.Tensor, source: Any) -> Prediction:
        vals = self.space.activate(values).float().cpu().numpy()
        if vals.ndim == 1:
            vals = vals[None]
        return Prediction(values=vals, labels=self.space.labels, columns=self.space.columns,
                          space=self.space.name, fps=float(self.fps), model=self.name,
                          pretrained=self.pretrained,
                          source=str(source) if isinstance(source, (str, os.PathLike)) else None,
                          frame_level=self.network.frame_level)

    def predict(self, audio: Any, sample_rate: int | None = None, *,
                chunk_seconds: float | None = None) -> Prediction:
        """Predict values for one input.

        Args:
            audio: a file path (wav, flac, ogg, mp3), or a ``(samples,)`` / ``(channels, samples)``
                numpy array or torch tensor (then give ``sample_rate``). Any rate; resampled.
            sample_rate: sample rate of an array input.
            chunk_seconds: process the input in blocks of this many seconds with bounded memory
                (:func:`~speechface.longform.predict_long`; same values up to float32
                rounding). Inputs
                longer than ``speechface.longform.LONG_SECONDS`` (10 min) are processed so by
                default.

        Returns:
            A :class:`~speechface.results.Prediction`: ``(frames, dim)`` values at 25 fps,
            frame n at n/25 s (one row for utterance-level models).
        """
        from .longform import is_long, predict_long

        if chunk_seconds is not None or is_long(audio, sample_rate):
            return predict_long(self, audio, sample_rate=sample_rate,
                                chunk_seconds=chunk_seconds)
        wave = self.load(audio, sample_rate)
        with _eval_mode(self):
            raw = self(self.featurize(wave)[None])[0]
        return self._result(raw, audio)

    def predict_batch(self, audios: Sequence[Any], sample_rates: Sequence[int | None] | int | None = None,
                      batch_size: int = 16) -> list[Prediction]:
        """Predict for several inputs, padded into batches; same values as :meth:`predict`."""
        if sample_rates is None or isinstance(sample_rates, int):
            sample_rates = [sample_rates] * len(audios)
        if len(sample_rates) != len(audios):
            raise ValueError(f"{len(audios)} inputs but {len(sample_rates)} sample rates")
        feats = [self.featurize(self.load(a, sr)) for a, sr in zip(audios, sample_rates)]
        out: list[Prediction] = []
        with _eval_mode(self):
            for start in range(0, len(feats), batch_size):
                chunk = feats[start:start + batch_size]
                lengths = torch.tensor([len(f) for f in chunk])
                x = nn.utils.rnn.pad_sequence(chunk, batch_first=True)
                raw = self(x, lengths.to(self.device))
                for i, n in enumerate(lengths.tolist()):
                    r = raw[i, :n] if self.network.frame_level else raw[i]
                    out.append(self._result(r, audios[start + i]))
        return out

    def stream(self, chunk_frames: int = 1, sample_rate: int | None = None) -> Any:
        """A :class:`~speechface.streaming.StreamingEstimator`: push audio chunks of any size,
        get each 25 fps frame once it is final (same values as :meth:`predict`; latency
        ``(lookahead + 1) / 25`` s, cnn 0.36 s). ``rnn`` and utterance-level models raise
        :class:`~speechface.streaming.StreamingError`."""
        from .streaming import StreamingEstimator

        return StreamingEstimator(self, chunk_frames=chunk_frames, sample_rate=sample_rate)

    def __repr__(self) -> str:
        state = "pretrained" if self.pretrained else "random weights"
        return (f"{type(self).__name__}(name={self.name!r}, arch={self.network.arch!r}, "
                f"space={self.space.name!r}, {state}, params={self.network.num_parameters():,})")


class AUEstimator(SpeechEstimator):
    """Speech -> 17 OpenFace action-unit intensities (0-5) per 25 fps frame.

    >>> est = AUEstimator.from_pretrained()          # doctest: +SKIP
    >>> r = est.predict("speech.wav"); r["AU26"]       # doctest: +SKIP
    """

    space_name = "au17"


class EmotionEstimator(SpeechEstimator):
    """Speech -> 8-way FER+ emotion distribution per 25 fps frame."""

    space_name = "emotion8"


class LandmarkEstimator(SpeechEstimator):
    """Speech -> 68 facial landmarks (face-box units) per 25 fps frame."""

    space_name = "landmarks68"


class BlendshapeEstimator(SpeechEstimator):
    """Speech -> the 52 ARKit blendshapes (0-1) per 25 fps frame (``blendshapes52`` space).

    >>> est = BlendshapeEstimator.from_pretrained()     # doctest: +SKIP
    >>> r = est.predict("speech.wav"); r["jawOpen"]      # doctest: +SKIP
    """

    space_name = "blendshapes52"


_CLASS_FOR_SPACE = {"au17": "AUEstimator", "emotion8": "EmotionEstimator",
                    "landmarks68": "LandmarkEstimator", "blendshapes52": "BlendshapeEstimator"}


def _class_for(space: str | None) -> type[SpeechEstimator]:
    return {"au17": AUEstimator, "emotion8": EmotionEstimator,
            "landmarks68": LandmarkEstimator,
            "blendshapes52": BlendshapeEstimator}.get(space or "", SpeechEstimator)

