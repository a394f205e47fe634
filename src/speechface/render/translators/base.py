"""Image translators: a face image plus a condition vector -> the face with that expression.

Two layers, like the speech estimators:

- :class:`ImageTranslator` is the network (an ``nn.Module`` in the ``TRANSLATORS`` registry):
  ``forward(img (B, 3, H, W) in [-1, 1], cond (B, D)) -> (out (B, 3, H, W) in [-1, 1],
  attention (B, 1, H, W) in (0, 1))``. ``cond`` holds values of the conditioning space (AU
  intensities 0-5 for ``au17``, probabilities for ``emotion8``); the network normalises them
  itself with :meth:`ImageTranslator.normalize_condition` (``(c - low) / (high - low)``: AU / 5
  for ``au17``, unchanged for ``emotion8``).
- :class:`Translator` is the user-facing wrapper: ``create`` / ``from_pretrained`` /
  ``save_pretrained`` / ``push_to_hub`` (safetensors + ``config.json`` with ``"kind":
  "translator"``) and :meth:`Translator.translate` on uint8 images of any size.

Adding an architecture = one class and one decorator::

    from speechface.core.registry import TRANSLATORS
    from speechface.render.translators import ImageTranslator

    @TRANSLATORS.register("tiny")
    class Tiny(ImageTranslator):
        def __init__(self, space: str = "au17", image_size: int = 32):
            super().__init__(space, image_size)
            self.net = torch.nn.Conv2d(3 + self.cond_dim, 4, 3, padding=1)

        def forward(self, img, cond):
            x = self.net(torch.cat([img, self.tile_condition(cond, img)], 1))
            a = x[:, 3:].sigmoid()
            return a * img + (1 - a) * x[:, :3].tanh(), a

The constructor's arguments are recorded in ``hparams`` by the same mechanism as
:class:`~speechface.speech.estimators.Estimator` (both subclass the registered-network base) and
written to ``config.json``; loading and saving are those of every model family
(:class:`~speechface.core.hub.PretrainedModel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ...core._hparams import Network
from ...core.errors import ImageError, ModelError
from ...core.hub import PretrainedModel
from ...core.registry import TRANSLATORS
from ...spaces.space import Space, get_space

__all__ = ["ImageTranslator", "Translator", "FORMAT", "identity_grid", "warp_image"]

FORMAT = "speechface.translator/1"
T = TypeVar("T", bound="Translator")


def identity_grid(b: int, h: int, w: int, *, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """The ``grid_sample`` grid that returns its input: ``(B, H, W, 2)`` pixel centres in
    ``[-1, 1]`` (``align_corners=False``), x first."""
    ys = (torch.arange(h, dtype=dtype, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=dtype, device=device) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None].expand(b, -1, -1, -1)


def warp_image(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img (B, C, H, W)`` at ``identity + flow``; ``flow (B, 2, h, w)`` (x, y in the
    normalised ``[-1, 1]`` units) is resized to ``H x W`` first, so a flow computed at the
    network's size warps an image of any size.

    Example:
        >>> img = torch.arange(16.).view(1, 1, 4, 4)
        >>> bool(torch.allclose(warp_image(img, torch.zeros(1, 2, 2, 2)), img))
        True
    """
    b, _, h, w = img.shape
    if flow.shape[-2:] != (h, w):
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    grid = identity_grid(b, h, w, dtype=img.dtype, device=img.device) + \
        flow.to(img.dtype).permute(0, 2, 3, 1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ImageTranslator(Network):
    """Base class of the image translation networks (registry ``TRANSLATORS``).

    Constructor arguments are recorded in ``hparams``; ``arch`` is the registry name.

    Args:
        space: conditioning space (``"au17"``, ``"emotion8"`` or ``"landmarks68"``);
            ``cond_dim = space.dim``.
        image_size: square input size the network is built for (a multiple of 4).

    Subclasses implement ``forward(img, cond) -> (out, attention)`` (see the module docstring).
    """

    default_space: ClassVar[str] = "au17"

    def __init__(self, space: str = "au17", image_size: int = 128) -> None:
        super().__init__()
        self.space: Space = get_space(space)
        if self.space.name not in ("au17", "emotion8", "landmarks68"):
            raise ValueError(f"an image translator is conditioned on au17, emotion8 or "
                             f"landmarks68, not {self.space.name!r}")
        if not isinstance(image_size, int) or image_size < 8 or image_size % 4:
            raise ValueError(f"image_size must be an int >= 8 divisible by 4, got {image_size!r}")
        self.image_size = image_size
        self.cond_dim = self.space.dim
        low = self.space.low if self.space.low is not None else 0.0
        high = self.space.high if self.space.high is not None else 1.0
        self.register_buffer("cond_low", torch.tensor(float(low)), persistent=False)
        self.register_buffer("cond_scale", torch.tensor(1.0 / float(high - low)), persistent=False)

    def normalize_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """Space values -> network scale ``(c - low) / (high - low)``: AU / 5 for ``au17``.

        Example:
            >>> net = TRANSLATORS.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
            >>> net.normalize_condition(torch.full((1, 17), 5.0)).max().item()
            1.0
        """
        return (cond.to(self.cond_scale.dtype) - self.cond_low) * self.cond_scale

    def tile_condition(self, cond: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` space values -> normalised ``(B, D, H, W)`` maps the size of ``img``."""
        c = self.normalize_condition(cond).to(img.dtype)
        return c[:, :, None, None].expand(-1, -1, img.shape[-2], img.shape[-1])

    @property
    def condition_channels(self) -> int:
        """Channels :meth:`encode_condition` gives (``cond_dim`` for the tiled vector)."""
        return self.cond_dim

    def encode_condition(self, cond: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """The condition as image-sized maps fed with the RGB input: :meth:`tile_condition`.

        Architectures with a spatial encoding (landmark heatmaps) override this together with
        :attr:`condition_channels`.
        """
        return self.tile_condition(cond, img)

    def check_inputs(self, img: torch.Tensor, cond: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``img`` is ``(B, 3, H, W)`` and ``cond`` is ``(B, D)``."""
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"img must be (B, 3, H, W), got {tuple(img.shape)}")
        if cond.ndim != 2 or cond.shape[1] != self.cond_dim or cond.shape[0] != img.shape[0]:
            raise ValueError(f"cond must be ({img.shape[0]}, {self.cond_dim}) for space "
                             f"{self.space.name}, got {tuple(cond.shape)}")

    def forward_parts(self, img: torch.Tensor, cond: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(colour (B, 3, H, W) in [-1, 1], attention (B, 1, H, W) in (0, 1))``.

        Architectures with an attention/colour split implement this and inherit
        :meth:`forward`; others override :meth:`forward` and leave this unimplemented.
        """
        raise NotImplementedError(f"{type(self).__name__} has no colour/attention split")

    def forward_warp(self, img: torch.Tensor, cond: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(colour, attention, flow)``: :meth:`forward_parts` and no flow (``None``).

        Warping architectures return a ``(B, 2, H, W)`` flow in ``grid_sample`` units (the
        input is sampled at identity + flow before the attention blend); the user-facing
        :meth:`Translator.translate` then warps the full-resolution image with it.
        """
        colour, attention = self.forward_parts(img, cond)
        return colour, attention, None

    def forward(self, img: torch.Tensor, cond: torch.Tensor  # type: ignore[override]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``img (B, 3, H, W)`` in [-1, 1], ``cond (B, D)`` space values -> ``(out, attention)``.

        ``out = A * img + (1 - A) * colour`` is ``(B, 3, H, W)`` in [-1, 1]; ``attention`` A
        ``(B, 1, H, W)`` in (0, 1) is the share of the input kept at each pixel.
        """
        colour, attention = self.forward_parts(img, cond)
        return attention * img + (1 - attention) * colour, attention

    def extra_repr(self) -> str:
        return (f"space={self.space.name}, image_size={self.image_size}, "
                f"params={self.num_parameters():,}")


def _as_faces(faces: Any) -> tuple[torch.Tensor, bool]:
    """Faces -> float ``(N, 3, H, W)`` in [0, 1]; also whether a single image was given."""
    if isinstance(faces, np.ndarray):
        arr = faces
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ImageError(f"faces must be uint8 (N, H, W, 3) RGB, got shape {faces.shape}")
        if arr.dtype != np.uint8:
            raise ImageError(f"faces must be uint8 (N, H, W, 3) RGB, got dtype {arr.dtype}")
        t = torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2).float() / 255.0
        return t, faces.ndim == 3
    if isinstance(faces, torch.Tensor):
        single = faces.ndim == 3
        t = faces[None] if single else faces
        if t.ndim != 4:
            raise ImageError(f"faces tensor must be (N, H, W, 3) uint8 or (N, 3, H, W) float, "
                             f"got {tuple(faces.shape)}")
        if t.dtype == torch.uint8:
            if t.shape[-1] != 3:
                raise ImageError(f"uint8 faces tensor must be (N, H, W, 3), got {tuple(faces.shape)}")
            return t.permute(0, 3, 1, 2).float() / 255.0, single
        if not t.is_floating_point() or t.shape[1] != 3:
            raise ImageError(f"float faces tensor must be (N, 3, H, W) in [0, 1], got "
                             f"{tuple(faces.shape)} {t.dtype}")
        if not torch.isfinite(t).all():
            raise ImageError("faces tensor contains NaN or infinite values")
        return t.float().clamp(0, 1), single
    raise ImageError(f"faces must be a uint8 numpy array (N, H, W, 3) or a tensor, "
                     f"got {type(faces).__name__}")


class Translator(PretrainedModel):
    """A trained (or random) image translation network, ready to animate faces.

    Build one with :meth:`create` (random weights) or :meth:`from_pretrained`; loading, saving
    and publishing are those of :class:`~speechface.core.hub.PretrainedModel`.

    Args:
        network: a registered :class:`ImageTranslator`.
        name: model name written into ``config.json``.
        pretrained: whether the weights were trained.
        info: free-form metadata for ``config.json`` (data, teacher, metrics, licence).

    Example:
        >>> tr = Translator.from_pretrained()                       # doctest: +SKIP
        >>> aus = np.zeros((1, 17), np.float32); aus[0, 8] = 4.0    # AU12: smile
        >>> out = tr.translate(face_uint8[None], aus)               # doctest: +SKIP
        >>> out.shape, out.dtype                                    # doctest: +SKIP
        ((1, 128, 128, 3), dtype('uint8'))
    """

    kind: ClassVar[str] = "translator"
    registry = TRANSLATORS
    default_model: ClassVar[str | None] = "translator"
    config_format: ClassVar[str] = FORMAT
    card_tags: ClassVar[tuple[str, ...]] = ("gan", "face-animation", "facial-action-units")
    network: ImageTranslator

    def __init__(self, network: ImageTranslator, *, name: str | None = None,
                 pretrained: bool = False, info: dict[str, Any] | None = None) -> None:
        if not isinstance(network, ImageTranslator):
            raise ModelError(f"network must be an ImageTranslator, got {type(network).__name__}")
        super().__init__(network, name=name, pretrained=pretrained, info=info)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls: type[T], arch: str = "ganimation", *, space: str = "au17",
               name: str | None = None, **model_args: Any) -> T:
        """A translator with random weights from the ``TRANSLATORS`` registry.

        Args:
            arch: architecture name (``"ganimation"``).
            space: ``"au17"`` or ``"emotion8"``.
            **model_args: the architecture's keyword arguments (``image_size``, ``conv_dim``,
                ``repeat_num`` ...).

        Example:
            >>> tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
            >>> tr.translate(np.zeros((2, 50, 40, 3), np.uint8), np.zeros((2, 17))).shape
            (2, 50, 40, 3)
        """
        network = TRANSLATORS.create(arch, space=space, **model_args)
        return cls(network, name=name, pretrained=False)

    @classmethod
    def default_model_name(cls) -> str:
        """``DEFAULT_MODELS["translator"]``, else the first packaged model of kind translator."""
        from ...pretrained import DEFAULT_MODELS, list_pretrained

        name = DEFAULT_MODELS.get("translator")
        if name is None:
            packaged = list_pretrained("translator")
            if not packaged:
                raise ModelError("no packaged translator in this version; pass a model "
                                 "folder or Hub repo id")
            name = packaged[0]
        return name

    @classmethod
    def from_config(cls: type[T], config: dict[str, Any], where: Path) -> T:
        """Build the translator a ``config.json`` describes (random weights)."""
        if config.get("kind") != "translator":
            raise ModelError(f"not a translator config (kind={config.get('kind')!r})")
        network = TRANSLATORS.create(config["architecture"], space=config.get("space", "au17"),
                                     **config.get("model_args", {}))
        return cls(network, name=config.get("name"), pretrained=bool(config.get("pretrained")),
                   info=config.get("info"))

    def extra_config(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "labels": list(self.space.labels),
            "image_size": self.image_size,
            "condition_normalization": "(c - low) / (high - low) inside the network "
                                       f"(low={self.space.low}, high={self.space.high})",
        }

    def card_summary(self) -> str:
        return (f"{self.network.arch} image translator conditioned on {self.space.name}, "
                f"{self.image_size}x{self.image_size} px")

    # ------------------------------------------------------------------ properties
    @property
    def space(self) -> Space:
        """The conditioning space (``au17`` or ``emotion8``)."""
        return self.network.space

    @property
    def labels(self) -> tuple[str, ...]:
        """Names of the condition dimensions."""
        return self.space.labels

    @property
    def image_size(self) -> int:
        """Side of the square images the network works on."""
        return int(self.network.image_size)

    @property
    def device(self) -> torch.device:
        """Device of the weights (of the buffers for a network without parameters)."""
        t = next(self.network.parameters(), None)
        if t is None:
            t = next(self.network.buffers())
        return t.device

    # ------------------------------------------------------------------ computation
    def forward(self, img: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network: ``img (B, 3, S, S)`` in [-1, 1], ``cond (B, D)`` -> ``(out, attention)``."""
        return self.network(img, cond)

    def _conditions(self, cond: Any) -> torch.Tensor:
        c = cond.detach().cpu() if isinstance(cond, torch.Tensor) else np.asarray(cond)
        c = torch.as_tensor(np.asarray(c, dtype=np.float32))
        if c.ndim == 1:
            c = c[None]
        if c.ndim != 2 or c.shape[1] != self.space.dim:
            raise ValueError(f"cond must be (N, {self.space.dim}) values of {self.space.name}, "
                             f"got shape {tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError("cond contains NaN or infinite values")
        return c

    def translate(self, faces: Any, cond: Any, *, batch_size: int = 16,
                  return_attention: bool = False) -> Any:
        """Give faces the expression ``cond``; images of any size (resized to the model's).

        The network runs at ``image_size``; its attention and colour maps are resized back
        and composed with the **original-resolution** input (``A * face + (1 - A) * colour``),
        so pixels the network keeps (attention near 1) keep their full detail. A warping
        network's flow moves the original-resolution pixels first.

        Args:
            faces: uint8 RGB ``(N, H, W, 3)`` (or one ``(H, W, 3)``) numpy array or tensor,
                or a float tensor ``(N, 3, H, W)`` in [0, 1]. Roughly aligned face crops.
            cond: ``(N, D)`` (or ``(D,)``) values of the space: AU intensities 0-5 for
                ``au17``, probabilities for ``emotion8``. One face with N conditions, or N faces
                with one condition, are broadcast.
            batch_size: images per network call.
            return_attention: also return the ``(N, H, W)`` float32 attention maps.

        Returns:
            uint8 ``(N, H, W, 3)`` (``(H, W, 3)`` for a single face and a single condition);
            with ``return_attention``, ``(images, attention)``.

        Raises:
            ImageError: faces of a wrong shape/dtype; ValueError: a bad condition array or
                counts that cannot be broadcast.

        Example:
            >>> tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
            >>> face = np.zeros((64, 64, 3), np.uint8)
            >>> tr.translate(face, np.zeros((5, 17))).shape      # one face, 5 conditions
            (5, 64, 64, 3)
        """
        if getattr(self.network, "full_resolution", False):
            return self._render_full(faces, cond, return_attention)
        imgs, single = _as_faces(faces)
        c = self._conditions(cond)
        n_img, n_cond = len(imgs), len(c)
        if n_img == 0 or n_cond == 0:
            raise ValueError(f"nothing to translate: {n_img} faces, {n_cond} conditions")
        if n_img != n_cond and 1 not in (n_img, n_cond):
            raise ValueError(f"{n_img} faces but {n_cond} conditions (give equal counts, or one "
                             f"of either)")
        n = max(n_img, n_cond)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        h, w = imgs.shape[-2:]
        s = self.image_size
        outs: list[np.ndarray] = []
        atts: list[np.ndarray] = []
        with self.eval_mode():
            dev = self.device
            small_one = None
            if n_img == 1:
                small_one = self._resize(imgs.to(dev), s)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                k = stop - start
                hi = imgs.to(dev).expand(k, -1, -1, -1) if n_img == 1 else imgs[start:stop].to(dev)
                lo = small_one.expand(k, -1, -1, -1) if small_one is not None else self._resize(hi, s)
                cc = c.expand(k, -1) if n_cond == 1 else c[start:stop]
                colour, a, flow, split = self._parts(lo * 2 - 1, cc.to(dev))
                if (h, w) != (s, s):
                    a = self._resize(a, (h, w)).clamp(0, 1)
                    colour = self._resize(colour, (h, w))
                colour = (colour.clamp(-1, 1) + 1) / 2
                if flow is not None:
                    hi = warp_image(hi, flow)
                out = a * hi + (1 - a) * colour if split else colour
                outs.append((out.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
                            .permute(0, 2, 3, 1).cpu().numpy())
                if return_attention:
                    atts.append(a[:, 0].float().cpu().numpy())
        images = np.concatenate(outs)
        attention = np.concatenate(atts) if return_attention else None
        if single and n == 1:
            images = images[0]
            attention = attention[0] if attention is not None else None
        return (images, attention) if return_attention else images

    def _render_full(self, faces: Any, cond: Any, return_attention: bool) -> Any:
        """Networks that render at the input's resolution (``full_resolution = True``, e.g.
        ``mesh_warp``) get the uint8 faces themselves: ``network.render(face, cond)``."""
        arr = faces.detach().cpu().numpy() if isinstance(faces, torch.Tensor) else faces
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape[-1:] != (3,) \
                or arr.ndim not in (3, 4):
            raise ImageError(f"{self.network.arch} renders uint8 (N, H, W, 3) RGB faces, got "
                             f"{getattr(arr, 'shape', type(arr).__name__)} "
                             f"{getattr(arr, 'dtype', '')}")
        single = arr.ndim == 3
        arr = arr[None] if single else arr
        c = self._conditions(cond).numpy()
        n_img, n_cond = len(arr), len(c)
        if n_img != n_cond and 1 not in (n_img, n_cond):
            raise ValueError(f"{n_img} faces but {n_cond} conditions (give equal counts, or one "
                             f"of either)")
        if n_img == 1:
            images = self.network.render(arr[0], c)
        else:
            images = np.concatenate([self.network.render(f, c[i:i + 1] if n_cond > 1 else c)
                                     for i, f in enumerate(arr)])
        if single and len(images) == 1:
            images = images[0]
        if return_attention:
            base = arr if n_img == len(images) or images.ndim == 3 else arr[:1]
            same = (images == (base[0] if images.ndim == 3 else base)).all(-1)
            return images, same.astype(np.float32)
        return images

    def _parts(self, img: torch.Tensor, cond: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
        """``(colour, attention, flow, split)``; without a colour/attention split, colour =
        output; ``flow`` is None unless the network warps."""
        try:
            colour, att, flow = self.network.forward_warp(img, cond)
            return colour, att, flow, True
        except NotImplementedError:
            out, att = self.network(img, cond)
            return out, att, None, False

    @staticmethod
    def _resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
        size = (size, size) if isinstance(size, int) else size
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        down = x.shape[-2] > size[0] or x.shape[-1] > size[1]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=down)

    def __repr__(self) -> str:
        state = "pretrained" if self.pretrained else "random weights"
        return (f"Translator(name={self.name!r}, arch={self.network.arch!r}, "
                f"space={self.space.name!r}, image_size={self.image_size}, {state}, "
                f"params={self.network.num_parameters():,})")
