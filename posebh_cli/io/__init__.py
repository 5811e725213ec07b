"""Files in and out: atomic writes, checkpoints, prediction writers, video."""
