"""Pose estimation across skeletons: PoseBH multi-dataset training, evaluation and inference."""

__version__ = "0.1.0"
