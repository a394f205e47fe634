"""Training the landmark-driven warping translator (``landmark_warp``) by reconstruction.

A warping generator has a direct target wherever the same face is seen with other landmarks,
so it is trained without a critic, from two sources of such pairs:

- **LFW photos with random smooth deformations** (``images`` + ``labels``, e.g.
  ``../shared/data/faces128/lfw`` with ``speechface prepare faces --landmarks``): the photo is
  the source; the target is the photo under a random similarity transform, a coarse elastic
  field and a vertical "jaw" bump centred on the lower lip, and the target landmarks are the
  photo's teacher landmarks moved by that deformation (inverted by fixed-point iteration). This
  gives thousands of identities and exact targets for moving face parts onto points.
- **frames of talking-face videos** (``pairs``, a ``speechface prepare frames`` folder): frame
  ``i`` of a clip is the source, frame ``j`` of the same clip and its landmarks the target, so
  real mouth openings (teeth, the dark inside, shading) are learnt. Clips are split by speaker
  group (``pairs_val_groups``), like the GANimation trainer.

Loss: L1 between output and target, weighted up around the target mouth (``lambda_mouth``),
the same L1 for the warped source alone (``lambda_warp``: without it the colour head learns a
blurry average and the flow stays near zero), flow smoothness (``lambda_flow_tv``) and a small
preference for warping over painting (``lambda_paint``: mean of ``1 - attention``). Adam with a linear decay over the last third;
sample grids, checkpoints and automatic resume like the other trainers.

From Python::

    from speechface.training.warp import LandmarkWarpTrainConfig, LandmarkWarpTrainer
    cfg = LandmarkWarpTrainConfig(images="faces128/lfw", labels="faces128_labels.csv",
                                  pairs="prepared/av_frames64", out_dir="runs/warp")
    LandmarkWarpTrainer(cfg).train()

From the shell: ``speechface train warp --config configs/landmark_warp_faces64.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..data.face_tensors import load_face_tensors
from ..data.prepare_frames import random_pairs
from ..evaluation.translators import save_image_rows
from ..render.translators import Translator
from ..render.translators.landmark_warp import identity_grid, warp_image
from .engine import MetricWindow, Run, TrainConfig, eval_mode, train_command

__all__ = ["LandmarkWarpTrainConfig", "LandmarkWarpTrainer", "random_deformation"]

LOG_FIELDS = ["step", "loss", "l1_faces", "l1_pairs", "flow_tv", "attention_mean", "flow_abs",
              "lr", "images_per_s", "seconds"]

#: iBUG-68 rows of the mouth (outer and inner lips) and of the lower-lip centre.
MOUTH = slice(48, 68)
LOWER_LIP = 57


@dataclass
class LandmarkWarpTrainConfig(TrainConfig):
    """Options of :class:`LandmarkWarpTrainer` (also the keys of a YAML/JSON config file).

    Attributes:
        images, labels: face folder and its CSV with ``x_0..x_67, y_0..y_67`` (normalised to
            the image; ``speechface prepare faces --landmarks``). "" = no still photos.
        pairs: ``speechface prepare frames`` folder. "" = no video pairs. At least one source.
        out_dir: checkpoints, ``samples/``, ``log.csv``, ``final/`` and ``metrics.json``;
            rerunning with the same folder resumes.
        image_size: training size (the crops are resized to it).
        model_args: keyword arguments of :class:`~speechface.render.translators.LandmarkWarpGenerator`
            (``conv_dim``, ``depth``, ``sigma``, ``max_flow``).
        batch_size: deformed photos per step; ``pair_batch``: video pairs per step.
        max_steps, max_minutes: stop at whichever comes first (0 minutes = no time limit).
        lr, beta1, beta2, decay_fraction: Adam and its linear decay over the last steps.
        lambda_mouth: extra L1 weight at the target mouth (a Gaussian of ``mouth_sigma``,
            normalised units); ``lambda_flow_tv``: flow total variation; ``lambda_paint``:
            mean of ``1 - attention``; ``lambda_warp``: the same weighted L1 for the warped
            source alone (before the attention blend), so the flow, not the colour head, does
            the moving.
        deform_scale, deform_rotate, deform_shift, deform_elastic, deform_jaw: random
            deformation of the photos (relative scale, degrees, normalised shift, coarse
            elastic amplitude, lower-lip bump amplitude; normalised ``[-1, 1]`` units).
        val_fraction, split_seed: identity-disjoint held-out photos (never trained on).
        pairs_val_groups: held-out speaker groups of the video clips (never trained on).
        crop_margin, crop_shift: framing of the training crops, recorded for ``animate``.
        name, info: model name and metadata for ``config.json``.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "image_size": ">=8", "batch_size": ">=0", "pair_batch": ">=0", "max_steps": ">=1",
        "beta1": "[0,1]", "beta2": "[0,1]", "lambda_mouth": ">=0", "mouth_sigma": ">0",
        "lambda_flow_tv": ">=0", "lambda_paint": ">=0", "lambda_warp": ">=0",
        "deform_scale": ">=0", "deform_rotate": ">=0", "deform_shift": ">=0",
        "deform_elastic": ">=0", "deform_jaw": ">=0"}

    images: str = ""
    labels: str = ""
    pairs: str = ""
    out_dir: str = "runs/landmark_warp"
    image_size: int = 64
    model_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    pair_batch: int = 16
    max_steps: int = 3000
    max_minutes: float = 0.0
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    decay_fraction: float = 1 / 3
    lambda_mouth: float = 4.0
    mouth_sigma: float = 0.2
    lambda_flow_tv: float = 0.05
    lambda_paint: float = 0.01
    lambda_warp: float = 0.5
    deform_scale: float = 0.08
    deform_rotate: float = 8.0
    deform_shift: float = 0.08
    deform_elastic: float = 0.04
    deform_jaw: float = 0.12
    val_fraction: float = 0.1
    split_seed: int = 0
    pairs_val_groups: list[str] | None = None
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    crop_margin: float | None = None
    crop_shift: float | None = None
    name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.images) != bool(self.labels):
            raise DataError("give both 'images' and 'labels', or neither")


def random_deformation(lm: torch.Tensor, size: int, *, scale: float = 0.08,
                       rotate: float = 8.0, shift: float = 0.08, elastic: float = 0.04,
                       jaw: float = 0.12, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random smooth deformation per face and where it moves the face's landmarks.

    The sampling grid is ``G(p) = A p + t + e(p)`` (normalised ``[-1, 1]`` units, x first): a
    similarity ``A`` (scale, rotation), a shift ``t``, a coarse 4 x 4 elastic field and a
    vertical Gaussian bump at the lower lip (iBUG 57) whose width is the mouth's. The image
    ``grid_sample(img, G)`` shows the landmark ``q`` at the ``p`` with ``G(p) = q``, found by
    fixed-point iteration.

    Args:
        lm: ``(B, 136)`` landmarks ``x_0..x_67, y_0..y_67`` in 0-1 of the image.
        size: image side in pixels.

    Returns:
        ``(grid (B, size, size, 2), moved landmarks (B, 136))``.

    Example:
        >>> lm = torch.rand(2, 136) * 0.5 + 0.25
        >>> grid, moved = random_deformation(lm, 16, scale=0, rotate=0, shift=0, elastic=0, jaw=0)
        >>> bool(torch.allclose(moved, lm, atol=1e-5)), grid.shape
        (True, torch.Size([2, 16, 16, 2]))
    """
    b = lm.shape[0]
    g = generator

    def uni(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g) * 2 - 1

    s = 1 + scale * uni(b)
    th = math.radians(rotate) * uni(b)
    a = torch.stack([torch.stack([s * th.cos(), -s * th.sin()], -1),
                     torch.stack([s * th.sin(), s * th.cos()], -1)], -2)          # (B, 2, 2)
    t = shift * uni(b, 2)
    coarse = elastic * uni(b, 2, 4, 4)
    q = torch.stack([lm[:, :68], lm[:, 68:]], -1) * 2 - 1                         # (B, 68, 2)
    centre = q[:, LOWER_LIP]
    width = (q[:, 54] - q[:, 48]).norm(dim=-1).clamp_min(0.05)
    amp = jaw * uni(b)

    def offsets(p: torch.Tensor) -> torch.Tensor:
        """Elastic field + jaw bump at points ``p (B, N, 2)``."""
        el = F.grid_sample(coarse, p[:, None], mode="bilinear", padding_mode="border",
                           align_corners=True)[:, :, 0].transpose(1, 2)           # (B, N, 2)
        d2 = ((p - centre[:, None]) ** 2).sum(-1)
        bump = amp[:, None] * torch.exp(-d2 / (2 * width[:, None] ** 2))
        return el + torch.stack([torch.zeros_like(bump), bump], -1)

    base = identity_grid(b, size, size).reshape(b, -1, 2)
    grid = base @ a.transpose(1, 2) + t[:, None] + offsets(base)
    a_inv = torch.linalg.inv(a)
    p = (q - t[:, None]) @ a_inv.transpose(1, 2)
    for _ in range(6):
        p = (q - t[:, None] - offsets(p)) @ a_inv.transpose(1, 2)
    moved = (p + 1) / 2
    return grid.reshape(b, size, size, 2), torch.cat([moved[..., 0], moved[..., 1]], 1)


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


class LandmarkWarpTrainer:
    """Trains a ``landmark_warp`` :class:`~speechface.render.translators.Translator` (see the module).

    Args:
        config: the options.
        faces, val_faces: in-memory photos with landmarks
            (:class:`~speechface.data.face_tensors.FaceTensors`) instead of ``images`` /
            ``labels`` (``val_faces`` may be None).
    """

    def __init__(self, config: LandmarkWarpTrainConfig, faces: Any = None,
                 val_faces: Any = None) -> None:
        self.cfg = config
        self._faces, self._val_faces = faces, val_faces

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Load photos and/or video pairs, split held-out data, build the model; resume."""
        cfg = self.cfg
        self.run = run = Run(cfg, LOG_FIELDS)
        self.state = run.state
        info: dict[str, Any] = dict(cfg.info)
        self.faces, self.val_faces = self._faces, self._val_faces
        if self.faces is not None:
            if self.faces.conds.shape[1:] != (136,):
                raise DataError(f"faces must carry 136 landmark values, got "
                                f"{tuple(self.faces.conds.shape)}")
            info.update(train_images=len(self.faces))
        elif cfg.images and cfg.batch_size:
            from ..data.faces import identity_split

            data = load_face_tensors(cfg.images, cfg.labels, cfg.image_size, "landmarks68",
                                     progress=cfg.progress and run.dist.is_main)
            tr, va = identity_split(data.names, cfg.val_fraction, cfg.split_seed)
            self.faces, self.val_faces = data.subset(tr), data.subset(va)
            info.update(train_images=len(self.faces), val_images=len(self.val_faces))
        self.pairs = self.val_pairs = None
        self.pair_index: list[torch.Tensor] = []
        self.val_index: list[torch.Tensor] = []
        if cfg.pairs and cfg.pair_batch:
            from ..data.prepare_frames import load_frame_clips

            clips = load_frame_clips(cfg.pairs, "landmarks68", cfg.image_size)
            held = set(cfg.pairs_val_groups or [])
            self.pairs = clips.select_groups(set(clips.groups) - held)
            self.val_pairs = clips.select_groups(held) if held else None
            self.val_index = self.val_pairs.pair_index() if self.val_pairs is not None else []
            self.pair_index = self.pairs.pair_index()
            if not self.pair_index:
                raise DataError(f"{cfg.pairs}: no training clip with 2 or more labelled frames")
            info["pairs"] = {"frames": len(self.pairs), "clips": len(self.pair_index),
                             "val_groups": sorted(held)}
        if not cfg.batch_size:
            self.faces = None
        if self.faces is None and self.pairs is None:
            raise DataError("landmark_warp training needs photos with landmarks ('images' + "
                            "'labels', batch_size > 0) and/or video pairs ('pairs', "
                            "pair_batch > 0)")
        for key in ("crop_margin", "crop_shift"):
            if getattr(cfg, key) is not None:
                info[key] = float(getattr(cfg, key))
        self.translator = Translator.create("landmark_warp", space="landmarks68",
                                            image_size=cfg.image_size, name=cfg.name,
                                            **cfg.model_args).to(run.device)
        self.translator.info = info
        self.G = self.translator.network
        self.opt = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        run.track(self.translator, optimizers={"optimizer": self.opt})

    # ------------------------------------------------------------------ data
    def deformed_photos(self, n: int, data: Any, gen: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(photos, deformed photos, deformed landmarks) of ``n`` random photos."""
        cfg = self.cfg
        idx = torch.randint(0, len(data), (n,), generator=gen)
        src = _to_unit(data.images[idx])
        grid, lm = random_deformation(data.conds[idx], cfg.image_size, scale=cfg.deform_scale,
                                      rotate=cfg.deform_rotate, shift=cfg.deform_shift,
                                      elastic=cfg.deform_elastic, jaw=cfg.deform_jaw,
                                      generator=gen)
        dst = F.grid_sample(src, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        return src, dst, lm

    def video_pairs(self, n: int, clips: Any, index: list[torch.Tensor],
                    gen: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frame i, frame j, landmarks of j) of ``n`` random pairs, each from one clip."""
        i, j = random_pairs(index, n, gen)
        return _to_unit(clips.images[i]), _to_unit(clips.images[j]), clips.conds[j].clone()

    # ------------------------------------------------------------------ loss
    def loss(self, src: torch.Tensor, dst: torch.Tensor, lm: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Per-sample weighted L1 ``(B,)``, the regularisers' sum, and statistics."""
        cfg = self.cfg
        colour, att, flow = self.G.forward_warp(src, lm)
        b, _, h, w = src.shape
        mouth = torch.stack([lm[:, MOUTH].mean(1), lm[:, 68:][:, MOUTH].mean(1)], -1) * 2 - 1
        d2 = ((identity_grid(b, h, w, device=src.device) - mouth[:, None, None]) ** 2).sum(-1)
        weight = 1 + cfg.lambda_mouth * torch.exp(-d2 / (2 * cfg.mouth_sigma ** 2))[:, None]
        warped = warp_image(src, flow)
        out = att * warped + (1 - att) * colour
        wsum = weight.mean((1, 2, 3))
        l1 = ((out - dst).abs() * weight).mean((1, 2, 3)) / wsum
        l1_warp = ((warped - dst).abs() * weight).mean((1, 2, 3)) / wsum
        tv = (flow[..., 1:, :] - flow[..., :-1, :]).abs().mean() + \
            (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean()
        reg = cfg.lambda_flow_tv * tv * h + cfg.lambda_paint * (1 - att).mean() + \
            cfg.lambda_warp * l1_warp.mean()
        return l1, reg, {"flow_tv": float(tv.detach()) * h,
                         "attention_mean": float(att.detach().mean()),
                         "flow_abs": float(flow.detach().abs().mean())}

    def lr_factor(self) -> float:
        """1, then falling linearly to 0 over the last ``decay_fraction`` of the steps."""
        step, total = self.state.step, self.cfg.max_steps
        start = total * (1 - self.cfg.decay_fraction)
        return 1.0 if step < start else max(0.0, (total - step) / max(total - start, 1))

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run to ``max_steps`` (or ``max_minutes``); returns the final metrics."""
        if not hasattr(self, "run"):
            self.setup()
        cfg, run, st = self.cfg, self.run, self.state
        self.G.train()
        bar = run.progress(total=cfg.max_steps, initial=st.step, desc="landmark_warp", unit="step")
        window = MetricWindow()
        while not run.done():
            for pg in self.opt.param_groups:
                pg["lr"] = cfg.lr * self.lr_factor()
            parts, sizes = [], []
            if self.faces is not None:
                parts.append(self.deformed_photos(cfg.batch_size, self.faces))
                sizes.append(("l1_faces", cfg.batch_size))
            if self.pairs is not None:
                parts.append(self.video_pairs(cfg.pair_batch, self.pairs, self.pair_index))
                sizes.append(("l1_pairs", cfg.pair_batch))
            src, dst, lm = (torch.cat(t).to(run.device) for t in zip(*parts))
            l1, reg, stats = self.loss(src, dst, lm)
            loss = l1.mean() + reg
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            run.sync_grads(self.G.parameters())
            self.opt.step()
            run.advance()
            for (key, _), part in zip(sizes, l1.detach().split([n for _, n in sizes])):
                stats[key] = float(part.mean())
            window.add(len(src), loss=float(loss.detach()), **stats)
            bar.update(1)
            if st.step % cfg.log_every == 0 or st.step == cfg.max_steps:
                row = window.means()
                run.log(window, lr=self.opt.param_groups[0]["lr"])
                bar.set_postfix(loss=f"{row['loss']:.4f}", att=f"{row['attention_mean']:.2f}")
                window = MetricWindow()
            if cfg.sample_every and st.step % cfg.sample_every == 0 and run.dist.is_main:
                self.write_samples()
        bar.close()
        run.save(only_if_new=True)
        if run.dist.is_main:
            self.write_samples()
        self.translator.info = {**self.translator.info, "train_steps": st.step,
                                "train_minutes": round(run.tick() / 60, 1)}
        run.save_model(self.translator, "final")
        return run.write_metrics({"steps": st.step, "seconds": st.seconds,
                                  "stopped_by_time": run.stopped_by_time,
                                  "max_steps": cfg.max_steps, **self.validate()})

    @torch.no_grad()
    def validate(self, n: int = 256) -> dict[str, float]:
        """Mean L1 (0-255) on held-out deformed photos and held-out video pairs, against the
        unchanged source (the "do nothing" baseline)."""
        out: dict[str, float] = {}
        gen = torch.Generator().manual_seed(self.cfg.seed + 7)
        sets = []
        if self.val_faces is not None and len(self.val_faces):
            sets.append(("faces", self.deformed_photos(n, self.val_faces, gen)))
        if self.val_index:
            sets.append(("pairs", self.video_pairs(n, self.val_pairs, self.val_index, gen)))
        for key, (src, dst, lm) in sets:
            with eval_mode(self.G):
                fake = torch.cat([self.G(s.to(self.run.device), c.to(self.run.device))[0].cpu()
                                  for s, c in zip(src.split(64), lm.split(64))])
            out[f"val_{key}_l1_255"] = float((fake - dst).abs().mean() * 127.5)
            out[f"val_{key}_l1_255_unchanged"] = float((src - dst).abs().mean() * 127.5)
        return out

    # ------------------------------------------------------------------ samples
    @torch.no_grad()
    def write_samples(self, path: str | Path | None = None) -> Path:
        """PNG grid, one row per example: source | target | output | attention | flow size.

        Rows are held-out deformed photos and held-out video pairs (training data when there
        are none). Written to ``out_dir/samples/step-NNNNNNNNN.png`` unless ``path`` is given.
        """
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        rows = []
        faces = self.val_faces if self.val_faces is not None and len(self.val_faces) else self.faces
        if faces is not None:
            rows.append(self.deformed_photos(4, faces, gen))
        pairs, index = (self.val_pairs, self.val_index) if self.val_index else \
            (self.pairs, self.pair_index)
        if index:
            rows.append(self.video_pairs(4, pairs, index, gen))
        src, dst, lm = (torch.cat(t).to(self.run.device) for t in zip(*rows))
        with eval_mode(self.G):
            colour, att, flow = self.G.forward_warp(src, lm)
        out = att * warp_image(src, flow) + (1 - att) * colour
        mag = (flow.norm(dim=1, keepdim=True) / self.G.max_flow).clamp(0, 1) * 2 - 1
        path = path or self.run.out / "samples" / f"step-{self.state.step:09d}.png"
        return save_image_rows(torch.cat([src, dst, out, att.expand(-1, 3, -1, -1) * 2 - 1,
                                          mag.expand(-1, 3, -1, -1)], dim=3), path)


@train_command("warp", LandmarkWarpTrainConfig, example="max_steps=2000 pair_batch=16",
               help="train the landmark-driven warping face translator by reconstruction on "
                    "deformed photos and paired video frames")
def run_train_warp(cfg: LandmarkWarpTrainConfig, config_path: str | None) -> dict[str, Any]:
    """Handler of ``speechface train warp``."""
    return {**LandmarkWarpTrainer(cfg).train(), "model": f"{cfg.out_dir}/final"}
