"""Models packaged with the library (they load offline on a fresh install).

Each sub-folder holding a ``config.json`` is a model: ``config.json`` + ``model.safetensors`` +
``README.md`` (model card). The same folder is what ``push_to_hub`` publishes to
``speechface/<name>`` on the Hugging Face Hub.

In: a model name. Out: its packaged folder (``packaged_dir``), its ``config.json``
(``pretrained_info``), the default model per space and family (``DEFAULT_MODELS``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["DEFAULT_MODELS", "packaged_dir", "list_pretrained", "pretrained_info"]

_HERE = Path(__file__).parent

#: The model loaded by ``from_pretrained()`` with no argument, per conditioning space / family;
#: ``animate_<space>`` is the estimator :func:`speechface.animate` drives translators with when
#: it differs (the translators are trained on the MediaPipe AU proxy, not OpenFace-calibrated
#: values), ``translator_<space>`` the translator for that space, ``stream_<space>`` the model
#: ``speechface stream`` uses when it differs (it must stream: log-mel features).
DEFAULT_MODELS: dict[str, str] = {
    "au17": "cnn.au17-whisper-openface",
    "animate_au17": "cnn.au17-whisper",
    "emotion8": "stats_pool.emotion8-ravdess-whisper",
    # streaming (``est.stream()``, ``speechface stream``) needs log-mel models: the Whisper
    # defaults above attend to whole encoder windows
    "stream_au17": "cnn.au17-mediapipe-openface",
    "stream_emotion8": "dcnn.emotion8-ravdess",
    # one AU vector per utterance (lstm_mfcc): animate(..., hold_expression=True)
    "utterance_au17": "lstm_mfcc.au17-ravdess-prototypes",
    "landmarks68": "cnn.landmarks68-arkit",
    # the landmark default is centred over each utterance (it does not stream): the live mode
    # uses the log-mel cnn_gru
    "stream_landmarks68": "cnn_gru.landmarks68-mediapipe",
    "expression": "vgg13.ferplus",
    "translator": "mesh_warp.au17-mediapipe",
    "translator_ganimation": "ganimation.lfw64-mediapipe",
    "translator_landmarks68": "landmark_warp.lfw64-pairs",
    "blendshapes52": "cnn.blendshapes52-whisper",
    "stream_blendshapes52": "cnn.blendshapes52-logmel",
}


@lru_cache(maxsize=1)
def _index() -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted(_HERE.glob("*/config.json"))}


def packaged_dir(name: str) -> Path | None:
    """Folder of the packaged model ``name``, or None."""
    return _index().get(name)


def pretrained_info(name: str) -> dict:
    """The ``config.json`` of a packaged model."""
    folder = packaged_dir(name)
    if folder is None:
        raise KeyError(name)
    return json.loads((folder / "config.json").read_text())


def list_pretrained(kind: str | None = None, space: str | None = None) -> list[str]:
    """Names of packaged models, optionally only of one kind (``"estimator"``...) or space."""
    out = []
    for name in _index():
        cfg = pretrained_info(name)
        if kind is not None and cfg.get("kind") != kind:
            continue
        if space is not None and cfg.get("space") != space:
            continue
        out.append(name)
    return out
