"""Linear maps between output spaces, folded into a speech model's last layer.

A speech model of one space (``blendshapes52``) followed by a linear map into another space
(``landmarks68``) is again a speech model: the CNN's output layer is linear, and a linear map of
a linear layer is one linear layer (``W' = B^T diag(s) W``, ``b' = B^T (s * b + beta) + c`` with
the model's output calibration ``raw * s + beta``). This gives a landmark model with the mouth of
the ARKit model, with no training beyond the map:

- :func:`fit_linear_map`: ridge least squares ``y ~ x @ B + c`` (e.g. the teacher's 52
  blendshapes -> its 136 landmark coordinates, on the training speakers' frames);
- :func:`compose_linear_map`: the composed model (``cnn`` / ``dcnn`` networks);
- :func:`fit_shrink`: the MSE-optimal factor for each output's deviation from a reference (the
  mean face), to set with :meth:`~speechface.SpeechEstimator.set_calibration`;
- :func:`merge_cnns`: several trained ``cnn`` models of one recipe (different seeds) as one
  network that outputs their mean (a seed ensemble with one output layer, so it composes too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import DataError, ModelError

__all__ = ["fit_linear_map", "compose_linear_map", "fit_shrink", "merge_cnns"]


def fit_linear_map(x: np.ndarray, y: np.ndarray, ridge: float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Ridge least squares ``y ~ x @ B + c`` (the intercept is not penalised).

    Args:
        x: ``(N, Dx)`` inputs (e.g. the teacher's blendshapes of N frames).
        y: ``(N, Dy)`` targets (e.g. its landmarks of the same frames).
        ridge: penalty on ``B`` (added to ``x_c^T x_c``; > 0 also handles constant inputs such
            as ``tongueOut``).

    Returns:
        ``B (Dx, Dy)`` and ``c (Dy,)``, float64.

    Example:
        >>> x = np.random.default_rng(0).random((100, 3))
        >>> B, c = fit_linear_map(x, x @ np.ones((3, 2)) + 1.0, ridge=1e-9)
        >>> np.allclose(B, 1.0, atol=1e-5), np.allclose(c, 1.0, atol=1e-5)
        (True, True)
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise DataError(f"fit_linear_map needs (N, Dx) and (N, Dy) arrays with the same N >= 2, "
                        f"got {x.shape} and {y.shape}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    b = np.linalg.lstsq(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ (y - my), rcond=None)[0]
    return b, my - mx @ b


def fit_shrink(pred: np.ndarray, target: np.ndarray, reference: np.ndarray,
               groups: np.ndarray | None = None) -> np.ndarray:
    """Factors ``k`` in [0, 1] minimising ``|ref + k (pred - ref) - target|^2``.

    ``k = <pred - ref, target - ref> / <pred - ref, pred - ref>``, clipped to [0, 1] (0 where the
    prediction never leaves the reference), one per dimension or one shared by each group of
    dimensions. A factor shared by the x and y of some points scales their distances by ``k``,
    so a correlation with a distance between them (the mouth opening) does not change. Fit it
    on predictions for clips the model was not trained on, then
    ``model.set_calibration(k, (1 - k) * ref)``.

    Args:
        pred, target: ``(N, D)`` predicted and true values of the same frames.
        reference: ``(D,)`` the value to shrink towards (the training mean face).
        groups: optional ``(D,)`` integer group of each dimension (one ``k`` per group).

    Returns:
        ``(D,)`` factors (equal within a group).

    Example:
        >>> ref = np.zeros(2)
        >>> fit_shrink(np.array([[2.0, 1.0], [-2.0, -1.0]]), np.array([[1.0, -1.0], [-1.0, 1.0]]), ref)
        array([0.5, 0. ])
        >>> fit_shrink(np.array([[2.0, 2.0]]), np.array([[1.0, 2.0]]), ref, groups=np.array([0, 0]))
        array([0.75, 0.75])
    """
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 2:
        raise DataError(f"fit_shrink needs two (N, D) arrays of one shape, got {pred.shape} and "
                        f"{target.shape}")
    d, t = pred - reference, target - reference
    num, den = (d * t).sum(0), (d * d).sum(0)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (pred.shape[1],):
            raise DataError(f"groups has shape {groups.shape}, need ({pred.shape[1]},)")
        for g in np.unique(groups):
            sel = groups == g
            num[sel], den[sel] = num[sel].sum(), den[sel].sum()
    k = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(k, 0.0, 1.0)


def compose_linear_map(model: Any, b: np.ndarray, c: np.ndarray, space: str, *,
                       center: bool | None = None, bias: np.ndarray | None = None,
                       name: str | None = None,
                       info: dict[str, Any] | None = None) -> Any:
    """A speech model of ``space`` whose raw outputs are ``model``'s calibrated raw outputs
    mapped by ``raw @ b + c``, as one output layer.

    Args:
        model: a :class:`~speechface.SpeechEstimator` with a ``cnn`` or ``dcnn`` network.
        b: ``(model's output dim, space dim)`` map; c: ``(space dim,)`` offset.
        space: the new model's space (e.g. ``"landmarks68"``).
        center: set the network's ``center`` option (default: keep the model's). With
            ``center=True`` the hidden layer is centred over each utterance, so each output's
            utterance mean is the output bias.
        bias: ``(space dim,)`` output bias to use instead of the composed one (with
            ``center=True``: the value every output averages to over an utterance, e.g. the
            training mean face).
        name, info: the new model's name and extra metadata.

    Returns:
        The composed estimator (the class of ``space``, in eval mode), same features and
        normalisation; its calibration is the identity. Values are ``space.activate`` of the composed raw outputs:
        ``model``'s own activation (a clamp for blendshapes) is not applied before the map.

    Example:
        >>> from speechface import SpeechEstimator
        >>> bs = SpeechEstimator.create("cnn", space="blendshapes52")
        >>> lm = compose_linear_map(bs, np.zeros((52, 136)), np.full(136, 0.5), "landmarks68")
        >>> lm.predict_features(torch.zeros(10, 80)).values.shape
        (10, 136)
    """
    from ..core.registry import FEATURES
    from ..spaces import get_space
    from .estimators.cnn import CNN
    from .model import estimator_class

    net = model.network
    if not isinstance(net, CNN):
        raise ModelError(f"compose_linear_map needs a cnn/dcnn network (one output Linear), got "
                         f"{type(net).__name__}")
    out_space = get_space(space)
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if b.shape != (net.out_dim, out_space.dim) or c.shape != (out_space.dim,):
        raise DataError(f"map shapes {b.shape} and {c.shape} do not fit {net.out_dim} outputs -> "
                        f"{space} ({out_space.dim}): need ({net.out_dim}, {out_space.dim}) and "
                        f"({out_space.dim},)")
    cfg = model.config()
    args = dict(cfg["model_args"])
    args.pop("space", None)
    if center is not None:
        args["center"] = bool(center)
    new_net = type(net)(space=space, **args)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("out.")}
    missing = new_net.load_state_dict(state, strict=False).missing_keys
    if any(not k.startswith("out.") for k in missing):
        raise ModelError(f"cannot copy the network: missing {missing}")
    with torch.no_grad():
        w = net.out.weight.double()  # (D_in_space, C): the effective weight-normed weight
        s = model.out_scale.double()
        beta = model.out_bias.double()
        bt = torch.from_numpy(b).T  # (D_out, D_in_space)
        w_new = bt @ (s[:, None] * w)
        b_new = bt @ (s * net.out.bias.double() + beta) + torch.from_numpy(c)
        par = new_net.out.parametrizations.weight
        par.original1.copy_(w_new.float())  # weight norm: W = g * v / |v| with v = W, g = |W|
        par.original0.copy_(w_new.norm(dim=1, keepdim=True).float())
        if bias is not None:
            if np.shape(bias) != (out_space.dim,):
                raise DataError(f"bias has shape {np.shape(bias)}, need ({out_space.dim},)")
            b_new = torch.as_tensor(np.asarray(bias, dtype=np.float64))
        new_net.out.bias.copy_(b_new.float())
    feat = cfg["feature"]
    fx = FEATURES.create(feat["name"], **feat.get("args", {}))
    target = estimator_class(space)
    out = target(new_net, fx, name=name or f"{model.name}-{space}", pretrained=False,
                 info={**(model.info or {}), **(info or {})})
    out.set_normalization(model.feature_mean, model.feature_std)
    return out.to(model.device).eval()


def merge_cnns(models: list[Any], *, name: str | None = None,
               info: dict[str, Any] | None = None) -> Any:
    """Several ``cnn`` speech models of one recipe as one model that outputs their mean.

    The members run side by side in one network (``members=N``: their input layers stacked,
    grouped convolutions, one output Linear holding each member's output weights divided by N),
    so ``merged(x) == mean(member(x) for member in models)`` up to float32 rounding, it streams
    like one member, and :func:`compose_linear_map` applies to it.

    Args:
        models: :class:`~speechface.SpeechEstimator` s with ``cnn`` networks of the same sizes,
            space and feature extractor and the same feature normalisation (the same training
            data); each member's output calibration is folded into its output weights.
        name, info: the merged model's name and extra metadata.

    Returns:
        The merged estimator (eval mode).

    Example:
        >>> from speechface import SpeechEstimator
        >>> a, b = (SpeechEstimator.create("cnn", space="blendshapes52") for _ in range(2))
        >>> b.set_normalization(a.feature_mean, a.feature_std)
        >>> merge_cnns([a, b]).network.members
        2
    """
    from ..core.registry import FEATURES
    from .estimators.cnn import CNN
    from .model import estimator_class

    if len(models) < 2:
        raise DataError(f"merge_cnns needs at least 2 models, got {len(models)}")
    first = models[0]
    cfg0 = first.config()
    for m in models:
        if type(m.network) is not CNN or m.network.members != 1 or m.network.center:
            raise ModelError(f"merge_cnns merges plain cnn networks, got {m.name!r} "
                             f"({type(m.network).__name__})")
        cfg = m.config()
        for key in ("model_args", "space", "feature"):
            if cfg[key] != cfg0[key]:
                raise ModelError(f"{m.name!r} differs from {first.name!r} in {key}: {cfg[key]} "
                                 f"vs {cfg0[key]}")
        if not (torch.allclose(m.feature_mean, first.feature_mean, atol=1e-5)
                and torch.allclose(m.feature_std, first.feature_std, atol=1e-5)):
            raise ModelError(f"{m.name!r} normalises its features differently from "
                             f"{first.name!r} (trained on other data?)")
    k = len(models)
    args = dict(cfg0["model_args"])
    args.pop("space", None)
    args["members"] = k
    net = CNN(space=cfg0["space"], **args)
    nets = [m.network for m in models]

    def _wn(layer: Any) -> tuple[torch.Tensor, torch.Tensor]:
        par = layer.parametrizations.weight
        return par.original0.detach(), par.original1.detach()

    def _set(layer: Any, g: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> None:
        par = layer.parametrizations.weight
        par.original0.copy_(g)
        par.original1.copy_(v)
        layer.bias.copy_(bias)

    with torch.no_grad():
        # stacked input layers and grouped convolutions: each member's weight-norm rows unchanged
        for get in [lambda n: n.inp] + [lambda n, i=i: n.convs[i] for i in range(len(net.convs))]:
            gs, vs = zip(*(_wn(get(n)) for n in nets))
            _set(get(net), torch.cat(gs), torch.cat(vs), torch.cat([get(n).bias for n in nets]))
        # the output: sum over members of (s_i * (W_i h_i + b_i) + beta_i) / k
        ws = [m.out_scale[:, None] * n.out.weight / k for m, n in zip(models, nets)]
        w = torch.cat(ws, dim=1)
        bias = sum((m.out_scale * n.out.bias + m.out_bias) / k for m, n in zip(models, nets))
        _set(net.out, w.norm(dim=1, keepdim=True), w, bias)
    feat = cfg0["feature"]
    fx = FEATURES.create(feat["name"], **feat.get("args", {}))
    out = estimator_class(cfg0["space"])(
        net, fx, name=name or f"{first.name}-x{k}", pretrained=all(m.pretrained for m in models),
        info={**(first.info or {}), **(info or {}), "members": [m.name for m in models]})
    out.set_normalization(first.feature_mean, first.feature_std)
    return out.to(first.device).eval()
