"""Merge ``cnn`` speech models of one recipe (different seeds) into one model: their mean.

    python recipes/merge_cnns.py runs/blendshapes52/cnn_whisper_x4 --name cnn.blendshapes52-whisper \\
        --fp16 runs/blendshapes52/cnn_whisper_wide/best runs/blendshapes52/cnn_whisper_s1/best \\
        runs/blendshapes52/cnn_whisper_s2/best runs/blendshapes52/cnn_whisper_s3/best

See :func:`speechface.speech.output_maps.merge_cnns`; ``--fp16`` stores the weight matrices as float16
(:func:`speechface.core.hub.half_weights`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from speechface import SpeechEstimator
from speechface.core.hub import half_weights
from speechface.speech.output_maps import merge_cnns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output")
    ap.add_argument("models", nargs="+", help="model folders or packaged names")
    ap.add_argument("--name", required=True)
    ap.add_argument("--fp16", action="store_true")
    args = ap.parse_args(argv)
    members = [SpeechEstimator.from_pretrained(m) for m in args.models]
    merged = merge_cnns(members, name=args.name,
                        info={"member_folders": [str(m) for m in args.models]})
    out = merged.save_pretrained(Path(args.output))
    if args.fp16:
        half_weights(out)
    print(json.dumps({"output": str(out), "members": len(members),
                      "parameters": sum(p.numel() for p in merged.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
