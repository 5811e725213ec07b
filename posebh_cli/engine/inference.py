"""Batched top-down inference: crops -> heatmaps (heads or prototypes, flip test) -> keypoints.

Shared by validation during training, `posebh eval` and `posebh predict`, so all three report
the same numbers for the same model and data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from posebh_cli.codecs.coordinates import heatmap_to_image
from posebh_cli.codecs.decode import decode
from posebh_cli.codecs.flip import flip_back
from posebh_cli.models.posebh import PoseBHModel


@dataclass(frozen=True)
class InferenceSettings:
    dataset_index: int  # which head / expert / prototype block
    flip_index: np.ndarray  # (K,) mirror permutation of the skeleton
    udp: bool  # UDP crop/heatmap convention (the dataset's encoding)
    heatmap_decoder: str  # shift | udp | dark_udp
    flip_test: bool = True
    decoder: str = "heads"  # heads | prototypes
    autocast_dtype: torch.dtype | None = None


@torch.no_grad()
def predict_heatmaps(model: PoseBHModel, images: torch.Tensor,
                     settings: InferenceSettings) -> torch.Tensor:
    """images: (B, 3, H, W) normalised -> heatmaps (B, K, h, w) fp32 (flip-averaged if asked)."""
    device = images.device

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=settings.autocast_dtype or torch.float32,
                            enabled=settings.autocast_dtype is not None):
            features = model.dataset_features(batch, settings.dataset_index)
            if settings.decoder == "prototypes":
                embeddings = model.embedding_head(features)
                type_ids = model.type_ids(settings.dataset_index)
                return model.prototype_table.heatmaps(embeddings.float(), type_ids)
            return model.head_heatmaps(settings.dataset_index, features)

    heatmaps = run(images)
    if settings.flip_test:
        flipped = run(images.flip(-1))
        heatmaps = 0.5 * (heatmaps + flip_back(flipped, settings.flip_index,
                                               shift=not settings.udp))
    return heatmaps


def decode_to_image(heatmaps: torch.Tensor, center: torch.Tensor, scale: torch.Tensor,
                    input_size: tuple[int, int], settings: InferenceSettings
                    ) -> tuple[np.ndarray, np.ndarray]:
    """heatmaps (B, K, h, w); center/scale (B, 2) -> keypoints (B, K, 2) image px, scores (B, K)."""
    coords, scores = decode(heatmaps, settings.heatmap_decoder)
    image_xy = heatmap_to_image(coords.cpu().double(), center.cpu().double(),
                                scale.cpu().double(), tuple(heatmaps.shape[-2:]), input_size,
                                settings.udp)
    return image_xy.numpy(), scores.cpu().numpy()


def resolve_heatmap_decoder(choice: str, encoding: str) -> str:
    """'auto': UDP decoding for UDP-encoded datasets, the quarter-pixel shift otherwise (§6)."""
    if choice != "auto":
        return choice
    return "udp" if encoding == "udp" else "shift"
