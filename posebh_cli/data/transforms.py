"""The top-down transform: one annotated instance -> network crop + heatmap targets.

Per sample: box -> (center, scale) with padding 1.25 and the input's aspect ratio; in training
random flip, half-body crop, scale, rotation (and optional centre jitter) (METHOD.md §4); one
`cv2.warpAffine` of the ORIGINAL image with flip, crop and rotation folded into a single matrix;
keypoints through the same matrix; Gaussian targets (UDP or MSRA, sigma 2).

Normalisation choice: the crop leaves the worker as uint8 (3, H, W) RGB, 4x fewer bytes than
float32 to pickle between processes and to copy to the accelerator; `normalize_images` turns a
batch into ImageNet-normalised floats on the model's device. `normalize_in_worker=True` gives
float32 normalised crops instead (for consumers without a device step).

Colour: images stay BGR as OpenCV decodes them, preferably as 4-channel BGRA (the image cache's
layout, for which warpAffine is 2-3x faster); the BGR->RGB swap and the dropping of the padding
channel are folded into the one HWC -> CHW copy of the small crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from posebh_cli.codecs.encode import ENCODE_METHODS, encode
from posebh_cli.data.affine import (
    box_to_center_scale,
    compose_affine,
    flip_matrix,
    transform_points,
    warp_image,
    warp_matrix,
)
from posebh_cli.data.augment import (
    AugmentConfig,
    flip_keypoints,
    half_body_center_scale,
    sample_scale_rotation,
)

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TopDownConfig:
    """Geometry and target settings shared by training and evaluation (METHOD.md §4)."""

    input_size: tuple[int, int] = (256, 192)  # (H, W)
    heatmap_size: tuple[int, int] = (64, 48)  # (h, w)
    sigma: float = 2.0
    encoding: str = "udp"  # "udp" (COCO, MPII) or "msra" (the others); also picks the affine
    box_padding: float = 1.25
    normalize_in_worker: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODE_METHODS:
            raise ValueError(f"encoding must be one of {ENCODE_METHODS}, got {self.encoding!r}")

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[1] / self.input_size[0]

    @property
    def udp(self) -> bool:
        return self.encoding == "udp"


@dataclass(frozen=True)
class CropParams:
    """Where one sample's crop came from. center/scale are in the (possibly mirrored) image."""

    center: np.ndarray  # (2,)
    scale: np.ndarray  # (2,) crop (w, h) in pixels
    rotation: float  # degrees
    flipped: bool
    matrix: np.ndarray  # (2, 3) original image -> crop, flip included
    crop_matrix: np.ndarray  # (2, 3) (mirrored) image -> crop, i.e. `matrix` without the flip


class TopDownTransform:
    """Callable turning (image, box, keypoints) into a training or evaluation sample."""

    def __init__(self, config: TopDownConfig | None = None) -> None:
        self.config = config or TopDownConfig()

    def crop_params(
        self,
        box_xywh: np.ndarray,
        keypoints: np.ndarray,
        image_width: int,
        flip_index: np.ndarray | None,
        upper_body: np.ndarray | None,
        rng: np.random.Generator | None,
        train: bool,
    ) -> tuple[CropParams, np.ndarray]:
        """Sample the crop; returns it and the (K, 3) keypoints in the (mirrored) image frame."""
        cfg, aug = self.config, self.config.augment
        center, scale = box_to_center_scale(box_xywh, cfg.aspect_ratio, cfg.box_padding)
        keypoints = np.asarray(keypoints, dtype=np.float64)
        rotation, flipped = 0.0, False
        if train:
            if rng is None:
                raise ValueError("training transforms need a numpy Generator")
            if flip_index is not None and rng.random() < aug.flip_prob:
                flipped = True
                keypoints = flip_keypoints(keypoints, flip_index, image_width)
                center = np.array([image_width - 1 - center[0], center[1]])
            num_visible = int((keypoints[:, 2] > 0).sum())
            if (
                upper_body is not None
                and aug.half_body_prob > 0
                and num_visible >= aug.half_body_min_joints
                and rng.random() < aug.half_body_prob
            ):
                half = half_body_center_scale(
                    keypoints, upper_body, cfg.aspect_ratio, rng, aug.half_body_padding
                )
                if half is not None:
                    center, scale = half
            scale_factor, rotation = sample_scale_rotation(rng, aug)
            scale = scale * scale_factor
            if aug.center_jitter > 0:
                center = center + rng.uniform(-1.0, 1.0, size=2) * aug.center_jitter * scale
        crop_matrix = warp_matrix(center, scale, rotation, cfg.input_size, cfg.udp)
        matrix = crop_matrix
        if flipped:
            matrix = compose_affine(crop_matrix, flip_matrix(image_width))
        params = CropParams(
            center=np.asarray(center, dtype=np.float64),
            scale=np.asarray(scale, dtype=np.float64),
            rotation=rotation,
            flipped=flipped,
            matrix=matrix,
            crop_matrix=crop_matrix,
        )
        return params, keypoints

    def __call__(
        self,
        image: np.ndarray,
        box_xywh: np.ndarray,
        keypoints: np.ndarray,
        flip_index: np.ndarray | None = None,
        upper_body: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        train: bool = True,
    ) -> dict[str, Any]:
        """One sample.

        Args:
            image: (H_img, W_img, 3) uint8 BGR as cv2.imread returns it, or (H_img, W_img, 4) BGRA
                (faster to warp; see posebh_cli.data.image_cache).
            box_xywh: (4,) box in image pixels.
            keypoints: (K, 3) (x, y, v) in image pixels, v > 0 = labelled.
            flip_index: (K,) mirror permutation; None disables flipping.
            upper_body: upper-body keypoint ids; None disables half-body.
            rng: the sample's generator (required when train).
        Returns dict:
            image: (3, H, W) uint8 RGB tensor, or float32 ImageNet-normalised if
                config.normalize_in_worker.
            heatmaps: (K, h, w) float32; weights: (K,) float32.
            keypoints: (K, 3) float32 (x, y) in input pixels + visibility flag (v > 0 as 0/1).
            center: (2,), scale: (2,) float32 (crop frame, mirrored image when flipped);
            rotation: float; flipped: bool.
        """
        cfg = self.config
        params, kps_image = self.crop_params(
            box_xywh, keypoints, image.shape[1], flip_index, upper_body, rng, train
        )
        crop = warp_image(image, params.matrix, cfg.input_size)  # (H, W, 3 or 4) BGR(A)
        # Keypoints are already in the mirrored frame: only the crop part of the matrix applies.
        kps_input = transform_points(kps_image[:, :2], params.crop_matrix)  # (K, 2)
        visible = kps_image[:, 2] > 0
        heatmaps, weights = encode(
            kps_input, visible, cfg.input_size, cfg.heatmap_size, cfg.sigma, cfg.encoding
        )
        # One copy: HWC BGR(A) -> CHW RGB (channels 2, 1, 0; any alpha padding dropped).
        chw_rgb = np.ascontiguousarray(crop.transpose(2, 0, 1)[2::-1])
        image_tensor = torch.from_numpy(chw_rgb)
        if cfg.normalize_in_worker:
            image_tensor = normalize_images(image_tensor.unsqueeze(0))[0]
        keypoints_out = np.concatenate([kps_input, visible[:, None]], axis=1).astype(np.float32)
        return {
            "image": image_tensor,
            "heatmaps": torch.from_numpy(heatmaps),
            "weights": torch.from_numpy(weights),
            "keypoints": torch.from_numpy(keypoints_out),
            "center": torch.from_numpy(params.center.astype(np.float32)),
            "scale": torch.from_numpy(params.scale.astype(np.float32)),
            "rotation": float(params.rotation),
            "flipped": bool(params.flipped),
        }


def normalize_images(
    images: torch.Tensor,
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB,
    std: tuple[float, float, float] = IMAGENET_STD_RGB,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (B, 3, H, W) RGB in [0, 255] -> (x / 255 - mean) / std in `dtype`, on images' device.

    Move the uint8 batch to the accelerator first (4x fewer bytes), then call this there.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    mean_t = torch.tensor(mean, device=images.device, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=torch.float32).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std_t)
    return ((images.float() - 255.0 * mean_t) * scale).to(dtype)
