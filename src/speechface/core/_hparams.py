"""Recording of constructor arguments, so a saved model can be rebuilt from its registry, and
:class:`Network`, the base of every registered network (estimators, translators, expression
networks)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from torch import nn

__all__ = ["RecordsHparams", "Network", "json_plain"]


def json_plain(value: Any) -> Any:
    """Tuples become lists, spaces their names and dict keys strings, so values round-trip
    through JSON (``hparams``, trainer configs stored in checkpoints)."""
    from ..spaces.space import Space

    if isinstance(value, dict):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [json_plain(v) for v in value]
    if isinstance(value, Space):
        return value.name
    return value


class RecordsHparams:
    """Mixin: every subclass's constructor arguments (defaults applied) land in ``self.hparams``.

    The outermost constructor finishes last, so its arguments win; ``**kwargs`` are flattened
    in and ``*args`` dropped. Keep constructor arguments JSON-plain (numbers, strings, lists).
    """

    hparams: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__dict__["__init__"]
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Any, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop("self", None)
            for name, p in sig.parameters.items():
                if p.kind is inspect.Parameter.VAR_KEYWORD:
                    params.update(params.pop(name, {}))
                elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                    params.pop(name, None)
            self.hparams = {k: json_plain(v) for k, v in params.items()}

        cls.__init__ = recording_init  # type: ignore[method-assign]


class Network(RecordsHparams, nn.Module):
    """Base of the registered networks: recorded constructor arguments (``hparams``, written to
    ``config.json``), the registry name (``arch``) and a parameter count.

    Class attributes:
        registry_name: set by ``Registry.register``.
        paper: a reference for the docs.
    """

    registry_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: dict[str, Any]

    @property
    def arch(self) -> str:
        """Registry name of this architecture."""
        return type(self).registry_name or type(self).__name__.lower()

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
