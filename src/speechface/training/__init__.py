"""Training recipes, one per component, on a shared engine.

In: prepared data (shards, face folders, FER+, RAVDESS; see :mod:`speechface.data`) and a
config. Out: a trained model folder (``best/`` or ``final/``), checkpoints, ``log.csv``,
``metrics.json``.

- :mod:`.engine`: the run: train state, checkpoints and resume, stop rules, logs, ranks (built
  from :mod:`.ranks`, :mod:`.checkpoints`, :mod:`.logs`);
- :mod:`.config`: config checks and the ``speechface train NAME`` commands;
- recipes: :mod:`.estimator`, :mod:`.emotion`, :mod:`.expression`, :mod:`.ganimation`,
  :mod:`.warp`, each keeping its config, set-up, loop body, validation and samples.
"""

from ..data.clips import TrainClip, load_training_clips
from .config import TRAIN_COMMANDS, TrainConfig, add_train_parsers, train_command
from .emotion import EmotionTrainConfig, UtteranceEmotionTrainer, train_emotion
from .engine import (
    CheckpointManager,
    CSVLogger,
    EarlyStopping,
    MetricWindow,
    Run,
    TrainState,
    init_distributed,
    seed_everything,
)
from .estimator import EstimatorTrainConfig, EstimatorTrainer
from .expression import ExpressionTrainConfig, ExpressionTrainer
from .ganimation import GANimationTrainConfig, GANimationTrainer
from .mesh import MeshFitConfig, fit_mesh
from .warp import LandmarkWarpTrainConfig, LandmarkWarpTrainer

__all__ = ["Run", "TrainState", "TrainConfig", "MetricWindow", "train_command", "TRAIN_COMMANDS",
           "add_train_parsers", "CheckpointManager", "CSVLogger", "EarlyStopping",
           "init_distributed", "seed_everything",
           "EstimatorTrainConfig", "EstimatorTrainer", "TrainClip", "load_training_clips",
           "ExpressionTrainConfig", "ExpressionTrainer", "GANimationTrainConfig", "GANimationTrainer",
           "LandmarkWarpTrainConfig", "LandmarkWarpTrainer",
           "EmotionTrainConfig", "UtteranceEmotionTrainer", "train_emotion",
           "MeshFitConfig", "fit_mesh"]
