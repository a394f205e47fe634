"""Training recipes, one per component, on a shared engine (:mod:`.engine`).

Each recipe keeps its config, set-up, loop body, validation and samples; the engine owns the
train state, checkpoints and resume, stop rules, logs, ranks and the ``speechface train NAME``
commands (:func:`~speechface.training.engine.train_command`).
"""

from ..data.clips import TrainClip, load_training_clips
from .emotion import EmotionTrainConfig, UtteranceEmotionTrainer, train_emotion
from .engine import (
    TRAIN_COMMANDS,
    CheckpointManager,
    CSVLogger,
    EarlyStopping,
    MetricWindow,
    Run,
    TrainConfig,
    TrainState,
    add_train_parsers,
    init_distributed,
    seed_everything,
    train_command,
)
from .estimator import EstimatorTrainConfig, EstimatorTrainer
from .expression import ExpressionTrainConfig, ExpressionTrainer
from .ganimation import GANimationTrainConfig, GANimationTrainer
from .warp import LandmarkWarpTrainConfig, LandmarkWarpTrainer

__all__ = ["Run", "TrainState", "TrainConfig", "MetricWindow", "train_command", "TRAIN_COMMANDS",
           "add_train_parsers", "CheckpointManager", "CSVLogger", "EarlyStopping",
           "init_distributed", "seed_everything",
           "EstimatorTrainConfig", "EstimatorTrainer", "TrainClip", "load_training_clips",
           "ExpressionTrainConfig", "ExpressionTrainer", "GANimationTrainConfig", "GANimationTrainer",
           "LandmarkWarpTrainConfig", "LandmarkWarpTrainer",
           "EmotionTrainConfig", "UtteranceEmotionTrainer", "train_emotion"]
