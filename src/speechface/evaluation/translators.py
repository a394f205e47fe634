"""Held-out reports and figures of face translators.

- :func:`evaluate_translator`: AU fidelity (re-estimated by the MediaPipe teacher),
  preservation outside the face and cycle error of an AU translator on held-out faces;
- :func:`evaluate_pairs`: image error against real video frames of held-out clips;
- :func:`au_sweep_figure`, :func:`pairs_figure`, :func:`save_image_rows`: the pictures
  (the training recipes write their sample grids with :func:`save_image_rows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core._io import atomic_path
from ..core.errors import DataError
from ..render.translators import Translator

__all__ = ["evaluate_translator", "au_sweep_figure", "evaluate_pairs", "pairs_figure",
           "save_image_rows"]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _face_mask(box: np.ndarray, h: int, w: int, margin: float = 0.1) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    ys, xs = np.mgrid[0:h, 0:w]
    return (xs >= x0 - mx) & (xs <= x1 + mx) & (ys >= y0 - my) & (ys <= y1 + my)


def evaluate_translator(translator: Translator, faces: np.ndarray, conds: np.ndarray, *,
                        targets: np.ndarray | None = None, teacher: Any = None, seed: int = 0,
                        batch_size: int = 32) -> dict[str, Any]:
    """Held-out report of an AU translator: AU fidelity, preservation and cycle error.

    Each face gets the AUs of another face of the set (a fixed random pairing) as target.

    - **AU fidelity**: the MediaPipe teacher re-estimates the AUs (proxy) of every generated
      image; MAE and Pearson per AU against the targets. Baseline: the same numbers for the
      unchanged input (its teacher AUs against the targets): what "do nothing" scores.
    - **Preservation**: mean absolute difference (0-255 scale) between input and output outside
      the face box (the teacher's landmark box on the input, widened by 10 %), and inside it.
    - **Cycle error**: ``|G(G(x, target), own AUs) - x|`` (0-255 scale) at the network size.

    Args:
        translator: an ``au17`` :class:`Translator`.
        faces: ``(N, H, W, 3)`` uint8 held-out face crops.
        conds: ``(N, 17)`` their AU labels (the condition for the cycle).
        targets: ``(N, 17)`` target AUs (default: ``conds`` permuted with ``seed``).
        teacher: an open :class:`~speechface.teachers.MediaPipeTeacher` (default: a new one in
            image mode).

    Returns:
        A JSON-plain dict of the numbers (per AU under ``"per_au"``).
    """
    from ..teachers.mediapipe import MediaPipeTeacher

    faces = np.asarray(faces)
    conds = np.asarray(conds, dtype=np.float32)
    n = len(faces)
    if targets is None:
        perm = np.random.default_rng(seed).permutation(n)
        targets = conds[perm]
    targets = np.asarray(targets, dtype=np.float32)
    own_teacher = teacher is None
    teacher = teacher or MediaPipeTeacher(running_mode="image")
    out, att = translator.translate(faces, targets, batch_size=batch_size, return_attention=True)
    try:
        obs_in = [teacher.observe(f) for f in faces]
        obs_out = [teacher.observe(f) for f in out]
    finally:
        if own_teacher:
            teacher.close()
    found = np.array([a.found and b.found for a, b in zip(obs_in, obs_out)])
    au_in = np.stack([o.au17 for o in obs_in])
    au_out = np.stack([o.au17 for o in obs_out])
    h, w = faces.shape[1:3]
    outside, inside = [], []
    for i in range(n):
        if not obs_in[i].found:
            continue
        m = _face_mask(obs_in[i].box, h, w)
        diff = np.abs(out[i].astype(np.float32) - faces[i].astype(np.float32)).mean(-1)
        outside.append(float(diff[~m].mean()) if (~m).any() else 0.0)
        inside.append(float(diff[m].mean()))
    # cycle at the network's size
    s = translator.image_size
    x = Translator._resize(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255, s) * 2 - 1
    cyc = []
    translator.eval()
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            xb = x[i:i + batch_size].to(translator.device)
            fake, _ = translator(xb, torch.from_numpy(targets[i:i + batch_size]).to(xb.device))
            rec, _ = translator(fake, torch.from_numpy(conds[i:i + batch_size]).to(xb.device))
            cyc.append(((rec - xb).abs().mean((1, 2, 3)) * 127.5).cpu().numpy())
    t, g, b = targets[found], au_out[found], au_in[found]
    labels = translator.space.labels
    per_au = {lab: {"mae": float(np.abs(g[:, j] - t[:, j]).mean()),
                    "pearson": _pearson(g[:, j], t[:, j]),
                    "mae_unchanged_input": float(np.abs(b[:, j] - t[:, j]).mean()),
                    "pearson_unchanged_input": _pearson(b[:, j], t[:, j]),
                    "target_std": float(t[:, j].std())}
              for j, lab in enumerate(labels)}
    return {
        "n_faces": n,
        "n_scored": int(found.sum()),
        "teacher_found_output": float(np.mean([o.found for o in obs_out])),
        "au_mae": float(np.abs(g - t).mean()),
        "au_mae_unchanged_input": float(np.abs(b - t).mean()),
        "au_pearson_mean": float(np.nanmean([v["pearson"] for v in per_au.values()])),
        "l1_outside_face_255": float(np.mean(outside)),
        "l1_inside_face_255": float(np.mean(inside)),
        "cycle_l1_255": float(np.concatenate(cyc).mean()),
        "attention_mean": float(att.mean()),
        "per_au": per_au,
    }


def au_sweep_figure(translator: Translator, faces: np.ndarray, conds: np.ndarray,
                    path: str | Path, *, aus: tuple[str, ...] = ("AU12", "AU26", "AU04", "AU45"),
                    values: tuple[float, ...] = (0, 1, 2, 3, 4, 5), teacher: Any = None,
                    cell: int = 96) -> dict[str, list[float]]:
    """Save a grid of faces x single-AU sweeps; return the teacher's re-estimate per step.

    For every AU in ``aus`` a block of rows (one per face) shows the input and the face with
    that AU set to each of ``values`` (the other AUs keep the face's own labels).

    Args:
        translator: an ``au17`` translator. ``faces``: ``(F, H, W, 3)`` uint8; ``conds``:
            ``(F, 17)`` their AU labels.
        path: PNG to write (needs matplotlib).
        teacher: optional open MediaPipe teacher; with it, the mean re-estimated AU at each
            sweep value is returned (``{"AU12": [..6 values..], ...}``), else ``{}``.
        cell: pixel size of one face in the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faces = np.asarray(faces)
    conds = np.asarray(conds, dtype=np.float32)
    space = translator.space
    nf, nv = len(faces), len(values)
    fig, axes = plt.subplots(len(aus) * nf, nv + 1, figsize=((nv + 1) * cell / 72,
                                                             len(aus) * nf * cell / 72 + 0.4),
                             dpi=72, squeeze=False)
    measured: dict[str, list[float]] = {}
    for a, au in enumerate(aus):
        j = space.index(au)
        per_value: list[list[float]] = [[] for _ in values]
        for f in range(nf):
            c = np.repeat(conds[f:f + 1], nv, 0)
            c[:, j] = values
            frames = translator.translate(faces[f], c)
            row = a * nf + f
            axes[row, 0].imshow(faces[f])
            axes[row, 0].set_ylabel(f"{au}\n{space.descriptions[j]}" if f == 0 else "",
                                    fontsize=8)
            for k in range(nv):
                axes[row, k + 1].imshow(frames[k])
                if row == 0 or f == 0:
                    axes[row, k + 1].set_title(f"{au}={values[k]:g}", fontsize=8)
                if teacher is not None:
                    obs = teacher.observe(frames[k])
                    if obs.found:
                        per_value[k].append(float(obs.au17[j]))
        axes[a * nf, 0].set_title("input", fontsize=8)
        if teacher is not None:
            measured[au] = [float(np.mean(v)) if v else float("nan") for v in per_value]
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as im, atomic_path(path) as tmp:  # 256-colour palette: ~4x smaller
        im.convert("RGB").quantize(256).save(tmp, format="PNG", optimize=True)
    return measured


def _pick_pairs(clips: Any, per_clip: int, seed: int) -> list[tuple[int, list[int]]]:
    """Per clip: its first labelled frame (the "photo") and ``per_clip`` random other frames."""
    rng = np.random.default_rng(seed)
    out = []
    for ix in clips.frames_of():
        ix = ix.tolist()
        if len(ix) < 2:
            continue
        others = rng.choice(ix[1:], size=min(per_clip, len(ix) - 1), replace=False)
        out.append((ix[0], sorted(int(i) for i in others)))
    return out


def evaluate_pairs(translator: Translator, clips: Any, *, per_clip: int = 8, seed: int = 0,
                   batch_size: int = 32) -> dict[str, Any]:
    """Image error of a translator against **real video frames** of held-out clips.

    For every clip the first labelled frame plays the photo; for ``per_clip`` other frames the
    translator gets that photo and the other frame's labels (AUs or landmarks, from the
    teacher) and its output is compared with the real frame: MSE and L1 on the 0-255 scale,
    over the whole crop and over the mouth region (lower middle: rows 55-95 %, columns
    25-75 % of the crop). Baseline: the unchanged photo (what "do nothing" scores); head motion
    and lighting changes between frames are part of both errors.

    Args:
        translator: a translator of the clips' space, at their crop size.
        clips: :class:`~speechface.data.prepare_frames.FrameClips` (held-out groups).

    Returns:
        JSON-plain dict: ``n_clips``, ``n_pairs``, ``mse_255``, ``l1_255``, ``mouth_l1_255``,
        the same with ``_unchanged`` for the baseline, and ``per_clip_l1``.
    """
    pairs = _pick_pairs(clips, per_clip, seed)
    if not pairs:
        raise DataError("evaluate_pairs: no clip with 2 or more frames")
    src_rows = [s for s, others in pairs for _ in others]
    dst_rows = [d for _, others in pairs for d in others]
    src = clips.images[src_rows].permute(0, 2, 3, 1).numpy()
    dst = clips.images[dst_rows].permute(0, 2, 3, 1).numpy().astype(np.float32)
    out = translator.translate(src, clips.conds[dst_rows].numpy(), batch_size=batch_size)
    out = out.astype(np.float32)
    size = src.shape[1]
    r0, r1, c0, c1 = int(0.55 * size), int(0.95 * size), int(0.25 * size), int(0.75 * size)

    def errs(img: np.ndarray) -> dict[str, np.ndarray]:
        d = img - dst
        return {"mse": (d ** 2).mean((1, 2, 3)), "l1": np.abs(d).mean((1, 2, 3)),
                "mouth": np.abs(d[:, r0:r1, c0:c1]).mean((1, 2, 3))}

    gen, keep = errs(out), errs(src.astype(np.float32))
    counts = [len(o) for _, o in pairs]
    per_clip_l1 = np.split(gen["l1"], np.cumsum(counts)[:-1])
    return {"n_clips": len(pairs), "n_pairs": len(dst_rows),
            "mse_255": float(gen["mse"].mean()), "l1_255": float(gen["l1"].mean()),
            "mouth_l1_255": float(gen["mouth"].mean()),
            "mse_255_unchanged": float(keep["mse"].mean()),
            "l1_255_unchanged": float(keep["l1"].mean()),
            "mouth_l1_255_unchanged": float(keep["mouth"].mean()),
            "per_clip_l1": [round(float(v.mean()), 3) for v in per_clip_l1]}


def pairs_figure(translator: Translator, clips: Any, path: str | Path, *, n_clips: int = 4,
                 per_clip: int = 4, seed: int = 0, cell: int = 96) -> Path:
    """Save a grid: per held-out clip, the photo, then real frames over generated ones."""
    from PIL import Image, ImageDraw

    pairs = _pick_pairs(clips, per_clip, seed)
    step = max(1, len(pairs) // n_clips)
    pairs = pairs[::step][:n_clips]
    rows = []
    for src_row, others in pairs:
        src = clips.images[src_row].permute(1, 2, 0).numpy()
        real = clips.images[others].permute(0, 2, 3, 1).numpy()
        fake = translator.translate(src, clips.conds[others].numpy())
        pad = [np.zeros_like(src)] * (per_clip - len(others))
        top = np.concatenate([src, *real, *pad], 1)
        bottom = np.concatenate([np.full_like(src, 255), *fake, *pad], 1)
        rows.append(np.concatenate([top, bottom], 0))
    grid = np.concatenate(rows, 0)
    scale = cell / clips.images.shape[-1]
    im = Image.fromarray(grid).resize((int(grid.shape[1] * scale), int(grid.shape[0] * scale)),
                                      Image.NEAREST)
    canvas = Image.new("RGB", (im.width, im.height + 16), "white")
    canvas.paste(im, (0, 16))
    ImageDraw.Draw(canvas).text((4, 2), "photo (first frame) | real frames (top) / generated "
                                "from the photo + their labels (bottom)", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.quantize(256).save(tmp, format="PNG", optimize=True)
    return path


def save_image_rows(rows: torch.Tensor, path: str | Path) -> Path:
    """Write ``rows (n, 3, S, W)`` in [-1, 1] as one PNG of ``n`` stacked rows (atomically)."""
    from PIL import Image

    grid = torch.cat(list(rows), dim=1)  # (3, n*S, W)
    arr = ((grid.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return path
