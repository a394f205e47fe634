"""Training GANimation (Pumarola et al., ECCV 2018) on face images labelled with AUs.

The recipe of the paper and its official code, with the sizes as options:

- critic: WGAN-GP (gradient penalty 10) + condition regression on **real** images (MSE);
- generator (updated every ``n_critic`` = 5 critic steps): adversarial term, condition loss
  (the critic must regress the generated image to the *target* condition), cycle loss
  (L1, weight 10: ``G(G(x, c_target), c_x) ~ x``), attention losses on both passes (mean,
  weight 0.1, against an all-ones mask = "change nothing"; total variation, weight 1e-4 by
  default, see :class:`GANimationTrainConfig`);
- Adam (lr 1e-4, betas 0.5 / 0.999), linear decay to 0 over the last third of the steps;
- target condition = the condition of another random training image + uniform noise of
  +-0.1 on the normalised scale (+-0.5 AU); random horizontal flips;
- sample grids (PNG) during training, checkpoints (G, D, both optimizers, step, RNG) and
  automatic resume, like :class:`~speechface.training.EstimatorTrainer`;
- a guard against the attention mask collapsing to all-ones (the generator then copies its
  input): the mean attention is logged; if it stays above ``collapse_threshold`` (0.95) for
  ``collapse_patience`` steps a warning is issued and the attention-mean weight is doubled
  (``adapt_mask``, at most 8x).

Two additions beyond the paper, both off by default:

- ``pairs``: a ``speechface prepare frames`` folder of talking-face video crops. Each generator
  step also takes frames ``i`` and ``j`` of one clip and adds ``lambda_pair * |G(x_i, c_j) -
  x_j|`` (L1): the same face with another expression is a direct target that still photos
  cannot give. Clips are split by speaker group (``pairs_val_groups``, or a random
  ``pairs_val_fraction``); the held-out groups are recorded in the model's ``info``.
- ``init_from``: start from a trained translator folder or a checkpoint folder (fine-tuning;
  the critic too when the folder has ``critic.safetensors``).

The ``arch`` option picks the generator from the ``TRANSLATORS`` registry: ``ganimation``
(AUs / emotions, tiled vector) or ``landmark_gan`` (``space: landmarks68``, heatmaps). For
landmarks the target of a still photo is its own landmarks plus the motion between two frames
of a training clip (another photo's landmarks would ask for another face shape and pose), and
flips are off (they would swap the left and right points).

From Python::

    from speechface.training.ganimation import GANimationTrainConfig, GANimationTrainer
    cfg = GANimationTrainConfig(images="faces128/lfw", labels="faces128_aus.csv",
                                image_size=64, conv_dim=24, repeat_num=4, out_dir="runs/gan")
    GANimationTrainer(cfg).train()      # resumes by itself if runs/gan has a checkpoint

From the shell: ``speechface train ganimation --config cfg.yaml --set max_steps=2000``.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..data.face_tensors import FaceTensors, load_face_tensors
from ..evaluation.translators import save_image_rows
from ..render.translators import GANimationCritic, Translator
from ..spaces.space import get_space
from .engine import (
    CheckpointManager,
    MetricWindow,
    Run,
    TrainConfig,
    autocast,
    eval_mode,
    train_command,
)

__all__ = ["GANimationTrainConfig", "GANimationTrainer", "total_variation", "gradient_penalty",
           "CRITIC_WEIGHTS"]

#: File name of the critic's weights inside a checkpoint folder (beside the translator's).
CRITIC_WEIGHTS = "critic.safetensors"

LOG_FIELDS = ["step", "g_step", "loss_d", "d_real", "d_fake", "gp", "d_cond", "g_adv", "g_cond",
              "cycle", "pair", "att_mean_loss", "att_tv", "attention_mean", "lambda_mask", "lr",
              "images_per_s", "seconds"]


@dataclass
class GANimationTrainConfig(TrainConfig):
    """Options of :class:`GANimationTrainer` (also the keys of a YAML/JSON config file).

    Attributes:
        images: folder of face images; ``labels``: their per-image CSV (``image,AU01_r,...``;
            ``speechface prepare faces``, or OpenFace's ``aus_openface.csv``).
        out_dir: checkpoints, ``samples/*.png``, ``log.csv``, ``final/`` (the trained
            translator folder) and ``metrics.json``. Rerunning with the same folder resumes.
        space: ``"au17"``, ``"emotion8"`` or ``"landmarks68"`` (CSV columns of that space).
        arch: generator architecture (``"ganimation"``; ``"landmark_gan"`` for landmarks68);
            ``model_args``: its extra keyword arguments (e.g. ``sigma``).
        image_size, conv_dim, repeat_num: generator size (paper: 128, 64, 6).
        critic_dim, critic_repeat: critic width/depth (default: ``conv_dim`` and
            ``log2(image_size) - 1``).
        batch_size: images per step (paper: 25).
        max_steps: critic steps (the generator takes ``max_steps / n_critic``).
        max_minutes: also stop (after a checkpoint) when training has run this long (0 = off);
            the stop is recorded in ``metrics.json``.
        lr_g, lr_d, beta1, beta2: Adam; ``decay_fraction``: share of the steps at the end over
            which both learning rates fall linearly to 0 (paper: 10 of 30 epochs).
        n_critic: critic steps per generator step (5).
        lambda_gp: gradient penalty (10). ``lambda_cond``: condition MSE on the normalised
            scale; 160 = the official 4000 / batch 25 (its MSE is divided by the batch size).
        lambda_cyc: cycle L1 (10). ``lambda_mask``: attention mean (0.1).
        lambda_tv: attention total variation (sum over pixels of |dx| + |dy|, mean over the
            batch). The paper uses 1e-5 on 128 px images summed over a batch of 25; images 4x
            smaller have ~4x less variation per image, so 1e-4 is the default here.
        cond_noise: uniform noise (normalised scale) added to the borrowed target condition.
        flip: random horizontal flips.
        reuse_fakes: critic steps between two generator steps reuse the (detached) images the
            last generator step made instead of running the generator again; saves most of the
            generator cost of critic steps on CPU (an image pool of one batch). Off = official.
        val_fraction, split_seed: identity-disjoint held-out split (LFW ``Person_NNNN`` names;
            :func:`~speechface.data.faces.identity_split`), never trained on.
        max_images: use only the first N training images (0 = all; for quick tests).
        collapse_threshold, collapse_patience, adapt_mask: the attention-collapse guard.
        amp: bfloat16 autocast for the networks (losses in float32).
        num_threads: ``torch.set_num_threads`` (0 = leave as is).
        log_every, sample_every, checkpoint_every: in critic steps.
        pairs: a ``speechface prepare frames`` folder (paired video frames; "" = off);
            ``lambda_pair``: weight of their L1; ``pair_batch``: pairs per generator step
            (0 = ``batch_size``); ``pairs_val_fraction``: share of clips (whole speaker groups)
            held out, or ``pairs_val_groups``: the held-out groups by name (e.g. those of the
            speech estimators, so no speaker of their validation set is trained on).
        init_from: trained translator / checkpoint folder to start from ("" = random init).
        crop_margin, crop_shift: the framing of the training crops, recorded in the model's
            ``info`` so :func:`speechface.animate` cuts photos the same way (LFW faces128:
            0.05 and 0.08).
        name, info: the model name and extra metadata written to ``config.json``.
    """

    BOUNDS: ClassVar[dict[str, str]] = {
        "max_steps": ">=1", "n_critic": ">=1", "image_size": ">=8", "conv_dim": ">=1",
        "repeat_num": ">=0", "critic_dim": ">=1", "critic_repeat": ">=1", "lr_g": ">0",
        "lr_d": ">0", "beta1": "[0,1]", "beta2": "[0,1]", "lambda_gp": ">=0", "lambda_cond": ">=0",
        "lambda_cyc": ">=0", "lambda_mask": ">=0", "lambda_tv": ">=0", "cond_noise": ">=0",
        "max_images": ">=0", "collapse_patience": ">=1", "lambda_pair": ">=0", "pair_batch": ">=0",
        "pairs_val_fraction": "[0,1]"}

    images: str = ""
    labels: str = ""
    out_dir: str = "runs/ganimation"
    space: str = "au17"
    arch: str = "ganimation"
    model_args: dict[str, Any] = field(default_factory=dict)
    image_size: int = 128
    conv_dim: int = 64
    repeat_num: int = 6
    critic_dim: int | None = None
    critic_repeat: int | None = None
    batch_size: int = 25
    max_steps: int = 30000
    max_minutes: float = 0.0
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_fraction: float = 1 / 3
    n_critic: int = 5
    lambda_gp: float = 10.0
    lambda_cond: float = 160.0
    lambda_cyc: float = 10.0
    lambda_mask: float = 0.1
    lambda_tv: float = 1e-4
    cond_noise: float = 0.1
    flip: bool = True
    reuse_fakes: bool = False
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    max_images: int = 0
    collapse_threshold: float = 0.95
    collapse_patience: int = 200
    adapt_mask: bool = True
    amp: bool = False
    device: str = "cpu"
    num_threads: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    pairs: str = ""
    lambda_pair: float = 10.0
    pair_batch: int = 0
    pairs_val_fraction: float = 0.1
    pairs_val_groups: list[str] | None = None
    init_from: str = ""
    crop_margin: float | None = None
    crop_shift: float | None = None
    name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Sum over pixels of ``|dx| + |dy|`` of a ``(B, 1, H, W)`` map, averaged over the batch."""
    dx = (mask[..., :, 1:] - mask[..., :, :-1]).abs().flatten(1).sum(1)
    dy = (mask[..., 1:, :] - mask[..., :-1, :]).abs().flatten(1).sum(1)
    return (dx + dy).mean()


def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor
                     ) -> torch.Tensor:
    """WGAN-GP: ``mean((||grad_x f(x_hat)||_2 - 1)^2)`` on random interpolates of real and fake.

    ``f`` is the per-image mean of the critic's score map.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score, _ = critic(x)
    grad, = torch.autograd.grad(score.flatten(1).mean(1).sum(), x, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class GANimationTrainer:
    """Trains a GANimation :class:`~speechface.render.translators.Translator` with its critic.

    ``setup()`` loads the data (or takes ``train_data`` / ``val_data``), builds G, D and their
    optimizers and resumes from the newest checkpoint; ``train()`` runs to ``max_steps`` (or
    ``max_minutes``) with logs, sample grids and checkpoints; ``write_samples()`` draws a grid.

    Args:
        config: the options.
        train_data, val_data: in-memory :class:`~speechface.data.face_tensors.FaceTensors`
            instead of ``config.images`` (``val_data`` may be None to skip the split).
    """

    def __init__(self, config: GANimationTrainConfig, train_data: FaceTensors | None = None,
                 val_data: FaceTensors | None = None) -> None:
        self.cfg = config
        self._train_data, self._val_data = train_data, val_data

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Load data, split held-out identities, build G, D and optimizers; resume if possible."""
        cfg = self.cfg
        self.run = run = Run(cfg, LOG_FIELDS)
        self.space = get_space(cfg.space)
        if self._train_data is not None:
            self.train_data, self.val_data = self._train_data, self._val_data
        else:
            from ..data.faces import identity_split

            data = load_face_tensors(cfg.images, cfg.labels, cfg.image_size, cfg.space,
                                     progress=cfg.progress)
            tr, va = identity_split(data.names, cfg.val_fraction, cfg.split_seed)
            if cfg.max_images:
                tr = tr[:cfg.max_images]
            self.train_data, self.val_data = data.subset(tr), data.subset(va)
        if len(self.train_data) < 2:
            raise DataError("GANimation training needs at least 2 training images")
        if self.train_data.images.shape[-1] != cfg.image_size:
            raise DataError(f"training images are {self.train_data.images.shape[-1]} px, "
                            f"config says image_size={cfg.image_size}")
        info = {**cfg.info, "train_images": len(self.train_data),
                "val_images": len(self.val_data) if self.val_data is not None else 0}
        if self.val_data is not None:
            info["val_identities_example"] = sorted({_identity(n) for n in self.val_data.names})[:5]
        for key in ("crop_margin", "crop_shift"):
            if getattr(cfg, key) is not None:
                info[key] = float(getattr(cfg, key))
        self.pairs = None
        if cfg.pairs:
            self._setup_pairs(info)
        self.translator = Translator.create(cfg.arch, space=cfg.space,
                                            image_size=cfg.image_size, conv_dim=cfg.conv_dim,
                                            repeat_num=cfg.repeat_num, name=cfg.name,
                                            **cfg.model_args).to(run.device)
        self.translator.info = info
        self.G = self.translator.network
        self.D = GANimationCritic(cfg.space, cfg.image_size, cfg.critic_dim or cfg.conv_dim,
                                  cfg.critic_repeat).to(run.device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        src = self.val_data if self.val_data is not None and len(self.val_data) else self.train_data
        self.sample_src = src.subset(torch.randperm(len(src), generator=gen)[:6].tolist())
        self.state = st = run.state
        st.g_step, st.lambda_mask, st.high_attention_steps, st.collapse_warnings = 0, cfg.lambda_mask, 0, 0
        st.fake_pool = None  # the last generated batch (reuse_fakes)
        resumed = run.track(self.translator, modules={"critic": self.D},
                            optimizers={"g": self.opt_g, "d": self.opt_d})
        if resumed is None and cfg.init_from:
            self.init_from(Path(cfg.init_from))

    def _setup_pairs(self, info: dict[str, Any]) -> None:
        from ..data.prepare_frames import load_frame_clips
        from ..data.shards import group_split

        cfg = self.cfg
        clips = load_frame_clips(cfg.pairs, cfg.space, cfg.image_size)
        recs = [{"name": n, "speaker": g} for n, g in zip(clips.names, clips.groups)]
        if cfg.pairs_val_groups is not None:
            held = set(cfg.pairs_val_groups)
            tr = [r for r in recs if r["speaker"] not in held]
            va = [r for r in recs if r["speaker"] in held]
        else:
            tr, va = group_split(recs, cfg.pairs_val_fraction, cfg.split_seed)
        self.pairs = clips.select_groups({r["speaker"] for r in tr})
        self.pair_index = self.pairs.pair_index()
        if not self.pair_index:
            raise DataError(f"{cfg.pairs}: no training clip with 2 or more labelled frames")
        info["pairs"] = {"frames": len(self.pairs), "clips": len(self.pair_index),
                         "val_groups": sorted({r["speaker"] for r in va})}

    def init_from(self, folder: Path) -> None:
        """Start from a trained translator or run folder (tensors whose names and shapes match)."""
        from safetensors.torch import load_file

        if (folder / "checkpoints").is_dir():  # a training run: its latest checkpoint
            latest = CheckpointManager(folder / "checkpoints").latest()
            folder = latest if latest is not None else folder
        if not (folder / "model.safetensors").is_file():
            raise DataError(f"init_from: {folder} has no model.safetensors")
        skipped = _load_matching(self.translator, load_file(str(folder / "model.safetensors")))
        if (folder / CRITIC_WEIGHTS).is_file():
            skipped += _load_matching(self.D, load_file(str(folder / CRITIC_WEIGHTS)))
        self.translator.info = {**self.translator.info, "initialised_from": str(folder)}
        if skipped and self.cfg.progress and self.run.dist.is_main:
            print(f"init_from {folder}: not copied whole: {', '.join(skipped)}", file=sys.stderr)

    # ------------------------------------------------------------------ data
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real images in [-1, 1], their conditions, target conditions) for one step."""
        cfg, st, device = self.cfg, self.state, self.run.device
        n = len(self.train_data)
        bs = max(1, min(cfg.batch_size, n // self.run.dist.world_size))
        if st.batch_in_epoch >= n // self.run.dist.world_size // bs:
            self.run.next_epoch()
        order = self.run.shard(np.random.default_rng([cfg.seed, st.epoch]).permutation(n))
        t = torch.as_tensor(order[st.batch_in_epoch * bs:(st.batch_in_epoch + 1) * bs])
        img = self.train_data.images[t].to(device).float() / 127.5 - 1.0
        cond = self.train_data.conds[t].to(device)
        if self.space.points:  # no flips: they would swap left and right points
            return img, cond, cond + self.landmark_motion(len(t))
        if cfg.flip:
            flip = torch.rand(len(t)) < 0.5
            img[flip] = img[flip].flip(-1)
        other = torch.randint(0, n, (len(t),))
        return img, cond, self.jitter(self.train_data.conds[other].to(device))

    def _pair_rows(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row indices ``(i, j)`` of ``n`` random frame pairs, each pair from one clip."""
        from ..data.prepare_frames import random_pairs

        return random_pairs(self.pair_index, n)

    def landmark_motion(self, n: int) -> torch.Tensor:
        """Landmark displacements between two frames of training clips (noise without pairs)."""
        if self.pairs is None:
            return (torch.rand(n, self.space.dim) * 2 - 1).to(self.run.device) * 0.01
        i, j = self._pair_rows(n)
        return (self.pairs.conds[j] - self.pairs.conds[i]).to(self.run.device)

    def next_pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frames i in [-1, 1], frames j in [-1, 1], labels of j) from the paired clips."""
        n = self.cfg.pair_batch or self.cfg.batch_size
        i, j = self._pair_rows(n)
        src = self.pairs.images[i].to(self.run.device).float() / 127.5 - 1.0
        dst = self.pairs.images[j].to(self.run.device).float() / 127.5 - 1.0
        return src, dst, self.pairs.conds[j].to(self.run.device)

    def jitter(self, cond: torch.Tensor) -> torch.Tensor:
        """Add uniform noise (``cond_noise`` on the normalised scale) and keep values valid."""
        sp = self.space
        lo = sp.low if sp.low is not None else 0.0
        hi = sp.high if sp.high is not None else 1.0
        noise = (torch.rand(cond.shape) * 2 - 1).to(cond.device) * self.cfg.cond_noise * (hi - lo)
        out = (cond + noise).clamp(lo, hi)
        if sp.activation == "softmax":
            out = out / out.sum(-1, keepdim=True).clamp_min(1e-6)
        return out

    def lr_factor(self) -> float:
        """1, then falling linearly to 0 over the last ``decay_fraction`` of the steps."""
        cfg = self.cfg
        decay_steps = cfg.decay_fraction * cfg.max_steps
        if decay_steps <= 0:
            return 1.0
        return float(min(1.0, max(0.0, (cfg.max_steps - self.state.step) / decay_steps)))

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run to ``max_steps`` critic steps (or ``max_minutes``); returns the final metrics."""
        if not hasattr(self, "run"):
            self.setup()
        cfg, run, st = self.cfg, self.run, self.state
        self.G.train()
        self.D.train()
        bar = run.progress(total=cfg.max_steps, initial=st.step, desc="ganimation", unit="step")
        window, last_g = MetricWindow(), {}
        while not run.done():
            for opt, base in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
                for pg in opt.param_groups:
                    pg["lr"] = base * self.lr_factor()
            real, cond, target = self.next_batch()
            fake_for_d = None
            if (st.step + 1) % cfg.n_critic == 0:  # a generator step every n_critic steps
                last_g, fake_for_d = self.generator_step(real, cond, target)
                st.g_step += 1
                if cfg.reuse_fakes:
                    st.fake_pool = fake_for_d
                self.guard_attention(last_g["attention_mean"], cfg.n_critic)
            elif cfg.reuse_fakes and st.fake_pool is not None and len(st.fake_pool) == len(real):
                fake_for_d = st.fake_pool
            stats = self.critic_step(real, cond, target, fake_for_d)
            run.advance()
            window.add(len(real), **stats, **last_g)
            bar.update(1)
            if st.step % cfg.log_every == 0 or st.step == cfg.max_steps:
                row = window.means()
                run.log(window, g_step=st.g_step, lambda_mask=st.lambda_mask,
                        lr=self.opt_g.param_groups[0]["lr"])
                bar.set_postfix(d=f"{row.get('loss_d', 0):.2f}", cyc=f"{row.get('cycle', 0):.3f}",
                                att=f"{row.get('attention_mean', 0):.2f}")
                window = MetricWindow()
            if cfg.sample_every and st.step % cfg.sample_every == 0 and run.dist.is_main:
                self.write_samples()
        bar.close()
        run.save(only_if_new=True)
        if run.dist.is_main:
            self.write_samples()
        self.translator.info = {**self.translator.info, "train_steps": st.step,
                                "generator_steps": st.g_step,
                                "train_minutes": round(run.tick() / 60, 1)}
        run.save_model(self.translator, "final")
        return run.write_metrics({
            "steps": st.step, "generator_steps": st.g_step, "epochs": st.epoch,
            "seconds": st.seconds, "stopped_by_time": run.stopped_by_time,
            "max_steps": cfg.max_steps, "lambda_mask": st.lambda_mask,
            "collapse_warnings": st.collapse_warnings,
            "attention_mean": last_g.get("attention_mean"), "train_images": len(self.train_data),
            "val_images": len(self.val_data) if self.val_data is not None else 0})

    def critic_step(self, real: torch.Tensor, cond: torch.Tensor, target: torch.Tensor,
                    fake: torch.Tensor | None) -> dict[str, float]:
        """One WGAN-GP critic update: real vs (given or generated) fake, GP, condition MSE."""
        cfg = self.cfg
        if fake is None:
            with torch.no_grad(), autocast(self.run.device, cfg.amp):
                fake, _ = self.G(real, target)
        fake = fake.detach().float()
        with autocast(self.run.device, cfg.amp):
            s_real, c_real = self.D(real)
            s_fake, _ = self.D(fake)
        d_real = s_real.float().mean()
        d_fake = s_fake.float().mean()
        d_cond = F.mse_loss(c_real.float(), self.G.normalize_condition(cond))
        gp = gradient_penalty(self.D, real, fake)
        loss = d_fake - d_real + cfg.lambda_gp * gp + cfg.lambda_cond * d_cond
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.run.sync_grads(self.D.parameters())
        self.opt_d.step()
        return {"loss_d": _f(loss), "d_real": _f(d_real), "d_fake": _f(d_fake),
                "gp": _f(gp), "d_cond": _f(d_cond)}

    def generator_step(self, real: torch.Tensor, cond: torch.Tensor, target: torch.Tensor
                       ) -> tuple[dict[str, float], torch.Tensor]:
        """One generator update: adversarial, condition, cycle, attention (and pair) losses."""
        cfg = self.cfg
        for p in self.D.parameters():
            p.requires_grad_(False)
        with autocast(self.run.device, cfg.amp):
            fake, att = self.G(real, target)
            s_fake, c_fake = self.D(fake)
            rec, att_rec = self.G(fake, cond)
        fake, att, rec, att_rec = fake.float(), att.float(), rec.float(), att_rec.float()
        g_adv = -s_fake.float().mean()
        g_cond = F.mse_loss(c_fake.float(), self.G.normalize_condition(target))
        cycle = (rec - real).abs().mean()
        att_mean = att.mean() + att_rec.mean()
        att_tv = total_variation(att) + total_variation(att_rec)
        loss = (g_adv + cfg.lambda_cond * g_cond + cfg.lambda_cyc * cycle
                + self.state.lambda_mask * att_mean + cfg.lambda_tv * att_tv)
        pair = None
        if self.pairs is not None:
            src, dst, c_dst = self.next_pairs()
            with autocast(self.run.device, cfg.amp):
                moved, _ = self.G(src, c_dst)
            pair = (moved.float() - dst).abs().mean()
            loss = loss + cfg.lambda_pair * pair
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.run.sync_grads(self.G.parameters())
        self.opt_g.step()
        for p in self.D.parameters():
            p.requires_grad_(True)
        stats = {"g_adv": _f(g_adv), "g_cond": _f(g_cond), "cycle": _f(cycle),
                 "att_mean_loss": _f(att_mean), "att_tv": _f(att_tv),
                 "attention_mean": _f(att.mean())}
        if pair is not None:
            stats["pair"] = _f(pair)
        return stats, fake.detach()

    def guard_attention(self, attention_mean: float, steps: int) -> None:
        """Count steps with mean attention above the threshold; warn and adapt when too long."""
        cfg = self.cfg
        if attention_mean > cfg.collapse_threshold:
            self.state.high_attention_steps += steps
        else:
            self.state.high_attention_steps = 0
        if self.state.high_attention_steps >= cfg.collapse_patience:
            self.state.collapse_warnings += 1
            msg = (f"GANimation: mean attention {attention_mean:.3f} > {cfg.collapse_threshold} "
                   f"for {self.state.high_attention_steps} steps at step {self.state.step}: the "
                   "mask is collapsing to all-ones (the generator copies its input)")
            if cfg.adapt_mask and self.state.lambda_mask < 8 * cfg.lambda_mask:
                self.state.lambda_mask *= 2
                msg += f"; attention-mean weight raised to {self.state.lambda_mask:g}"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            self.state.high_attention_steps = 0

    # ------------------------------------------------------------------ samples
    @torch.no_grad()
    def write_samples(self, path: str | Path | None = None) -> Path:
        """PNG grid: per held-out face, the input, 4 re-expressions, their attention, a cycle.

        Target conditions are those of the other sample faces. Written to
        ``out_dir/samples/step-NNNNNNNNN.png`` unless ``path`` is given.
        """
        src, device = self.sample_src, self.run.device
        real = src.images.to(device).float() / 127.5 - 1
        n = len(real)
        cols, atts = [real], []
        with eval_mode(self.G):
            for k in range(1, min(4, max(n - 1, 1)) + 1):
                target = src.conds.roll(k, 0).to(device)
                if self.space.points:  # own points + a clip's motion
                    target = src.conds.to(device) + self.landmark_motion(n)
                fake, att = self.G(real, target)
                cols.append(fake)
                atts.append(att.expand(-1, 3, -1, -1) * 2 - 1)
            rec, _ = self.G(cols[1], src.conds.to(device))
        path = path or self.run.out / "samples" / f"step-{self.state.step:09d}.png"
        return save_image_rows(torch.cat(cols + atts + [rec], dim=3), path)


def _load_matching(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the tensors of ``state`` whose name and shape match; return the names left out.

    Fine-tuning another architecture of the same family (``landmark_gan`` from ``ganimation``)
    keeps everything but the critic's regression head (other output size); of the first
    convolution (other condition channels) the weights on the 3 image channels are copied and
    those on the new condition channels start at zero, so the start model behaves like the
    source model with the condition switched off.
    """
    own = module.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not keep:
        raise DataError(f"init_from: no tensor of {type(module).__name__} matches")
    partial = []
    for k, v in state.items():  # a first conv with other condition channels: keep the RGB part
        w = own.get(k)
        if k in keep or w is None or w.ndim != 4 or v.ndim != 4 or w.shape[0] != v.shape[0] \
                or w.shape[2:] != v.shape[2:] or min(w.shape[1], v.shape[1]) < 3:
            continue
        new = torch.zeros_like(w)
        new[:, :3] = v[:, :3]          # the image channels; the new condition channels start at 0
        keep[k] = new
        partial.append(f"{k} (RGB channels copied, condition channels zero)")
    module.load_state_dict({**own, **keep}, strict=True)
    return partial + sorted(set(own) - set(keep))


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def _identity(name: str) -> str:
    from ..data.faces import identity_of

    try:
        return identity_of(name)
    except DataError:
        return name


@train_command("ganimation", GANimationTrainConfig, example="max_steps=2000 image_size=64",
               help="train a GANimation face translator on labelled faces (WGAN-GP, condition, "
                    "cycle and attention losses)")
def run_train_ganimation(cfg: GANimationTrainConfig, config_path: str | None) -> dict[str, Any]:
    """Handler of ``speechface train ganimation``."""
    return {**GANimationTrainer(cfg).train(), "model": f"{cfg.out_dir}/final"}
