#!/usr/bin/env bash
# Retrains the packaged default AU model from scratch, end to end:
#   prepare (MediaPipe teacher) -> train mlp, rnn, cnn, dcnn, lstm_mfcc -> evaluate (Table 1)
#   -> calibrate the CNN on real OpenFace tracks -> runs/au17/default (a model folder).
# Usage: bash recipes/au17_default.sh     (SPEECHFACE_SHARED: the data folder, default ../shared)
# On several GPUs, replace "speechface train" by "torchrun --nproc_per_node N -m speechface.cli train"
# and add "--set device=cuda".
set -euo pipefail
SHARED=${SPEECHFACE_SHARED:-../shared}
PREP=${PREP:-prepared/av_mediapipe}
OUT=${OUT:-runs/au17}

# configs/av_clips_groups.json joins clips of the same person (seen by eye) into one speaker group
speechface prepare av "$SHARED/data/av_clips" -o "$PREP" --teacher mediapipe \
  --groups configs/av_clips_groups.json --quiet
for arch in mlp rnn cnn dcnn lstm_mfcc; do
  speechface train estimator --config "configs/cause_$arch.yaml" \
    --set data="$PREP" out_dir="$OUT/$arch" progress=false
done
speechface evaluate MLP="$OUT/mlp/best" RNN="$OUT/rnn/best" CNN="$OUT/cnn/best" \
  DCNN="$OUT/dcnn/best" LSTM_MFCC="$OUT/lstm_mfcc/best" --data "$PREP" -o "$OUT/eval"
speechface calibrate CNN="$OUT/cnn/best" DCNN="$OUT/dcnn/best" RNN="$OUT/rnn/best" MLP="$OUT/mlp/best" \
  --openface "$SHARED"/data/ravdess_openface/*.csv --audio-root "$SHARED/data/ravdess" \
  --name cnn.au17-mediapipe-openface -o "$OUT/default"
echo "default model folder: $OUT/default (copy it to src/speechface/pretrained/ to package it)"
