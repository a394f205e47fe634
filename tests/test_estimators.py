"""Every registered estimator against every space: shapes, NaN, gradients, padding, receptive field."""

from __future__ import annotations

import pytest
import torch

from speechface.core.registry import ESTIMATORS
from speechface.spaces import list_spaces
from speechface.speech.estimators import CNN, create_estimator, list_estimators

CASES = [(arch, space) for arch in list_estimators() for space in list_spaces()]


def _make(arch: str, space: str) -> torch.nn.Module:
    in_f = 39 if ESTIMATORS.get(arch).default_feature == "mfcc" else 80
    return create_estimator(arch, in_features=in_f, space=space)


@pytest.mark.parametrize("arch,space", CASES)
def test_shape_finite_and_gradients(arch: str, space: str) -> None:
    net = _make(arch, space)
    x = torch.randn(2, 37, net.in_features)
    y = net(x)
    dim = net.space.dim
    assert y.shape == ((2, 37, dim) if net.frame_level else (2, dim))
    assert torch.isfinite(y).all()
    net.space.loss_fn(y, torch.rand_like(y)).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a gradient: {missing}"
    assert all(p.grad.abs().sum() > 0 for p in net.parameters()), "a parameter got a zero gradient"


@pytest.mark.parametrize("arch", list_estimators())
def test_padding_does_not_change_valid_outputs(arch: str) -> None:
    net = _make(arch, "au17").eval()
    a, b = torch.randn(1, 30, net.in_features), torch.randn(1, 45, net.in_features)
    with torch.no_grad():
        ya, yb = net(a), net(b)
        x = torch.zeros(2, 45, net.in_features)
        x[0, :30], x[1] = a[0], b[0]
        x[0, 30:] = 7.0  # garbage in the padding must not leak into valid frames
        yy = net(x, torch.tensor([30, 45]))
    if net.frame_level:
        torch.testing.assert_close(yy[0, :30], ya[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(yy[1], yb[0], atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(yy[0], ya[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(yy[1], yb[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch,expected", [("cnn", 17), ("dcnn", 161), ("mlp", 1)])
def test_receptive_field_by_impulse_response(arch: str, expected: int) -> None:
    """Perturb one input frame; count the output frames that change."""
    net = create_estimator(arch).eval()
    assert net.receptive_field == expected
    t, centre = 401, 200
    x = torch.randn(1, t, 80, dtype=torch.float64)
    net = net.double()
    with torch.no_grad():
        base = net(x)
        x2 = x.clone()
        x2[0, centre] += 10.0
        changed = (net(x2) - base).abs().amax(-1)[0] > 1e-9
    idx = changed.nonzero().flatten()
    assert idx.numel() == expected
    assert idx.min().item() == centre - expected // 2 and idx.max().item() == centre + expected // 2


def test_hparams_are_recorded_and_rebuild_the_network() -> None:
    net = CNN(space="emotion8", channels=[8, 8], dilations=[1, 2], dropout=0.0)
    assert net.hparams["channels"] == [8, 8] and net.hparams["space"] == "emotion8"
    again = ESTIMATORS.create("cnn", **net.hparams)
    again.load_state_dict(net.state_dict(), strict=True)
    assert again.lookahead == 3


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="one dilation per block"):
        CNN(channels=[8, 8], dilations=[1])
    with pytest.raises(KeyError, match="unknown conditioning space"):
        CNN(space="au99")
