"""The user-facing estimator API: create, predict, batch, save/load, Hub cache, subclassing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import speechface
from speechface import AUEstimator, EmotionEstimator, ModelError, SpeechEstimator
from speechface.core.registry import ESTIMATORS
from speechface.speech.estimators import Estimator

FRAME_ARCHS = ["mlp", "rnn", "cnn", "dcnn", "cnn_gru"]


@pytest.mark.parametrize("arch", FRAME_ARCHS + ["lstm_mfcc"])
def test_predict_shapes_and_csv(arch: str, speech_wave, tmp_path: Path) -> None:
    wave, sr = speech_wave
    est = AUEstimator.create(arch)
    assert not est.pretrained
    r = est.predict(wave, sample_rate=sr)
    n = len(wave) * 16000 // sr // 640
    assert r.values.shape == ((n, 17) if est.network.frame_level else (1, 17))
    assert np.isfinite(r.values).all() and r.values.min() >= 0 and r.values.max() <= 5
    assert r.labels[0] == "AU01" and r.columns[-1] == "AU45_r"
    r.to_csv(tmp_path / "aus.csv")
    lines = (tmp_path / "aus.csv").read_text().splitlines()
    assert lines[0].startswith("frame,timestamp,AU01_r,AU02_r")
    assert len(lines) == len(r) + 1
    if est.network.frame_level:
        np.testing.assert_allclose(r.times[:3], [0, 0.04, 0.08])
        assert lines[2].startswith("2,0.040,")


@pytest.mark.parametrize("arch", FRAME_ARCHS)
def test_save_load_round_trip_gives_identical_output(arch: str, speech_wave, tmp_path: Path) -> None:
    wave, sr = speech_wave
    est = AUEstimator.create(arch)
    est.set_normalization(torch.randn(80), torch.rand(80) + 0.5)
    est.set_calibration(torch.rand(17) + 0.5, torch.rand(17))
    est.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["architecture"] == arch and cfg["labels"][0] == "AU01" and cfg["pretrained"] is False
    again = AUEstimator.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(est.predict(wave, sr).values, again.predict(wave, sr).values)
    generic = SpeechEstimator.from_pretrained(str(tmp_path / "m"))
    assert isinstance(generic, AUEstimator)


def test_predict_batch_matches_predict(speech_wave) -> None:
    wave, sr = speech_wave
    est = AUEstimator.create("cnn")
    waves = [wave, wave[: sr // 2], wave[: sr + 333]]
    batch = est.predict_batch(waves, sample_rates=sr)
    for w, b in zip(waves, batch):
        np.testing.assert_allclose(est.predict(w, sr).values, b.values, atol=1e-5)


def test_other_spaces(speech_wave) -> None:
    wave, sr = speech_wave
    r = EmotionEstimator.create("cnn").predict(wave, sr)
    assert r.values.shape[1] == 8
    np.testing.assert_allclose(r.values.sum(1), 1.0, atol=1e-5)
    assert r.top() in speechface.get_space("emotion8").labels
    lm = SpeechEstimator.create("cnn_gru").predict(wave, sr)
    assert lm.space == "landmarks68" and lm.values.shape[1] == 136


def test_wrong_space_and_bad_folders_raise_model_error(tmp_path: Path) -> None:
    EmotionEstimator.create("mlp").save_pretrained(tmp_path / "emo")
    with pytest.raises(ModelError, match="predicts emotion8, not au17"):
        AUEstimator.from_pretrained(tmp_path / "emo")
    with pytest.raises(ModelError, match="is an architecture, not trained weights"):
        AUEstimator.from_pretrained("cnn")
    with pytest.raises(ModelError, match="no model called"):
        AUEstimator.from_pretrained("no-such-model")
    # tampered weights
    AUEstimator.create("mlp").save_pretrained(tmp_path / "t")
    (tmp_path / "t" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a readable safetensors"):
        AUEstimator.from_pretrained(tmp_path / "t")
    # config of another architecture than the weights
    AUEstimator.create("mlp").save_pretrained(tmp_path / "x")
    cfg = json.loads((tmp_path / "x" / "config.json").read_text())
    cfg["architecture"], cfg["model_args"] = "cnn", {}
    (tmp_path / "x" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="do not fit the architecture"):
        AUEstimator.from_pretrained(tmp_path / "x")
    cfg["architecture"] = "transformer9000"
    (tmp_path / "x" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="unknown estimator 'transformer9000'"):
        AUEstimator.from_pretrained(tmp_path / "x")
    (tmp_path / "x" / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        AUEstimator.from_pretrained(tmp_path / "x")


def _fill_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = "a" * 40) -> None:
    """Lay out ``folder`` the way huggingface_hub caches a downloaded repository."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_hub_loading_from_a_prepopulated_cache_offline(tmp_path: Path, speech_wave, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    wave, sr = speech_wave
    est = AUEstimator.create("cnn")
    est.save_pretrained(tmp_path / "m")
    _fill_hub_cache(tmp_path / "cache", "someone/cnn-au17", tmp_path / "m")
    again = AUEstimator.from_pretrained("someone/cnn-au17", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(est.predict(wave, sr).values, again.predict(wave, sr).values)
    with pytest.raises(ModelError, match="not in the local Hub cache"):
        AUEstimator.from_pretrained("someone/missing", cache_dir=tmp_path / "cache")


def test_a_user_estimator_by_subclassing(tmp_path: Path, speech_wave) -> None:
    wave, sr = speech_wave

    @ESTIMATORS.register("user_tiny")
    class UserTiny(Estimator):
        def __init__(self, in_features: int = 80, space: str = "au17", hidden: int = 16):
            super().__init__(in_features, space)
            self.net = torch.nn.Sequential(torch.nn.Linear(in_features, hidden), torch.nn.Tanh(),
                                           torch.nn.Linear(hidden, self.out_dim))

        def forward(self, x, lengths=None):
            return self.net(x)

    try:
        assert "user_tiny" in speechface.list_models()
        est = AUEstimator.create("user_tiny", hidden=8)
        assert est.network.hparams == {"in_features": 80, "space": "au17", "hidden": 8}
        est.save_pretrained(tmp_path / "u")
        again = AUEstimator.from_pretrained(tmp_path / "u")
        assert again.network.hparams["hidden"] == 8
        np.testing.assert_array_equal(est.predict(wave, sr).values, again.predict(wave, sr).values)
    finally:
        ESTIMATORS.unregister("user_tiny")


def test_push_to_hub_uploads_the_saved_folder(monkeypatch) -> None:
    """push_to_hub creates the repo and uploads config.json + model.safetensors + card."""
    import huggingface_hub

    calls: dict[str, object] = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls["repo"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            cfg = json.loads((Path(folder_path) / "config.json").read_text())
            calls["arch"] = cfg["architecture"]
            return "https://example.invalid/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = AUEstimator.create("mlp").push_to_hub("me/mlp-au17", token="t0k")
    assert url.endswith("/commit/1")
    assert calls["repo"] == ("me/mlp-au17", False, True) and calls["token"] == "t0k"
    assert calls["files"] == ["README.md", "config.json", "model.safetensors"]
    assert calls["arch"] == "mlp"


def test_packaged_default_model_loads_offline_and_predicts(monkeypatch, ravdess_clip) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from speechface.pretrained import DEFAULT_MODELS, list_pretrained

    est = AUEstimator.from_pretrained()
    assert est.pretrained and est.name == DEFAULT_MODELS["au17"] in list_pretrained("estimator")
    assert est.network.arch == "cnn" and est.info["teacher"].startswith("mediapipe_blendshape_proxy")
    r = est.predict(ravdess_clip)
    assert r.pretrained and r.values.shape[1] == 17 and np.isfinite(r.values).all()
    # a trained model is not constant: jaw drop and blink (kept by its calibration) move
    assert r["AU26"].std() > 1e-3 and r["AU45"].std() > 1e-3
