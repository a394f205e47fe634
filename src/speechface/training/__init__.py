"""Trainers: one per component (speech estimators here; expression teacher, GANimation ...)."""

from .common import CheckpointManager, CSVLogger, EarlyStopping, init_distributed, seed_everything
from .emotion import EmotionTrainConfig, UtteranceEmotionTrainer, train_emotion
from .estimator import EstimatorTrainConfig, EstimatorTrainer, TrainClip, load_training_clips
from .expression import ExpressionTrainConfig, ExpressionTrainer
from .ganimation import GANimationTrainConfig, GANimationTrainer
from .warp import LandmarkWarpTrainConfig, LandmarkWarpTrainer

__all__ = ["CheckpointManager", "CSVLogger", "EarlyStopping", "init_distributed", "seed_everything",
           "EstimatorTrainConfig", "EstimatorTrainer", "TrainClip", "load_training_clips",
           "ExpressionTrainConfig", "ExpressionTrainer", "GANimationTrainConfig", "GANimationTrainer",
           "LandmarkWarpTrainConfig", "LandmarkWarpTrainer",
           "EmotionTrainConfig", "UtteranceEmotionTrainer", "train_emotion"]
