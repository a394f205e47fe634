"""Fit the mesh renderer's displacement basis from talking-face clips (reproducible command).

For every frame of every clip the MediaPipe teacher gives the 478-point mesh and the 52
blendshapes (:func:`~speechface.render.tracks.track_clip`). The fit:

1. removes head pose and scale: each mesh is aligned onto a canonical template by a
   similarity on the :data:`~speechface.render.mesh.ANCHORS` (the template is the mean aligned
   mesh, its inter-ocular distance set to 1);
2. removes identity: within each clip, meshes and blendshapes are centred on the clip's mean;
3. solves a ridge regression ``displacement (468 x 3) = blendshapes (51) @ W``, with the ridge
   chosen on a part of the training groups;
4. reports, on held-out groups, how much of the mesh motion the blendshapes explain (R^2 over
   all vertices and over the mouth), against predicting no motion.

Clips of the speech models' held-out speakers (``val_groups`` of a config) are never used in
the fit; they are the held-out set here too.

Command line (``speechface train mesh --config configs/mesh_warp.yaml`` runs the same fit)::

    python -m speechface.render.fit ../shared/data/av_clips -o src/speechface/pretrained/mesh_warp.au17-mediapipe \\
        --val-config configs/cause_cnn.yaml --groups configs/av_clips_groups.json \\
        --cache /tmp/speechface_tracks [--grid-every 5] \\
        [--landmarks-out src/speechface/pretrained/mesh_warp.landmarks68-mediapipe]

Example:
    >>> from speechface.render.fit import fit_basis                   # doctest: +SKIP
    >>> model = fit_basis(train_tracks)                               # doctest: +SKIP
    >>> model["basis"].shape                                          # doctest: +SKIP
    (51, 468, 3)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .mesh import ANCHORS, INNER_LIPS, N_VERTICES, to_canonical

__all__ = ["fit_basis", "evaluate_basis", "calibrate_gains", "designed_rows", "canonical_clip",
           "make_template", "region_masks", "resting_scores", "landmark_variant", "MeshFitConfig",
           "fit_mesh",
           "MOUTH_VERTICES", "main"]

#: Lip vertices (outer and inner loops) used for the mouth R^2.
MOUTH_VERTICES: tuple[int, ...] = tuple(sorted(set(INNER_LIPS) | {
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409}))


def make_template(mesh: np.ndarray) -> np.ndarray:
    """A canonical frame from one mesh: anchor centroid at 0, inter-ocular distance 1.

    The inter-ocular distance is measured between the outer eye corners (33, 263).
    """
    m = np.asarray(mesh, np.float64)[:N_VERTICES]
    m = m - m[list(ANCHORS)].mean(0)
    return m / np.linalg.norm(m[33] - m[263])


def canonical_clip(track: dict[str, np.ndarray], template: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The found frames of a clip: ``(meshes (T, 468, 3) canonical, blendshapes (T, 52))``."""
    ok = np.asarray(track["found"], bool)
    mesh = np.asarray(track["mesh"], np.float64)[ok, :N_VERTICES]
    return to_canonical(mesh, template), np.asarray(track["blendshapes"], np.float32)[ok]


def resting_scores(blendshapes: np.ndarray, percentile: float = 10.0) -> np.ndarray:
    """The ``(51,)`` resting score of each blendshape over ``(N, 52)`` frames of talking faces:
    the ``percentile`` of each, except the eye blendshapes (blink, squint, wide, gaze), whose
    median is used: a speaking face keeps its eyes open, and MediaPipe reads open eyes at
    0.1-0.5 for these.

    Example:
        >>> bs = np.tile(np.linspace(0, 1, 11)[:, None], (1, 52))
        >>> r = resting_scores(bs); float(r[0]), float(r[8])       # browDownLeft, eyeBlinkLeft
        (0.1, 0.5)
    """
    from ..teachers.mediapipe import BLENDSHAPE_NAMES

    b = np.asarray(blendshapes, np.float64)[:, 1:]
    eye = np.array([n.startswith("eye") for n in BLENDSHAPE_NAMES[1:]])
    return np.where(eye, np.median(b, axis=0), np.percentile(b, percentile, axis=0))


def _centred(clips: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for mesh, bs in clips:
        if len(mesh) < 10:
            continue
        ys.append((mesh - mesh.mean(0)).reshape(len(mesh), -1))
        xs.append(bs[:, 1:] - bs[:, 1:].mean(0))
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)


def _ridge_plain(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    # scaled by the frame count so lam is per frame
    a = x.T @ x / len(x) + lam * np.eye(x.shape[1])
    return np.linalg.solve(a, x.T @ y / len(x))


#: Blendshapes of the upper face (brows, lids, gaze) and of the lower face (jaw, mouth, nose,
#: cheek puff); cheekSquint moves both cheeks and lower lids and is not restricted.
UPPER_BLENDSHAPES = ("brow", "eye")
LOWER_BLENDSHAPES = ("jaw", "mouth", "nose", "cheekPuff")


def region_masks(template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which (blendshape, vertex) pairs may move: ``(allowed (51, 468) bool, vertex_region
    (468,) int)`` with regions 0 = above the nose bridge (vertex 6), 1 = between it and the
    nose tip (vertex 4), 2 = below the nose tip. Brow and eye blendshapes move regions 0-1,
    jaw / mouth / nose blendshapes regions 1-2: speech-correlated motion cannot leak into
    the brows, nor a blink into the mouth."""
    from ..teachers.mediapipe import BLENDSHAPE_NAMES

    y = np.asarray(template)[:N_VERTICES, 1]
    region = np.where(y < y[6], 0, np.where(y < y[4], 1, 2))
    allowed = np.ones((len(BLENDSHAPE_NAMES) - 1, N_VERTICES), bool)
    for k, name in enumerate(BLENDSHAPE_NAMES[1:]):
        if name.startswith(UPPER_BLENDSHAPES):
            allowed[k] = region < 2
        elif name.startswith(LOWER_BLENDSHAPES):
            allowed[k] = region > 0
    return allowed, region


def _ridge(x: np.ndarray, y: np.ndarray, lam: float, allowed: np.ndarray | None = None
           ) -> np.ndarray:
    """Ridge ``y ~ x @ w``; with ``allowed (K, V)``, each vertex group only uses the
    blendshapes allowed to move it (an exact constrained least-squares fit)."""
    if allowed is None:
        return _ridge_plain(x, y, lam)
    w = np.zeros((x.shape[1], y.shape[1]))
    pattern = {}
    for v in range(allowed.shape[1]):
        pattern.setdefault(allowed[:, v].tobytes(), []).append(v)
    for key, verts in pattern.items():
        ks = np.flatnonzero(np.frombuffer(key, bool))
        cols = (np.array(verts)[:, None] * 3 + np.arange(3)).reshape(-1)
        w[np.ix_(ks, cols)] = _ridge_plain(x[:, ks], y[:, cols], lam)
    return w


def _r2(x: np.ndarray, y: np.ndarray, w: np.ndarray, cols: np.ndarray | None = None
        ) -> float:
    pred = x @ w
    if cols is not None:
        pred, y = pred[:, cols], y[:, cols]
    return float(1 - ((y - pred) ** 2).sum() / max((y ** 2).sum(), 1e-12))


def _mouth_cols() -> np.ndarray:
    v = np.array(MOUTH_VERTICES)
    return (v[:, None] * 3 + np.arange(3)[None]).reshape(-1)


def fit_basis(train: Sequence[dict[str, np.ndarray]], *, ridges: Sequence[float] = (
        1e-4, 3e-4, 1e-3, 3e-3, 1e-2), tune_fraction: float = 0.2, seed: int = 0,
        restrict: bool = True, rest_percentile: float = 10.0) -> dict[str, Any]:
    """Fit the blendshape -> mesh displacement basis.

    Args:
        train: teacher tracks (:func:`~speechface.render.tracks.track_clip` dicts), each with
            an extra ``"group"`` string (the speaker), used to hold out whole speakers when the
            ridge is chosen.
        ridges: candidate ridge strengths (per frame, on blendshape scores 0-1).
        tune_fraction: share of the training groups held out to choose the ridge.
        restrict: brow/eye blendshapes may not move the lower face, nor jaw/mouth ones the
            brows and eyes (:func:`region_masks`).
        rest_percentile: the resting score of each blendshape (what MediaPipe reads on a
            relaxed face; a condition only moves the face above it) is this percentile of the
            training frames (the median for the eye blendshapes, :func:`resting_scores`).

    Returns:
        ``{"template": (468, 3), "basis": (51, 468, 3) float32 (canonical units per unit
        blendshape score), "rest": (51,) resting scores, "ridge": float, "tune_r2": {ridge: R^2}, "frames": int,
        "clips": int}``.
    """
    tracks = [t for t in train if np.asarray(t["found"]).sum() >= 10]
    if not tracks:
        raise ValueError("no clip with at least 10 frames with a face to fit on")
    first = tracks[0]
    template = make_template(first["mesh"][np.argmax(first["found"])])
    clips = [canonical_clip(t, template) for t in tracks]
    # refine the template: the mean aligned mesh (one more pass)
    template = make_template(np.concatenate([m for m, _ in clips]).mean(0))
    clips = [canonical_clip(t, template) for t in tracks]
    allowed = region_masks(template)[0] if restrict else None
    groups = sorted({str(t.get("group", i)) for i, t in enumerate(tracks)})
    rng = np.random.default_rng(seed)
    tune = set(rng.choice(groups, max(1, int(round(tune_fraction * len(groups)))),
                          replace=False)) if len(groups) > 2 else set()
    fit_part = [c for c, t in zip(clips, tracks, strict=True) if str(t.get("group")) not in tune]
    tune_part = [c for c, t in zip(clips, tracks, strict=True) if str(t.get("group")) in tune]
    scores: dict[float, float] = {}
    if tune_part:
        x, y = _centred(fit_part)
        xt, yt = _centred(tune_part)
        for lam in ridges:
            scores[float(lam)] = _r2(xt, yt, _ridge(x, y, lam, allowed))
        best = max(scores, key=scores.get)  # type: ignore[arg-type]
    else:
        best = float(ridges[len(ridges) // 2])
    x, y = _centred(clips)
    w = _ridge(x, y, best, allowed)
    rest = resting_scores(np.concatenate([b for _, b in clips]), rest_percentile)
    return {"template": template.astype(np.float32), "rest": rest.astype(np.float32),
            "basis": w.reshape(x.shape[1], N_VERTICES, 3).astype(np.float32),
            "ridge": best, "tune_r2": scores, "frames": int(len(x)), "clips": len(clips)}


def evaluate_basis(model: dict[str, Any], tracks: Sequence[dict[str, np.ndarray]]
                   ) -> dict[str, float]:
    """Held-out quality of a fitted basis on clips it never saw.

    Returns:
        ``{"r2": R^2 of the within-clip mesh displacement over all vertices, "r2_mouth": over
        the lip vertices, "rmse_iod": RMS error per vertex coordinate in inter-ocular units,
        "rms_motion_iod": RMS of the motion itself (the error of predicting none),
        "frames": int}``.
    """
    clips = [canonical_clip(t, np.asarray(model["template"], np.float64)) for t in tracks]
    x, y = _centred(clips)
    w = np.asarray(model["basis"], np.float64).reshape(x.shape[1], -1)
    mouth = _mouth_cols()
    pred = x @ w
    return {"r2": _r2(x, y, w), "r2_mouth": _r2(x, y, w, mouth),
            "rmse_iod": float(np.sqrt(((y - pred) ** 2).mean())),
            "rms_motion_iod": float(np.sqrt((y ** 2).mean())),
            "rmse_mouth_iod": float(np.sqrt(((y - pred)[:, mouth] ** 2).mean())),
            "rms_motion_mouth_iod": float(np.sqrt((y[:, mouth] ** 2).mean())),
            "frames": int(len(x))}


def designed_rows(template: np.ndarray) -> dict[str, np.ndarray]:
    """Hand-made displacement rows (canonical units per unit score) for blendshapes talking
    faces hardly show, so the regression cannot find them: ``mouthFrown`` (a lip corner
    pulled down by 0.25 inter-ocular distances per unit score, Gaussian fall-off of 0.12) and
    ``cheekSquint`` (the cheek below an eye raised by 0.15, the lower lid by 0.06). MediaPipe
    reads little of either back (its cheekSquint hardly moves on real faces either), so their
    size was set by eye on training-speaker frames, not calibrated. "Left" is the subject's left (image
    right), as in MediaPipe.

    Returns:
        ``{blendshape name: (468, 3) float32}``.
    """
    t = np.asarray(template, np.float64)[:N_VERTICES]
    rows: dict[str, np.ndarray] = {}
    sides = {"Left": (291, 263, (263, 249, 390, 373, 374, 380, 381, 382, 362)),
             "Right": (61, 33, (33, 7, 163, 144, 145, 153, 154, 155, 133))}
    for side, (mouth, eye, lower_lid) in sides.items():
        d2 = ((t[:, :2] - t[mouth, :2]) ** 2).sum(1)
        row = np.zeros_like(t)
        row[:, 1] = 0.25 * np.exp(-d2 / (2 * 0.12 ** 2)) * (t[:, 1] > t[4, 1])
        rows[f"mouthFrown{side}"] = row.astype(np.float32)
        centre = 0.6 * t[eye, :2] + 0.4 * t[mouth, :2]
        d2 = ((t[:, :2] - centre) ** 2).sum(1)
        row = np.zeros_like(t)
        row[:, 1] = -0.15 * np.exp(-d2 / (2 * 0.15 ** 2)) * (t[:, 1] > t[eye, 1])
        row[list(lower_lid), 1] -= 0.06
        rows[f"cheekSquint{side}"] = row.astype(np.float32)
    return rows


def calibrate_gains(model: dict[str, Any], photos: Sequence[np.ndarray], *, score: float = 0.5,
                    max_gain: float = 8.0, rounds: int = 3, min_slope: float = 0.25
                    ) -> dict[str, Any]:
    """Closed-loop gain per blendshape: render it on photos, measure it back with MediaPipe.

    A regression slope fitted on noisy scores is attenuated (errors in the regressors), so a
    face moved by ``score * basis_k`` reads back as less than ``score``. For each blendshape
    (gaze excluded: the mesh warp does not move the irises) every photo is rendered with
    ``+score`` on it alone; the mean change of MediaPipe's reading of that blendshape gives
    the slope, and the gain is multiplied by ``clip(1 / slope, 0.5, 3)`` for ``rounds`` rounds
    (total within 1 to ``max_gain``). Left/right pairs are set and measured together (their
    scores are nearly collinear in talking faces, so only their sum is well determined).
    Blendshapes whose final slope stays below ``min_slope`` keep gain 1 (the basis cannot
    make MediaPipe see them; reported in ``slope``).

    Args:
        model: :func:`fit_basis` output (its ``basis`` is not modified).
        photos: uint8 face crops of *training* identities.

    Returns:
        ``{"gain": (51,) float32, "slope": (51,) float32 the slope measured in the last round
        (before the last gain update), "photos": int}``.
    """
    from ..teachers.mediapipe import BLENDSHAPE_NAMES, MediaPipeTeacher
    from .translators.mesh_warp import build_renderer

    names = BLENDSHAPE_NAMES[1:]
    groups: dict[str, list[int]] = {}   # left/right pairs share a gain (collinear in the data)
    for k, n in enumerate(names):
        if not n.startswith("eyeLook"):
            groups.setdefault(n.removesuffix("Left").removesuffix("Right"), []).append(k)
    gain = np.ones(len(names), np.float64)
    slope = np.zeros(len(names), np.float64)
    basis = np.asarray(model["basis"], np.float64)
    with MediaPipeTeacher(running_mode="image") as teacher:
        for _ in range(max(1, rounds)):
            net = build_renderer(dict(model, basis=basis * gain[:, None, None])).network
            rigs = []
            for p in photos:
                obs = teacher.observe(p)
                if obs.found:
                    rigs.append((p, net.rig(p), obs.blendshapes[1:]))
            if not rigs:
                raise ValueError("calibration needs photos with a face MediaPipe finds")
            for ks in groups.values():
                delta = np.zeros(len(names))
                delta[ks] = score
                changes = []
                for p, rig, base in rigs:
                    obs = teacher.observe(net.warp_frame(p, rig, net.target_vertices(delta, rig)))
                    if obs.found:
                        changes.append(float(np.mean(obs.blendshapes[1:][ks] - base[ks])))
                slope[ks] = float(np.mean(changes)) / score if changes else 0.0
                if slope[ks[0]] > 0.02:
                    gain[ks] = float(np.clip(gain[ks[0]] * np.clip(1.0 / slope[ks[0]], 0.5, 3.0),
                                             1.0, max_gain))
    weak = slope < min_slope
    gain[weak] = 1.0   # not controllable from this basis: leave it as fitted
    return {"gain": gain.astype(np.float32), "slope": slope.astype(np.float32),
            "photos": len(rigs)}


def _val_groups(config: str | None) -> set[str]:
    if not config:
        return set()
    import yaml

    cfg = yaml.safe_load(Path(config).read_text())
    return set(cfg.get("val_groups") or [])


def landmark_variant(translator: Any, name: str = "mesh_warp.landmarks68-mediapipe") -> Any:
    """The same fitted renderer conditioned on ``landmarks68`` (target points are projected
    onto its blendshape basis).

    Example:
        >>> lm = landmark_variant(Translator.from_pretrained("mesh_warp.au17-mediapipe"))  # doctest: +SKIP
        >>> lm.space.name                                                                # doctest: +SKIP
        'landmarks68'
    """
    from .translators.mesh_warp import build_renderer

    net = translator.network
    model = {"template": net.template.numpy(), "basis": net.basis.numpy(),
             "rest": net.rest.numpy()}
    return build_renderer(model, name=name, info=dict(translator.info), space="landmarks68")


def _calibration_photos(files: Sequence[tuple[str, Path]], n: int) -> list[np.ndarray]:
    """Face crops of the first frame of ``n`` training clips, one per speaker group."""
    from .face import crop_face, detect_faces
    from .video import read_video

    seen, photos = set(), []
    for group, path in sorted(files, key=lambda x: str(x[1])):
        if group in seen or len(photos) >= n:
            continue
        frame = read_video(path, max_frames=1).frames[0]
        faces = detect_faces(frame)
        if faces:
            seen.add(group)
            photos.append(crop_face(frame, max(faces, key=lambda f: f.area)).image)
    return photos


def main(argv: list[str] | None = None) -> int:
    """``python -m speechface.render.fit``: track clips, fit, evaluate, save the model folder."""
    p = argparse.ArgumentParser(prog="python -m speechface.render.fit",
                                description="Fit the mesh renderer's blendshape displacement "
                                            "basis on talking-face clips.")
    p.add_argument("inputs", nargs="+", help="video files or folders")
    p.add_argument("-o", "--out", required=True, help="model folder to write")
    p.add_argument("--val-config", default=None,
                   help="a training config whose val_groups are held out (e.g. "
                        "configs/cause_cnn.yaml)")
    p.add_argument("--groups", default=None, help="JSON {clip: group} (as prepare av)")
    p.add_argument("--cache", default=None, help="folder for the per-clip teacher tracks")
    p.add_argument("--grid-every", type=int, default=5,
                   help="use every n-th clip of a speaker folder with over 100 clips (GRID s1)")
    p.add_argument("--name", default="mesh_warp.au17-mediapipe")
    p.add_argument("--landmarks-out", default=None,
                   help="also write the landmarks68 renderer (same basis) to this folder")
    p.add_argument("--calibration-photos", type=int, default=12,
                   help="first frames of this many training speakers calibrate the gains")
    args = p.parse_args(argv)
    fit_mesh(MeshFitConfig(inputs=list(args.inputs), out=args.out, val_config=args.val_config,
                           groups=args.groups, cache=args.cache, grid_every=args.grid_every,
                           name=args.name, landmarks_out=args.landmarks_out,
                           calibration_photos=args.calibration_photos))
    return 0


@dataclasses.dataclass
class MeshFitConfig:
    """Options of the mesh renderer's fit (``speechface train mesh``; see :func:`main`).

    Example:
        >>> MeshFitConfig(out="runs/mesh").grid_every
        5
    """

    inputs: list[str] = dataclasses.field(default_factory=lambda: ["../shared/data/av_clips"])
    out: str = "runs/mesh_warp/au17"
    val_config: str | None = "configs/cause_cnn.yaml"
    groups: str | None = "configs/av_clips_groups.json"
    cache: str | None = None
    grid_every: int = 5
    name: str = "mesh_warp.au17-mediapipe"
    landmarks_out: str | None = None
    calibration_photos: int = 12

    BOUNDS: ClassVar[dict[str, str]] = {"grid_every": ">=1", "calibration_photos": ">=1"}


def fit_mesh(cfg: MeshFitConfig, config_path: str | None = None) -> dict[str, Any]:
    """Track the clips, fit, calibrate and save the renderer; what ``speechface train mesh``
    (registered in :mod:`speechface.training.mesh`) and ``python -m speechface.render.fit`` run.

    Returns:
        ``{"model": out folder, "ridge", "frames", "clips", "heldout": {...}}``.
    """
    from ..data.prepare import clip_group, find_videos, load_groups
    from .tracks import track_clip

    groups = load_groups(cfg.groups)
    val = _val_groups(cfg.val_config)
    videos = find_videos(cfg.inputs)
    by_folder: dict[str, list[Path]] = {}
    for v in videos:
        by_folder.setdefault(str(v.parent), []).append(v)
    chosen = []
    for vids in by_folder.values():
        step = cfg.grid_every if len(vids) > 100 else 1
        chosen += sorted(vids)[::step]
    train, held, train_files = [], [], []
    t0 = time.time()
    for i, v in enumerate(chosen):
        tr = dict(track_clip(v, cfg.cache))
        tr["group"] = clip_group(v, groups=groups)
        (held if tr["group"] in val else train).append(tr)
        if tr["group"] not in val:
            train_files.append((tr["group"], v))
        print(f"[{i + 1}/{len(chosen)}] {v.name}: {len(tr['found'])} frames, group "
              f"{tr['group']}{' (held out)' if tr['group'] in val else ''} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    model = fit_basis(train)
    metrics = evaluate_basis(model, held) if held else {}
    print(json.dumps({"ridge": model["ridge"], "tune_r2": model["tune_r2"],
                      "frames": model["frames"], "clips": model["clips"],
                      "heldout": metrics}, indent=1))
    photos = _calibration_photos(train_files, cfg.calibration_photos)
    cal = calibrate_gains(model, photos)
    from ..teachers.mediapipe import BLENDSHAPE_NAMES as _NAMES

    designed = designed_rows(model["template"])
    weak = [n for n in designed if cal["slope"][_NAMES.index(n) - 1] < 0.25]
    if weak:   # the data cannot show them: hand-made rows, calibrated the same way
        basis = np.array(model["basis"])
        for n in weak:
            basis[_NAMES.index(n) - 1] = designed[n]
        model = dict(model, basis=basis, designed=weak)
        print(f"hand-made rows for {weak}", file=sys.stderr)
        cal = calibrate_gains(model, photos)
    from ..teachers.mediapipe import BLENDSHAPE_NAMES
    from .translators.mesh_warp import build_renderer

    gains = {n: round(float(g), 3) for n, g in zip(BLENDSHAPE_NAMES[1:], cal["gain"], strict=True)}
    slopes = {n: round(float(g), 3) for n, g in zip(BLENDSHAPE_NAMES[1:], cal["slope"],
                                                      strict=True)}
    print(json.dumps({"gain": gains, "slope": slopes}, indent=1))
    model = dict(model, basis=np.asarray(model["basis"]) * cal["gain"][:, None, None])
    tr = build_renderer(model, name=cfg.name, info={
        "data": "talking-face clips: " + ", ".join(str(x) for x in cfg.inputs),
        "teacher": "MediaPipe FaceLandmarker (478-point mesh + 52 blendshapes)",
        "fit": {"ridge": model["ridge"], "tune_r2": model["tune_r2"],
                "frames": model["frames"], "clips": model["clips"],
                "train_groups": sorted({t["group"] for t in train}),
                "heldout_groups": sorted({t["group"] for t in held})},
        "heldout": metrics,
        "designed_rows": model.get("designed", []),
        "calibration": {"photos": cal["photos"], "score": 0.5, "gain": gains,
                        "slope_last_round": slopes}})
    tr.save_pretrained(cfg.out)
    if cfg.landmarks_out:
        landmark_variant(tr).save_pretrained(cfg.landmarks_out)
    print(f"wrote {cfg.out}", file=sys.stderr)
    return {"model": cfg.out, "ridge": model["ridge"], "frames": model["frames"],
            "clips": model["clips"], "heldout": metrics}




if __name__ == "__main__":
    sys.exit(main())
