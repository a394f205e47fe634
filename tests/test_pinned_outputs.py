"""Pinned outputs of every packaged model: refactors must not change what the models compute.

Each folder in ``src/speechface/pretrained/`` has a pin file ``tests/pins/<model>.json`` holding
a few output values on a fixed input (the example speech for speech estimators, a crop of the
example photo for translators and the expression recogniser). The test recomputes them and
compares. A model folder without a pin file fails the test, so a new or replaced model must be
pinned on purpose:

    PYTHONPATH=src python tests/test_pinned_outputs.py                 # (re)pin every model
    PYTHONPATH=src python tests/test_pinned_outputs.py dcnn.au17-mediapipe   # only these

Regenerate a pin only when a model's weights were replaced on purpose, never to make a refactor
pass; say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "src" / "speechface" / "pretrained"
PINS = Path(__file__).resolve().parent / "pins"
EXAMPLES = REPO / "examples" / "data"

#: Rows of a speech prediction that are pinned (the last row is always added).
SPEECH_ROWS = (0, 25, 60, 111, 170)
#: Absolute + relative tolerance of float values (float32 rounding across thread counts/BLAS).
ATOL, RTOL = 2e-4, 1e-4


def packaged_models() -> list[str]:
    """Names of the packaged model folders (those holding a ``config.json``)."""
    return sorted(p.parent.name for p in PRETRAINED.glob("*/config.json"))


def _face_crop(size: int = 96) -> np.ndarray:
    """A square ``(size, size, 3)`` uint8 crop around the face of the example photo."""
    from PIL import Image

    with Image.open(EXAMPLES / "astronaut.jpg") as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h) // 2
        box = ((w - s) // 2, max(0, h // 8), (w - s) // 2 + s, max(0, h // 8) + s)
        return np.asarray(im.crop(box).resize((size, size), Image.Resampling.BILINEAR),
                          dtype=np.uint8)


def _condition(space: Any) -> torch.Tensor:
    """A fixed non-neutral ``(1, D)`` condition of ``space``: neutral + a deterministic pattern."""
    neutral = space.neutral_tensor()
    pattern = torch.sin(torch.arange(space.dim, dtype=torch.float32) * 1.7)
    if space.low is not None and space.high is not None:
        c = neutral + 0.3 * (space.high - space.low) * pattern.abs()
        c = c.clamp(space.low, space.high)
        if space.activation == "softmax":
            c = c / c.sum()
        return c[None]
    return (neutral + 0.02 * pattern)[None]


def compute_pins(name: str) -> dict[str, Any]:
    """The pinned values of packaged model ``name`` (what the pin file stores)."""
    from speechface.pretrained import pretrained_info

    kind = pretrained_info(name).get("kind")
    with torch.inference_mode():
        if kind == "estimator":
            from speechface import SpeechEstimator

            est = SpeechEstimator.from_pretrained(name)
            values = est.predict(EXAMPLES / "speech.wav").values
            rows = sorted({r for r in SPEECH_ROWS if r < len(values)} | {len(values) - 1})
            return {"kind": kind, "input": "examples/data/speech.wav",
                    "shape": list(values.shape), "rows": rows,
                    "values": values[rows].tolist(),
                    "column_means": values.mean(0).tolist()}
        if kind == "translator":
            from speechface.render.translators import Translator

            tr = Translator.from_pretrained(name)
            cond = _condition(tr.space)
            if getattr(tr.network, "full_resolution", False):  # renders the photo's own pixels
                face = _face_crop(256)
                out = tr.translate(face, cond[0].numpy()).astype(np.float64)
                grid = [int(i) for i in np.linspace(0, 255, 7)]
                return {"kind": kind, "input": "examples/data/astronaut.jpg 256x256 crop, "
                                               "fixed condition",
                        "condition": cond[0].tolist(),
                        "translate_grid": out[grid][:, grid].flatten().tolist(),
                        "translate_mean": float(out.mean()),
                        "changed_mean": float(np.abs(out - face).mean()),
                        "translate_shape": list(out.shape)}
            face = _face_crop()
            s = tr.image_size
            img = torch.from_numpy(face.copy()).permute(2, 0, 1)[None].float() / 255.0
            img = torch.nn.functional.interpolate(img, size=(s, s), mode="bilinear",
                                                  align_corners=False, antialias=True) * 2 - 1
            out, att = tr(img, cond)
            grid = [int(i) for i in np.linspace(0, s - 1, 5)]
            picked = out[0][:, grid][:, :, grid]
            translated = tr.translate(face, cond[0].numpy())
            return {"kind": kind, "input": "examples/data/astronaut.jpg 96x96 crop, fixed condition",
                    "condition": cond[0].tolist(),
                    "network_out_grid": picked.flatten().tolist(),
                    "network_out_mean": float(out.mean()),
                    "attention_mean": float(att.mean()),
                    "translate_mean": float(translated.astype(np.float64).mean()),
                    "translate_shape": list(translated.shape)}
        if kind == "expression":
            from speechface.teachers.expression import ExpressionRecognizer

            fer = ExpressionRecognizer.from_pretrained(name)
            face = _face_crop()
            probs = fer.predict([face, face[:, ::-1].copy(), face[::2, ::2].copy()])
            return {"kind": kind, "input": "examples/data/astronaut.jpg 96x96 crop, mirrored, "
                                           "half size",
                    "probabilities": probs.tolist()}
    raise ValueError(f"{name}: no pin recipe for a model of kind {kind!r}")


def _close(got: Any, want: Any, where: str, atol: float = ATOL) -> None:
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               atol=atol, rtol=RTOL, err_msg=where)


@pytest.mark.parametrize("name", packaged_models())
def test_packaged_model_outputs_are_pinned(name: str) -> None:
    path = PINS / f"{name}.json"
    assert path.is_file(), (f"packaged model {name} has no pin file {path.name}; create it with "
                            f"'PYTHONPATH=src python tests/test_pinned_outputs.py {name}'")
    want = json.loads(path.read_text())
    got = compute_pins(name)
    assert got["kind"] == want["kind"]
    for key, value in want.items():
        assert key in got, f"{name}: pin {key!r} is no longer computed"
        if key in ("translate_mean", "changed_mean"):  # means of uint8 pixels: rounding may
            _close(got[key], value, f"{name}: {key}", atol=0.05)  # flip single levels
        elif key == "translate_grid":  # uint8 pixels of a rendered face
            _close(got[key], value, f"{name}: {key}", atol=2.0)
        elif isinstance(value, (list, float)):
            _close(got[key], value, f"{name}: {key}")
        else:
            assert got[key] == value, f"{name}: {key}"


def test_every_pin_file_has_its_model() -> None:
    stale = sorted(p.stem for p in PINS.glob("*.json"))
    assert [s for s in stale if s not in packaged_models()] == [], \
        "pin files of models that are no longer packaged: delete them"


def _rounded(value: Any) -> Any:
    """Floats to 7 significant digits (float32 precision), so the pin files stay small."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main(argv: list[str]) -> int:
    """Write ``tests/pins/<model>.json`` for the named packaged models (default: all)."""
    names = argv or packaged_models()
    unknown = [n for n in names if n not in packaged_models()]
    if unknown:
        print(f"not packaged models: {', '.join(unknown)}", file=sys.stderr)
        return 2
    PINS.mkdir(exist_ok=True)
    for name in names:
        pins = _rounded(compute_pins(name))
        lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in pins.items()]
        (PINS / f"{name}.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"pinned {name} -> {(PINS / f'{name}.json').relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
