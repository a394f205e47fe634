"""speechface.evaluation.metrics: hand-computed values, bootstrap CIs, masks, baselines, tables, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from speechface.core.errors import DataError
from speechface.evaluation.metrics import (
    accuracy,
    ccc,
    confusion_matrix,
    evaluate_sequences,
    frame_mean,
    macro_f1,
    mae,
    mean_baseline,
    mse,
    pearson,
    per_label_table,
    plot_confusion,
    results_table,
    save_results,
    to_jsonable,
    zero_baseline,
)
from speechface.spaces import AU17, EMOTION8


def _random_utts(n: int, seed: int, dim: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    targets, preds = [], []
    for _ in range(n):
        frames = int(rng.integers(20, 60))
        t = rng.uniform(0, 3, size=(frames, dim))
        targets.append(t)
        preds.append(t + rng.normal(0, 0.5 + rng.uniform(0, 1), size=t.shape))
    return preds, targets


# --- point metrics ------------------------------------------------------------------------------

def test_mae_mse_hand() -> None:
    assert mae([1.0, 2.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(4 / 3)
    assert mse([1.0, 2.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(10 / 3)


def test_pearson_hand() -> None:
    # x = [1,2,3], y = [1,2,4]: cov sum = 3, sxx = 2, syy = 42/9 -> r = 9 / sqrt(84)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(9 / math.sqrt(84))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([2, 2, 2], [1, 2, 3]))
    assert math.isnan(pearson([1], [1]))


def test_ccc_hand() -> None:
    y = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert ccc(y, y) == pytest.approx(1.0)
    # shift by 1: var = 2, cov = 2 -> 4 / (2 + 2 + 1)
    assert ccc(y, y + 1) == pytest.approx(0.8)
    assert ccc(y, y + 1) < 1.0
    assert ccc(y, -y) == pytest.approx(-1.0)
    assert ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    # constant prediction of a varying target: defined, 0; both constant and equal: undefined
    assert ccc(np.zeros(5), y) == pytest.approx(0.0)
    assert math.isnan(ccc([1.0, 1.0], [1.0, 1.0]))


# --- evaluate_sequences -------------------------------------------------------------------------

def test_evaluate_hand_example() -> None:
    t1 = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    t2 = np.array([[1.0, 0.0]])
    p1 = t1 + np.array([[1.0, 0.0]])       # dim 0 off by 1, dim 1 exact
    p2 = np.array([[3.0, 0.0]])            # dim 0 off by 2
    res = evaluate_sequences([p1, p2], [t1, t2], labels=["a", "b"], n_boot=0)
    # |errors|: dim0 = 1,1,1,2 ; dim1 = 0,0,0,0 -> MAE = 5/8, MSE = 7/8
    assert res["mae"] == pytest.approx(5 / 8)
    assert res["mse"] == pytest.approx(7 / 8)
    assert res["n_utterances"] == 2 and res["n_frames"] == 4 and res["dim"] == 2
    assert res["per_label"]["a"]["mae"] == pytest.approx(5 / 4)
    assert res["per_label"]["b"]["mae"] == pytest.approx(0.0)
    assert res["per_label"]["b"]["pearson"] == pytest.approx(1.0)
    assert res["per_label"]["b"]["ccc"] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in res["mae_ci"])   # n_boot=0: no interval
    json.dumps(to_jsonable(res))                         # plain values only


def test_ci_contains_point_and_narrows() -> None:
    p_small, t_small = _random_utts(6, seed=1)
    p_big, t_big = _random_utts(200, seed=2)
    small = evaluate_sequences(p_small, t_small, n_boot=500, seed=0)
    big = evaluate_sequences(p_big, t_big, n_boot=500, seed=0)
    for r in (small, big):
        for key in ("mae", "mse"):
            lo, hi = r[f"{key}_ci"]
            assert lo <= r[key] <= hi
            assert lo < hi
    width = lambda r, k: r[f"{k}_ci"][1] - r[f"{k}_ci"][0]  # noqa: E731
    assert width(big, "mae") < width(small, "mae")
    assert width(big, "mse") < width(small, "mse")
    # deterministic for a seed
    assert evaluate_sequences(p_small, t_small, n_boot=500, seed=0)["mae_ci"] == small["mae_ci"]


def test_single_utterance_ci_collapses() -> None:
    t = np.arange(10.0).reshape(5, 2)
    res = evaluate_sequences([t + 0.5], [t], n_boot=100)
    assert res["mae_ci"] == pytest.approx([0.5, 0.5])


def test_masks_exclude_frames() -> None:
    preds, targets = _random_utts(4, seed=3)
    masks = [np.arange(len(t)) % 3 != 0 for t in targets]
    spoiled = [p.copy() for p in preds]
    for p, m in zip(spoiled, masks):
        p[~m] = 1e6                              # garbage in masked frames must not count
    masked = evaluate_sequences(spoiled, targets, masks=masks, n_boot=200)
    sub = evaluate_sequences([p[m] for p, m in zip(preds, masks)],
                             [t[m] for t, m in zip(targets, masks)], n_boot=200)
    assert masked["mae"] == pytest.approx(sub["mae"])
    assert masked["mse"] == pytest.approx(sub["mse"])
    assert masked["mae_ci"] == pytest.approx(sub["mae_ci"])
    assert masked["n_frames"] == sum(int(m.sum()) for m in masks)
    # NaN targets are fine when masked, an error when not
    t_nan = [t.copy() for t in targets]
    t_nan[0][0] = np.nan
    m0 = [np.ones(len(t), bool) for t in targets]
    m0[0][0] = False
    evaluate_sequences(preds, t_nan, masks=m0, n_boot=10)
    with pytest.raises(DataError, match="non-finite"):
        evaluate_sequences(preds, t_nan, n_boot=10)


def test_fully_masked_utterance_is_not_counted() -> None:
    t = [np.ones((4, 2)), np.ones((3, 2))]
    res = evaluate_sequences(zero_baseline(t), t, masks=[None, np.zeros(3, bool)], n_boot=50)
    assert res["n_utterances"] == 1 and res["n_frames"] == 4


def test_zero_baseline_equals_mean_abs_target() -> None:
    _, targets = _random_utts(5, seed=4, dim=17)
    targets = [t - 1.0 for t in targets]               # include negative values
    res = evaluate_sequences(zero_baseline(targets), targets, labels=AU17, n_boot=100)
    all_t = np.concatenate(targets)
    assert res["mae"] == pytest.approx(np.abs(all_t).mean())
    assert res["mse"] == pytest.approx((all_t ** 2).mean())
    assert res["labels"] == list(AU17.labels)
    assert math.isnan(res["per_label"]["AU01"]["pearson"])   # constant prediction
    assert res["per_label"]["AU01"]["ccc"] == pytest.approx(0.0)


def test_mean_baseline_and_frame_mean() -> None:
    train = [np.array([[1.0, 0.0]]), np.array([[3.0, 2.0], [5.0, 4.0]])]
    m = frame_mean(train)
    np.testing.assert_allclose(m, [3.0, 2.0])
    targets = [np.array([[3.0, 2.0], [4.0, 2.0]])]
    preds = mean_baseline(m, targets)
    assert preds[0].shape == (2, 2)
    res = evaluate_sequences(preds, targets, n_boot=0)
    assert res["mae"] == pytest.approx(0.25)
    with pytest.raises(DataError):
        mean_baseline([1.0, 2.0, 3.0], targets)


def test_torch_and_batched_inputs() -> None:
    preds, targets = _random_utts(3, seed=5)
    ref = evaluate_sequences(preds, targets, n_boot=100)
    tor = evaluate_sequences([torch.tensor(p) for p in preds], [torch.tensor(t) for t in targets],
                             masks=[torch.ones(len(t), dtype=torch.bool) for t in targets],
                             n_boot=100)
    assert tor["mae"] == pytest.approx(ref["mae"])
    assert tor["mae_ci"] == pytest.approx(ref["mae_ci"])
    # (N, T, D) padded batch with (N, T) masks
    batch_t = torch.zeros(2, 5, 3)
    batch_t[0, :3] = 1.0
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, :3] = True
    mask[1, :2] = True
    res = evaluate_sequences(torch.zeros(2, 5, 3), batch_t, masks=mask, n_boot=10)
    assert res["n_frames"] == 5 and res["mae"] == pytest.approx(3 / 5)


def test_input_errors() -> None:
    with pytest.raises(DataError, match="utterances"):
        evaluate_sequences([np.zeros((2, 2))], [np.zeros((2, 2))] * 2)
    with pytest.raises(DataError, match="shape"):
        evaluate_sequences([np.zeros((2, 2))], [np.zeros((3, 2))])
    with pytest.raises(DataError, match="mask"):
        evaluate_sequences([np.zeros((2, 2))], [np.zeros((2, 2))], masks=[np.ones(3, bool)])
    with pytest.raises(DataError, match="labels"):
        evaluate_sequences([np.zeros((2, 2))], [np.zeros((2, 2))], labels=["a"])
    with pytest.raises(DataError, match="no valid frames"):
        evaluate_sequences([np.zeros((2, 2))], [np.zeros((2, 2))], masks=[np.zeros(2, bool)])


# --- tables and files ---------------------------------------------------------------------------

def _rows() -> dict[str, dict]:
    preds, targets = _random_utts(8, seed=6)
    names = ["x", "y", "z"]
    return {
        "Zero": evaluate_sequences(zero_baseline(targets), targets, labels=names, n_boot=200),
        "Mean": evaluate_sequences(mean_baseline(frame_mean(targets), targets), targets,
                                   labels=names, n_boot=200),
        "RNN": evaluate_sequences(preds, targets, labels=names, n_boot=200),
    }


def test_results_table_shape() -> None:
    rows = _rows()
    md = results_table(rows)
    lines = md.strip().splitlines()
    assert lines[0] == "| Model | MAE [95% CI] | MSE [95% CI] |"
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["Zero", "Mean", "RNN"]
    r = rows["RNN"]
    assert f"{r['mae']:.3f} [{r['mae_ci'][0]:.3f}, {r['mae_ci'][1]:.3f}]" in md
    txt = results_table(rows, fmt="text")
    assert txt.splitlines()[0].startswith("Model") and "|" not in txt
    with pytest.raises(ValueError):
        results_table(rows, fmt="html")


def test_per_label_table_and_json_none(tmp_path) -> None:
    rows = _rows()
    tab = per_label_table(rows, metric="pearson")
    assert tab.splitlines()[0] == "| Model | x | y | z | mean |"
    assert "| Zero | n/a | n/a | n/a | n/a |" in tab     # constant prediction: undefined r
    assert per_label_table(rows, metric="ccc").count("\n") == 5
    with pytest.raises(ValueError):
        per_label_table(rows, metric="rmse")
    pj, pm = tmp_path / "out" / "eval.json", tmp_path / "out" / "eval.md"
    save_results(pj, pm, rows, {"title": "Toy eval", "split": "val"})
    data = json.loads(pj.read_text())
    assert data["meta"] == {"title": "Toy eval", "split": "val"}
    assert list(data["results"]) == ["Zero", "Mean", "RNN"]
    assert data["results"]["Zero"]["per_label"]["x"]["pearson"] is None
    md = pm.read_text()
    assert md.startswith("# Toy eval") and "| Model | MAE [95% CI] | MSE [95% CI] |" in md
    assert "Per-label CCC" in md
    assert sorted(p.name for p in pj.parent.iterdir()) == ["eval.json", "eval.md"]  # no temp files


# --- classification -----------------------------------------------------------------------------

def test_accuracy_confusion_macro_f1() -> None:
    pred = [0, 0, 1, 1, 2]
    true = [0, 1, 1, 1, 2]
    assert accuracy(pred, true) == pytest.approx(0.8)
    cm = confusion_matrix(pred, true, 3)
    assert cm.dtype.kind == "i"
    assert cm.tolist() == [[1, 0, 0], [1, 2, 0], [0, 0, 1]]   # row = true, column = predicted
    assert cm.sum() == 5
    # F1: class0 = 2*1/(1+2) = 2/3, class1 = 2*2/(3+2) = 4/5, class2 = 1
    assert macro_f1(pred, true, 3) == pytest.approx((2 / 3 + 4 / 5 + 1) / 3)
    # a class absent from both (e.g. contempt on RAVDESS) is left out; one absent from pred is 0
    assert macro_f1(pred, true, 8) == pytest.approx((2 / 3 + 4 / 5 + 1) / 3)
    assert macro_f1([0, 0], [0, 1], 2) == pytest.approx((2 / 3 + 0) / 2)
    # scores are reduced by argmax
    scores = np.eye(3)[pred] * 0.9 + 0.01
    assert accuracy(torch.tensor(scores), torch.tensor(true)) == pytest.approx(0.8)
    with pytest.raises(DataError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(DataError):
        accuracy([0, 1], [0])


def test_plot_confusion(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    cm = confusion_matrix([0, 1, 2, 3, 3], [0, 1, 2, 2, 3], 8)
    out = plot_confusion(cm, EMOTION8.labels, tmp_path / "cm.png", title="toy")
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError):
        plot_confusion(cm, ["a", "b"], tmp_path / "bad.png")


def test_bootstrap_mean_ci_brackets_the_mean() -> None:
    from speechface.evaluation.metrics import bootstrap_mean_ci

    v = np.random.default_rng(1).normal(0.5, 0.2, 40)
    lo, hi = bootstrap_mean_ci(v)
    assert lo < v.mean() < hi and hi - lo < 0.2
    assert bootstrap_mean_ci(v) == [lo, hi]  # seeded
    assert all(np.isnan(bootstrap_mean_ci([])))
