"""Per-AU calibration: recovers an affine map, never inverts, does not stretch constant outputs."""

from __future__ import annotations

import numpy as np
import torch

from speechface import AUEstimator
from speechface.data.clips import TrainClip
from speechface.evaluation.calibration import (
    _raw_outputs,
    apply_calibration,
    cross_validate_calibration,
    fit_calibration,
)


def _clips(model, n=4):
    g = torch.Generator().manual_seed(0)
    clips = []
    for i in range(n):
        audio = 0.1 * torch.randn(16000, generator=g) * torch.linspace(0.2, 1, 16000)
        clip = TrainClip(f"c{i}", f"spk{i}", torch.zeros(25, 80), torch.zeros(25, 17),
                         torch.ones(25, dtype=torch.bool), audio=audio)
        raw = torch.from_numpy(_raw_outputs(model, clip))
        target = 2.0 * raw + 1.0
        target[:, 3] = -3.0 * raw[:, 3] + 2.0  # an inverse relation: must not be inverted
        target[:, 5] = 0.5 + 0.1 * i  # unrelated to the output
        clip.targets = target
        clips.append(clip)
    return clips


def test_fit_recovers_affine_map_and_refuses_inversions() -> None:
    model = AUEstimator.create("mlp", dropout=0.0)
    clips = _clips(model)
    scale, bias = fit_calibration(model, clips, method="least_squares", min_raw_std=0.0)
    ok = [d for d in range(17) if d not in (3, 5)]
    np.testing.assert_allclose(scale[ok], 2.0, rtol=1e-3)
    np.testing.assert_allclose(bias[ok], 1.0, atol=1e-3)
    assert scale[3] == 0.0  # clipped at 0, bias = target mean
    y3 = torch.cat([c.targets[:, 3] for c in clips]).mean().item()
    assert abs(bias[3] - y3) < 1e-4
    calibrated = apply_calibration(model, scale, bias)
    assert torch.equal(calibrated.out_scale, torch.from_numpy(scale))
    assert torch.equal(model.out_scale, torch.ones(17))  # the original is untouched


def test_nearly_constant_outputs_are_not_stretched() -> None:
    model = AUEstimator.create("mlp", dropout=0.0)
    clips = _clips(model)
    raw = np.concatenate([_raw_outputs(model, c) for c in clips])
    guard = float(np.median(raw.std(0)))
    scale, _ = fit_calibration(model, clips, method="least_squares", min_raw_std=guard)
    assert np.all(scale[raw.std(0) < guard] == 0.0)
    assert np.all(scale[(raw.std(0) >= guard) & (np.arange(17) != 3) & (np.arange(17) != 5)] > 1.9)


def test_leave_one_group_out_reports_baselines() -> None:
    model = AUEstimator.create("mlp", dropout=0.0)
    cv = cross_validate_calibration({"MLP": model}, _clips(model), n_boot=0,
                                    method="least_squares", min_raw_std=0.0)
    assert set(cv["frame"]) == {"Zero", "Mean", "MLP"} and cv["groups"] == ["spk0", "spk1", "spk2", "spk3"]
    assert cv["frame"]["MLP"]["mae"] < cv["frame"]["Mean"]["mae"] < cv["frame"]["Zero"]["mae"]


def test_default_floor_method_never_flattens_a_varying_au() -> None:
    model = AUEstimator.create("mlp", dropout=0.0)
    clips = _clips(model)
    raw = np.concatenate([_raw_outputs(model, c) for c in clips])
    y = torch.cat([c.targets for c in clips]).numpy()
    scale, bias = fit_calibration(model, clips)  # method="floor", floor=0.5
    moments = y.std(0) / raw.std(0)
    ok = [d for d in range(17) if d not in (3, 5)]
    np.testing.assert_allclose(scale[ok], 2.0, rtol=1e-3)  # least squares where it is steeper
    # the inverse relation is not inverted, and not flattened either: half the moment scale
    assert scale[3] > 0 and abs(scale[3] - 0.5 * moments[3]) < 1e-3 * moments[3]
    assert scale[5] > 0  # an unrelated AU still moves (its targets vary across clips)
    calibrated = apply_calibration(model, scale, bias)
    out = np.concatenate([calibrated.predict(c.audio.numpy(), sample_rate=16000).values
                          for c in clips])
    assert np.all(out.std(0)[y.std(0) > 0] > 0)  # no constant output where targets vary
    np.testing.assert_allclose(out.mean(0), y.mean(0), atol=1e-3)


def test_moments_method_and_scale_cap() -> None:
    model = AUEstimator.create("mlp", dropout=0.0)
    clips = _clips(model)
    raw = np.concatenate([_raw_outputs(model, c) for c in clips])
    y = torch.cat([c.targets for c in clips]).numpy()
    scale, _ = fit_calibration(model, clips, method="moments")
    np.testing.assert_allclose(scale, np.minimum(y.std(0) / raw.std(0), 10.0), rtol=1e-4)
    capped, _ = fit_calibration(model, clips, method="moments", max_scale=0.5)
    assert capped.max() <= 0.5
    import pytest

    with pytest.raises(ValueError, match="method"):
        fit_calibration(model, clips, method="bogus")
