"""Checks a model folder's ``config.json`` before anything is built from it.

A config names an architecture and the arguments its network and feature extractor are built
with. A broken or hostile file must give one clear :class:`~speechface.core.errors.ModelError`,
not a traceback, a 24 GB allocation or a hang. :func:`read_model_config` therefore:

1. reads at most :data:`MAX_CONFIG_BYTES` (1 MiB; a real config is about 3 kB) from a regular
   file (``/dev/zero`` or a FIFO stops at the limit);
2. parses strict JSON: ``NaN`` / ``Infinity`` are refused, and so is nesting deeper than
   :data:`MAX_DEPTH` (checked before the parser recurses);
3. checks the fields against :data:`SCHEMA` (types) and the arguments against :data:`BOUNDS`:
   every number finite, every integer argument at most :data:`MAX_INT` (``n_fft`` at most
   :data:`MAX_N_FFT`) and not negative, lists at most :data:`MAX_LIST` long, dropout-like values in [0, 1), and
   a rough size estimate of the network (:func:`estimate_weights`: the products of
   neighbouring widths, times the kernel size) at most :data:`MAX_WEIGHTS`.

The packaged models use at most 256 channels, ``n_fft`` 1024 and about 0.4 M weights, far
inside these bounds.

Example:
    >>> check_model_config({"architecture": "cnn", "model_args": {"channels": [64, 10**9]}},
    ...                    "m/config.json")
    Traceback (most recent call last):
    ...
    speechface.core.errors.ModelError: m/config.json: model_args.channels[1] = 1000000000 is larger than 16384
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ._io import read_bounded
from .errors import ModelError

__all__ = ["read_model_config", "check_model_config", "estimate_weights", "MAX_CONFIG_BYTES",
           "MAX_DEPTH", "MAX_INT", "MAX_N_FFT", "MAX_LIST", "MAX_WEIGHTS", "SCHEMA"]

#: Largest config.json read (bytes).
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of lists / objects.
MAX_DEPTH = 16
#: Largest integer argument (a width, size, count ...).
MAX_INT = 16384
#: Largest FFT size of a feature extractor (samples); also bounds ``win_length``.
MAX_N_FFT = 16384
#: Longest list argument.
MAX_LIST = 256
#: Largest estimated number of network weights (``estimate_weights``), 200 M (800 MB fp32).
MAX_WEIGHTS = 200_000_000
#: Rates in Hz may exceed MAX_INT.
_RATE_KEYS = {"sample_rate", "f_min", "f_max"}
_MAX_RATE = 384000

#: Field -> allowed Python types of the top level of config.json (absent fields are fine).
SCHEMA: dict[str, tuple[type, ...]] = {
    "format": (str,), "kind": (str,), "speechface_version": (str,), "name": (str, type(None)),
    "architecture": (str,), "model_args": (dict,), "space": (str, type(None)),
    "labels": (list, type(None)), "frame_level": (bool,), "feature": (dict, type(None)),
    "sample_rate": (int,), "fps": (int, float), "pretrained": (bool,),
    "info": (dict, type(None)), "image_size": (int,), "input_size": (int,),
    "input": (str,), "condition_normalization": (str,),
}

#: Argument-name fragment -> (low, high) inclusive bounds for numbers under model_args /
#: feature.args (the first match wins; others: finite, integers <= MAX_INT).
BOUNDS: list[tuple[str, float, float]] = [
    ("dropout", 0.0, 0.999),
    ("n_fft", 1, MAX_N_FFT),
    ("win_length", 1, MAX_N_FFT),
    ("hop_length", 1, MAX_N_FFT),
    ("fps", 1, 1000),
    ("sample_rate", 1000, _MAX_RATE),
    ("f_min", 0, _MAX_RATE),
    ("f_max", 0, _MAX_RATE),
    ("n_mels", 1, 1024),
    ("n_mfcc", 1, 1024),
    ("image_size", 8, 4096),
    ("input_size", 8, 4096),
]


def _bad(where: str, msg: str) -> ModelError:
    return ModelError(f"{where}: {msg}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _max_depth(text: str) -> int:
    """Deepest bracket nesting outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_str = escape = False
    for ch in text:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def read_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``config.json`` with a size limit, strict JSON and the checks of
    :func:`check_model_config`.

    Raises:
        ModelError: naming ``path``: missing, not a regular file, too big, not JSON, too deep,
            NaN / Infinity, wrong types or values out of bounds.
    """
    where = str(path)
    p = Path(path)
    if not p.exists():
        raise _bad(where, "missing")
    if not p.is_file():
        raise _bad(where, "not a regular file")
    try:
        raw = read_bounded(p, MAX_CONFIG_BYTES, "model config")
    except ValueError:
        raise _bad(where, f"larger than {MAX_CONFIG_BYTES:,} bytes; not a speechface model "
                          "config") from None
    except OSError as e:
        raise _bad(where, f"cannot be read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(where, f"not valid JSON ({e})") from None
    if _max_depth(text) > MAX_DEPTH:
        raise _bad(where, f"nested more than {MAX_DEPTH} levels deep; not a speechface model "
                          "config")
    try:
        config = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise _bad(where, f"not valid JSON ({e})") from None
    except (ValueError, RecursionError) as e:
        raise _bad(where, f"not valid JSON ({e})") from None
    check_model_config(config, where)
    return config


def _walk_numbers(value: Any, key: str, where: str, depth: int = 0) -> None:
    """Finite numbers, bounded integers and lists, recursively (``key`` names the path)."""
    if depth > MAX_DEPTH:
        raise _bad(where, f"{key}: nested too deep")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        leaf = key.rsplit(".", 1)[-1].split("[", 1)[0]
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(where, f"{key} = {value!r} is not a finite number")
        for frag, low, high in BOUNDS:
            if frag in leaf:
                if not low <= value <= high:
                    raise _bad(where, f"{key} = {value!r} is outside [{low:g}, {high:g}]")
                return
        if leaf in _RATE_KEYS:
            return
        if isinstance(value, int) and value > MAX_INT:
            raise _bad(where, f"{key} = {value!r} is larger than {MAX_INT}")
        if isinstance(value, int) and value < 0:
            raise _bad(where, f"{key} = {value!r} is negative")
        if isinstance(value, float) and abs(value) > 1e9:
            raise _bad(where, f"{key} = {value!r} is out of range")
        return
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise _bad(where, f"{key} has {len(value)} entries (at most {MAX_LIST})")
        for i, v in enumerate(value):
            _walk_numbers(v, f"{key}[{i}]", where, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > MAX_LIST:
            raise _bad(where, f"{key} has {len(value)} entries (at most {MAX_LIST})")
        for k, v in value.items():
            _walk_numbers(v, f"{key}.{k}", where, depth + 1)
        return
    raise _bad(where, f"{key}: unexpected value of type {type(value).__name__}")


def estimate_weights(model_args: dict[str, Any]) -> int:
    """A rough size of the network a ``model_args`` dict asks for (number of weights).

    The sum, over every list of widths, of the products of neighbouring entries, plus the
    product of the two largest scalar widths; times the kernel size. It is not exact; it
    catches configs that would allocate gigabytes (``channels: [30000, 30000]``).

    Example:
        >>> estimate_weights({"channels": [128, 64], "kernel_size": 3, "proj": 128})
        73728
    """
    kernel = model_args.get("kernel_size", 1)
    kernel = kernel if isinstance(kernel, int) and not isinstance(kernel, bool) and kernel > 0 \
        else 1
    total = 0
    scalars = []
    for k, v in model_args.items():
        if k in ("kernel_size", "dilations") or "dropout" in k:
            continue
        if isinstance(v, list):
            ints = [int(x) for x in v if isinstance(x, int) and not isinstance(x, bool)]
            total += sum(a * b for a, b in zip(ints, ints[1:]))
            scalars.extend(ints)
        elif isinstance(v, int) and not isinstance(v, bool):
            scalars.append(v)
    top = sorted((abs(s) for s in scalars), reverse=True)[:2]
    if len(top) == 2:
        total += top[0] * top[1]
    return total * kernel


def check_model_config(config: Any, where: str = "config.json") -> None:
    """Check a parsed ``config.json`` (types, finite numbers, bounds, size estimate).

    Raises:
        ModelError: ``"<where>: <field>: <problem>"``.
    """
    if not isinstance(config, dict):
        raise _bad(where, f"must be a JSON object, got {type(config).__name__}")
    if "architecture" not in config:
        raise _bad(where, "no 'architecture' field; not a speechface model config")
    for field, types in SCHEMA.items():
        if field in config and not isinstance(config[field], types):
            if not (float in types and isinstance(config[field], int)):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise _bad(where, f"'{field}' must be {names}, got "
                                  f"{type(config[field]).__name__} {config[field]!r:.60}")
        if field in config and isinstance(config[field], bool) and bool not in types:
            raise _bad(where, f"'{field}' must not be true/false")
    labels = config.get("labels")
    if labels is not None:
        if len(labels) > 4096 or not all(isinstance(x, str) for x in labels):
            raise _bad(where, "'labels' must be a list of strings")
    feature = config.get("feature")
    if feature is not None:
        if not isinstance(feature.get("name"), str) or not isinstance(feature.get("args", {}),
                                                                        dict):
            raise _bad(where, "'feature' must be {\"name\": str, \"args\": {...}}")
        _walk_numbers(feature.get("args", {}), "feature.args", where)
    args = config.get("model_args", {})
    _walk_numbers(args, "model_args", where)
    for key in ("sample_rate", "fps", "image_size", "input_size"):
        if key in config:
            _walk_numbers(config[key], key, where)
    size = estimate_weights(args)
    if size > MAX_WEIGHTS:
        raise _bad(where, f"model_args ask for a network of about {size:,} weights (at most "
                          f"{MAX_WEIGHTS:,}); not a usable speechface model")
