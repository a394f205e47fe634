"""Dataset readers: RAVDESS names and folders, FER+ npz, face folders with AU CSVs.

Synthetic fixtures cover the logic everywhere; the real shared data (``SPEECHFACE_SHARED``,
default ``<repo>/../shared``) is read where present and those tests skip with a reason otherwise.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from speechface.core.errors import DataError
from speechface.data.faces import FaceFolder, identity_of, identity_split, read_au_csv
from speechface.data.ferplus import FERPLUS_VOTE_COLUMNS, FerPlusDataset, load_ferplus
from speechface.data.ravdess import (
    RAVDESS_EMOTIONS,
    RAVDESS_TO_EMOTION8,
    RavdessDataset,
    actor_split,
    parse_ravdess_name,
)
from speechface.spaces import AU17, EMOTION8

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))


def shared(*parts: str) -> Path:
    """Path inside the shared data, or skip saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SPEECHFACE_SHARED)")
    return path


# ================================================================================================
# RAVDESS


def test_parse_ravdess_name_fields() -> None:
    info = parse_ravdess_name("Actor_12/03-01-05-02-01-02-12.flac")
    assert info.name == "03-01-05-02-01-02-12"
    assert (info.modality, info.vocal_channel, info.emotion, info.intensity) == (
        "audio-only", "speech", "angry", "strong")
    assert (info.statement, info.repetition, info.actor, info.sex) == (1, 2, 12, "female")
    assert info.statement_text == "Kids are talking by the door"
    assert info.emotion8_label == "anger" and info.emotion8 == EMOTION8.labels.index("anger")
    song = parse_ravdess_name("01-02-02-01-02-01-07.mp4")
    assert (song.modality, song.vocal_channel, song.emotion, song.sex) == (
        "audio-video", "song", "calm", "male")
    assert song.emotion8_label == "neutral"
    assert parse_ravdess_name(Path("02-01-08-01-01-01-24")).emotion == "surprised"


@pytest.mark.parametrize("bad", [
    "03-01-05-02-01-02.flac",          # six fields
    "03-01-05-02-01-02-12-01.flac",    # eight fields
    "3-1-5-2-1-2-12.flac",             # one digit
    "03-01-xx-02-01-02-12.flac",       # letters
    "04-01-05-02-01-02-12.flac",       # modality 04
    "03-03-05-02-01-02-12.flac",       # vocal channel 03
    "03-01-09-02-01-02-12.flac",       # emotion 09
    "03-01-05-03-01-02-12.flac",       # intensity 03
    "03-01-05-02-03-02-12.flac",       # statement 03
    "03-01-05-02-01-03-12.flac",       # repetition 03
    "03-01-05-02-01-02-25.flac",       # actor 25
    "03-01-05-02-01-02-00.flac",       # actor 00
    "",
])
def test_parse_ravdess_name_malformed(bad: str) -> None:
    with pytest.raises(DataError):
        parse_ravdess_name(bad)


def test_emotion_mapping() -> None:
    assert set(RAVDESS_TO_EMOTION8) == set(RAVDESS_EMOTIONS)
    assert set(RAVDESS_TO_EMOTION8.values()) <= set(EMOTION8.labels)
    assert RAVDESS_TO_EMOTION8["calm"] == "neutral"
    assert RAVDESS_TO_EMOTION8["fearful"] == "fear"
    assert RAVDESS_TO_EMOTION8["surprised"] == "surprise"
    assert "contempt" not in RAVDESS_TO_EMOTION8.values()


def test_actor_split() -> None:
    actors = list(range(1, 23))
    tr, va = actor_split(actors, val_actors=[21, 22])
    assert va == [21, 22] and tr == list(range(1, 21))
    tr, va = actor_split(actors, n_val=4, seed=3)
    assert len(va) == 4 and set(tr).isdisjoint(va) and sorted(tr + va) == actors
    assert sum(a % 2 for a in va) == 2                   # 2 male, 2 female
    assert actor_split(actors, n_val=4, seed=3) == (tr, va)
    assert actor_split(actors, n_val=4, seed=4) != (tr, va)
    with pytest.raises(DataError, match="not among"):
        actor_split(actors, val_actors=[23])
    with pytest.raises(DataError):
        actor_split(actors, n_val=22)
    with pytest.raises(DataError):
        actor_split([1])


def _write_clip(path: Path, seconds: float = 0.1, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)


def test_ravdess_dataset_synthetic(tmp_path: Path) -> None:
    _write_clip(tmp_path / "Actor_01" / "03-01-03-01-01-01-01.wav")
    _write_clip(tmp_path / "Actor_01" / "03-01-02-01-01-01-01.flac")
    _write_clip(tmp_path / "Actor_02" / "03-01-06-02-02-01-02.wav")
    _write_clip(tmp_path / "Actor_02" / "03-02-06-02-02-01-02.wav")   # song
    (tmp_path / "Actor_02" / "notes.txt").write_text("ignored")
    ds = RavdessDataset(tmp_path)
    assert len(ds) == 4 and ds.actors == [1, 2] and not ds.has_index
    item = ds[0]
    assert item["audio"].dtype == np.float32 and item["audio"].ndim == 1
    assert item["sample_rate"] == 16000 and item["seconds"] is None
    speech = RavdessDataset(tmp_path, vocal_channel="speech", with_audio=False)
    assert len(speech) == 3 and "audio" not in speech[0]
    fear = RavdessDataset(tmp_path, emotions=["fearful"], actors=[2], with_audio=False)
    assert [d["emotion8_label"] for d in fear] == ["fear", "fear"]
    assert [d["sex"] for d in fear] == ["female", "female"]
    train, val = ds.split(val_actors=[2])
    assert train.actors == [1] and val.actors == [2] and len(train) + len(val) == len(ds)


def test_ravdess_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        RavdessDataset(tmp_path / "missing")
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(DataError, match="no RAVDESS clips"):
        RavdessDataset(tmp_path)
    _write_clip(tmp_path / "Actor_01" / "03-01-03-01-01-01-05.wav")      # actor 05 in Actor_01
    with pytest.raises(DataError, match="Actor_01"):
        RavdessDataset(tmp_path)


def test_ravdess_index_must_agree(tmp_path: Path) -> None:
    _write_clip(tmp_path / "Actor_01" / "03-01-03-01-01-01-01.wav")
    idx = tmp_path / "index.csv"
    idx.write_text("file,actor,sex,emotion,intensity,statement,repetition,seconds\n"
                   "Actor_01/03-01-03-01-01-01-01.wav,1,male,happy,normal,1,1,0.1\n"
                   "Actor_01/03-01-04-01-01-01-01.wav,1,male,sad,normal,1,1,2.0\n")
    ds = RavdessDataset(tmp_path, with_audio=False)
    assert ds.has_index and ds[0]["seconds"] == pytest.approx(0.1)
    assert ds.index_missing == ["03-01-04-01-01-01-01.wav"]
    idx.write_text("file,actor,sex,emotion,intensity,statement,repetition,seconds\n"
                   "Actor_01/03-01-03-01-01-01-01.wav,1,male,sad,normal,1,1,0.1\n")
    with pytest.raises(DataError, match="emotion"):
        RavdessDataset(tmp_path, with_audio=False)


@pytest.mark.shared
def test_ravdess_shared() -> None:
    root = shared("data", "ravdess")
    ds = RavdessDataset(root, with_audio=False)
    assert len(ds) == 1320 and ds.actors == list(range(1, 23)) and ds.has_index
    assert not ds.index_missing
    assert all(it.seconds and it.seconds > 1.0 for it in ds.items)
    assert all(it.info.vocal_channel == "speech" for it in ds.items)
    counts = np.bincount(ds.emotion8_labels(), minlength=8)
    assert counts[EMOTION8.labels.index("contempt")] == 0
    assert counts[0] == 22 * 12             # per actor 4 neutral + 8 calm (folded in)
    train, val = ds.split(n_val=4, seed=0)
    assert set(train.actors).isdisjoint(val.actors) and len(train) + len(val) == 1320
    one = RavdessDataset(root, actors=[1])
    clip = one[0]
    assert len(one) == 60 and clip["sample_rate"] == 16000
    assert clip["audio"].ndim == 1 and clip["audio"].dtype == np.float32
    assert abs(len(clip["audio"]) / 16000 - clip["seconds"]) < 0.05


# ================================================================================================
# FER+


def _jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 48), value, np.uint8), "L").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _write_npz(path: Path, votes: np.ndarray, values: list[int], **override: np.ndarray) -> None:
    blobs = [_jpeg(v) for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    arrays = {
        "vote_columns": np.array(FERPLUS_VOTE_COLUMNS),
        "train_jpeg": np.frombuffer(b"".join(blobs), np.uint8),
        "train_offsets": offsets,
        "train_votes": votes.astype(np.int16),
        "train_names": np.array([f"fer{i:07d}.png" for i in range(len(values))]),
    }
    arrays.update(override)
    np.savez(path, **arrays)


def test_ferplus_synthetic(tmp_path: Path) -> None:
    votes = np.array([[4, 0, 0, 4, 2, 0, 0, 0, 0, 0],    # tie neutral/sadness -> neutral
                      [0, 9, 0, 0, 0, 0, 0, 0, 1, 0],
                      [0, 0, 0, 0, 0, 0, 0, 0, 3, 7],    # no emotion vote -> dropped
                      [1, 0, 0, 0, 0, 0, 0, 0, 2, 7]])   # top vote NF
    path = tmp_path / "fer.npz"
    _write_npz(path, votes, [0, 100, 200, 255])
    fer = load_ferplus(path, "train", progress=False)
    assert fer.images.shape == (4, 48, 48) and fer.images.dtype == np.uint8
    assert abs(int(fer.images[1].mean()) - 100) <= 2
    dist, keep = fer.distributions()
    assert keep.tolist() == [True, True, False, True] and dist.shape == (3, 8)
    np.testing.assert_allclose(dist.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(dist[0], [0.4, 0, 0, 0.4, 0.2, 0, 0, 0])
    np.testing.assert_allclose(fer.distributions("crossentropy")[0], dist)
    assert fer.distributions(drop_unknown=True)[1].tolist() == [True, True, False, False]
    assert fer.distributions(min_votes=2)[1].tolist() == [True, True, False, False]
    labels, keep = fer.majority()
    assert labels.tolist() == [0, 1, 0] and keep.sum() == 3
    labels, keep = fer.majority(strict=True)
    assert labels.tolist() == [1] and keep.tolist() == [False, True, False, False]
    onehot, _ = fer.distributions("majority")
    assert onehot.tolist()[1] == [0, 1, 0, 0, 0, 0, 0, 0]
    assert len(load_ferplus(path, "train", limit=2, progress=False)) == 2
    ds = FerPlusDataset(fer, transform=lambda x: x * 2)
    img, d = ds[1]
    assert len(ds) == 3 and img.shape == (1, 48, 48) and img.dtype == torch.float32
    assert float(img.max()) == pytest.approx(2 * fer.images[1].max() / 255.0, rel=1e-5)
    assert d.shape == (8,) and float(d[1]) == pytest.approx(1.0)


def test_ferplus_errors(tmp_path: Path) -> None:
    votes = np.zeros((2, 10), int)
    with pytest.raises(DataError, match="not found"):
        load_ferplus(tmp_path / "none.npz")
    path = tmp_path / "fer.npz"
    _write_npz(path, votes, [1, 2])
    with pytest.raises(DataError, match="split"):
        load_ferplus(path, "test")
    with pytest.raises(DataError, match="valid_jpeg"):
        load_ferplus(path, "valid")
    with pytest.raises(DataError, match="scheme"):
        load_ferplus(path, progress=False).distributions("multilabel")
    _write_npz(path, votes, [1, 2], train_offsets=np.array([0, 5, 7]))
    with pytest.raises(DataError, match="offsets"):
        load_ferplus(path, progress=False)
    bad = np.frombuffer(b"not a jpeg at all", np.uint8)
    _write_npz(path, votes[:1], [1], train_jpeg=bad, train_offsets=np.array([0, len(bad)]))
    with pytest.raises(DataError, match="decoded"):
        load_ferplus(path, progress=False)


@pytest.mark.shared
def test_ferplus_shared() -> None:
    path = shared("data", "ferplus", "ferplus_trainval.npz")
    fer = load_ferplus(path, "train", limit=300, progress=False)
    assert fer.images.shape == (300, 48, 48) and fer.votes.shape == (300, 10)
    assert fer.names[0] == "fer0000000.png"
    assert 20 < fer.images.mean() < 235 and fer.images.std() > 10   # real faces, not blank
    dist, keep = fer.distributions()
    assert keep.sum() == len(dist) >= 290
    np.testing.assert_allclose(dist.sum(1), 1.0, rtol=1e-5)
    # first FER+ row: votes 4,0,0,1,3,2,0,0,0,0 -> neutral
    np.testing.assert_allclose(dist[0], [0.4, 0, 0, 0.1, 0.3, 0.2, 0, 0], atol=1e-6)
    assert fer.majority()[0][0] == 0
    valid = load_ferplus(path, "valid", limit=100, progress=False)
    img, d = FerPlusDataset(valid)[0]
    assert img.shape == (1, 48, 48) and 0.0 <= float(img.min()) <= float(img.max()) <= 1.0
    assert d.shape == (8,)


# ================================================================================================
# face folders


def _write_faces(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((16, 16, 3), 20 * i, np.uint8)).save(root / name)


def _au_csv(path: Path, names: list[str], columns: tuple[str, ...] = AU17.columns) -> None:
    lines = ["image," + ",".join(" " + c for c in columns)]       # OpenFace-style leading spaces
    for i, n in enumerate(names):
        lines.append(n + "," + ",".join(f"{(i + k) / 10:.2f}" for k in range(len(columns))))
    path.write_text("\n".join(lines) + "\n")


def test_face_folder_with_csv(tmp_path: Path) -> None:
    _write_faces(tmp_path / "imgs", ["a.jpg", "b.png", "c.jpg", "d.jpg"])
    _au_csv(tmp_path / "aus.csv", ["a", "b.png", "sub/c.jpg", "zzz"])   # d.jpg has no row
    with pytest.warns(UserWarning, match="1 of 4 images"):
        ds = FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "aus.csv")
    assert len(ds) == 3 and ds.n_skipped == 1 and ds.skipped[0].name == "d.jpg"
    assert ds.unmatched_rows == ["zzz"]
    img, aus = ds[1]
    assert img.mode == "RGB" and img.size == (16, 16)
    assert aus.shape == (17,) and aus.dtype == np.float32 and aus[0] == pytest.approx(0.1)
    with pytest.raises(DataError, match="d.jpg"):
        FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "aus.csv", strict=True)


def test_face_folder_tensor_and_errors(tmp_path: Path) -> None:
    _write_faces(tmp_path / "imgs", ["a.jpg", "b.jpg"])
    _au_csv(tmp_path / "aus.csv", ["a", "b"])
    ds = FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "aus.csv", as_tensor=True)
    img, aus = ds[0]
    assert img.shape == (3, 16, 16) and img.dtype == torch.float32 and float(img.max()) <= 1.0
    assert isinstance(aus, torch.Tensor) and aus.shape == (17,)
    short = tuple(c for c in AU17.columns if c not in ("AU12_r", "AU45_r"))
    _au_csv(tmp_path / "short.csv", ["a", "b"], columns=short)
    with pytest.raises(DataError, match="AU12_r, AU45_r"):
        FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "short.csv")
    with pytest.raises(DataError, match="image column"):
        FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "aus.csv", image_column="file")
    (tmp_path / "nan.csv").write_text("image," + ",".join(AU17.columns) + "\na," +
                                      ",".join(["x"] + ["0"] * 16) + "\n")
    with pytest.raises(DataError, match="AU01_r"):
        read_au_csv(tmp_path / "nan.csv")
    _au_csv(tmp_path / "other.csv", ["q", "r"])
    with pytest.raises(DataError, match="no image"):
        FaceFolder(tmp_path / "imgs", au_csv=tmp_path / "other.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        FaceFolder(tmp_path / "empty")
    plain = FaceFolder(tmp_path / "imgs", transform=lambda im: im.resize((8, 8)))
    assert plain[0].size == (8, 8)                          # no CSV: the image alone


def test_identity_split() -> None:
    names = [f"P{p}_{k:04d}.jpg" for p in range(10) for k in range(1, 1 + (p % 3) + 1)]
    assert identity_of("/x/George_W_Bush_0012.jpg") == "George_W_Bush"
    with pytest.raises(DataError):
        identity_of("portrait.jpg")
    tr, va = identity_split(names, val_fraction=0.3, seed=0)
    assert sorted(tr + va) == list(range(len(names)))
    assert {identity_of(names[i]) for i in tr}.isdisjoint({identity_of(names[i]) for i in va})
    assert len(va) >= 0.3 * len(names)
    assert identity_split(names, 0.3, seed=0) == (tr, va)
    with pytest.raises(DataError):
        identity_split(names, val_fraction=1.5)
    with pytest.raises(DataError):
        identity_split(["A_0001.jpg", "A_0002.jpg"])


@pytest.mark.shared
def test_ganimation_sample_shared() -> None:
    root = shared("data", "ganimation_sample")
    ds = FaceFolder(root / "imgs", au_csv=root / "aus_openface.csv")
    assert len(ds) == 4 and ds.n_skipped == 0 and not ds.unmatched_rows
    img, aus = ds[0]
    assert img.size == (128, 128) and img.mode == "RGB"
    assert ds.paths[0].name == "N_0000000356_00190.jpg"
    np.testing.assert_allclose(aus[:4], [2.86, 2.27, 1.45, 1.10], atol=1e-6)
    assert ds.aus.shape == (4, 17) and 0.0 <= ds.aus.min() and ds.aus.max() <= 5.0


@pytest.mark.shared
def test_lfw_shared() -> None:
    root = shared("data", "faces128", "lfw")
    ds = FaceFolder(root, as_tensor=True)
    assert len(ds) == 9674
    assert ds[0].shape == (3, 128, 128)
    ids = ds.identities
    assert len(set(ids)) == 5749
    tr, va = identity_split(ds, val_fraction=0.1, seed=0)
    assert len(tr) + len(va) == 9674 and 0.1 <= len(va) / 9674 < 0.11
    assert {ids[i] for i in tr}.isdisjoint({ids[i] for i in va})
    assert len(ds.subset(va)) == len(va)
