"""Facial-expression recognition (the image-side emotion teacher): face crop -> EMOTION8.

>>> from speechface.teachers.expression import ExpressionRecognizer
>>> fer = ExpressionRecognizer.from_pretrained()          # packaged vgg13.ferplus # doctest: +SKIP
>>> fer.predict("face.jpg").shape                                                  # doctest: +SKIP
(1, 8)

Importing this package registers the built-in architectures in
:data:`speechface.core.registry.EXPRESSION` (``fer_cnn``, ``vgg13``).
"""

from .base import (
    DEFAULT_EXPRESSION_MODEL,
    ExpressionNet,
    ExpressionRecognizer,
    load_face_images,
)
from .cnn import FerCNN
from .vgg import VGG13

__all__ = ["ExpressionNet", "ExpressionRecognizer", "FerCNN", "VGG13", "load_face_images",
           "DEFAULT_EXPRESSION_MODEL"]
