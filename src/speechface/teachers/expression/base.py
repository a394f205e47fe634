"""Facial-expression recognition from face images: an 8-way FER+ emotion distribution per face.

An :class:`ExpressionRecognizer` bundles an expression network (registered in
:data:`speechface.core.registry.EXPRESSION`) with its preprocessing: any face crop (PIL image, file
path, uint8 array ``(H, W)`` / ``(H, W, 3)`` of any size) becomes grey, is centre-cropped to a
square, resized to the network's input size and normalised with the training pixel statistics.

>>> from speechface.teachers.expression import ExpressionRecognizer
>>> fer = ExpressionRecognizer.from_pretrained()                # packaged, offline  # doctest: +SKIP
>>> probs = fer.predict(["face1.jpg", "face2.jpg"])             # (2, 8)             # doctest: +SKIP
>>> fer.labels[probs[0].argmax()]                                                      # doctest: +SKIP
'happiness'

Adding an architecture = one module with one class::

    @EXPRESSION.register("my_net")
    class MyNet(ExpressionNet):
        def __init__(self, input_size: int = 48, width: int = 16):
            super().__init__(input_size)
            ...
        def forward(self, x):          # (B, 1, S, S) -> (B, 8) logits
            ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ...core._hparams import Network
from ...core.errors import ImageError, ModelError
from ...core.hub import PretrainedModel
from ...core.registry import EXPRESSION
from ...spaces.space import EMOTION8

__all__ = ["ExpressionNet", "ExpressionRecognizer", "load_face_images", "DEFAULT_EXPRESSION_MODEL",
           "FORMAT"]

FORMAT = "speechface.expression/1"
#: Packaged model loaded by :meth:`ExpressionRecognizer.from_pretrained` with no argument
#: (``speechface.pretrained.DEFAULT_MODELS["expression"]`` overrides it when set).
DEFAULT_EXPRESSION_MODEL = "vgg13.ferplus"
R = TypeVar("R", bound="ExpressionRecognizer")


class ExpressionNet(Network):
    """Base class of the expression networks: ``(B, 1, S, S)`` normalised grey faces -> ``(B, 8)``.

    The constructor arguments of a subclass (JSON-plain values) are recorded in ``hparams`` and
    written to ``config.json``, so a saved model can be rebuilt from the registry.

    Args:
        input_size: side ``S`` of the square input in pixels.

    Attributes:
        n_classes: 8, the EMOTION8 classes (neutral, happiness, surprise, sadness, anger,
            disgust, fear, contempt); outputs are raw logits in that order.
    """

    def __init__(self, input_size: int = 48) -> None:
        super().__init__()
        if not isinstance(input_size, int) or input_size < 8:
            raise ValueError(f"input_size must be an int >= 8, got {input_size!r}")
        self.input_size = input_size
        self.n_classes = EMOTION8.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``(batch, 1, S, S)`` normalised pixels -> ``(batch, 8)`` raw logits."""
        raise NotImplementedError


# ------------------------------------------------------------------------------ image input


def _one_image(img: Any, size: int, where: str, via: int | None = None) -> np.ndarray:
    """One image -> ``(size, size)`` uint8 grey (centre-cropped to a square, then resized).

    With ``via``, the square is first resized to ``via`` pixels, then to ``size``.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.is_file():
            raise ImageError(f"{where}: {path}: image file not found")
        try:
            with Image.open(path) as im:
                im.load()
                pil = im.convert("L")
        except (UnidentifiedImageError, OSError) as e:
            raise ImageError(f"{where}: {path}: cannot be read as an image ({e})") from e
    elif isinstance(img, Image.Image):
        try:
            pil = img.convert("L")
        except (OSError, ValueError) as e:
            raise ImageError(f"{where}: PIL image of mode {img.mode!r} cannot become grey ({e})") from e
    else:
        arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else img
        if not isinstance(arr, np.ndarray):
            raise ImageError(f"{where}: expected a file path, a PIL image or a uint8 array "
                             f"(H, W) / (H, W, 3), got {type(img).__name__}")
        if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
            arr = arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3]
        if arr.ndim not in (2, 3):
            raise ImageError(f"{where}: an image array must be (H, W) or (H, W, 3), got shape "
                             f"{arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ImageError(f"{where}: empty image of shape {arr.shape}")
        if arr.dtype == np.uint8:
            pass
        elif np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                raise ImageError(f"{where}: image contains NaN or infinite values")
            if arr.min() < 0 or arr.max() > 1:
                raise ImageError(f"{where}: float images must lie in [0, 1] (got "
                                 f"{arr.min():.3g}..{arr.max():.3g}); pass uint8 for 0-255 pixels")
            arr = np.round(arr * 255).astype(np.uint8)
        else:
            raise ImageError(f"{where}: image dtype {arr.dtype} not supported; use uint8 (0-255) "
                             "or float in [0, 1]")
        pil = Image.fromarray(np.ascontiguousarray(arr)).convert("L")
    w, h = pil.size
    if w == 0 or h == 0:
        raise ImageError(f"{where}: empty image ({w}x{h})")
    if w != h:  # centre-crop to a square so that the face keeps its proportions
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        pil = pil.crop((left, top, left + s, top + s))
    for side in ((via, size) if via else (size,)):
        if pil.size != (side, side):
            pil = pil.resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def load_face_images(images: Any, size: int, via: int | None = None) -> np.ndarray:
    """Turn face images into a ``(N, size, size)`` uint8 grey batch.

    Args:
        images: one image or a sequence of images. An image is a file path, a PIL image, or a
            numpy array / torch tensor ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
            ``(H, W, 4)`` (alpha ignored), uint8 0-255 or float in [0, 1], any size. A 3-D
            array whose last axis is not 1, 3 or 4 is read as a batch ``(N, H, W)``, a 4-D one as
            ``(N, H, W, C)``. Colour becomes grey with Pillow's ITU-R 601-2 luma; non-square
            images are centre-cropped to a square; then bilinear resizing to ``size``.
        size: output side in pixels.
        via: if given, resize each square to ``via`` pixels first, then to ``size`` (a model
            trained on 48-pixel faces upsampled to 64 sees the same blur on any input).

    Returns:
        ``(N, size, size)`` uint8 array.

    Raises:
        ImageError: unreadable file, wrong type, shape or dtype, NaN, out-of-range floats, empty
            input; the message says which image.

    Example:
        >>> load_face_images(np.zeros((128, 100, 3), np.uint8), 48).shape
        (1, 48, 48)
    """
    from PIL import Image

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if isinstance(images, np.ndarray):
        if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)):
            items: list[Any] = list(images)
        else:
            items = [images]
    elif isinstance(images, (str, os.PathLike, Image.Image)):
        items = [images]
    elif isinstance(images, Sequence):
        items = list(images)
    else:
        raise ImageError(f"expected an image or a sequence of images, got {type(images).__name__}")
    if not items:
        raise ImageError("no images given")
    out = np.empty((len(items), size, size), dtype=np.uint8)
    for i, img in enumerate(items):
        out[i] = _one_image(img, size, f"image {i}", via)
    return out


# ------------------------------------------------------------------------------ the wrapper


class ExpressionRecognizer(PretrainedModel):
    """Face image -> FER+ emotion distribution (EMOTION8): a network plus its preprocessing.

    Build one with :meth:`create` (random weights) or :meth:`from_pretrained` (trained, with no
    argument the packaged FER+ model, offline); loading, saving and publishing are those of
    :class:`~speechface.core.hub.PretrainedModel`.

    Args:
        network: a registered :class:`ExpressionNet`.
        name: model name (``"vgg13.ferplus"``).
        pretrained: whether the weights were trained.
        info: free-form metadata written to ``config.json`` (data, metrics, licence).
        source_size: resolution of the training faces when it differs from the network input
            (FER+: 48 for a 64-pixel network); inputs are resized to it first, then to the
            input size, so every face carries the blur the network was trained on.

    Buffers ``pixel_mean`` / ``pixel_std`` (scalars, on the 0-1 pixel scale) normalise inputs:
    ``x = (pixel / 255 - pixel_mean) / pixel_std``.

    Example:
        >>> fer = ExpressionRecognizer.create("fer_cnn", channels=[8, 16], depths=[1, 1])
        >>> fer.predict(np.zeros((64, 64, 3), np.uint8)).shape
        (1, 8)
    """

    kind: ClassVar[str] = "expression"
    registry = EXPRESSION
    default_model: ClassVar[str | None] = "expression"
    config_format: ClassVar[str] = FORMAT
    card_tags: ClassVar[tuple[str, ...]] = ("facial-expression-recognition", "ferplus")
    network: ExpressionNet

    def __init__(self, network: ExpressionNet, *, name: str | None = None, pretrained: bool = False,
                 info: dict[str, Any] | None = None, source_size: int | None = None) -> None:
        if not isinstance(network, ExpressionNet):
            raise ModelError(f"expected an ExpressionNet, got {type(network).__name__}")
        super().__init__(network, name=name or f"{network.arch}.emotion8", pretrained=pretrained,
                         info=info)
        self.register_buffer("pixel_mean", torch.tensor(0.5))
        self.register_buffer("pixel_std", torch.tensor(0.25))
        if source_size is not None and (not isinstance(source_size, int) or source_size < 8):
            raise ModelError(f"source_size must be an int >= 8 or None, got {source_size!r}")
        self.source_size = source_size

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls: type[R], arch: str = "fer_cnn", *, name: str | None = None,
               **model_args: Any) -> R:
        """A recogniser with random weights from the :data:`EXPRESSION` registry.

        Args:
            arch: architecture name (``"fer_cnn"``).
            name: model name.
            **model_args: keyword arguments of the architecture (``input_size``, ``channels`` ...).

        Example:
            >>> ExpressionRecognizer.create("fer_cnn").network.input_size
            48
        """
        net = EXPRESSION.create(arch, **model_args)
        return cls(net, name=name, pretrained=False)

    @classmethod
    def default_model_name(cls) -> str:
        """``DEFAULT_MODELS["expression"]``, else :data:`DEFAULT_EXPRESSION_MODEL`."""
        from ...pretrained import DEFAULT_MODELS

        return DEFAULT_MODELS.get("expression", DEFAULT_EXPRESSION_MODEL)

    @classmethod
    def from_config(cls: type[R], config: dict[str, Any], where: Path) -> R:
        """Build the recogniser a ``config.json`` describes (random weights)."""
        labels = config.get("labels")
        if labels is not None and list(labels) != list(EMOTION8.labels):
            raise ModelError(f"labels {labels} are not the EMOTION8 classes")
        net = EXPRESSION.create(config["architecture"], **config.get("model_args", {}))
        return cls(net, name=config.get("name"), pretrained=bool(config.get("pretrained")),
                   info=config.get("info"), source_size=config.get("source_size"))

    def extra_config(self) -> dict[str, Any]:
        return {
            "space": EMOTION8.name,
            "labels": list(EMOTION8.labels),
            "input_size": self.input_size,
            "source_size": self.source_size,
            "input": "grey face crop, centre-cropped square, resized bilinearly (to source_size "
                     "first when set)",
        }

    def card_summary(self) -> str:
        return (f"{self.network.arch} expression recogniser: {self.input_size}x{self.input_size} "
                "grey face -> 8 FER+ emotion probabilities")

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> tuple[str, ...]:
        """The 8 emotion names in output order."""
        return EMOTION8.labels

    @property
    def input_size(self) -> int:
        """Side of the square network input in pixels."""
        return int(self.network.input_size)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def set_normalization(self, mean: float, std: float) -> None:
        """Set the pixel mean and standard deviation (0-1 pixel scale) of the training data."""
        self.pixel_mean.fill_(float(mean))
        self.pixel_std.fill_(max(float(std), 1e-5))

    # ------------------------------------------------------------------ computation
    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, S, S)`` or float 0-1 ``(N, 1, S, S)`` pixels -> normalised ``(N, 1, S, S)``."""
        x = pixels.to(self.device)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if x.ndim == 3:
            x = x[:, None]
        return (x - self.pixel_mean) / self.pixel_std

    def preprocess(self, images: Any) -> torch.Tensor:
        """Images (see :func:`load_face_images`) -> normalised ``(N, 1, S, S)`` float tensor."""
        via = self.source_size if self.source_size not in (None, self.input_size) else None
        return self.normalize(torch.from_numpy(load_face_images(images, self.input_size, via)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 1, S, S)`` faces -> ``(N, 8)`` raw logits."""
        return self.network(x)

    def predict(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """Emotion probabilities for face images.

        Args:
            images: one image or a sequence of images: file paths, PIL images, uint8 arrays
                ``(H, W)`` / ``(H, W, 3)`` of any size (see :func:`load_face_images`).
            batch_size: images per forward pass.

        Returns:
            ``(N, 8)`` float32 array; rows sum to 1, columns in :attr:`labels` order
            (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt).

        Raises:
            ImageError: an input that is not a usable image.

        Example:
            >>> probs = fer.predict(["a.jpg", np.zeros((48, 48), np.uint8)])   # doctest: +SKIP
            >>> probs.shape                                                    # doctest: +SKIP
            (2, 8)
        """
        x = self.preprocess(images)
        out = []
        with self.eval_mode():
            for i in range(0, len(x), batch_size):
                out.append(self(x[i:i + batch_size]).float().softmax(-1).cpu())
        return torch.cat(out).numpy()

    def predict_labels(self, images: Any) -> list[str]:
        """The most probable emotion name per image.

        Example:
            >>> fer.predict_labels("face.jpg")                              # doctest: +SKIP
            ['happiness']
        """
        return [self.labels[i] for i in self.predict(images).argmax(1)]

    def __repr__(self) -> str:
        state = "pretrained" if self.pretrained else "random weights"
        return (f"{type(self).__name__}(name={self.name!r}, arch={self.network.arch!r}, "
                f"input={self.input_size}x{self.input_size}, {state}, "
                f"params={self.network.num_parameters():,})")
