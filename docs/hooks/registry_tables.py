"""MkDocs hook: replaces ``<!-- registry: FAMILY -->`` with a table of that registry's entries.

The tables are built from the installed library at build time (name, reference, parameter
count, default space/feature), so the docs never list a model the code does not have.
"""

from __future__ import annotations

import re

MARK = re.compile(r"<!-- registry: (\w+) -->")


def _estimators() -> str:
    from speechface.core.registry import ESTIMATORS
    from speechface.speech.estimators import count_parameters

    rows = ["| name | reference | frame-level | default feature | default space | parameters (au17) | receptive field (frames) | streams |",
            "|---|---|---|---|---|---:|---:|---|"]
    for name, cls in ESTIMATORS.items():
        in_f = 39 if cls.default_feature == "mfcc" else 80
        net = cls(in_features=in_f, space="au17")
        rf = net.receptive_field
        streams = (f"yes ({type(net.stream()).__name__})" if net.stream_reason() is None
                   else "no")
        rows.append(f"| `{name}` | {cls.paper} | {'yes' if cls.frame_level else 'no (one vector per utterance)'} "
                    f"| `{cls.default_feature}` | `{cls.default_space}` | {count_parameters(net):,} "
                    f"| {rf if rf is not None else 'whole utterance' if not net.lookahead else f'causal + {net.lookahead} ahead'} "
                    f"| {streams} |")
    return "\n".join(rows)


def _features() -> str:
    from speechface.core.registry import FEATURES

    rows = ["| name | class | features per frame | frames per second | streams | long input | settings |",
            "|---|---|---:|---:|---|---|---|"]
    for name, cls in FEATURES.items():
        fx = cls()
        cfg = ", ".join(f"{k}={v}" for k, v in fx.config().items())
        streams = "yes" if fx.stream_reason() is None else "no"
        rows.append(f"| `{name}` | `{cls.__name__}` | {fx.n_features} | {fx.fps} | {streams} "
                    f"| `{type(fx.block_stream()).__name__}` | {cfg} |")
    return "\n".join(rows)


def _spaces() -> str:
    from speechface.core.registry import SPACES

    rows = ["| name | size | range | activation | default loss | labels |", "|---|---:|---|---|---|---|"]
    for name, sp in SPACES.items():
        rng = f"{sp.low:g} to {sp.high:g}" if sp.low is not None else "unbounded"
        labels = ", ".join(sp.labels) if sp.dim <= 17 else f"{sp.labels[0]} ... {sp.labels[-1]}"
        rows.append(f"| `{name}` | {sp.dim} | {rng} | {sp.activation} | {sp.loss} | {labels} |")
    return "\n".join(rows)


def _generic(family: str) -> str:
    from speechface.core.registry import REGISTRIES

    reg = REGISTRIES[family]
    rows = ["| name | reference | parameters (defaults) |", "|---|---|---:|"]
    for name, cls in reg.items():
        params = "n/a"
        try:
            obj = cls()
            params = f"{sum(p.numel() for p in obj.parameters()):,}"
        except Exception:  # noqa: BLE001 - an entry that needs arguments
            pass
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append(f"| `{name}` | {getattr(cls, 'paper', '') or doc} | {params} |")
    return "\n".join(rows) if len(rows) > 2 else "_(no entries in this version)_"


def _pretrained() -> str:
    from speechface.pretrained import DEFAULT_MODELS, list_pretrained, pretrained_info

    defaults = {v: k for k, v in DEFAULT_MODELS.items()}
    rows = ["| name | kind | architecture | space | default for |", "|---|---|---|---|---|"]
    for name in list_pretrained():
        cfg = pretrained_info(name)
        rows.append(f"| `{name}` | {cfg.get('kind')} | `{cfg.get('architecture')}` "
                    f"| `{cfg.get('space', '')}` | {defaults.get(name, '')} |")
    return "\n".join(rows)


def _table(family: str) -> str:
    import speechface  # noqa: F401  (registers the built-ins)

    return {"estimators": _estimators, "features": _features, "spaces": _spaces,
            "pretrained": _pretrained}.get(
        family, lambda: _generic(family))()


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    return MARK.sub(lambda m: _table(m.group(1)), markdown)
