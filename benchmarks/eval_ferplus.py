"""Accuracy and speed of expression recognisers (the CME teacher) on the FER+ valid split.

For each model: the user path (``ExpressionRecognizer.predict`` on the 48x48 faces, so the same
resizing a user gets), then

- majority-vote accuracy over the faces whose top vote is an emotion (the number the model cards
  quote), with a 95% percentile-bootstrap CI over faces; macro-F1; recall per class;
- the FER+ paper's test protocol (single votes removed, only faces whose top emotion has more
  than half of all votes), with its CI;
- the label-distribution view: cross-entropy to the 8-emotion vote distribution (CEL), and the
  agreement with a randomly drawn annotator (the vote share of the predicted emotion: the
  expected accuracy against a PLD-drawn label);
- images per second of ``predict`` on this machine.

The FER+ test split is not distributed with the shared data, so valid is the held-out number;
the packaged models picked their checkpoint on a part of train, not on valid.

    python benchmarks/eval_ferplus.py --model vgg13.ferplus fer_cnn.ferplus --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from speechface.data.ferplus import load_ferplus
from speechface.evaluation.metrics import accuracy, confusion_matrix, macro_f1
from speechface.spaces import EMOTION8
from speechface.teachers.expression import ExpressionRecognizer


def bootstrap_ci(correct: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of a 0/1 vector (faces resampled with replacement)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), (n_boot, len(correct)))
    means = correct[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate(model: ExpressionRecognizer, fer, n_boot: int) -> dict:
    """All the numbers of the module notes for one model on one decoded split."""
    t0 = time.perf_counter()
    probs = model.predict(fer.images, batch_size=256)
    seconds = time.perf_counter() - t0
    labels, keep = fer.majority(drop_unknown=True)
    pred = probs[keep].argmax(1)
    correct = (pred == labels).astype(np.float64)
    lab_p, keep_p = fer.majority(min_votes=2, strict=True, drop_unknown=True)
    correct_p = (probs[keep_p].argmax(1) == lab_p).astype(np.float64)
    dist, keep_d = fer.distributions("crossentropy", drop_unknown=True)
    p = np.clip(probs[keep_d], 1e-12, 1.0)
    cm = confusion_matrix(pred, labels, 8)
    counts = cm.sum(1)
    recall = {lab: (float(cm[i, i] / counts[i]) if counts[i] else None)
              for i, lab in enumerate(EMOTION8.labels)}
    return {
        "accuracy": accuracy(pred, labels), "accuracy_ci95": bootstrap_ci(correct, n_boot),
        "n": int(keep.sum()), "macro_f1": macro_f1(pred, labels, 8),
        "recall": recall, "support": {lab: int(c) for lab, c in zip(EMOTION8.labels, counts)},
        "accuracy_paper_protocol": accuracy(probs[keep_p].argmax(1), lab_p),
        "accuracy_paper_protocol_ci95": bootstrap_ci(correct_p, n_boot, seed=1),
        "n_paper_protocol": int(keep_p.sum()),
        "cel_cross_entropy": float(-(dist * np.log(p)).sum(1).mean()),
        "random_annotator_agreement": float(dist[np.arange(len(dist)), p.argmax(1)].mean()),
        "confusion": cm.tolist(),
        "images_per_s": len(fer) / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=[None],
                    help="packaged model names or folders (default: the packaged default)")
    shared = Path(os.environ.get("SPEECHFACE_SHARED", "../shared"))
    ap.add_argument("--data", default=str(shared / "data" / "ferplus" / "ferplus_trainval.npz"))
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write all results to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.data).is_file():
        print(f"FER+ data not found: {args.data} (set SPEECHFACE_SHARED or --data)", file=sys.stderr)
        return 2
    fer = load_ferplus(args.data, "valid", progress=False)
    results = {}
    for name in args.model:
        model = ExpressionRecognizer.from_pretrained(name)
        results[model.name] = r = evaluate(model, fer, args.n_boot)
        lo, hi = r["accuracy_ci95"]
        plo, phi = r["accuracy_paper_protocol_ci95"]
        print(f"\n{model.name} ({model.network.arch}, {model.network.num_parameters():,} parameters)")
        print("| measure (FER+ valid) | value |\n|---|---|")
        print(f"| majority-vote accuracy ({r['n']} faces) | {r['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] |")
        print(f"| macro-F1 | {r['macro_f1']:.3f} |")
        print(f"| accuracy, FER+ paper protocol ({r['n_paper_protocol']} faces) | "
              f"{r['accuracy_paper_protocol']:.3f} [{plo:.3f}, {phi:.3f}] |")
        print(f"| cross-entropy to the vote distribution (CEL) | {r['cel_cross_entropy']:.3f} |")
        print(f"| agreement with a random annotator (PLD label) | "
              f"{r['random_annotator_agreement']:.3f} |")
        print(f"| predict, images/s ({torch.get_num_threads()} threads) | {r['images_per_s']:.0f} |")
        print("recall: " + ", ".join(f"{k} {v:.2f} ({r['support'][k]})" if v is not None
                                     else f"{k} - (0)" for k, v in r["recall"].items()))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load}, torch {torch.__version__}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
