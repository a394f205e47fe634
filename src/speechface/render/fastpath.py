"""Faster face translation for animation: bf16, channels-last, batching, frame reuse, compile.

:func:`translate` is a drop-in for :meth:`Translator.translate
<speechface.render.translators.Translator.translate>` with speed options (:class:`FastOptions`):

- ``bf16``: run the network under ``torch.autocast`` in bfloat16 (CPUs with AVX512-BF16 / AMX,
  and GPUs); the composition with the full-resolution face stays float32. Pixels differ from
  fp32 by a few uint8 units (``benchmarks/bench_animate.py`` reports the maximum).
- ``channels_last``: NHWC memory layout for the convolutions (oneDNN's native layout on CPU);
  same values up to float rounding.
- ``batch_size``: frames per network call.
- ``skip_tolerance``: a frame whose condition differs from the last *computed* frame's by at
  most this much in every dimension (space units: AU intensity 0-5, or probability) reuses that
  frame's image instead of running the network. Speech conditions change slowly at 25 fps,
  especially after smoothing, so a tolerance of 0.05 AU skips many frames; 0 skips only exact
  repeats (silence, held values) and is lossless.
- ``compile``: ``torch.compile`` the network (inductor; needs a C++ compiler on CPU, costs a
  one-off compilation of tens of seconds, and recompiles for each new batch size: worth it for
  long animations only).

Example:
    >>> import numpy as np
    >>> from speechface.render.translators import Translator
    >>> tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
    >>> face = np.zeros((48, 48, 3), np.uint8)
    >>> cond = np.zeros((10, 17), np.float32)
    >>> out = translate(tr, face, cond, FastOptions(bf16=True, skip_tolerance=0.05))
    >>> out.shape
    (10, 48, 48, 3)
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

__all__ = ["FastOptions", "translate", "keyframes", "accelerated", "bf16_supported"]


@dataclass(frozen=True)
class FastOptions:
    """Speed options of :func:`translate` (all off = :meth:`Translator.translate` exactly).

    Attributes:
        bf16: bfloat16 autocast for the network.
        channels_last: NHWC memory layout for the network and its input.
        batch_size: frames per network call.
        skip_tolerance: reuse the last computed frame while every condition dimension stays
            within this distance of it (0 = only exact repeats).
        compile: ``torch.compile`` the network's forward pass.
    """

    bf16: bool = False
    channels_last: bool = False
    batch_size: int = 16
    skip_tolerance: float = 0.0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (np.isfinite(self.skip_tolerance) and self.skip_tolerance >= 0):
            raise ValueError(f"skip_tolerance must be a finite number >= 0, got "
                             f"{self.skip_tolerance!r}")

    @classmethod
    def fastest(cls, *, skip_tolerance: float = 0.0, compile: bool = False) -> FastOptions:
        """The fastest settings measured on CPU (``benchmarks/bench_animate.py``): bf16 when the
        CPU supports it natively (2x at 128 px; channels-last gave nothing more), batches of
        16; frame reuse and compile as given (compile: +35 % with bf16, after 10-20 s).

        Example:
            >>> FastOptions.fastest().batch_size
            16
        """
        return cls(bf16=bf16_supported(), channels_last=False, batch_size=16,
                   skip_tolerance=skip_tolerance, compile=compile)

    def with_(self, **changes: Any) -> FastOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether bfloat16 matmuls/convolutions are native on ``device`` (AVX512-BF16/AMX, or a
    GPU that supports bf16)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def keyframes(cond: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames to compute, and for every frame the computed frame it shows.

    Frame ``i`` is computed when some dimension of ``cond[i]`` differs by more than
    ``tolerance`` from the last computed frame (frame 0 always is); otherwise it reuses it.

    Args:
        cond: ``(N, D)`` conditions.
        tolerance: maximum absolute difference per dimension (>= 0).

    Returns:
        ``(keep, source)``: indices of the computed frames (increasing), and ``(N,)`` positions
        into ``keep`` giving each frame's image.

    Example:
        >>> keep, src = keyframes(np.array([[0.0], [0.01], [0.5], [0.52]]), 0.05)
        >>> keep.tolist(), src.tolist()
        ([0, 2], [0, 0, 1, 1])
    """
    c = np.asarray(cond, dtype=np.float64)
    n = len(c)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keep = [0]
    source = np.zeros(n, np.int64)
    last = c[0]
    for i in range(1, n):
        if np.abs(c[i] - last).max() > tolerance:
            keep.append(i)
            last = c[i]
        source[i] = len(keep) - 1
    return np.asarray(keep, np.int64), source


_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, Any] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def accelerated(translator: Any, options: FastOptions) -> Iterator[None]:
    """Apply ``channels_last`` / ``compile`` / ``bf16`` to ``translator`` for the duration.

    The memory format is restored afterwards; the compiled forward is cached per network.

    Example:
        >>> from speechface.render.translators import Translator
        >>> tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
        >>> with accelerated(tr, FastOptions(channels_last=True)):
        ...     out = tr.translate(np.zeros((32, 32, 3), np.uint8), np.zeros(17))
    """
    net = translator.network
    patched = False
    if options.channels_last:
        net.to(memory_format=torch.channels_last)
    if options.compile:
        fn = _COMPILED.get(net)
        if fn is None:
            fn = torch.compile(type(net).forward_warp.__get__(net), dynamic=False)
            _COMPILED[net] = fn
        net.forward_warp = fn
        patched = True
    dev = translator.device.type
    autocast = (torch.autocast(dev, dtype=torch.bfloat16) if options.bf16
                else contextlib.nullcontext())
    try:
        with autocast:
            yield
    finally:
        if patched:
            del net.forward_warp
        if options.channels_last:
            net.to(memory_format=torch.contiguous_format)


def translate(translator: Any, faces: Any, cond: Any, options: FastOptions | None = None) -> Any:
    """:meth:`Translator.translate` with the speed options of :class:`FastOptions`.

    Args:
        translator: a :class:`~speechface.render.translators.Translator`.
        faces: one face ``(H, W, 3)`` / ``(1, H, W, 3)`` uint8 (the animation case), or ``N``
            faces (frame reuse then only applies where the face is the same one).
        cond: ``(N, D)`` conditions.
        options: speed options (default: none, i.e. exactly ``translate``).

    Returns:
        uint8 ``(N, H, W, 3)``.

    Example:
        >>> from speechface.render.translators import Translator
        >>> tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
        >>> translate(tr, np.zeros((32, 32, 3), np.uint8), np.zeros((3, 17))).shape
        (3, 32, 32, 3)
    """
    opts = options or FastOptions()
    c = translator._conditions(cond).numpy()
    face_arr = np.asarray(faces) if not isinstance(faces, torch.Tensor) else faces
    one_face = getattr(face_arr, "ndim", 0) == 3 or (getattr(face_arr, "ndim", 0) == 4
                                                    and len(face_arr) == 1)
    if one_face and getattr(face_arr, "ndim", 0) == 3:
        face_arr = face_arr[None]
    keep = source = None
    if one_face and len(c) > 1:
        keep, source = keyframes(c, opts.skip_tolerance)
        if len(keep) < len(c):
            c = c[keep]
        else:
            keep = source = None
    with accelerated(translator, opts):
        out = translator.translate(face_arr, c, batch_size=opts.batch_size)
    if out.ndim == 3:
        out = out[None]
    if source is not None:
        out = out[source]
    return out
