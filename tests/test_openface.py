"""speechface.data.openface: OpenFace CSV parsing and resampling onto the 25 fps grid."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from speechface.core.errors import DataError
from speechface.data.openface import read_au_table, read_openface_csv, to_frame_grid
from speechface.spaces import AU17

SHARED = Path(os.environ.get("SPEECHFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
AUS = list(AU17.columns)


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found at {p} (set SPEECHFACE_SHARED)")
    return p


def write_openface(path: Path, n: int = 6, fps: float = 30.0, *, success: bool = True,
                   nan_row: int | None = None, fail_row: int | None = None,
                   low_conf_row: int | None = None) -> np.ndarray:
    """An OpenFace-2-style CSV (leading spaces in the header); returns the AU values."""
    cols = ["frame", " face_id", " timestamp", " confidence"] + ([" success"] if success else [])
    cols += [" gaze_0_x"] + [f" {c}" for c in AUS] + [" AU01_c"]
    aus = np.round(np.arange(n * 17).reshape(n, 17) % 50 / 10.0, 2)
    lines = [", ".join(cols)]
    for i in range(n):
        conf = 0.2 if i == low_conf_row else 0.98
        cells = [str(i + 1), "0", f"{i / fps:.3f}", str(conf)]
        if success:
            cells.append("0" if i == fail_row else "1")
        au_cells = ["" if i == nan_row else f"{v:.2f}" for v in aus[i]]
        lines.append(", ".join(cells + ["0.1"] + au_cells + ["1"]))
    path.write_text("\n".join(lines) + "\n")
    return aus


def test_openface_csv_with_spaces_success_and_nan(tmp_path):
    p = tmp_path / "of.csv"
    aus = write_openface(p, n=8, nan_row=2, fail_row=5, low_conf_row=6)
    tr = read_openface_csv(p)
    assert len(tr) == 8 and tr.aus.shape == (8, 17)
    np.testing.assert_allclose(tr.aus[0], aus[0], atol=1e-6)
    assert tr.valid.tolist() == [True, True, False, True, True, False, False, True]
    assert tr.frame.tolist() == list(range(1, 9)) and tr.fps == pytest.approx(30.0, rel=0.01)
    assert np.isnan(tr.aus[2]).all() and tr.landmarks68 is None


def test_missing_success_uses_confidence(tmp_path):
    p = tmp_path / "of.csv"
    write_openface(p, n=5, success=False, low_conf_row=3)
    tr = read_openface_csv(p)
    assert tr.success.tolist() == [True, True, True, False, True]
    assert read_openface_csv(p, min_confidence=0.1).success.all()


def test_missing_au_columns_are_listed(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("frame,timestamp,AU01_r,AU02_r\n1,0.0,1,2\n")
    with pytest.raises(DataError, match="AU04_r.*AU45_r"):
        read_openface_csv(p)
    with pytest.raises(DataError, match="not found"):
        read_openface_csv(tmp_path / "none.csv")


def test_speechface_prediction_csv(tmp_path):
    p = tmp_path / "pred.csv"
    rows = ["frame,timestamp," + ",".join(AUS)]
    rows += [f"{n + 1},{n / 25:.2f}," + ",".join(["0.5"] * 17) for n in range(10)]
    p.write_text("\n".join(rows) + "\n")
    tr = read_openface_csv(p)
    assert tr.fps == pytest.approx(25.0) and tr.valid.all() and (tr.confidence == 1).all()


def test_multi_face_csv_keeps_one_face(tmp_path):
    p = tmp_path / "multi.csv"
    rows = ["frame, face_id, timestamp, confidence, success, " + ", ".join(AUS)]
    for n in range(4):
        for fid in (0, 1):
            rows.append(f"{n + 1}, {fid}, {n / 30:.4f}, 0.9, 1, " + ", ".join([str(fid)] * 17))
    p.write_text("\n".join(rows) + "\n")
    assert (read_openface_csv(p).aus == 0).all()
    assert (read_openface_csv(p, face_id=1).aus == 1).all()


def test_grid_resampling_of_a_ramp_is_exact():
    t = np.arange(91) / 30.0  # 3 s at 30 fps
    ramp = np.stack([2 * t + 1, 5 - t], axis=1)
    grid, mask = to_frame_grid(t, ramp, None, n_frames=80, fps=25)
    g = np.arange(80) / 25
    assert mask[:76].all() and not mask[76:].any()  # 3.0 s + half a period, then outside
    np.testing.assert_allclose(grid[:76], np.stack([2 * g + 1, 5 - g], axis=1)[:76], atol=1e-5)
    # 29.97 fps (NTSC) too
    t2 = np.arange(90) * 1001 / 30000
    g2, m2 = to_frame_grid(t2, 3 * t2, None, n_frames=74)
    assert m2.all()
    np.testing.assert_allclose(g2, 3 * np.arange(74) / 25, atol=1e-5)


def test_grid_masks_gaps_and_bridges_single_drops():
    t = np.arange(60) / 30.0
    v = t[:, None].copy()
    valid = np.ones(60, bool)
    valid[10] = False  # one dropped row: bridged
    valid[30:40] = False  # 1/3 s gap: masked inside
    grid, mask = to_frame_grid(t, v, valid, n_frames=60)
    g = np.arange(60) / 25
    in_gap = (g > 29.5 / 30 + 1.5 / 30) & (g < 40 / 30 - 1.5 / 30)
    assert not mask[in_gap].any() and in_gap.any()
    near_drop = np.abs(g - 10 / 30) < 1 / 30
    assert mask[near_drop].all()
    ok = mask & (g < 29 / 30)
    np.testing.assert_allclose(grid[ok, 0], g[ok], atol=1e-6)  # interpolation across the drop
    assert not mask[g > 2.0 + 0.5 / 30].any() and (grid[~mask] == 0).all()
    v_nan = v.copy()
    v_nan[20] = np.nan  # NaN rows are invalid even when `valid` says otherwise
    _, m3 = to_frame_grid(t, v_nan, None, 60)
    assert m3[np.abs(g - 20 / 30) < 0.02].all()  # a single NaN row is bridged


@pytest.mark.shared
def test_real_ravdess_openface_tracks():
    files = sorted(shared("data", "ravdess_openface").glob("*.csv"))
    assert len(files) == 6
    total = 0
    for f in files:
        tr = read_openface_csv(f)
        total += len(tr)
        assert tr.fps == pytest.approx(29.97, abs=0.05) and tr.valid.all()
        assert np.nanmin(tr.aus) >= 0 and np.nanmax(tr.aus) <= 5
        n = int(tr.times[-1] * 25)
        grid, mask = to_frame_grid(tr.times, tr.aus, tr.valid, n)
        assert mask.all() and grid.shape == (n, 17)
    assert total == 683


@pytest.mark.shared
def test_real_ganimation_au_table():
    names, aus = read_au_table(shared("data", "ganimation_sample", "aus_openface.csv"))
    assert len(names) == 4 and aus.shape == (4, 17)
    assert names[0] == "N_0000000356_00190"
    assert aus[0, AU17.index("AU01")] == pytest.approx(2.86)
    assert aus.min() >= 0 and aus.max() <= 5
