"""Linear output maps folded into a speech model (speechface.speech.output_maps) and the cnn's centring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechface import SpeechEstimator
from speechface.core.errors import DataError, ModelError
from speechface.speech.output_maps import compose_linear_map, fit_linear_map, fit_shrink


def _bs_model(seed: int = 0, **kw) -> SpeechEstimator:
    torch.manual_seed(seed)
    est = SpeechEstimator.create("cnn", space="blendshapes52", channels=[32, 16, 16, 8],
                                 dilations=[1, 1, 1, 1], **kw).eval()
    est.set_normalization(torch.randn(80) * 0.1, torch.rand(80) + 0.5)
    est.set_calibration(torch.rand(52) + 0.5, torch.randn(52) * 0.1)  # a non-trivial calibration
    return est


def _map(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(52, 136)) * 0.01, rng.random(136)


def test_composition_equals_the_map_applied_to_the_arkit_outputs():
    bs = _bs_model()
    b, c = _map()
    lm = compose_linear_map(bs, b, c, "landmarks68")
    assert lm.space.name == "landmarks68" and type(lm).__name__ == "LandmarkEstimator"
    feats = torch.randn(60, 80)
    with torch.no_grad():
        raw_bs = bs(bs.normalize(feats)[None])[0].double().numpy()  # calibrated raw outputs
    want = raw_bs @ b + c
    got = lm.predict_features(feats).values
    assert got.shape == (60, 136)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the composed model is one cnn: same hidden layers, a 136-wide output layer
    assert lm.network.out.weight.shape == (136, 8)
    sd_bs, sd_lm = bs.network.state_dict(), lm.network.state_dict()
    assert all(torch.equal(sd_bs[k], sd_lm[k]) for k in sd_bs if not k.startswith("out."))


def test_composition_survives_save_and_load(tmp_path):
    bs = _bs_model()
    lm = compose_linear_map(bs, *_map(), "landmarks68", name="test.landmarks68")
    lm.save_pretrained(tmp_path / "m")
    back = SpeechEstimator.from_pretrained(tmp_path / "m")
    feats = torch.randn(30, 80)
    np.testing.assert_allclose(back.predict_features(feats).values,
                               lm.predict_features(feats).values, atol=1e-6)


def test_centred_network_mean_is_the_bias_and_padding_does_not_matter():
    bs = _bs_model()
    b, c = _map()
    mean_face = np.linspace(0.2, 0.8, 136)
    lm = compose_linear_map(bs, b, c, "landmarks68", center=True, bias=mean_face)
    assert lm.network.center and lm.network.stream_reason() is not None
    with pytest.raises(NotImplementedError, match="whole utterance"):
        lm.network.stream()
    x = torch.randn(1, 50, 80)
    with torch.no_grad():
        out = lm(x)[0].double().numpy()
        # movement = the uncentred composition minus its utterance mean
        plain = compose_linear_map(bs, b, c, "landmarks68")(x)[0].double().numpy()
    np.testing.assert_allclose(out.mean(0), mean_face, atol=1e-5)
    np.testing.assert_allclose(out - out.mean(0), plain - plain.mean(0), atol=1e-5)
    # a padded batch gives the valid frames the same values as the clip alone
    xb = torch.cat([x, torch.randn(1, 50, 80)])
    xb[0, 30:] = 99.0
    with torch.no_grad():
        alone = lm(x[:, :30])[0]
        batched = lm(xb, torch.tensor([30, 50]))[0, :30]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_composition_rejects_bad_input():
    bs = _bs_model()
    with pytest.raises(DataError, match="do not fit"):
        compose_linear_map(bs, np.zeros((51, 136)), np.zeros(136), "landmarks68")
    with pytest.raises(DataError, match="bias"):
        compose_linear_map(bs, *_map(), "landmarks68", bias=np.zeros(3))
    rnn = SpeechEstimator.create("rnn", space="blendshapes52")
    with pytest.raises(ModelError, match="cnn/dcnn"):
        compose_linear_map(rnn, *_map(), "landmarks68")


def test_fit_linear_map_recovers_a_known_map():
    rng = np.random.default_rng(0)
    x = rng.random((500, 6))
    x[:, 5] = 0.0  # a constant input (as tongueOut in the teacher) must not break the fit
    b_true = rng.normal(size=(6, 4))
    b_true[5] = 0.0
    y = x @ b_true + np.array([1.0, 2.0, 3.0, 4.0])
    b, c = fit_linear_map(x, y, ridge=1e-9)
    np.testing.assert_allclose(b, b_true, atol=1e-5)
    np.testing.assert_allclose(c, [1, 2, 3, 4], atol=1e-5)
    with pytest.raises(DataError, match="same N"):
        fit_linear_map(x, y[:10])


def test_fit_shrink_is_the_least_squares_factor():
    rng = np.random.default_rng(0)
    ref = rng.random(3)
    move = rng.normal(size=(400, 3))
    target = ref + move
    pred = ref + 2.0 * move + rng.normal(size=(400, 3)) * 0.1  # right direction, twice too large
    k = fit_shrink(pred, target, ref)
    assert np.all(np.abs(k - 0.5) < 0.02)

    def mse(kk):
        return ((ref + kk * (pred - ref) - target) ** 2).mean()

    assert mse(k) < min(mse(np.zeros(3)), mse(np.ones(3)), mse(k * 0.9), mse(k * 1.1))
    # an anti-correlated prediction is shrunk to the reference; a shared group gets one factor
    assert fit_shrink(ref - move, target, ref).tolist() == [0.0, 0.0, 0.0]
    kg = fit_shrink(pred, target, ref, groups=np.array([0, 0, 1]))
    assert kg[0] == kg[1] and 0.4 < kg[0] < 0.6
    with pytest.raises(DataError, match="groups"):
        fit_shrink(pred, target, ref, groups=np.array([0, 1]))


def test_half_weights_stores_float16_and_loads_into_float32(tmp_path):
    from safetensors.torch import load_file

    from speechface.core.hub import half_weights

    bs = _bs_model()
    bs.save_pretrained(tmp_path / "m")
    n = half_weights(tmp_path / "m")
    state = load_file(str(tmp_path / "m" / "model.safetensors"))
    big = [k for k, v in state.items() if v.numel() >= 1024]
    assert n == len(big) > 0 and all(state[k].dtype == torch.float16 for k in big)
    assert state["feature_mean"].dtype == torch.float32  # small tensors stay float32
    back = SpeechEstimator.from_pretrained(tmp_path / "m")
    assert all(p.dtype == torch.float32 for p in back.parameters())
    feats = torch.randn(40, 80)
    a, b = back.predict_features(feats).values, bs.predict_features(feats).values
    assert np.abs(a - b).max() < 1e-2 * max(1e-3, np.abs(b).max())


def test_merged_cnns_output_the_members_mean_and_stream_and_compose(tmp_path):
    from speechface.speech.output_maps import merge_cnns

    members = [_bs_model(seed) for seed in range(3)]
    for m in members[1:]:
        m.set_normalization(members[0].feature_mean, members[0].feature_std)
    merged = merge_cnns(members, name="test.x3")
    assert merged.network.members == 3 and merged.info["members"] == [m.name for m in members]
    feats = torch.randn(45, 80)
    with torch.no_grad():  # calibrated raw outputs (values are clamped to 0-1 after the mean)
        want = torch.stack([m(m.normalize(feats)[None])[0] for m in members]).mean(0)
        torch.testing.assert_close(merged(merged.normalize(feats)[None])[0], want, atol=1e-5,
                                   rtol=1e-5)
    # it streams like one member (same look-ahead), with the same values
    net = merged.network
    assert net.lookahead == members[0].network.lookahead
    x = merged.normalize(feats)
    ws = net.stream()
    with torch.no_grad():
        y = torch.cat([ws.push(x[:17]), ws.push(x[17:], final=True)])
        torch.testing.assert_close(y, net(x[None])[0], atol=1e-5, rtol=1e-5)
    # saved and loaded (members is a constructor argument), and composable with a map
    merged.save_pretrained(tmp_path / "m")
    back = SpeechEstimator.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(back.predict_features(feats).values,
                               merged.predict_features(feats).values, atol=1e-6)
    b, c = _map()
    lm = compose_linear_map(merged, b, c, "landmarks68")
    with torch.no_grad():
        raw = merged(merged.normalize(feats)[None])[0].double().numpy()
    np.testing.assert_allclose(lm.predict_features(feats).values, raw @ b + c, atol=1e-5)


def test_merge_cnns_refuses_models_that_do_not_fit():
    from speechface.speech.output_maps import merge_cnns

    a = _bs_model(0)
    with pytest.raises(DataError, match="at least 2"):
        merge_cnns([a])
    other = SpeechEstimator.create("cnn", space="blendshapes52", channels=[16, 8],
                                   dilations=[1, 1])
    with pytest.raises(ModelError, match="model_args"):
        merge_cnns([a, other])
    b = _bs_model(1)  # a different feature normalisation
    with pytest.raises(ModelError, match="normalises its features differently"):
        merge_cnns([a, b])
