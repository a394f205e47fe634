#!/usr/bin/env bash
# Retrains the packaged speech models on the Whisper front end, end to end (issue 14):
#   prepare (MediaPipe teacher) -> augmented copies of the training clips -> CAUSE MLP/RNN/CNN/DCNN
#   on Whisper features and on log-mel (both with augmentation) -> Table 1 on the held-out
#   speakers -> calibration on the real OpenFace tracks (leave one actor out) -> landmarks model
#   -> emotion student on RAVDESS -> utterance-level lstm_mfcc on RAVDESS prototype targets.
# Usage: bash recipes/whisper_models.sh     (SPEECHFACE_SHARED: the data folder, default ../shared)
# Time on 2 CPU cores: about 3 hours (the encoder runs once per clip; features are cached).
set -euo pipefail
SHARED=${SPEECHFACE_SHARED:-../shared}
PREP=${PREP:-prepared/av_mediapipe}
AUG=${AUG:-prepared/av_aug}
OUT=${OUT:-runs}

speechface prepare av "$SHARED/data/av_clips" -o "$PREP" --teacher mediapipe \
  --groups configs/av_clips_groups.json --quiet
# the held-out speakers (val_groups of the configs) are never augmented
speechface prepare augment "$PREP" -o "$AUG" --copies 2 --exclude-groups-from configs/cause_cnn.yaml --quiet
for arch in cnn dcnn mlp rnn; do
  speechface train estimator --config "configs/cause_${arch}_whisper.yaml" --set progress=false
  speechface train estimator --config "configs/cause_${arch}_aug.yaml" --set progress=false
done
speechface evaluate MLP-W="$OUT/au17w/mlp/best" RNN-W="$OUT/au17w/rnn/best" CNN-W="$OUT/au17w/cnn/best" \
  DCNN-W="$OUT/au17w/dcnn/best" MLP="$OUT/au17a/mlp/best" RNN="$OUT/au17a/rnn/best" \
  CNN="$OUT/au17a/cnn/best" DCNN="$OUT/au17a/dcnn/best" --data "$PREP" -o "$OUT/eval_table1"
# the packaged AU model: the CNN with wider channels and an L1 + CCC loss
speechface train estimator --config configs/cause_cnn_whisper_ccc.yaml --set progress=false
# the model animate drives with (cnn.au17-whisper): the same network with its dynamics gain
python recipes/dynamics_gain.py "$OUT/au17w/cnn_wide_ccc/best" --config configs/cause_cnn_whisper_ccc.yaml \
  -o "$OUT/au17w/animate"
python benchmarks/heldout_speech.py CNN-W-CCC="$OUT/au17w/cnn_wide_ccc/best" CNN-W="$OUT/au17w/cnn/best" DCNN-W="$OUT/au17w/dcnn/best" \
  CNN="$OUT/au17a/cnn/best" --json "$OUT/heldout.json"
speechface calibrate CNN-W-CCC="$OUT/au17w/cnn_wide_ccc/best" CNN-W="$OUT/au17w/cnn/best" \
  --openface "$SHARED"/data/ravdess_openface/*.csv --audio-root "$SHARED/data/ravdess" \
  --method floor --floor 0.1 --name cnn.au17-whisper-openface -o "$OUT/au17w/default"
speechface train estimator --config configs/landmarks_cnn_gru_whisper.yaml --set progress=false
speechface train emotion --config configs/emotion_ravdess_whisper_aug.yaml
speechface prepare prototypes "$SHARED/data/ravdess" -o prepared/ravdess_proto --exclude-actors 3 8 15 22
speechface train estimator --config configs/lstm_mfcc_ravdess.yaml --set progress=false
# ARKit-52 (issue 17): four seeds of configs/arkit_cnn_whisper.yaml merged into one model (their
# mean; the checkpoint of each is chosen on the held-out speakers' validation loss, as in every
# recipe here), then the landmark model built from it (issue 14): a linear map from the teacher's
# blendshapes to its landmarks, centred per utterance and shrunk by factors fitted on a
# development split of the training speakers (configs/arkit_cnn_whisper_dev.yaml, 3 seeds)
for seed in 0 1 2 3; do
  speechface train estimator --config configs/arkit_cnn_whisper.yaml --set progress=false \
    seed=$seed out_dir="$OUT/blendshapes52/cnn_whisper_s$seed"
done
for seed in 0 1 2; do
  speechface train estimator --config configs/arkit_cnn_whisper_dev.yaml --set progress=false \
    seed=$seed out_dir="$OUT/blendshapes52/cnn_whisper_dev_s$seed"
done
python recipes/merge_cnns.py "$OUT/blendshapes52/cnn_whisper_x4" --name cnn.blendshapes52-whisper --fp16 \
  "$OUT"/blendshapes52/cnn_whisper_s{0,1,2,3}/best
python recipes/landmarks_from_arkit.py "$OUT/blendshapes52/cnn_whisper_x4" \
  --dev-model "$OUT"/blendshapes52/cnn_whisper_dev_s{0,1,2}/best --config configs/arkit_cnn_whisper.yaml \
  --dev-config configs/arkit_cnn_whisper_dev.yaml --data "$PREP" --fp16 \
  --name cnn.landmarks68-arkit -o "$OUT/landmarks68_arkit"
python docs/scripts/eval_blendshapes52.py X4="$OUT/blendshapes52/cnn_whisper_x4" --data "$PREP" \
  --config configs/arkit_cnn_whisper.yaml -o "$OUT/eval_blendshapes52"
python benchmarks/heldout_landmarks.py ARKIT="$OUT/landmarks68_arkit" OLD=cnn_gru.landmarks68-mediapipe \
  --data "$PREP" --config configs/landmarks_cnn_whisper_ccc.yaml --json "$OUT/heldout_landmarks.json"
# the mouth-sync driver compared on the development split (docs/model-quality.md, lip sync)
for seed in 0 1; do
  speechface train estimator --config configs/cause_cnn_whisper_ccc_dev.yaml --set progress=false \
    seed=$seed out_dir="$OUT/au17w/ccc_dev_s$seed"
done
for seed in 0 1 2 3; do python docs/scripts/arkit_dev_variants.py "base_s$seed" --seed "$seed"; done
python docs/scripts/mouth_driver_dev.py --au "$OUT"/au17w/ccc_dev_s{0,1}/best --arkit base_s{0,1,2,3}
echo "model folders under $OUT (copy them to src/speechface/pretrained/<name> to package them)"
