"""Train a CNN AU estimator on real talking-face clips in a few minutes, evaluate it, reload it.

Steps (each is the library's public API, the same the ``speechface`` commands use):

1. prepare a handful of the shared talking-face videos (``$SPEECHFACE_SHARED/data/av_clips``,
   default ``../shared``) into shards with the MediaPipe teacher
   (``speechface.data.prepare_av``): 25 fps log-mel speech features + per-frame AU targets.
   The teacher's AUs are a blendshape **proxy**, not OpenFace;
2. split them **speaker-disjoint** (no speaker in both training and validation);
3. train the CAUSE CNN with :class:`~speechface.training.EstimatorTrainer`;
4. evaluate the best epoch on the held-out speakers against the ``Zero`` and training-``Mean``
   predictors (``speechface.evaluation.evaluate_estimators``; MAE/MSE with 95% bootstrap CIs,
   per-AU Pearson r and CCC);
5. save the model folder and reload it with ``AUEstimator.from_pretrained(folder)``.

Run from the repository root::

    python examples/train_estimator.py                              # -> runs/examples/cnn
    python examples/train_estimator.py --fast -o /tmp/example_cnn   # CI: 4 clips x 3 s, 2 epochs
    python examples/train_estimator.py --prepared prepared/av_mediapipe -o runs/cnn_all

Outputs in ``-o``: ``prepared/`` (the shards), ``run/`` (trainer: ``log.csv``, checkpoints,
``best/``), ``model/`` (the saved model), ``eval/results.json`` + ``results.md``. Rerunning with
the same ``-o`` reuses the prepared clips and resumes training from the last checkpoint.

A model trained on a few clips is a demonstration, not a useful model. With the defaults (36
clips, about 6 minutes on 2 busy CPU cores) it beat both baselines on the 3 held-out clips in
our run (frame MAE 0.28 vs Mean 0.34, Zero 0.49); the ``--fast`` model (2 optimizer steps) does
not. The packaged model was trained on all clips (``recipes/au17_default.sh``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# Speaker groups that the folder layout does not show (the same person in two files):
# ``prepare_av(groups=...)`` keys are file stems, values the speaker id used for the split.
KNOWN_SPEAKERS = {
    "grid_bbaf2n": "grid_s1",
    "hdtf_WDA_AlexandriaOcasioCortez_000": "person_aoc",
    "v-express_AOC_gt": "person_aoc",
    "talking-face_Audio_Source_00104": "person_rdj",
    "talking-face_Pose_Source_741400163": "person_rdj",
}
# Held-out speakers: GRID speakers other than s1 and a MEAD actor (group names as prepared).
VAL_GROUPS = ["av_clips__grid_lbax4n", "av_clips__grid_sbia1a", "av_clips__mead_M030_sad_3_001"]
FAST_VAL_GROUPS = ["av_clips__grid_lbax4n", "av_clips__grid_sbia1a"]


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def shared_dir() -> Path:
    return Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))


def pick_videos(av: Path, fast: bool) -> list[Path]:
    """A few clips: GRID s1 (the training speaker) plus other speakers, held out or not."""
    if not av.is_dir():
        raise SystemExit(f"no talking-face clips at {av}: set SPEECHFACE_SHARED to the folder "
                         f"holding data/av_clips, or pass --prepared DIR")
    grid_s1 = sorted((av / "grid_s1").glob("*.mp4"))
    if fast:  # 2 clips of speaker s1 for training, 2 other GRID speakers for validation
        return grid_s1[:2] + [av / "grid_lbax4n.mpg", av / "grid_sbia1a.mpg"]
    top = sorted(p for p in av.iterdir() if p.suffix in (".mp4", ".mpg"))
    more = sorted((av / "more").glob("*.mp4"))[:10]
    return grid_s1[::40] + top + more  # 13 + 13 + 10 clips


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="runs/examples/cnn", help="output folder")
    p.add_argument("--prepared", default=None,
                   help="use these prepared shards (speechface prepare av) instead of preparing")
    p.add_argument("--seconds", type=float, default=None,
                   help="use the first seconds of each clip (default 6, --fast 3)")
    p.add_argument("--epochs", type=int, default=None, help="default 20, --fast 2")
    p.add_argument("--val-groups", nargs="+", default=None, help="held-out speaker groups")
    p.add_argument("--fast", action="store_true", help="CI: 4 clips x 3 s, 2 epochs")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    seconds = args.seconds or (3.0 if fast else 6.0)
    epochs = args.epochs or (2 if fast else 20)
    out = Path(args.output)

    import torch

    from speechface import AUEstimator
    from speechface.data.clips import load_training_clips, split_groups
    from speechface.evaluation.estimators import evaluate_estimators, report
    from speechface.evaluation.metrics import frame_mean, results_table
    from speechface.training import EstimatorTrainConfig, EstimatorTrainer

    if fast:  # tiny batches: one thread is faster than a thread pool (and kind to busy CI)
        torch.set_num_threads(1)

    # 1. shards: speech features + MediaPipe proxy AU targets, one .npz per clip
    if args.prepared:
        shards = Path(args.prepared)
    else:
        from speechface.data import prepare_av

        shared = shared_dir()
        videos = pick_videos(shared / "data" / "av_clips", fast)
        landmarker = shared / "models" / "face_landmarker.task"
        shards = out / "prepared"
        print(f"preparing {len(videos)} clips (first {seconds:g} s each) into {shards} ...")
        prepare_av(videos, shards, teacher="mediapipe", groups=KNOWN_SPEAKERS,
                   max_seconds=seconds, progress=not fast,
                   model_path=landmarker if landmarker.exists() else None)

    # 2. speaker-disjoint split (audio kept for the evaluation, which re-featurises it)
    clips = load_training_clips(str(shards), "au17", "logmel", keep_audio=True)
    groups = sorted({c.group for c in clips})
    val_groups = args.val_groups or [g for g in (FAST_VAL_GROUPS if fast else VAL_GROUPS)
                                     if g in groups] or None
    train, val = split_groups(clips, val_groups, 0.2, seed=0)
    print(f"{len(clips)} clips of {len(groups)} speakers: training {len(train)} clips "
          f"({sum(len(c.features) for c in train)} frames), validation {len(val)} clips of "
          f"{', '.join(sorted({c.group for c in val}))}")

    # 3. train (the trainer writes run/log.csv, run/checkpoints/ and run/best/)
    cfg = EstimatorTrainConfig(
        arch="cnn", space="au17", out_dir=str(out / "run"), epochs=epochs,
        batch_size=8, crop_frames=64, lr=1e-3, patience=5, seed=0, progress=not fast,
        name="cnn.au17-example",
        info={"teacher": "mediapipe_blendshape_proxy_v1 (a proxy, not OpenFace)",
              "data": f"{len(train)} clips of $SPEECHFACE_SHARED/data/av_clips, "
                      f"first {seconds:g} s each (examples/train_estimator.py)"})
    metrics = EstimatorTrainer(cfg, clips=train, val_clips=val).train()
    print(f"trained {metrics['epochs']} epochs / {metrics['steps']} steps, best validation "
          f"loss {metrics['best_val_loss']:.4f}")

    # 4. evaluate the best epoch against Zero and the training-set Mean on the held-out speakers
    best = AUEstimator.from_pretrained(out / "run" / "best")
    train_mean = frame_mean([c.targets.numpy() for c in train], [c.mask.numpy() for c in train])
    results = evaluate_estimators({"CNN": best}, val, train_mean, n_boot=200 if fast else 1000)
    meta = {"model": str(out / "model"), "epochs": metrics["epochs"], "seconds_per_clip": seconds,
            "train_groups": sorted({c.group for c in train}),
            "val_groups": sorted({c.group for c in val}),
            "teacher": "mediapipe_blendshape_proxy_v1 (a proxy, not OpenFace)"}
    report(results, out / "eval", meta)  # all tables (per-AU MAE, r, CCC) -> eval/results.md
    print(f"held-out speakers, {results['n_clips']} clips, {results['n_frames']} frames:")
    print(results_table(results["frame"]))

    # 5. save (a trained model: pretrained=True) and reload it like any model folder
    best.pretrained = True
    best.save_pretrained(out / "model")
    model = AUEstimator.from_pretrained(out / "model")
    r = model.predict(HERE / "data" / "speech.wav")
    print(f"reloaded {model!r}\n  examples/data/speech.wav -> {len(r)} frames, mean AU26 (jaw "
          f"drop) {r.mean()['AU26']:.2f}, mean AU25 (lips part) {r.mean()['AU25']:.2f}")
    print(f"wrote {out / 'model'} and {out / 'eval' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
