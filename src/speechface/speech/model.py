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

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ..audio.waveform import load_audio
from ..core.errors import ModelError
from ..core.hub import PretrainedModel
from ..core.registry import ESTIMATORS, FEATURES
from ..core.results import Prediction
from ..spaces.space import Space
from . import longform
from .delay import check_delay, delay_outputs
from .estimators import Estimator

__all__ = ["SpeechEstimator", "AUEstimator", "EmotionEstimator", "LandmarkEstimator",
           "BlendshapeEstimator", "AudioInput", "estimator_class"]

AudioInput = "str | os.PathLike[str] | np.ndarray | torch.Tensor"
S = TypeVar("S", bound="SpeechEstimator")
FORMAT = "speechface.estimator/1"


class SpeechEstimator(PretrainedModel):
    """Feature extractor + normaliser + estimator network + conditioning space.

    Build one with :meth:`create` (random weights) or :meth:`from_pretrained` (trained weights);
    the constructor is for code that already holds the parts.

    The data path of :meth:`predict`: audio -> :func:`~speechface.audio.load_audio` (or, for
    long inputs, :func:`~speechface.speech.longform.feature_blocks`) -> the feature extractor ->
    :meth:`normalize` -> the network -> :meth:`calibrate` -> :meth:`delay` (the fitted
    :attr:`output_delay`, see :mod:`speechface.speech.delay`) -> ``space.activate`` ->
    :class:`~speechface.core.results.Prediction`.

    Args:
        network: a registered :class:`~speechface.speech.estimators.Estimator`.
        features: a registered feature extractor module (``speechface.audio.features``).
        name: model name reported in results and files.
        pretrained: whether the weights were trained (False for :meth:`create`).
        info: free-form metadata written to ``config.json`` (teacher, data, metrics, licence).
    """

    kind: ClassVar[str] = "estimator"
    registry = ESTIMATORS
    config_format: ClassVar[str] = FORMAT
    card_tags: ClassVar[tuple[str, ...]] = ("speech", "facial-action-units")
    space_name: ClassVar[str | None] = None
    network: Estimator

    def __init__(self, network: Estimator, features: nn.Module, *, name: str | None = None,
                 pretrained: bool = False, info: dict[str, Any] | None = None) -> None:
        if self.space_name is not None and network.space.name != self.space_name:
            raise ModelError(f"{type(self).__name__} predicts {self.space_name}, but the network "
                             f"predicts {network.space.name}; use "
                             f"{estimator_class(network.space.name).__name__}")
        n_feat = int(features.n_features)
        if n_feat != network.in_features:
            raise ModelError(f"feature extractor gives {n_feat} features per frame but the "
                             f"network expects {network.in_features}")
        super().__init__(network, name=name, pretrained=pretrained, info=info)
        self.features = features
        self.register_buffer("feature_mean", torch.zeros(n_feat))
        self.register_buffer("feature_std", torch.ones(n_feat))
        self.register_buffer("out_scale", torch.ones(network.out_dim))
        self.register_buffer("out_bias", torch.zeros(network.out_dim))
        self._output_delay = 0.0

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
        target = estimator_class(network.space.name) if cls is SpeechEstimator else cls
        return target(network, fx, name=name, pretrained=False)

    @classmethod
    def default_model_name(cls) -> str:
        """The packaged default model of this class's space (``au17`` for SpeechEstimator)."""
        from ..pretrained import DEFAULT_MODELS

        key = cls.space_name or "au17"
        if key not in DEFAULT_MODELS:
            raise ModelError(f"no packaged default model for {key} in this version; "
                             f"pass a model folder or Hub repo id")
        return DEFAULT_MODELS[key]

    @classmethod
    def from_config(cls: type[S], config: dict[str, Any], where: Path) -> S:
        """Build the model a ``config.json`` describes (random weights); the class follows the
        space (``SpeechEstimator.from_pretrained`` gives an :class:`AUEstimator` for ``au17``).
        """
        space = config.get("space")
        target = cls
        if cls is SpeechEstimator:
            target = estimator_class(space)
        elif cls.space_name is not None and space != cls.space_name:
            raise ModelError(f"{where}: this model predicts {space}, not {cls.space_name}; load it "
                             f"with {estimator_class(space).__name__}")
        net_cls = ESTIMATORS.get(config["architecture"])
        feat = config.get("feature", {"name": "logmel", "args": {}})
        fx = FEATURES.create(feat["name"], **feat.get("args", {}))
        network = net_cls(space=space, **config.get("model_args", {}))
        model = target(network, fx, name=config.get("name"),
                       pretrained=bool(config.get("pretrained")), info=config.get("info"))
        model.output_delay = config.get("output_delay_frames", 0.0)
        return model

    def extra_config(self) -> dict[str, Any]:
        fx = self.features
        return {
            "space": self.space.name,
            "labels": list(self.space.labels),
            "frame_level": self.network.frame_level,
            "feature": {"name": getattr(fx, "registry_name", "logmel"), "args": fx.config()},
            "sample_rate": self.sample_rate,
            "fps": self.fps,
            "output_delay_frames": self.output_delay,
        }

    def card_summary(self) -> str:
        return (f"{self.network.arch} estimator predicting {self.space.name} from "
                f"{self.config()['feature']['name']} features at {self.fps} fps")

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

    @property
    def output_delay(self) -> float:
        """Frames by which predictions are shifted later after the network (0: none; fitted
        per model on development speakers, see :mod:`speechface.speech.delay`). Setting a
        negative or non-finite value raises ValueError; an utterance-level model keeps 0."""
        return self._output_delay

    @output_delay.setter
    def output_delay(self, frames: float) -> None:
        d = check_delay(frames)
        if d and not self.network.frame_level:
            raise ValueError(f"model {self.name!r} predicts one vector per utterance: it has no "
                             "frames to delay (output_delay must stay 0)")
        self._output_delay = d

    def delay(self, raw: torch.Tensor) -> torch.Tensor:
        """Calibrated frames ``(frames, dim)`` -> shifted :attr:`output_delay` frames later
        (:func:`~speechface.speech.delay.delay_outputs`; unchanged when it is 0, as it always
        is for an utterance-level model's ``(dim,)`` vector)."""
        return delay_outputs(raw, self._output_delay) if self._output_delay else raw

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
        return load_audio(audio, sample_rate, target_rate=self.sample_rate)

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Feature frames ``(..., frames, n_features)`` -> normalised with the training
        statistics: ``(feats - feature_mean) / feature_std``."""
        return (feats - self.feature_mean) / self.feature_std

    def calibrate(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw network outputs ``(..., out_dim)`` -> ``raw * out_scale + out_bias``."""
        return raw * self.out_scale + self.out_bias

    def featurize(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` -> normalised ``(..., frames, n_features)``."""
        return self.normalize(self.features(wave.to(self.device)).transpose(-1, -2))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised features ``(batch, frames, n_features)`` -> raw outputs (calibrated)."""
        return self.calibrate(self.network(x, lengths))

    def to_prediction(self, raw: torch.Tensor, source: Any = None) -> Prediction:
        """Calibrated raw outputs ``(frames, dim)`` (or ``(dim,)``) -> a
        :class:`~speechface.core.results.Prediction` of the space's values (``space.activate``).

        ``source`` (a path) is recorded in the result.
        """
        vals = self.space.activate(raw).float().cpu().numpy()
        if vals.ndim == 1:
            vals = vals[None]
        return Prediction(values=vals, labels=self.space.labels, columns=self.space.columns,
                          space=self.space.name, fps=float(self.fps), model=self.name,
                          pretrained=self.pretrained,
                          source=str(source) if isinstance(source, (str, os.PathLike)) else None,
                          frame_level=self.network.frame_level)

    def predict_features(self, feats: torch.Tensor, source: Any = None) -> Prediction:
        """Predict from feature frames ``(frames, n_features)`` (the extractor's output,
        transposed, before normalisation), in one network call.

        Example:
            >>> est = AUEstimator.create("mlp")
            >>> est.predict_features(torch.zeros(50, 80)).values.shape
            (50, 17)
        """
        with self.eval_mode():
            raw = self.network(self.normalize(feats.to(self.device))[None])[0]
            return self.to_prediction(self.delay(self.calibrate(raw)), source)

    def predict_feature_blocks(self, blocks: Iterable[torch.Tensor], source: Any = None
                               ) -> Prediction:
        """Predict from consecutive blocks of feature frames with bounded memory: a network
        that streams (:meth:`~speechface.speech.estimators.Estimator.stream`) runs on each block as it
        comes; any other gets the concatenated frames. Same values as :meth:`predict_features`
        on the concatenation (up to float32 rounding).

        Example:
            >>> est = AUEstimator.create("cnn")
            >>> est.predict_feature_blocks([torch.zeros(30, 80), torch.zeros(20, 80)]).values.shape
            (50, 17)
        """
        with self.eval_mode():
            if self.network.stream_reason() is not None:
                return self.predict_features(torch.cat(list(blocks)), source)
            ns = self.network.stream()
            raws = [ns.push(self.normalize(b.to(self.device))) for b in blocks]
            none = torch.zeros(0, int(self.features.n_features), device=self.device)
            raws.append(ns.push(none, final=True))
            return self.to_prediction(self.delay(self.calibrate(torch.cat(raws))), source)

    def predict(self, audio: Any, sample_rate: int | None = None, *,
                chunk_seconds: float | None = None) -> Prediction:
        """Predict values for one input.

        Args:
            audio: a file path (wav, flac, ogg, mp3), or a ``(samples,)`` / ``(channels, samples)``
                numpy array or torch tensor (then give ``sample_rate``). Any rate; resampled.
            sample_rate: sample rate of an array input.
            chunk_seconds: process the input in blocks of this many seconds with bounded memory
                (:func:`~speechface.speech.longform.feature_blocks`; same values up to float32
                rounding). Inputs longer than ``speechface.speech.longform.LONG_SECONDS`` (10 min) are
                processed so by default.

        Returns:
            A :class:`~speechface.core.results.Prediction`: ``(frames, dim)`` values at 25 fps,
            frame n at n/25 s (one row for utterance-level models).
        """
        if chunk_seconds is not None or longform.is_long(audio, sample_rate):
            blocks = longform.feature_blocks(self.features, audio, sample_rate,
                                             longform.check_chunk(chunk_seconds))
            return self.predict_feature_blocks(blocks, audio)
        wave = self.load(audio, sample_rate)
        with self.eval_mode():
            feats = self.features(wave.to(self.device)).T
        return self.predict_features(feats, audio)

    def predict_batch(self, audios: Sequence[Any], sample_rates: Sequence[int | None] | int | None = None,
                      batch_size: int = 16) -> list[Prediction]:
        """Predict for several inputs, padded into batches; same values as :meth:`predict`."""
        if sample_rates is None or isinstance(sample_rates, int):
            sample_rates = [sample_rates] * len(audios)
        if len(sample_rates) != len(audios):
            raise ValueError(f"{len(audios)} inputs but {len(sample_rates)} sample rates")
        feats = [self.featurize(self.load(a, sr)) for a, sr in zip(audios, sample_rates)]
        out: list[Prediction] = []
        with self.eval_mode():
            for start in range(0, len(feats), batch_size):
                chunk = feats[start:start + batch_size]
                lengths = torch.tensor([len(f) for f in chunk])
                x = nn.utils.rnn.pad_sequence(chunk, batch_first=True)
                raw = self(x, lengths.to(self.device))
                for i, n in enumerate(lengths.tolist()):
                    r = self.delay(raw[i, :n]) if self.network.frame_level else raw[i]
                    out.append(self.to_prediction(r, audios[start + i]))
        return out

    def stream(self, chunk_frames: int = 1, sample_rate: int | None = None) -> Any:
        """A :class:`~speechface.speech.streaming.StreamingEstimator`: push audio chunks of any size,
        get each 25 fps frame once it is final (same values as :meth:`predict`; latency
        ``(lookahead + 1) / 25`` s, cnn 0.36 s). ``rnn`` and utterance-level models raise
        :class:`~speechface.speech.streaming.StreamingError`."""
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


def estimator_class(space: str | None) -> type[SpeechEstimator]:
    """The estimator class of a conditioning space: ``au17`` -> :class:`AUEstimator`,
    ``emotion8`` -> :class:`EmotionEstimator`, ``landmarks68`` -> :class:`LandmarkEstimator`,
    ``blendshapes52`` -> :class:`BlendshapeEstimator`, anything else -> :class:`SpeechEstimator`.

    Example:
        >>> estimator_class("emotion8").__name__
        'EmotionEstimator'
    """
    for cls in (AUEstimator, EmotionEstimator, LandmarkEstimator, BlendshapeEstimator):
        if cls.space_name == space:
            return cls
    return SpeechEstimator
