"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) reader.

File names encode everything: ``MM-VV-EE-II-SS-RR-AA.ext``

======  =================  ==================================================================
field   meaning            codes
======  =================  ==================================================================
MM      modality           01 audio-video, 02 video-only, 03 audio-only
VV      vocal channel      01 speech, 02 song
EE      emotion            01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
                           07 disgust, 08 surprised
II      intensity          01 normal, 02 strong (RAVDESS has no strong neutral)
SS      statement          01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
RR      repetition         01, 02
AA      actor              01-24; odd = male, even = female
======  =================  ==================================================================

Emotions are mapped to the FER+ order of :data:`speechface.spaces.EMOTION8` by
:data:`RAVDESS_TO_EMOTION8`: calm is folded into ``neutral`` (FER+ has no calm), the others map
one-to-one (happy -> happiness, sad -> sadness, angry -> anger, fearful -> fear, disgust -> disgust,
surprised -> surprise). **No RAVDESS clip maps to ``contempt``**: a classifier evaluated on RAVDESS
never sees that class in the ground truth (see :func:`speechface.evaluation.metrics.macro_f1`, which leaves
out classes absent from both predictions and truth).

>>> from speechface.data.ravdess import parse_ravdess_name
>>> info = parse_ravdess_name("03-01-05-02-01-01-12.flac")
>>> info.emotion, info.intensity, info.actor, info.sex, info.emotion8_label
('angry', 'strong', 12, 'female', 'anger')
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import AudioError, DataError
from ..spaces.space import EMOTION8

__all__ = [
    "RAVDESS_EMOTIONS",
    "RAVDESS_TO_EMOTION8",
    "RAVDESS_STATEMENTS",
    "RavdessInfo",
    "RavdessItem",
    "RavdessDataset",
    "parse_ravdess_name",
    "actor_split",
]

MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
#: RAVDESS emotion names in code order (code = index + 1).
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
INTENSITIES = {1: "normal", 2: "strong"}
#: The two sentences of RAVDESS, by statement code.
RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
#: RAVDESS emotion -> EMOTION8 (FER+) label. Calm -> neutral; nothing maps to contempt.
RAVDESS_TO_EMOTION8: dict[str, str] = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}

_NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
AUDIO_EXTENSIONS = (".flac", ".wav")


@dataclass(frozen=True)
class RavdessInfo:
    """The fields of one RAVDESS file name (see the module table).

    Attributes:
        name: the bare name without folder and extension, ``"03-01-05-02-01-01-12"``.
        modality: ``"audio-video"``, ``"video-only"`` or ``"audio-only"``.
        vocal_channel: ``"speech"`` or ``"song"``.
        emotion: RAVDESS emotion name (one of :data:`RAVDESS_EMOTIONS`).
        intensity: ``"normal"`` or ``"strong"``.
        statement: 1 or 2 (text in :attr:`statement_text`).
        repetition: 1 or 2.
        actor: 1-24.

    Example:
        >>> parse_ravdess_name("03-01-02-01-02-02-07").statement_text
        'Dogs are sitting by the door'
    """

    name: str
    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def sex(self) -> str:
        """``"male"`` for odd actor numbers, ``"female"`` for even ones."""
        return "male" if self.actor % 2 == 1 else "female"

    @property
    def statement_text(self) -> str:
        """The sentence spoken or sung."""
        return RAVDESS_STATEMENTS[self.statement]

    @property
    def emotion8_label(self) -> str:
        """The EMOTION8 (FER+) label of this clip's emotion, e.g. ``"happiness"``."""
        return RAVDESS_TO_EMOTION8[self.emotion]

    @property
    def emotion8(self) -> int:
        """Index of :attr:`emotion8_label` in ``EMOTION8.labels`` (0-6; 7 = contempt never occurs)."""
        return EMOTION8.labels.index(self.emotion8_label)


def parse_ravdess_name(name: str | os.PathLike[str]) -> RavdessInfo:
    """Parse a RAVDESS file name (a path and any extension are allowed).

    Args:
        name: ``"03-01-05-02-01-01-12.flac"``, ``"Actor_12/03-01-05-02-01-01-12.wav"``,
            or the bare ``"03-01-05-02-01-01-12"``.

    Returns:
        :class:`RavdessInfo`.

    Raises:
        DataError: the name does not have seven two-digit fields, or a code is out of range.

    Example:
        >>> parse_ravdess_name("Actor_01/03-01-01-01-01-01-01.flac").vocal_channel
        'speech'
    """
    base = Path(os.fspath(name)).name
    stem = base.split(".", 1)[0]
    m = _NAME_RE.match(stem)
    if not m:
        raise DataError(f"{name!s}: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA.ext, "
                        "seven two-digit fields)")
    mm, vv, ee, ii, ss, rr, aa = (int(g) for g in m.groups())

    def check(ok: bool, what: str, value: int) -> None:
        if not ok:
            raise DataError(f"{name!s}: invalid RAVDESS {what} code {value:02d}")

    check(mm in MODALITIES, "modality", mm)
    check(vv in VOCAL_CHANNELS, "vocal channel", vv)
    check(1 <= ee <= len(RAVDESS_EMOTIONS), "emotion", ee)
    check(ii in INTENSITIES, "intensity", ii)
    check(ss in RAVDESS_STATEMENTS, "statement", ss)
    check(rr in (1, 2), "repetition", rr)
    check(1 <= aa <= 24, "actor", aa)
    return RavdessInfo(name=stem, modality=MODALITIES[mm], vocal_channel=VOCAL_CHANNELS[vv],
                       emotion=RAVDESS_EMOTIONS[ee - 1], intensity=INTENSITIES[ii], statement=ss,
                       repetition=rr, actor=aa)


@dataclass(frozen=True)
class RavdessItem:
    """One clip of a :class:`RavdessDataset`.

    Attributes:
        path: the audio file.
        info: the parsed file name.
        seconds: duration from ``index.csv`` (``None`` when there is no index).
    """

    path: Path
    info: RavdessInfo
    seconds: float | None = field(default=None)

    # convenient flat access
    @property
    def actor(self) -> int:
        return self.info.actor

    @property
    def sex(self) -> str:
        return self.info.sex

    @property
    def emotion(self) -> str:
        return self.info.emotion

    @property
    def emotion8(self) -> int:
        return self.info.emotion8

    @property
    def intensity(self) -> str:
        return self.info.intensity

    def as_dict(self) -> dict[str, Any]:
        """Plain fields: path (str), name, actor, sex, emotion, emotion8, emotion8_label,
        intensity, statement, repetition, vocal_channel, seconds."""
        i = self.info
        return {"path": str(self.path), "name": i.name, "actor": i.actor, "sex": i.sex,
                "emotion": i.emotion, "emotion8": i.emotion8, "emotion8_label": i.emotion8_label,
                "intensity": i.intensity, "statement": i.statement, "repetition": i.repetition,
                "vocal_channel": i.vocal_channel, "seconds": self.seconds}


def _read_index(path: Path) -> dict[str, dict[str, str]]:
    """``index.csv`` rows keyed by file name (without folder)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "file" not in reader.fieldnames:
                raise DataError(f"{path}: no 'file' column in the header")
            return {Path(row["file"]).name: row for row in reader if row.get("file")}
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e


class RavdessDataset(Sequence[dict[str, Any]]):
    """RAVDESS clips in ``root/Actor_XX/*.flac|*.wav``, with metadata parsed from the names.

    ``root/index.csv`` (columns ``file, actor, sex, emotion, intensity, ..., seconds``), when
    present, is checked against the file names (a disagreement is a :class:`DataError`) and
    supplies the durations. Files are the source of truth: index rows without a file are ignored
    (listed in :attr:`index_missing`).

    Args:
        root: folder holding ``Actor_01`` ... ``Actor_24``.
        actors: keep only these actor numbers (default all found).
        with_audio: ``dataset[i]`` also loads the waveform (``"audio"`` float32 ``(samples,)``
            mono, ``"sample_rate"``); ``False`` returns metadata only (fast).
        vocal_channel: ``"speech"``, ``"song"`` or ``None`` (both).
        emotions: keep only these RAVDESS emotion names (default all).

    Attributes:
        items: list of :class:`RavdessItem`, sorted by actor then name.

    ``dataset[i]`` is the dict of :meth:`RavdessItem.as_dict` (plus audio when ``with_audio``).

    Example:
        >>> ds = RavdessDataset("../shared/data/ravdess", actors=[1, 2], with_audio=False)
        ...                                                           # doctest: +SKIP
        >>> len(ds), ds[0]["emotion"], ds[0]["emotion8"]              # doctest: +SKIP
        (120, 'neutral', 0)
        >>> train, val = ds.split(val_actors=[2])                     # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str], actors: Iterable[int] | None = None,
                 with_audio: bool = True, vocal_channel: str | None = None,
                 emotions: Iterable[str] | None = None) -> None:
        self.root = Path(root)
        self.with_audio = bool(with_audio)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: RAVDESS folder not found")
        if vocal_channel not in (None, "speech", "song"):
            raise DataError(f"vocal_channel must be 'speech', 'song' or None, got {vocal_channel!r}")
        wanted_actors = None if actors is None else {int(a) for a in actors}
        wanted_emotions = None if emotions is None else set(emotions)
        if wanted_emotions is not None and not wanted_emotions <= set(RAVDESS_EMOTIONS):
            bad = sorted(wanted_emotions - set(RAVDESS_EMOTIONS))
            raise DataError(f"unknown RAVDESS emotions {bad}; choose from {RAVDESS_EMOTIONS}")

        index_path = self.root / "index.csv"
        index = _read_index(index_path) if index_path.is_file() else None
        self.has_index = index is not None

        items: list[RavdessItem] = []
        seen: set[str] = set()
        for actor_dir in sorted(self.root.glob("Actor_*")):
            if not actor_dir.is_dir():
                continue
            m = re.fullmatch(r"Actor_(\d+)", actor_dir.name)
            if not m:
                continue
            folder_actor = int(m.group(1))
            if wanted_actors is not None and folder_actor not in wanted_actors:
                continue
            for path in sorted(actor_dir.iterdir()):
                if path.suffix.lower() not in AUDIO_EXTENSIONS or path.name.startswith("."):
                    continue
                info = parse_ravdess_name(path)
                if info.actor != folder_actor:
                    raise DataError(f"{path}: actor {info.actor:02d} in the name but the file is "
                                    f"in {actor_dir.name}")
                seconds = None
                if index is not None:
                    row = index.get(path.name)
                    if row is not None:
                        _check_row(path, info, row)
                        seconds = _float_or_none(row.get("seconds"))
                seen.add(path.name)
                if vocal_channel is not None and info.vocal_channel != vocal_channel:
                    continue
                if wanted_emotions is not None and info.emotion not in wanted_emotions:
                    continue
                items.append(RavdessItem(path=path, info=info, seconds=seconds))
        if not items:
            raise DataError(f"{self.root}: no RAVDESS clips (Actor_XX/*.flac|*.wav) match "
                            f"actors={sorted(wanted_actors) if wanted_actors else 'all'}")
        self.items: list[RavdessItem] = items
        self.index_missing: list[str] = []
        if index is not None:
            self.index_missing = sorted(
                k for k in index if k not in seen
                and (wanted_actors is None or _int_or_none(index[k].get("actor")) in wanted_actors))

    # --- Sequence protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        item = self.items[i]
        out = item.as_dict()
        if self.with_audio:
            audio, sr = _read_audio(item.path)
            out["audio"] = audio
            out["sample_rate"] = sr
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (f"RavdessDataset({str(self.root)!r}, {len(self)} clips, "
                f"actors={self.actors}, with_audio={self.with_audio})")

    # --- helpers -----------------------------------------------------------------------------
    @property
    def actors(self) -> list[int]:
        """Sorted actor numbers present."""
        return sorted({it.actor for it in self.items})

    @property
    def paths(self) -> list[Path]:
        """Audio paths, in item order."""
        return [it.path for it in self.items]

    def emotion8_labels(self) -> np.ndarray:
        """``(N,)`` int64 EMOTION8 index of every clip (0-6)."""
        return np.array([it.emotion8 for it in self.items], dtype=np.int64)

    def subset(self, actors: Iterable[int]) -> RavdessDataset:
        """A copy restricted to ``actors`` (no new disk scan)."""
        keep = {int(a) for a in actors}
        new = object.__new__(RavdessDataset)
        new.__dict__.update(self.__dict__)
        new.items = [it for it in self.items if it.actor in keep]
        if not new.items:
            raise DataError(f"no clips of actors {sorted(keep)} in {self!r}")
        return new

    def split(self, val_actors: Iterable[int] | None = None, n_val: int = 4, seed: int = 0
              ) -> tuple[RavdessDataset, RavdessDataset]:
        """Actor-disjoint (train, val) datasets; see :func:`actor_split`."""
        train_a, val_a = actor_split(self.actors, val_actors=val_actors, n_val=n_val, seed=seed)
        return self.subset(train_a), self.subset(val_a)


def actor_split(actors: Iterable[int], val_actors: Iterable[int] | None = None, n_val: int = 4,
                seed: int = 0) -> tuple[list[int], list[int]]:
    """Split actor numbers into disjoint (train, val) lists, for speaker-independent evaluation.

    Args:
        actors: all actor numbers available (e.g. ``dataset.actors``).
        val_actors: explicit validation actors (must be among ``actors``); if ``None``,
            ``n_val`` actors are drawn with ``seed``, balanced between male (odd) and female (even)
            actors as far as possible.
        n_val: number of validation actors when drawing.
        seed: random seed when drawing.

    Returns:
        ``(train_actors, val_actors)``, both sorted, disjoint, together equal to ``actors``.

    Example:
        >>> actor_split(range(1, 23), val_actors=[21, 22])[1]
        [21, 22]
        >>> tr, va = actor_split(range(1, 23), n_val=4, seed=0)
        >>> len(va), sum(a % 2 for a in va), set(tr).isdisjoint(va)
        (4, 2, True)
    """
    pool = sorted({int(a) for a in actors})
    if len(pool) < 2:
        raise DataError(f"need at least 2 actors to split, got {pool}")
    if val_actors is not None:
        val = sorted({int(a) for a in val_actors})
        unknown = [a for a in val if a not in pool]
        if unknown:
            raise DataError(f"validation actors {unknown} are not among the actors {pool}")
    else:
        if not 1 <= n_val < len(pool):
            raise DataError(f"n_val must be in 1..{len(pool) - 1}, got {n_val}")
        rng = random.Random(seed)
        male = [a for a in pool if a % 2 == 1]
        female = [a for a in pool if a % 2 == 0]
        rng.shuffle(male)
        rng.shuffle(female)
        n_f = min(len(female), n_val // 2)   # odd n_val: the extra actor is male
        n_m = min(len(male), n_val - n_f)
        n_f = n_val - n_m                      # too few males: fill with females
        val = sorted(male[:n_m] + female[:n_f])
    train = [a for a in pool if a not in val]
    if not train or not val:
        raise DataError(f"split leaves an empty side: train={train}, val={val}")
    return train, val


# ------------------------------------------------------------------------------------------------


def _float_or_none(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _int_or_none(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def _check_row(path: Path, info: RavdessInfo, row: dict[str, str]) -> None:
    """index.csv must agree with the file name where it has the column."""
    checks = {"actor": str(info.actor), "sex": info.sex, "emotion": info.emotion,
              "intensity": info.intensity, "statement": str(info.statement),
              "repetition": str(info.repetition)}
    for col, expected in checks.items():
        got = (row.get(col) or "").strip()
        if got and got.lstrip("0") != expected.lstrip("0"):
            raise DataError(f"{path}: index.csv says {col}={got!r} but the file name gives "
                            f"{expected!r}")


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises RuntimeError / LibsndfileError
        raise AudioError(f"{path}: cannot read audio ({e})") from e
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: empty audio")
    return audio.mean(axis=1).astype(np.float32), int(sr)
