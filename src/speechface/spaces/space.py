"""Conditioning spaces: what an estimator predicts and what a translator is driven by.

A space is data: its labels, the CSV column names, the value range, the output activation
applied to a network's raw outputs and the default training loss (computed on raw outputs).

Built-in spaces:

- ``au17``: the 17 OpenFace 2 intensity action units, range 0-5; activation = clamp to [0, 5];
  loss = masked L1 (the CAUSE paper's loss).
- ``emotion8``: FER+ emotion distribution (neutral, happiness, surprise, sadness, anger, disgust,
  fear, contempt); activation = softmax; loss = KL divergence from the target distribution.
- ``landmarks68``: 68 2-D facial landmarks normalised to the face box (0-1), stored as 136 values
  ``x_0..x_67, y_0..y_67`` (OpenFace's column order); activation = identity; loss = MSE.
- ``blendshapes52``: the 52 ARKit blendshape coefficients (``jawOpen``, ``mouthSmileLeft``, ...),
  range 0-1, in MediaPipe FaceLandmarker's output order with ``tongueOut`` last (see
  :data:`ARKIT52_NAMES`); activation = clamp to [0, 1]; loss = masked L1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..core.registry import SPACES

__all__ = ["Space", "get_space", "list_spaces", "AU17", "EMOTION8", "LANDMARKS68", "AU_NAMES",
           "EMOTION_AU_PROTOTYPES", "emotion_to_au", "BLENDSHAPES52", "ARKIT52_NAMES"]

AU_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser",
    "AU02": "outer brow raiser",
    "AU04": "brow lowerer",
    "AU05": "upper lid raiser",
    "AU06": "cheek raiser",
    "AU07": "lid tightener",
    "AU09": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU45": "blink",
}


def _l1_ccc_loss(raw: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked L1 plus ``1 - CCC`` (Lin's concordance correlation), the CCC computed over the
    valid frames of each sequence for each dimension and averaged over the (sequence,
    dimension) pairs whose target varies (variance > 1e-6). ``raw``/``target``: ``(B, T, D)``
    with ``mask (B, T)``, or ``(N, D)`` treated as one sequence of ``N`` rows (the frames of an
    utterance, or the utterances of a batch for utterance-level models).

    The CCC term rewards following the target's movement within each utterance (and its
    scale), which the L1 term alone does not: with sparse, hard-to-predict targets L1 drives
    outputs to a near-constant median.
    """
    if raw.dim() == 2:
        raw, target = raw[None], target[None]
        mask = None if mask is None else mask[None]
    per = (raw - target).abs().mean(-1)
    if mask is None:
        l1 = per.mean()
        m = torch.ones(per.shape, dtype=raw.dtype, device=raw.device)
    else:
        m = mask.to(per.dtype)
        l1 = (per * m).sum() / m.sum().clamp_min(1.0)
    if raw.dim() != 3:
        return l1
    w = m[..., None]  # (B, T, 1)
    n = w.sum(1).clamp_min(1.0)  # (B, 1)
    mx, my = (raw * w).sum(1) / n, (target * w).sum(1) / n  # (B, D)
    dx, dy = (raw - mx[:, None]) * w, (target - my[:, None]) * w
    vx, vy = dx.pow(2).sum(1) / n, dy.pow(2).sum(1) / n
    cov = (dx * dy).sum(1) / n
    ccc = 2 * cov / (vx + vy + (mx - my).pow(2)).clamp_min(1e-8)
    ok = ((vy > 1e-6) & (w.sum(1) > 2)).to(raw.dtype)
    if float(ok.sum()) == 0:
        return l1
    return l1 + ((1 - ccc) * ok).sum() / ok.sum()


@dataclass(frozen=True)
class Space:
    """A conditioning space.

    Attributes:
        name: registry name.
        labels: one short label per dimension (``"AU01"``, ``"happiness"``, ``"x_0"``).
        columns: CSV column names (OpenFace style for AUs: ``"AU01_r"``).
        descriptions: human-readable meaning of each label.
        low, high: value range (``None`` = unbounded).
        activation: ``"clamp"``, ``"softmax"`` or ``"identity"``; see :meth:`activate`.
        loss: ``"l1"``, ``"kl"`` or ``"mse"``; see :meth:`loss_fn`.
        neutral: the value of an expressionless face (zeros for AUs, ``neutral`` = 1 for emotions,
            the mean face for landmarks).
        frame_level: whether values are per video frame (all built-ins are).
        points: whether values are 2-D points of the face, ``x_0..x_n, y_0..y_n`` normalised to
            the face box or crop (``landmarks68``): conditions a renderer moves the face onto, retargeted
            to each photo's own points rather than scaled around a neutral value.
    """

    name: str
    labels: tuple[str, ...]
    columns: tuple[str, ...]
    descriptions: tuple[str, ...]
    low: float | None
    high: float | None
    activation: str
    loss: str
    neutral: tuple[float, ...] = field(repr=False, default=())
    frame_level: bool = True
    points: bool = False

    @property
    def dim(self) -> int:
        """Number of values per frame."""
        return len(self.labels)

    def activate(self, raw: torch.Tensor) -> torch.Tensor:
        """Map raw network outputs ``(..., dim)`` to values of this space."""
        if self.activation == "clamp":
            return raw.clamp(self.low, self.high)
        if self.activation == "softmax":
            return raw.softmax(dim=-1)
        return raw

    def loss_fn(self, raw: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None, kind: str | None = None) -> torch.Tensor:
        """Default training loss between raw outputs and targets, both ``(..., dim)``.

        Args:
            raw: network outputs before :meth:`activate`.
            target: target values of this space.
            mask: optional ``(...)`` boolean/0-1 tensor; frames with 0 do not count.
            kind: override the space's loss (``"l1"``, ``"mse"``, ``"kl"``, or ``"ccc"``: L1
                plus ``1 - CCC`` per sequence and dimension, see :func:`_l1_ccc_loss`).

        Returns:
            A scalar: the mean over valid frames (and dimensions, for L1/MSE).
        """
        kind = kind or self.loss
        if kind == "l1":
            per = (raw - target).abs().mean(-1)
        elif kind == "mse":
            per = (raw - target).pow(2).mean(-1)
        elif kind == "kl":
            logp = F.log_softmax(raw, dim=-1)
            t = target.clamp_min(0)
            per = (t * (torch.log(t.clamp_min(1e-8)) - logp)).sum(-1)
        elif kind == "ccc":
            return _l1_ccc_loss(raw, target, mask)
        else:
            raise ValueError(f"unknown loss {kind!r} (choose l1, mse, kl or ccc)")
        if mask is None:
            return per.mean()
        m = mask.to(per.dtype)
        return (per * m).sum() / m.sum().clamp_min(1.0)

    def neutral_tensor(self) -> torch.Tensor:
        return torch.tensor(self.neutral, dtype=torch.float32)

    def index(self, label: str) -> int:
        """Position of ``label`` (``"AU12"``, ``"AU12_r"`` or ``"happiness"``)."""
        for seq in (self.labels, self.columns):
            if label in seq:
                return seq.index(label)
        raise KeyError(f"{label!r} is not a label of space {self.name!r}: {', '.join(self.labels)}")


AU17 = SPACES.add("au17", Space(
    name="au17",
    labels=tuple(AU_NAMES),
    columns=tuple(f"{a}_r" for a in AU_NAMES),
    descriptions=tuple(AU_NAMES.values()),
    low=0.0,
    high=5.0,
    activation="clamp",
    loss="l1",
    neutral=(0.0,) * 17,
))

EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
EMOTION8 = SPACES.add("emotion8", Space(
    name="emotion8",
    labels=EMOTIONS,
    columns=EMOTIONS,
    descriptions=EMOTIONS,
    low=0.0,
    high=1.0,
    activation="softmax",
    loss="kl",
    neutral=(1.0,) + (0.0,) * 7,
))


def _mean_face_68() -> tuple[float, ...]:
    """A generic frontal 68-point face in face-box coordinates (0-1), x's then y's.

    Built from the iBUG 68-point layout proportions: jaw (0-16), brows (17-26), nose (27-35),
    eyes (36-47), mouth (48-67). Used as the neutral value and the "mean face" baseline until a
    model replaces it with the mean of its own training data.
    """
    import math

    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw: half ellipse from right ear to left ear through the chin
        a = math.pi * i / 16
        pts.append((0.5 - 0.45 * math.cos(a), 0.35 + 0.6 * math.sin(a)))
    for i in range(5):  # right brow
        pts.append((0.17 + 0.07 * i, 0.27 - 0.03 * math.sin(math.pi * i / 4)))
    for i in range(5):  # left brow
        pts.append((0.55 + 0.07 * i, 0.27 - 0.03 * math.sin(math.pi * i / 4)))
    for i in range(4):  # nose bridge
        pts.append((0.5, 0.35 + 0.06 * i))
    for i in range(5):  # nostrils
        pts.append((0.42 + 0.04 * i, 0.6 + 0.015 * (1 - abs(i - 2) / 2)))
    for cx in (0.32, 0.68):  # eyes: 6 points each
        for k in range(6):
            a = 2 * math.pi * k / 6
            pts.append((cx - 0.07 * math.cos(a), 0.38 - 0.025 * math.sin(a)))
    for k in range(12):  # outer lip
        a = 2 * math.pi * k / 12
        pts.append((0.5 - 0.15 * math.cos(a), 0.77 - 0.06 * math.sin(a)))
    for k in range(8):  # inner lip
        a = 2 * math.pi * k / 8
        pts.append((0.5 - 0.1 * math.cos(a), 0.77 - 0.02 * math.sin(a)))
    xs = tuple(round(p[0], 4) for p in pts)
    ys = tuple(round(p[1], 4) for p in pts)
    return xs + ys


LANDMARKS68 = SPACES.add("landmarks68", Space(
    name="landmarks68",
    labels=tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68)),
    columns=tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68)),
    descriptions=tuple(f"landmark {i} x (face-box units)" for i in range(68))
    + tuple(f"landmark {i} y (face-box units)" for i in range(68)),
    low=None,
    high=None,
    activation="identity",
    loss="mse",
    neutral=_mean_face_68(),
    points=True,
))


#: The 52 ARKit blendshapes (Apple ``ARFaceAnchor.BlendShapeLocation``, camelCase as ARKit,
#: three.js/VRM "perfect sync" and MediaPipe spell them) with a short meaning each. Order: the 51
#: that MediaPipe FaceLandmarker estimates, in its output order (its categories 1-51; its category
#: 0, ``_neutral``, is not an ARKit blendshape and is dropped), then ``tongueOut``, the one ARKit
#: blendshape MediaPipe does not estimate. Models trained on the MediaPipe teacher therefore never
#: learn ``tongueOut``: their ``tongueOut`` output is 0 (a rig shows the tongue in). Live Link
#: Face's own column order differs; :mod:`speechface.avatars.exporters` writes that order.
ARKIT52: dict[str, str] = {
    "browDownLeft": "left brow lowered", "browDownRight": "right brow lowered",
    "browInnerUp": "inner brows raised", "browOuterUpLeft": "left outer brow raised",
    "browOuterUpRight": "right outer brow raised", "cheekPuff": "cheeks puffed out",
    "cheekSquintLeft": "left cheek raised (squint)", "cheekSquintRight": "right cheek raised (squint)",
    "eyeBlinkLeft": "left eyelid closed", "eyeBlinkRight": "right eyelid closed",
    "eyeLookDownLeft": "left eye looks down", "eyeLookDownRight": "right eye looks down",
    "eyeLookInLeft": "left eye looks to the nose", "eyeLookInRight": "right eye looks to the nose",
    "eyeLookOutLeft": "left eye looks out", "eyeLookOutRight": "right eye looks out",
    "eyeLookUpLeft": "left eye looks up", "eyeLookUpRight": "right eye looks up",
    "eyeSquintLeft": "left eye narrowed", "eyeSquintRight": "right eye narrowed",
    "eyeWideLeft": "left eye widened", "eyeWideRight": "right eye widened",
    "jawForward": "jaw forward", "jawLeft": "jaw to the left", "jawOpen": "jaw open",
    "jawRight": "jaw to the right", "mouthClose": "lips closed while the jaw is open",
    "mouthDimpleLeft": "left mouth corner back (dimple)",
    "mouthDimpleRight": "right mouth corner back (dimple)",
    "mouthFrownLeft": "left mouth corner down", "mouthFrownRight": "right mouth corner down",
    "mouthFunnel": "lips funnelled (o)", "mouthLeft": "mouth to the left",
    "mouthLowerDownLeft": "left lower lip down", "mouthLowerDownRight": "right lower lip down",
    "mouthPressLeft": "left lips pressed", "mouthPressRight": "right lips pressed",
    "mouthPucker": "lips puckered (u)", "mouthRight": "mouth to the right",
    "mouthRollLower": "lower lip rolled in", "mouthRollUpper": "upper lip rolled in",
    "mouthShrugLower": "lower lip pushed up", "mouthShrugUpper": "upper lip pushed up",
    "mouthSmileLeft": "left mouth corner up (smile)", "mouthSmileRight": "right mouth corner up (smile)",
    "mouthStretchLeft": "left mouth corner stretched", "mouthStretchRight": "right mouth corner stretched",
    "mouthUpperUpLeft": "left upper lip raised", "mouthUpperUpRight": "right upper lip raised",
    "noseSneerLeft": "left nostril raised (sneer)", "noseSneerRight": "right nostril raised (sneer)",
    "tongueOut": "tongue out",
}
ARKIT52_NAMES: tuple[str, ...] = tuple(ARKIT52)

BLENDSHAPES52 = SPACES.add("blendshapes52", Space(
    name="blendshapes52",
    labels=ARKIT52_NAMES,
    columns=ARKIT52_NAMES,
    descriptions=tuple(ARKIT52.values()),
    low=0.0,
    high=1.0,
    activation="clamp",
    loss="l1",
    neutral=(0.0,) * 52,
))


def get_space(space: str | Space) -> Space:
    """Return a registered space by name (a :class:`Space` is returned unchanged)."""
    return space if isinstance(space, Space) else SPACES.get(space)


def list_spaces(pattern: str = "*") -> list[str]:
    """Names of the registered conditioning spaces."""
    return SPACES.list(pattern)


# --------------------------------------------------------------------------------------------
# FACS prototypes: emotion distribution -> action units

#: Intensity (OpenFace 0-5 scale) given to every action unit of a full-blown prototype: 3 is
#: FACS level "C" (marked/pronounced), a clear but not extreme expression.
PROTOTYPE_INTENSITY = 3.0

#: Prototypical AUs of each EMOTION8 class (EMFACS-style, after Ekman & Friesen) as
#: ``{emotion: {AU label: intensity 0-5}}``, restricted to the 17 AUs of :data:`AU17`:
#:
#: - neutral: no AU.
#: - happiness 6+12; sadness 1+4+15; surprise 1+2+5+26; fear 1+2+4+5+7+20+26;
#:   anger 4+5+7+23.
#: - disgust 9+15+16: AU16 (lower lip depressor) is not one of the 17 OpenFace AUs, so it is
#:   replaced by AU10 (upper lip raiser), the nearest available mouth AU of disgust (EMFACS lists
#:   9 *or* 10 as the disgust marker): 9+10+15.
#: - contempt 12+14 is *unilateral* (R12A+R14A), but the OpenFace AUs are bilateral: it is encoded
#:   bilaterally at half the intensity (1.5), roughly what a one-sided action gives when averaged
#:   over both sides, and it is the only prototype that cannot be reproduced faithfully.
#:
#: All other AUs are at :data:`PROTOTYPE_INTENSITY`.
EMOTION_AU_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happiness": {"AU06": 3.0, "AU12": 3.0},
    "surprise": {"AU01": 3.0, "AU02": 3.0, "AU05": 3.0, "AU26": 3.0},
    "sadness": {"AU01": 3.0, "AU04": 3.0, "AU15": 3.0},
    "anger": {"AU04": 3.0, "AU05": 3.0, "AU07": 3.0, "AU23": 3.0},
    "disgust": {"AU09": 3.0, "AU10": 3.0, "AU15": 3.0},
    "fear": {"AU01": 3.0, "AU02": 3.0, "AU04": 3.0, "AU05": 3.0, "AU07": 3.0, "AU20": 3.0,
             "AU26": 3.0},
    "contempt": {"AU12": 1.5, "AU14": 1.5},
}


def _prototype_matrix() -> torch.Tensor:
    """``(8, 17)`` float32: row = EMOTION8 class, column = AU17 label."""
    m = torch.zeros(len(EMOTIONS), len(AU_NAMES))
    aus = list(AU_NAMES)
    for i, emo in enumerate(EMOTIONS):
        for au, v in EMOTION_AU_PROTOTYPES[emo].items():
            m[i, aus.index(au)] = v
    return m


def emotion_to_au(dist: object) -> object:
    """Map EMOTION8 distributions to AU17 intensities with the FACS prototypes.

    ``au = clip(dist @ P, 0, 5)`` where ``P`` (8, 17) holds :data:`EMOTION_AU_PROTOTYPES`: each
    emotion contributes its prototype weighted by its probability (a distribution-weighted sum).

    Args:
        dist: ``(..., 8)`` numpy array or torch tensor in EMOTION8 order (probabilities; other
            non-negative weights work too, the result is clipped to 0-5).

    Returns:
        ``(..., 17)`` AU intensities in AU17 order, of the input's type (numpy float32 for
        numpy/list input, a tensor on the input's device and float dtype for tensors).

    Example:
        >>> au = emotion_to_au([0.0, 1.0, 0, 0, 0, 0, 0, 0])       # pure happiness
        >>> {AU17.labels[i]: float(au[i]) for i in au.nonzero()[0]}
        {'AU06': 3.0, 'AU12': 3.0}
        >>> float(emotion_to_au([0.5, 0.5, 0, 0, 0, 0, 0, 0])[AU17.index("AU12")])
        1.5
    """
    if isinstance(dist, torch.Tensor):
        if dist.shape[-1:] != (len(EMOTIONS),):
            raise ValueError(f"emotion_to_au expects (..., 8) EMOTION8 values, got {tuple(dist.shape)}")
        x = dist if dist.is_floating_point() else dist.float()
        return (x @ _prototype_matrix().to(x.device, x.dtype)).clamp(0.0, 5.0)
    import numpy as np

    a = np.asarray(dist, dtype=np.float32)
    if a.shape[-1:] != (len(EMOTIONS),):
        raise ValueError(f"emotion_to_au expects (..., 8) EMOTION8 values, got {a.shape}")
    return np.clip(a @ _prototype_matrix().numpy(), 0.0, 5.0).astype(np.float32)
