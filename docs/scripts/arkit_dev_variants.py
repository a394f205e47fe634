"""Recipe variants of the speech -> ARKit-52 CNN on a development split of the training speakers.

The held-out speakers (``val_groups`` of configs/arkit_cnn_whisper.yaml) are dropped entirely;
9 non-GRID training speakers (``DEV``) are the development set (their augmented copies are not
trained on). A compact training loop with the recipe's network, optimiser (Adam 1e-3, 32 windows
of 128 frames, gradient clip 1) and L1 + CCC loss, with options for the variants; the checkpoint
is chosen on the development loss (every 100 steps). Prints the mean per-clip r of jawOpen and of
the 16 speech mouth blendshapes on the development clips (raw, and Gaussian-smoothed with sigma 1
and 2 frames) and writes ``runs/exp/NAME.json`` and the development predictions
``runs/exp/NAME_dev.npz``. Run from the repository root with the prepared data in ``prepared/``::

    python docs/scripts/arkit_dev_variants.py base
    python docs/scripts/arkit_dev_variants.py l4 --layers 4
    python docs/scripts/arkit_dev_variants.py l24 --layers 2,4
    python docs/scripts/arkit_dev_variants.py mouth3 --mouth_w 3
    python docs/scripts/arkit_dev_variants.py pearson --corr pearson
    python docs/scripts/arkit_dev_variants.py zscore --zscore
    python docs/scripts/arkit_dev_variants.py grid40 --grid_frac 0.4
    python docs/scripts/arkit_dev_variants.py seed1 --seed 1
    python docs/scripts/arkit_dev_variants.py pad30 --pad 30
    python docs/scripts/arkit_dev_variants.py half --speaker_frac 0.5
    python docs/scripts/arkit_dev_variants.py t0 --save   # (t0..t3), then self-training:
    python docs/scripts/arkit_dev_variants.py st0 --pseudo t0,t1,t2,t3
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from speechface.data.clips import load_training_clips
from speechface.spaces.blendshapes import ARKIT52_NAMES
from speechface.speech.estimators.cnn import CNN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_blendshapes52 import SPEECH_MOUTH  # noqa: E402

DEV = [
    "av_clips__grid_brbk7n",
    "av_clips__grid_lwbsza",
    "av_clips__retalking_2",
    "more__dfrf_vids_french",
    "more__edtalk_test_data_uncrop_Obama",
    "more__mimictalk_examples_Trump_10s",
    "more__talking-face_Audio_Source_00086",
    "more__talking-face_Pose_Source_620900105",
    "more__v-express_tys_gt",
]
MOUTH = [ARKIT52_NAMES.index(n) for n in SPEECH_MOUTH]


def load(layers, pad=None):
    held = set(yaml.safe_load(open("configs/arkit_cnn_whisper.yaml"))["val_groups"])
    per = []
    for L in layers:
        per.append(
            load_training_clips(
                ["prepared/av_mediapipe", "prepared/av_aug"],
                "blendshapes52",
                "whisper",
                {"layer": L, "normalize": "utterance", **({"pad_seconds": pad} if pad else {})},
            )
        )
    clips = per[0]
    if len(per) > 1:
        for i, c in enumerate(clips):
            c.features = torch.cat([p[i].features for p in per], 1)
    clips = [c for c in clips if c.group not in held]
    dev = [c for c in clips if c.group in DEV and "__aug" not in c.name]
    train = [c for c in clips if c.group not in DEV]
    return train, dev


def loss_fn(raw, y, m, mu, sd, a):
    # raw is in standardized space if a.zscore
    if a.zscore:
        y = (y - mu) / sd
    w = m.float()[..., None]
    dimw = torch.ones(raw.shape[-1])
    dimw[MOUTH] = a.mouth_w
    l1 = (((raw - y).abs() * dimw).sum(-1) / dimw.sum() * w[..., 0]).sum() / w.sum().clamp_min(1)
    n = w.sum(1).clamp_min(1)
    mx, my = (raw * w).sum(1) / n, (y * w).sum(1) / n
    dx, dy = (raw - mx[:, None]) * w, (y - my[:, None]) * w
    vx, vy = dx.pow(2).sum(1) / n, dy.pow(2).sum(1) / n
    cov = (dx * dy).sum(1) / n
    if a.corr == "ccc":
        c = 2 * cov / (vx + vy + (mx - my).pow(2)).clamp_min(1e-8)
    else:
        c = cov / (vx * vy).clamp_min(1e-12).sqrt()
    thr = 1e-6 / (sd**2) if a.zscore else torch.full_like(sd, 1e-6)
    ok = ((vy > thr) & (w.sum(1) > 2)).float() * dimw
    return a.l1_w * l1 + a.ccc_w * ((1 - c) * ok).sum() / ok.sum().clamp_min(1)


def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else float("nan")


def smooth(p, s):
    if s <= 0:
        return p
    k = np.arange(-3 * int(math.ceil(s)), 3 * int(math.ceil(s)) + 1)
    g = np.exp(-0.5 * (k / s) ** 2)
    g /= g.sum()
    pad = np.pad(p, ((len(k) // 2,) * 2, (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, j], g, mode="valid") for j in range(p.shape[1])], 1)


def metrics(preds, dev):
    out = {}
    for s in (0, 1, 2):
        per = {}
        for j in range(52):
            rs = []
            for p, c in zip(preds, dev):
                m = c.mask.numpy().astype(bool)
                t = c.targets.numpy()[m, j]
                if m.sum() > 2 and t.std() > 1e-3:
                    r = pearson(smooth(p, s)[m, j], t)
                    if not math.isnan(r):
                        rs.append(r)
            per[ARKIT52_NAMES[j]] = float(np.mean(rs)) if rs else float("nan")
        out[f"s{s}"] = {
            "jawOpen": per["jawOpen"],
            "mouth16": float(np.nanmean([per[n] for n in SPEECH_MOUTH])),
            "per": per,
        }
    return out


def build_net(args, in_features):
    """The recipe's network from the command-line options (a dict, as ``vars(args)``)."""
    return CNN(
        in_features=in_features,
        space="blendshapes52",
        channels=[int(x) for x in args["channels"].split(",")],
        dilations=[int(x) for x in args["dilations"].split(",")],
        kernel_size=args["kernel"],
        proj=args["proj"],
        dropout=args["dropout"],
    )


def pseudo_clips(names, fm, fs):
    """RAVDESS utterances (actors 1-22 except the emotion models' held-out 3, 8, 15, 22) with the
    averaged outputs of saved runs as targets: new voices for self-training."""
    from speechface.data.clips import load_ravdess_clips

    nets = []
    for n in names:
        ck = torch.load(f"runs/exp/{n}.pt")
        net = build_net(ck["args"], len(fm))
        net.load_state_dict(ck["state"])
        nets.append(net.eval())
    actors = [k for k in range(1, 23) if k not in (3, 8, 15, 22)]
    clips = load_ravdess_clips(
        "../shared/data/ravdess", actors, feature="whisper",
        feature_args={"layer": 2, "normalize": "utterance"},
    )
    with torch.no_grad():
        for c in clips:
            x = ((c.features - fm) / fs)[None]
            c.targets = torch.stack([n(x)[0] for n in nets]).mean(0).clamp(0, 1)
            c.mask = torch.ones(len(c.features), dtype=torch.bool)
    print(f"pseudo-labelled {len(clips)} RAVDESS clips with {names}", flush=True)
    return clips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--layers", default="2")
    ap.add_argument("--pad", type=float, default=None, help="Whisper pad_seconds (30: padded)")
    ap.add_argument("--channels", default="256,128,128,64,64,64,64,64")
    ap.add_argument("--dilations", default="1,1,1,1,1,1,1,1")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--proj", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--zscore", action="store_true")
    ap.add_argument("--mouth_w", type=float, default=1.0)
    ap.add_argument("--corr", default="ccc")
    ap.add_argument("--l1_w", type=float, default=1.0)
    ap.add_argument("--ccc_w", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--speaker_frac", type=float, default=1.0,
        help="train on this share of the non-GRID-s1 training speakers (learning curve)",
    )
    ap.add_argument("--save", action="store_true", help="save the best network to runs/exp/NAME.pt")
    ap.add_argument(
        "--pseudo", default="",
        help="comma-separated saved runs (--save) whose averaged outputs on RAVDESS speech (actors "
        "not held out by the emotion models) join the training targets (self-training)",
    )
    ap.add_argument("--pseudo_frac", type=float, default=0.3, help="share of windows from --pseudo")
    ap.add_argument("--eval_every", type=int, default=100)
    ap.add_argument(
        "--grid_frac", type=float, default=0.0, help="share of windows from grid_s1 (0 = by length)"
    )
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    t0 = time.time()
    train, dev = load([int(x) for x in a.layers.split(",")], a.pad)
    if a.speaker_frac < 1.0:
        others = sorted({c.group for c in train if c.group != "grid_s1"})
        keep = set(np.random.default_rng(a.seed).permutation(others)[: round(a.speaker_frac * len(others))])
        train = [c for c in train if c.group == "grid_s1" or c.group in keep]
        print(f"speakers: grid_s1 + {len(keep)} of {len(others)}", flush=True)
    print(f"loaded {len(train)} train {len(dev)} dev in {time.time() - t0:.0f}s", flush=True)
    allf = torch.cat([c.features for c in train])
    fm, fs = allf.mean(0), allf.std(0) + 1e-5
    ally = torch.cat([c.targets[c.mask] for c in train])
    mu, sd = ally.mean(0), ally.std(0).clamp_min(1e-3)
    net = build_net(vars(a), allf.shape[1])
    pseudo = pseudo_clips(a.pseudo.split(","), fm, fs) if a.pseudo else []
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(a.seed)
    crop = 128
    lens = np.array([len(c.features) for c in train])
    wts = np.ceil(lens / crop)
    wts = wts / wts.sum()
    if a.grid_frac > 0:
        g = np.array([c.group == "grid_s1" for c in train])
        wts = np.where(g, wts / wts[g].sum() * a.grid_frac, wts / wts[~g].sum() * (1 - a.grid_frac))
        print("grid share", wts[g].sum(), flush=True)

    def out(raw):
        return raw * sd + mu if a.zscore else raw

    def dev_eval():
        net.eval()
        tot = 0.0
        n = 0
        preds = []
        with torch.no_grad():
            for c in dev:
                raw = net(((c.features - fm) / fs)[None])
                tot += float(loss_fn(raw, c.targets[None], c.mask[None], mu, sd, a)) * float(c.mask.sum())
                n += float(c.mask.sum())
                preds.append(out(raw[0]).clamp(0, 1).numpy())
        net.train()
        return tot / n, preds

    best = (float("inf"), None, None, 0)
    for step in range(1, a.steps + 1):
        idx = rng.choice(len(train), size=32, p=wts)
        xs, ys, ms = [], [], []
        for i in idx:
            c = train[i]
            if pseudo and rng.random() < a.pseudo_frac:
                c = pseudo[int(rng.integers(len(pseudo)))]
            s = int(rng.integers(0, max(1, len(c.features) - crop + 1)))
            xs.append((c.features[s : s + crop] - fm) / fs)
            ys.append(c.targets[s : s + crop])
            ms.append(c.mask[s : s + crop])
        lengths = torch.tensor([len(x) for x in xs])
        x, y, m = (torch.nn.utils.rnn.pad_sequence(t, batch_first=True) for t in (xs, ys, ms))
        loss = loss_fn(net(x, lengths), y, m, mu, sd, a)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % a.eval_every == 0:
            vl, preds = dev_eval()
            if vl < best[0]:
                best = (vl, preds, {k: v.clone() for k, v in net.state_dict().items()}, step)
            print(
                f"step {step} train {float(loss.detach()):.4f} dev {vl:.4f} {time.time() - t0:.0f}s",
                flush=True,
            )
    met = metrics(best[1], dev)
    res = {
        "args": vars(a),
        "best_step": best[3],
        "dev_loss": best[0],
        "summary": {k: (round(v["jawOpen"], 3), round(v["mouth16"], 3)) for k, v in met.items()},
        "metrics": met,
        "seconds": time.time() - t0,
    }
    Path("runs/exp").mkdir(parents=True, exist_ok=True)
    if a.save:
        torch.save({"state": best[2], "args": vars(a), "fm": fm, "fs": fs}, f"runs/exp/{a.name}.pt")
    Path(f"runs/exp/{a.name}.json").write_text(json.dumps(res, indent=1))
    np.savez_compressed(f"runs/exp/{a.name}_dev.npz", *best[1])
    print(a.name, res["summary"], flush=True)


if __name__ == "__main__":
    main()
