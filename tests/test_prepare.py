"""speechface.data.shards and speechface.data.prepare: clips on disk, manifests, prepare av."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speechface.cli.prepare import build_prepare_parser
from speechface.core.errors import DataError
from speechface.data.prepare import (
    clip_group,
    clip_name,
    find_videos,
    parse_shard,
    prepare_av,
    select_shard,
)
from speechface.data.shards import (
    ShardDataset,
    collate_clips,
    group_split,
    list_clips,
    read_clip,
    rebuild_manifest,
    write_clip,
    write_manifest,
)
from speechface.spaces import AU17

SHARED = Path(os.environ.get("SPEECHFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found at {p} (set SPEECHFACE_SHARED)")
    return p


def fake_arrays(frames: int = 5, value: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "audio": np.zeros(frames * 640, np.float32),
        "features": np.full((80, frames), value, np.float64),  # stored as float32
        "targets_au17": np.full((frames, 17), value),
        "targets_landmarks68": np.zeros((frames, 136)),
        "blendshapes": np.zeros((frames, 52)),
        "mask": np.ones(frames, dtype=np.int8),
    }


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


# --------------------------------------------------------------------------- shards
def test_write_read_round_trip(tmp_path):
    rec = write_clip(tmp_path, "c1", fake_arrays(5, 1.5), {"speaker": "s1"})
    assert rec["n_frames"] == 5 and rec["seconds"] == pytest.approx(0.2) and rec["speaker"] == "s1"
    arrays, meta = read_clip(tmp_path, "c1")
    assert arrays["features"].dtype == np.float32 and arrays["mask"].dtype == np.bool_
    assert (arrays["targets_au17"] == 1.5).all() and meta == rec
    assert no_temp_files(tmp_path)
    bad = fake_arrays(5)
    bad["targets_au17"] = np.zeros((4, 17))
    with pytest.raises(DataError, match="targets_au17"):
        write_clip(tmp_path, "c2", bad)
    assert not (tmp_path / "c2.npz").exists() and no_temp_files(tmp_path)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="broken"):
        read_clip(tmp_path, "broken")


def test_manifest_parts_merge(tmp_path):
    a = write_clip(tmp_path, "a", fake_arrays(), {"speaker": "x"})
    b_old = write_clip(tmp_path, "b", fake_arrays(), {"speaker": "old"})
    b_new = write_clip(tmp_path, "b", fake_arrays(), {"speaker": "new"})
    write_manifest(tmp_path, [a, b_new], part="0of2")
    write_manifest(tmp_path, [b_old, {"name": "gone", "file": "gone.npz"}], part="1of2")
    write_clip(tmp_path, "unlisted", fake_arrays(), {"speaker": "u"})  # writer died before manifest
    clips = list_clips(tmp_path)
    assert [c["name"] for c in clips] == ["a", "b", "unlisted"]
    assert clips[1]["speaker"] == "new" and clips[2]["speaker"] == "u"
    rebuild_manifest(tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert [c["name"] for c in doc["clips"]] == ["a", "b", "unlisted"]
    assert no_temp_files(tmp_path)


def test_group_split_is_disjoint_and_deterministic():
    clips = [{"name": f"c{i}", "speaker": f"s{i % 5}"} for i in range(50)]
    train, val = group_split(clips, 0.2, seed=3)
    assert {c["speaker"] for c in train}.isdisjoint({c["speaker"] for c in val})
    assert len(train) + len(val) == 50 and len(val) >= 10
    assert group_split(clips, 0.2, seed=3) == (train, val)
    assert group_split(clips, 0.0)[1] == []
    one_group = [{"name": "a", "speaker": "s"}, {"name": "b", "speaker": "s"}]
    assert group_split(one_group, 0.5)[1] == []  # never empties the training set


def test_shard_dataset_and_collate(tmp_path):
    for i in range(6):
        write_clip(tmp_path, f"c{i}", fake_arrays(3 + i, float(i)), {"speaker": f"s{i % 3}"})
    ds = ShardDataset(tmp_path)
    assert len(ds) == 6
    item = ds[2]
    assert item["name"] == "c2" and item["features"].shape == (80, 5) and item["mask"].dtype == torch.bool
    tr, va = ShardDataset(tmp_path, split="train", val_fraction=0.3), ShardDataset(tmp_path, split="val", val_fraction=0.3)
    assert len(tr) + len(va) == 6 and len(va) > 0
    assert {c["speaker"] for c in tr.clips}.isdisjoint({c["speaker"] for c in va.clips})
    assert len(ShardDataset(tmp_path, groups=["s1"])) == 2
    batch = collate_clips([ds[0], ds[3]])
    assert batch["features"].shape == (2, 80, 6) and batch["targets_au17"].shape == (2, 6, 17)
    assert batch["lengths"].tolist() == [3, 6] and batch["mask"].sum() == 9
    assert batch["audio"].shape == (2, 6 * 640) and batch["name"] == ["c0", "c3"]


# --------------------------------------------------------------------------- names, groups, shards
def test_names_groups_and_shard_selection(tmp_path):
    assert clip_name("x/grid_s1/bbaf2n.mp4") == "grid_s1__bbaf2n"
    assert clip_group("x/grid_s1/bbaf2n.mp4") == "grid_s1"
    assert clip_group("x/Actor_01/a.mp4") == "Actor_01"
    assert clip_group("x/more/obama.mp4") == "more__obama"
    assert clip_group("x/more/obama.mp4", "folder") == "more"
    assert clip_group("x/grid_s1/a.mp4", "file") == "grid_s1__a"
    assert clip_group("x/more/obama.mp4", groups={"obama": "obama"}) == "obama"
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "1", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    files = [Path(f"f{i:02d}.mp4") for i in range(11)]
    for n in (1, 2, 3, 4):
        parts = [select_shard(files, (i, n)) for i in range(n)]
        flat = [f for p in parts for f in p]
        assert sorted(flat) == sorted(files) and len(flat) == len(set(flat))  # each file once
    with pytest.raises(DataError):
        find_videos([tmp_path / "nothing"])


@pytest.mark.shared
def test_real_clip_list_shards_cover_each_file_once():
    files = find_videos([shared("data", "av_clips")])
    assert len(files) > 500 and all(f.suffix in (".mp4", ".mpg") for f in files)
    parts = [select_shard(files, (i, 3)) for i in range(3)]
    assert sum(len(p) for p in parts) == len(files) and set().union(*parts) == set(files)
    assert len({clip_name(f) for f in files}) == len(files)


def test_cli_parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    psub = build_prepare_parser(sub)
    args = parser.parse_args(["prepare", "av", "a", "b", "-o", "out", "--shard", "1/2",
                              "--teacher", "openface", "--openface-dir", "of", "--overwrite"])
    assert args.inputs == ["a", "b"] and args.shard == "1/2" and args.overwrite
    assert args.func.__name__ == "run_prepare_av" and args.teacher == "openface"
    assert "av" in psub.choices


# --------------------------------------------------------------------------- real prepare runs
@pytest.fixture(scope="module")
def two_clips() -> list[Path]:
    pytest.importorskip("av")
    pytest.importorskip("mediapipe")
    grid = sorted(shared("data", "av_clips", "grid_s1").glob("*.mp4"))[0]
    return [grid, shared("data", "av_clips", "more", "v-express_AOC_gt.mp4")]  # 25 and 29.97 fps


@pytest.fixture(scope="module")
def model(two_clips) -> Path:
    return shared("models", "face_landmarker.task")


@pytest.mark.shared
def test_prepare_av_real_clips_and_resume(tmp_path, two_clips, model):
    out = tmp_path / "shards"
    recs = prepare_av(two_clips, out, model_path=model, max_seconds=1.0, progress=False)
    assert [r["name"] for r in recs] == ["grid_s1__" + two_clips[0].stem, "more__v-express_AOC_gt"]
    for r in recs:
        arrays, meta = read_clip(out, r["name"])
        n = r["n_frames"]
        assert n == 25 and meta["teacher"] == "mediapipe_blendshape_proxy_v1"
        assert arrays["audio"].shape == (n * 640,) and arrays["features"].shape == (80, n)
        assert arrays["targets_au17"].shape == (n, 17) and arrays["targets_landmarks68"].shape == (n, 136)
        assert arrays["blendshapes"].shape == (n, 52) and arrays["mask"].mean() > 0.9
        au = arrays["targets_au17"][arrays["mask"]]
        lm = arrays["targets_landmarks68"][arrays["mask"]]
        assert au.min() >= 0 and au.max() <= 5 and au.std() > 0
        assert lm.min() > -0.2 and lm.max() < 1.2
        assert np.isfinite(arrays["features"]).all() and meta["features"]["name"] == "logmel"
    assert recs[0]["speaker"] == "grid_s1" and recs[1]["video_fps"] == pytest.approx(29.97, abs=0.01)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["teacher"] == "mediapipe_blendshape_proxy_v1"
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    again = prepare_av(two_clips, out, model_path=model, max_seconds=1.0, progress=False)
    assert [r["written_at"] for r in again] == [r["written_at"] for r in recs]  # skipped
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == mtimes
    assert no_temp_files(out)


@pytest.mark.shared
def test_prepare_av_sharded(tmp_path, two_clips, model):
    out = tmp_path / "par"
    r0 = prepare_av(two_clips, out, model_path=model, max_seconds=0.5, shard="0/2", progress=False)
    r1 = prepare_av(two_clips, out, model_path=model, max_seconds=0.5, shard=(1, 2), progress=False)
    assert len(r0) == len(r1) == 1 and r0[0]["name"] != r1[0]["name"]
    assert (out / "manifest.0of2.json").is_file() and (out / "manifest.1of2.json").is_file()
    assert len(list_clips(out)) == 2
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 2
    assert no_temp_files(out)


@pytest.mark.shared
def test_prepare_av_openface_teacher(tmp_path, two_clips):
    grid = two_clips[0]
    of_dir = tmp_path / "of"
    of_dir.mkdir()
    t = np.arange(30) / 30.0
    rows = ["frame, face_id, timestamp, confidence, success, " + ", ".join(AU17.columns)]
    rows += [f"{i + 1}, 0, {ti:.6f}, 0.98, 1, " + ", ".join([f"{ti:.6f}"] * 17) for i, ti in enumerate(t)]
    (of_dir / f"{grid.stem}.csv").write_text("\n".join(rows) + "\n")
    recs = prepare_av([grid], tmp_path / "out", teacher="openface", openface_dir=of_dir,
                      max_seconds=1.2, progress=False)
    arrays, meta = read_clip(tmp_path / "out", recs[0]["name"])
    assert meta["teacher"] == "openface" and meta["targets"] == ["au17"]
    m = arrays["mask"]
    g = np.arange(len(m)) / 25.0
    assert m[g <= 29 / 30].all() and not m[g > 29.5 / 30 + 1e-6].any()
    np.testing.assert_allclose(arrays["targets_au17"][m, 0], g[m], atol=1e-5)
    with pytest.raises(DataError, match="openface_dir"):
        prepare_av([grid], tmp_path / "x", teacher="openface")
