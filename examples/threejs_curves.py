"""Speech -> ARKit blendshape curves as JSON for three.js, Unity or any engine.

Writes two files next to each other:

- ``NAME.json``: ``{"fps", "frames", "names", "times", "curves": {"jawOpen": [...], ...}}``, the
  52 ARKit curves (0-1) at ``--fps`` (``speechface.avatars.exporters.write_curves_json``);
- ``NAME.clip.json``: a three.js ``AnimationClip`` in its JSON form, one
  ``.morphTargetInfluences[<name>]`` track per blendshape
  (``speechface.avatars.exporters.write_threejs_clip``). In the browser, with a mesh whose morph
  targets carry ARKit names (Ready Player Me, VRM "perfect sync" avatars)::

      const clip = THREE.AnimationClip.parse(await (await fetch("take.clip.json")).json());
      const mixer = new THREE.AnimationMixer(headMesh);
      mixer.clipAction(clip).play();        // start it together with the speech audio

Run from the repository root::

    python examples/threejs_curves.py                          # -> runs/examples/take.json + .clip.json
    python examples/threejs_curves.py speech.wav --fps 30 -o web/take.json
    python examples/threejs_curves.py --fast -o /tmp/take.json      # CI

Without a packaged model, ``--fast`` falls back to RANDOM WEIGHTS and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_model(name: str | None, fast: bool):
    from speechface import BlendshapeEstimator, SpeechfaceError

    try:
        return BlendshapeEstimator.from_pretrained(name)
    except SpeechfaceError as e:
        if name is not None or not fast:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from e
        print("NOTE: no packaged ARKit model in this version; --fast uses RANDOM WEIGHTS.",
              file=sys.stderr)
        return BlendshapeEstimator.create("cnn")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("speech", nargs="?", default=str(HERE / "data" / "speech.wav"))
    p.add_argument("-o", "--output", default="runs/examples/take.json")
    p.add_argument("--model", default=None, help="model folder or packaged name")
    p.add_argument("--fps", type=float, default=25.0, help="curve frame rate (default 25)")
    p.add_argument("--fast", action="store_true", help="CI mode")
    args = p.parse_args(argv)
    fast = args.fast or os.environ.get("SPEECHFACE_EXAMPLES_FAST", "") not in ("", "0")

    from speechface.avatars.exporters import write_curves_json, write_threejs_clip

    est = load_model(args.model, fast)
    pred = est.predict(args.speech)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    clip = out.with_suffix(".clip.json")
    write_curves_json(pred, out, fps=args.fps)
    write_threejs_clip(pred, clip, fps=args.fps, name=out.stem)
    doc = json.loads(out.read_text())
    moving = sorted(doc["names"], key=lambda n: -max(doc["curves"][n]) + min(doc["curves"][n]))
    kind = "" if est.pretrained else " [RANDOM WEIGHTS]"
    print(f"{args.speech}: {doc['frames']} frames at {doc['fps']:g} fps -> {out} (curves) and "
          f"{clip} (three.js AnimationClip, 52 tracks); most movement: {', '.join(moving[:4])}; "
          f"model {est.name}{kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
