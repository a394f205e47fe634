"""Saving, finding and loading model folders: local directories, packaged models and the Hub.

A model folder holds ``config.json`` (architecture, its arguments, feature settings, label
names), ``model.safetensors`` (the weights) and ``README.md`` (the model card). Loading rebuilds
the network from the registry named in ``config.json`` and loads the weights strictly; nothing
is ever unpickled.

Where a name is looked up, in order:

1. an existing local directory;
2. a model packaged with the library (``speechface.pretrained``, works offline);
3. a Hugging Face Hub repository id ``owner/name`` (downloaded once into the Hub cache; with
   ``local_files_only=True`` or ``HF_HUB_OFFLINE=1`` only the cache is used).

Hub repository ids of the official weights are ``speechface/<model name>``, e.g.
``speechface/cnn.au17-mediapipe-openface``.

:class:`PretrainedModel` is the one base of the user-facing model families (speech estimators,
image translators, expression recognisers): ``from_pretrained`` / ``save_pretrained`` /
``push_to_hub`` / ``config`` / ``model_card`` are written once here; a family sets
:attr:`~PretrainedModel.kind`, :attr:`~PretrainedModel.registry` and
:attr:`~PretrainedModel.default_model` and implements :meth:`~PretrainedModel.from_config`.
Every model folder's ``config.json`` is read by :func:`read_config`, the single place where it
is validated (:mod:`speechface.core.config_schema`: bounded read, types, bounds, size) before
anything is built.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ..version import __version__
from ._io import atomic_path, atomic_write, write_json
from .errors import ModelError, UnknownNameError
from .registry import Registry

__all__ = [
    "PretrainedModel",
    "config_errors",
    "locate_pretrained",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CARD_NAME",
    "HUB_ORG",
    "resolve_model_dir",
    "read_config",
    "save_model_folder",
    "load_state",
    "push_folder",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
HUB_ORG = "speechface"


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    if len(parts) != 2 or not all(parts) or name.startswith((".", "/", "~")):
        return False
    return not Path(parts[0]).is_dir()  # runs/best with a local runs/ folder is a path


def resolve_model_dir(name_or_path: str | os.PathLike[str], *, revision: str | None = None,
                      cache_dir: str | os.PathLike[str] | None = None,
                      local_files_only: bool | None = None, token: str | None = None) -> Path:
    """Return a local folder holding ``config.json`` and ``model.safetensors`` for a model.

    Args:
        name_or_path: a local directory, the name of a packaged model, or a Hub repo id.
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache directory (default: huggingface_hub's).
        local_files_only: only look in the Hub cache (default: ``HF_HUB_OFFLINE`` decides).
        token: Hub token for private repositories.

    Raises:
        ModelError: nothing found, or the download failed; the message says what was tried.
    """
    from ..pretrained import packaged_dir

    path = Path(os.path.expanduser(str(name_or_path)))
    if path.is_dir():
        if not os.path.lexists(path / CONFIG_NAME):
            raise ModelError(f"{path}: not a model folder (no {CONFIG_NAME})")
        return path
    if path.exists():
        raise ModelError(f"{path}: a model is a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, "
                         "not a file")
    name = str(name_or_path)
    packaged = packaged_dir(name)
    if packaged is not None:
        return packaged
    if not _looks_like_repo_id(name):
        from ..pretrained import list_pretrained

        if os.sep in name or name.startswith((".", "~")):
            raise ModelError(f"{name}: model folder not found")

        raise ModelError(f"no model called {name!r}: not a local folder, not a packaged model "
                         f"({', '.join(list_pretrained()) or 'none'}), not a Hub repo id (owner/name)")
    return _download(name, revision=revision, cache_dir=cache_dir,
                     local_files_only=local_files_only, token=token)


def _download(repo_id: str, **kw: Any) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ModelError(f"loading {repo_id!r} from the Hub needs huggingface_hub: {e}") from e
    if kw.get("local_files_only") is None:
        kw.pop("local_files_only")
    try:
        config = hf_hub_download(repo_id, CONFIG_NAME, **kw)
        hf_hub_download(repo_id, WEIGHTS_NAME, **kw)
    except LocalEntryNotFoundError as e:
        raise ModelError(f"{repo_id}: not in the local Hub cache and the Hub cannot be reached "
                         f"(offline?): {e}") from e
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise ModelError(f"{repo_id}: not a speechface model on the Hub: {e}") from e
    except OSError as e:
        raise ModelError(f"{repo_id}: download failed: {e}") from e
    return Path(config).parent


def read_config(folder: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """Read and check ``config.json`` of a model folder (``kind``: "estimator", "translator" ...)."""
    from .config_schema import read_model_config

    path = Path(folder) / CONFIG_NAME
    config = read_model_config(path)  # bounded read, strict JSON, types and bounds
    if kind is not None and config.get("kind", kind) != kind:
        raise ModelError(f"{path}: this is a {config.get('kind')} model, not a {kind}")
    return config


def save_model_folder(folder: str | os.PathLike[str], module: nn.Module, config: dict[str, Any],
                      card: str | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` (persistent state) and an optional card."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json(folder / CONFIG_NAME, config)
    if card is not None:
        with atomic_write(folder / CARD_NAME) as f:
            f.write(card)
    return folder


def half_weights(folder: str | os.PathLike[str], min_numel: int = 1024) -> int:
    """Store the large float32 tensors of a model folder's ``model.safetensors`` as float16.

    Tensors with at least ``min_numel`` elements (the weight matrices) are rounded to float16;
    smaller ones (biases, weight-norm gains, feature statistics, calibration) stay float32.
    Loading casts them back into the float32 parameters (:func:`load_state`), so a packaged
    model takes about half the space at a relative weight error of about 5e-4.

    Args:
        folder: a model folder (``save_pretrained`` output), rewritten in place.
        min_numel: the smallest tensor size to store as float16.

    Returns:
        The number of tensors converted.

    Example:
        >>> half_weights("runs/my-model")     # doctest: +SKIP
        18
    """
    from safetensors.torch import load_file, save_file

    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelError(f"{path}: missing (a model folder needs {WEIGHTS_NAME})")
    state = load_file(str(path))
    n = 0
    for k, v in state.items():
        if v.dtype == torch.float32 and v.numel() >= min_numel:
            if v.abs().max() > 6.0e4:
                raise ModelError(f"{path}: {k} has values beyond the float16 range")
            state[k] = v.half()
            n += 1
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    return n


def load_state(module: nn.Module, folder: str | os.PathLike[str]) -> None:
    """Load ``model.safetensors`` from ``folder`` into ``module`` strictly (no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelError(f"{path}: missing (a model folder needs {WEIGHTS_NAME})")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from e
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ModelError(f"{path}: weights do not fit the architecture in {CONFIG_NAME}: "
                         f"{' '.join(x.strip() for x in first[:3])}") from e
    for t in module.state_dict().values():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ModelError(f"{path}: weights contain NaN or infinite values")


def push_folder(folder: str | os.PathLike[str], repo_id: str, *, token: str | None = None,
                private: bool = False, commit_message: str = "Upload speechface model") -> str:
    """Upload a saved model folder to the Hub (creates the repo if needed); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                             commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def locate_pretrained(name_or_path: str | os.PathLike[str], registry: Any, kind: str,
                      class_name: str, **hub_kwargs: Any) -> Path:
    """:func:`resolve_model_dir`, refusing an architecture name with a pointer to ``create``.

    Args:
        registry: the family's registry (a name in it is an architecture, not weights).
        kind: the model kind, for listing the packaged alternatives (``"estimator"`` ...).
        class_name: the class whose ``create`` builds random weights (for the message).
        **hub_kwargs: ``revision``, ``cache_dir``, ``local_files_only``, ``token``.
    """
    if isinstance(name_or_path, str) and name_or_path in registry:
        from ..pretrained import list_pretrained

        raise ModelError(f"{name_or_path!r} is an architecture, not trained weights: use "
                         f"{class_name}.create({name_or_path!r}) for random weights, or one of "
                         f"the pretrained models: {', '.join(list_pretrained(kind)) or 'none'}")
    return resolve_model_dir(name_or_path, **hub_kwargs)


@contextlib.contextmanager
def config_errors(where: Path, architecture: Any) -> Iterator[None]:
    """Report a network that cannot be built from ``config.json`` as a ModelError naming it."""
    try:
        yield
    except UnknownNameError as e:
        raise ModelError(f"{where}: {e}") from e
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{where}: cannot build {architecture!r} from its arguments: {e}") from e


M = TypeVar("M", bound="PretrainedModel")


class PretrainedModel(nn.Module):
    """Base of the user-facing model families: a registered network plus what it needs.

    Loading (:meth:`from_pretrained`), saving (:meth:`save_pretrained`), publishing
    (:meth:`push_to_hub`), the ``config.json`` content (:meth:`config`) and the model card
    (:meth:`model_card`) are written once here. A family sets the class attributes and
    implements :meth:`from_config` (and adds its fields with :meth:`extra_config`).

    Class attributes:
        kind: the ``"kind"`` of its ``config.json`` (``"estimator"``, ``"translator"``,
            ``"expression"``).
        registry: the registry of its networks (a name in it is an architecture, not weights).
        default_model: key of ``speechface.pretrained.DEFAULT_MODELS`` loaded by
            ``from_pretrained()`` with no argument.
        config_format: the ``"format"`` string of its ``config.json``.
        card_tags: tags of the model card.

    Args:
        network: the network (``hparams`` and ``arch`` are written to ``config.json``).
        name: model name (default ``"<arch>.<space>"``).
        pretrained: whether the weights were trained.
        info: free-form metadata written to ``config.json`` (data, teacher, metrics, licence).
    """

    kind: ClassVar[str] = ""
    registry: ClassVar[Registry[Any]]
    default_model: ClassVar[str | None] = None
    config_format: ClassVar[str] = ""
    card_tags: ClassVar[tuple[str, ...]] = ()

    def __init__(self, network: nn.Module, *, name: str | None = None, pretrained: bool = False,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.network = network
        self.name = name or self.default_name(network)
        self.pretrained = bool(pretrained)
        self.info = dict(info or {})

    @staticmethod
    def default_name(network: nn.Module) -> str:
        """The name of a model built without one: ``"<arch>.<space>"``."""
        space = getattr(network, "space", None)
        return f"{network.arch}.{getattr(space, 'name', space)}"

    # ------------------------------------------------------------------ loading
    @classmethod
    def default_model_name(cls) -> str:
        """The packaged model ``from_pretrained()`` loads with no argument.

        Raises:
            ModelError: this version packages none for this class.
        """
        from ..pretrained import DEFAULT_MODELS

        name = DEFAULT_MODELS.get(cls.default_model or "")
        if name is None:
            raise ModelError(f"no packaged default model for {cls.default_model or cls.kind} in "
                             "this version; pass a model folder or Hub repo id")
        return name

    @classmethod
    def from_pretrained(cls: type[M], name_or_path: str | os.PathLike[str] | None = None, *,
                        revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                        local_files_only: bool | None = None, token: str | None = None,
                        device: str | torch.device | None = None) -> M:
        """Load trained weights: a packaged model name, a local folder or a Hub repo id.

        With no argument the packaged default model of this class is loaded (offline).

        Args:
            name_or_path: a local folder, a packaged model name or a Hub repo id ``owner/name``.
            revision: Hub branch, tag or commit.
            cache_dir: Hub cache directory (default: huggingface_hub's).
            local_files_only: only look in the Hub cache (default: ``HF_HUB_OFFLINE`` decides).
            token: Hub token for private repositories.
            device: move the model there.

        Raises:
            ModelError: unknown name, an architecture name, missing/corrupt files, a config of
                another kind, or one that does not fit this class.

        Example:
            >>> from speechface import AUEstimator
            >>> AUEstimator.from_pretrained().pretrained                # doctest: +SKIP
            True
        """
        if name_or_path is None:
            name_or_path = cls.default_model_name()
        folder = locate_pretrained(name_or_path, cls.registry, cls.kind, cls.__name__,
                                   revision=revision, cache_dir=cache_dir,
                                   local_files_only=local_files_only, token=token)
        model = cls.from_folder(folder)
        if device is not None:
            model.to(device)
        return model

    @classmethod
    def from_folder(cls: type[M], folder: str | os.PathLike[str]) -> M:
        """Load a local model folder: read and check ``config.json`` (:func:`read_config`),
        build the model (:meth:`from_config`), load the weights strictly.

        Raises:
            ModelError: naming the file and the problem.
        """
        folder = Path(folder)
        where = folder / CONFIG_NAME
        config = read_config(folder, kind=cls.kind)  # the one validation point
        with config_errors(where, config.get("architecture")):
            try:
                model = cls.from_config(config, where)
            except ModelError as e:
                if str(where) in str(e):
                    raise
                raise ModelError(f"{where}: {e}") from e
        labels = config.get("labels")
        space = getattr(model.network, "space", None)
        if labels is not None and space is not None and list(labels) != list(space.labels):
            raise ModelError(f"{where}: label names do not match space {space.name!r}")
        load_state(model, folder)
        model.eval()
        return model

    @classmethod
    def from_config(cls: type[M], config: dict[str, Any], where: Path) -> M:
        """A model with random weights built from a ``config.json`` dict (``where`` names it
        in messages). Families implement this with their registry."""
        raise NotImplementedError

    # ------------------------------------------------------------------ saving
    def extra_config(self) -> dict[str, Any]:
        """The family's own ``config.json`` fields (space, labels, feature settings ...)."""
        return {}

    def config(self) -> dict[str, Any]:
        """The ``config.json`` content of this model."""
        net = self.network
        return {
            "format": self.config_format,
            "kind": self.kind,
            "speechface_version": __version__,
            "name": self.name,
            "architecture": net.arch,
            "model_args": {k: v for k, v in net.hparams.items() if k != "space"},
            **self.extra_config(),
            "pretrained": self.pretrained,
            "info": self.info,
        }

    def card_summary(self) -> str:
        """One sentence for the model card: what the model maps to what."""
        return f"{self.network.arch} {self.kind}"

    def model_card(self) -> str:
        """A minimal model card; trained models ship a fuller one written by their trainer."""
        state = "trained" if self.pretrained else "untrained (random weights)"
        return (f"---\nlibrary_name: speechface\ntags: [{', '.join(self.card_tags)}]\n---\n\n"
                f"# {self.name}\n\n{self.card_summary()}; {state}.\n")

    def save_pretrained(self, folder: str | os.PathLike[str], *, card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a model card into ``folder``.

        Example:
            >>> from speechface import AUEstimator
            >>> AUEstimator.create("mlp").save_pretrained("my-model")     # doctest: +SKIP
            PosixPath('my-model')
        """
        return save_model_folder(folder, self, self.config(), card or self.model_card())

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    card: str | None = None) -> str:
        """Save to a temporary folder and upload it to the Hub repository ``repo_id``."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, card=card)
            return push_folder(tmp, repo_id, token=token, private=private)

    # ------------------------------------------------------------------ running
    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Run in eval mode without autograd, then restore the training flag.

        Example:
            >>> from speechface import AUEstimator
            >>> est = AUEstimator.create("mlp").train()
            >>> with est.eval_mode():
            ...     est.training
            False
            >>> est.training
            True
        """
        was = self.training
        switch = any(m.training for m in self.modules())  # train()/eval() walk every module
        if switch:
            self.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if switch:
                self.train(was)

