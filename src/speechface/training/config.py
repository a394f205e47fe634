"""Training configs: dataclasses checked against their types and bounds, files, commands.

- :class:`TrainConfig`: the base of every recipe's config dataclass; an instance is checked
  when it is built (types from the annotations, bounds, choices, the device), so a bad value
  fails with one line naming the field before anything is allocated.
- :func:`load_config_file` (JSON or safe YAML, bounded read), :func:`parse_overrides`
  (``--set KEY=VALUE``), :func:`config_from_dict` (unknown keys are errors).
- :func:`train_command`: registers a recipe as ``speechface train NAME --config FILE --set ...``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from ..core.errors import DataError

__all__ = ["TrainConfig", "check_config", "check_device", "config_from_dict", "load_config_file",
           "parse_overrides", "train_command", "add_train_parsers", "TRAIN_COMMANDS",
           "finite_json"]

C = TypeVar("C")
MAX_CONFIG_BYTES = 1 << 20


#: Bounds of option names shared by the recipes (a config adds its own in ``BOUNDS``).
COMMON_BOUNDS = {
    "batch_size": ">=1", "epochs": ">=1", "max_steps": ">=0", "max_minutes": ">=0",
    "patience": ">=0", "crop_frames": ">=1", "lr": ">0", "grad_clip": ">=0",
    "checkpoint_every": ">=0", "keep_checkpoints": ">=1", "weight_decay": ">=0",
    "val_fraction": "[0,1]", "log_every": ">=1", "sample_every": ">=0", "num_threads": ">=0",
    "threads": ">=0", "eval_batch_size": ">=1", "decay_fraction": "[0,1]",
}


class TrainConfig:
    """Base of the recipes' config dataclasses: checks every field when an instance is built.

    Types come from the annotations (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
    ``dict[str, ...]``, unions with None); bounds from :data:`COMMON_BOUNDS` and the class's
    ``BOUNDS`` (``">=1"``, ``">0"``, ``"[0,1]"``) and ``CHOICES``; ``device`` must name a
    device this machine has. A bad value raises :class:`~speechface.core.errors.DataError` naming
    the field.

    Example:
        >>> @dataclasses.dataclass
        ... class Cfg(TrainConfig):
        ...     batch_size: int = 8
        >>> Cfg(batch_size=0)
        Traceback (most recent call last):
        speechface.core.errors.DataError: config: batch_size must be >= 1, got 0
    """

    BOUNDS: ClassVar[dict[str, str]] = {}
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __post_init__(self) -> None:
        check_config(self)


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is not None:
        return {list: "a list", dict: "a mapping"}.get(origin, str(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (ints accepted for floats), or raise TypeError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            with contextlib.suppress(TypeError):
                return _coerce(value, a)
        raise TypeError
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise TypeError
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_coerce(v, args[0]) if args else v for v in value]
    elif origin is dict:
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
    else:
        return value
    raise TypeError


def _bound_error(value: Any, rule: str) -> str | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if rule.startswith("["):
        lo, hi = (float(v) for v in rule[1:-1].split(","))
        return None if lo <= value <= hi else f"must be in {rule}"
    m = re.fullmatch(r"(>=|>|<=|<)(-?[\d.e+-]+)", rule)
    assert m, rule
    op, ref = m.group(1), float(m.group(2))
    ok = {">=": value >= ref, ">": value > ref, "<=": value <= ref, "<": value < ref}[op]
    return None if ok else f"must be {op} {m.group(2)}"


def check_config(cfg: Any, where: str = "config") -> None:
    """Check (and coerce ints to floats in) a config dataclass instance; see :class:`TrainConfig`."""
    hints = typing.get_type_hints(type(cfg))
    bounds = {**COMMON_BOUNDS, **getattr(cfg, "BOUNDS", {})}
    choices = getattr(cfg, "CHOICES", {})
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        try:
            value = _coerce(value, hints.get(f.name, Any))
        except TypeError:
            shown = repr(value)
            raise DataError(f"{where}: {f.name} must be {_describe(hints[f.name])}, got "
                            f"{shown[:60] + '...' if len(shown) > 60 else shown}") from None
        object.__setattr__(cfg, f.name, value)
        problem = _bound_error(value, bounds[f.name]) if f.name in bounds else None
        if problem is None and f.name in choices and value not in choices[f.name]:
            problem = f"must be one of {', '.join(map(str, choices[f.name]))}"
        if problem:
            raise DataError(f"{where}: {f.name} {problem}, got {value!r}")
    if isinstance(getattr(cfg, "device", None), str):
        check_device(cfg.device, where)


def check_device(name: str, where: str = "config") -> torch.device:
    """``torch.device(name)`` if this machine has it, else a one-line DataError."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DataError(f"{where}: device {name!r} is not a device name (cpu, cuda, cuda:1, mps)"
                        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"{where}: device {name!r} asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise DataError(f"{where}: device {name!r}: this machine has "
                        f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DataError(f"{where}: device {name!r} asked for, but MPS is not available here")
    return device


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A mapping from a JSON or YAML file (YAML: ``safe_load``; at most 1 MiB is read)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read config ({e.strerror})") from e
    except UnicodeDecodeError:
        raise DataError(f"{path}: a config must be UTF-8 text") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise DataError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a config file")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise DataError(f"{path}: YAML configs need PyYAML (pip install pyyaml)") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            what = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise DataError(f"{path}: not valid YAML{at}: {what}") from None
    else:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise DataError(f"{path}: not valid JSON ({str(e)[:80]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a config must be a mapping of option names to values")
    return data


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=3", "model_args={\\"dropout\\": 0}"]`` -> dict (values parsed as JSON if they can be)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise DataError(f"--set expects KEY=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            out[k.strip()] = v
    return out


def config_from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build config dataclass ``cls`` from a mapping: unknown keys and bad values are errors."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, data)) - names)
    if unknown:
        raise DataError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(names))}")
    try:
        cfg = cls(**data)
    except DataError as e:
        raise DataError(str(e).replace("config:", f"{where}:", 1)) from None
    if not isinstance(cfg, TrainConfig):
        check_config(cfg, where)
    return cfg


# ------------------------------------------------------------------------------------ commands
#: ``speechface train NAME``: NAME -> (config class, handler, help, example overrides).
TRAIN_COMMANDS: dict[str, tuple[type, Callable[..., dict[str, Any]], str, str]] = {}


def train_command(name: str, config: type, help: str, example: str = "epochs=5"
                  ) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``handler(cfg, config_path) -> result`` as ``speechface train NAME``.

    The command reads ``--config FILE`` (YAML or JSON, keys = the fields of ``config``) and
    ``--set KEY=VALUE ...``, checks them, calls the handler, and prints the result as one JSON
    line and ``trained model: PATH`` (the result's ``"model"``) on stderr.

    Example:
        >>> @train_command("toy", ToyConfig, help="train the toy")        # doctest: +SKIP
        ... def run_toy(cfg, config_path):
        ...     return {"model": f"{cfg.out_dir}/best", "steps": 3}
    """
    def register(handler: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        TRAIN_COMMANDS[name] = (config, handler, help, example)
        return handler
    return register


def add_train_parsers(tsub: Any) -> None:
    """Add one parser per registered command to the ``train`` sub-parsers object."""
    for name, (cls, _, help_text, example) in TRAIN_COMMANDS.items():
        p = tsub.add_parser(name, help=help_text,
                            description=f"{help_text[0].upper()}{help_text[1:]}. Options come "
                                        f"from --config (YAML or JSON; keys = {cls.__name__} "
                                        "fields) and --set.")
        p.add_argument("--config", help="YAML or JSON file")
        p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                       help=f"override config keys, e.g. --set {example}")
        p.set_defaults(func=_run_command, train_command=name)


def _run_command(args: Any) -> int:
    cls, handler, _, _ = TRAIN_COMMANDS[args.train_command]
    data = load_config_file(args.config) if args.config else {}
    data.update(parse_overrides(args.set))
    cfg = config_from_dict(cls, data, where=args.config or "--set")
    result = handler(cfg, args.config)
    print(json.dumps(finite_json({k: v for k, v in result.items() if k != "model"})),
          file=sys.stderr)
    if result.get("model"):
        print(f"trained model: {result['model']}", file=sys.stderr)
    return 0




def finite_json(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None (JSON has no Infinity)."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
