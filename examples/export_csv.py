"""Export AU curves of several speech files to OpenFace-style CSVs, plus a JSON of metadata each.

All files go through ``AUEstimator.predict_batch`` at once (padded into batches; the same values
as one ``predict`` per file). For every input ``NAME.ext`` the output folder gets:

- ``NAME.csv``: ``frame, timestamp, AU01_r, ..., AU45_r`` - one row per 25 fps video frame,
  frame numbers from 1 and timestamps in seconds, the columns OpenFace 2 writes, so tools that
  read OpenFace AU intensities read it;
- ``NAME.json``: where the numbers come from: the input, its duration, the model (name,
  architecture, whether trained, its teacher and training data), frames, fps, columns, the
  speechface version and the utterance mean of every AU.

Run from the repository root::

    python examples/export_csv.py                        # -> runs/examples/aus_csv/
    python examples/export_csv.py a.wav b.flac c.mp3 -o aus_out   # any files and sample rates
    python examples/export_csv.py --fast -o /tmp/aus_csv          # CI: examples/data/speech.wav

Without file arguments it exports ``examples/data/speech.wav`` and, when the shared data is
present (``$SPEECHFACE_SHARED``, default ``../shared``), two RAVDESS clips; ``--fast`` (or
``SPEECHFACE_EXAMPLES_FAST=1``) only the example file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def fast_mode(flag: bool) -> bool:
    return flag or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")


def default_inputs(fast: bool) -> list[Path]:
    files = [HERE / "data" / "speech.wav"]
    ravdess = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared")) / "data" / "ravdess"
    if not fast and ravdess.is_dir():
        files += sorted(ravdess.glob("Actor_01/*.flac"))[:2]
    return files


def unique_stems(paths: list[Path]) -> list[str]:
    """Output names: the file stems, numbered when two inputs share one."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0)
        seen[p.stem] = n + 1
        names.append(p.stem if n == 0 else f"{p.stem}_{n}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", help="speech files (default: see the docstring)")
    p.add_argument("-o", "--output", default="runs/examples/aus_csv", help="output folder")
    p.add_argument("--model", default=None,
                   help="model folder, packaged name or Hub repo id (default: packaged AU model)")
    p.add_argument("--batch-size", type=int, default=8, help="files per network call")
    p.add_argument("--fast", action="store_true", help="CI: the example file only by default")
    args = p.parse_args(argv)
    fast = fast_mode(args.fast)
    inputs = [Path(f) for f in args.inputs] or default_inputs(fast)

    import speechface
    from speechface import AUEstimator, SpeechfaceError
    from speechface.audio import load_audio

    est = AUEstimator.from_pretrained(args.model)
    try:
        waves = [load_audio(f, target_rate=est.sample_rate) for f in inputs]
    except SpeechfaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results = est.predict_batch(waves, est.sample_rate, batch_size=args.batch_size)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cfg = est.config()
    model_meta = {"name": est.name, "architecture": cfg["architecture"],
                  "pretrained": est.pretrained, "space": est.space.name,
                  "feature": cfg["feature"]["name"],
                  "teacher": est.info.get("teacher"), "data": est.info.get("data"),
                  "calibrated": "calibration" in est.info}
    for path, name, wave, r in zip(inputs, unique_stems(inputs), waves, results):
        r.to_csv(out / f"{name}.csv")
        meta = {"source": str(path), "csv": f"{name}.csv",
                "duration_s": round(len(wave) / est.sample_rate, 4),
                "frames": len(r), "fps": r.fps, "frame_times": "frame n (from 1) at (n-1)/fps s",
                "columns": ["frame", "timestamp", *r.columns],
                "units": "AU intensity 0-5 (OpenFace AUxx_r scale)",
                "model": model_meta, "speechface_version": speechface.__version__,
                "mean": {k: round(v, 4) for k, v in r.mean().items()}}
        (out / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        top = max(meta["mean"], key=meta["mean"].get)
        print(f"{path}: {meta['duration_s']:.2f} s -> {len(r)} frames; highest mean {top} "
              f"{meta['mean'][top]:.2f} -> {out / (name + '.csv')}")
    kind = "trained" if est.pretrained else "RANDOM WEIGHTS"
    print(f"{len(results)} files with {est.name} ({kind}) into {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
