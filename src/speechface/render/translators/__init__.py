"""Image translators: face + condition (AUs / emotions / landmarks) -> animated face (registry
``TRANSLATORS``).

Importing this package registers the built-in architectures ``ganimation`` (GANimation,
Pumarola et al. ECCV 2018; AUs or emotions), ``landmark_gan`` (the same generator driven by
landmark heatmaps) and ``landmark_warp`` (a U-Net that moves the face's pixels onto target
landmarks: flow + attention + colour) and ``mesh_warp`` (the photo's own face mesh moved by a
fitted blendshape basis, warped at full resolution: the default of ``animate``).
:class:`Translator` is the user-facing model:

>>> from speechface.render.translators import Translator               # doctest: +SKIP
>>> tr = Translator.from_pretrained()                            # doctest: +SKIP
>>> frames = tr.translate(face_uint8, aus_per_frame)             # doctest: +SKIP
"""

from ...core.registry import TRANSLATORS
from .base import ImageTranslator, Translator
from .ganimation import GANimationCritic, GANimationGenerator
from .landmark_gan import LandmarkGenerator
from .landmark_warp import LandmarkWarpGenerator
from .mesh_warp import MeshWarpRenderer

__all__ = ["ImageTranslator", "Translator", "GANimationGenerator", "GANimationCritic",
           "LandmarkGenerator", "LandmarkWarpGenerator", "MeshWarpRenderer", "create_translator",
           "list_translators"]


def create_translator(name: str = "ganimation", **kwargs: object) -> ImageTranslator:
    """Build a registered translator network with random weights.

    Example:
        >>> net = create_translator("ganimation", image_size=32, conv_dim=8, repeat_num=1)
        >>> net.cond_dim
        17
    """
    return TRANSLATORS.create(name, **kwargs)


def list_translators(pattern: str = "*") -> list[str]:
    """Names of the registered translator architectures (shell-style wildcards)."""
    return TRANSLATORS.list(pattern)
