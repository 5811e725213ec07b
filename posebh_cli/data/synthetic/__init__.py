"""The procedurally rendered multi-skeleton demo dataset (`posebh prepare synthetic`).

Humans (COCO-17), quadrupeds (AP-10K-17) and hands (OneHand10K-21) in COCO keypoints JSON,
with the generator's cross-skeleton correspondence table beside the data.
"""

from posebh_cli.data.synthetic.concepts import CONCEPTS, correspondence_table, keypoint_pairs
from posebh_cli.data.synthetic.generate import (
    DEFAULT_IMAGES_PER_FAMILY,
    FAMILIES,
    GENERATOR_VERSION,
    generate_synthetic,
)

__all__ = [
    "CONCEPTS",
    "DEFAULT_IMAGES_PER_FAMILY",
    "FAMILIES",
    "GENERATOR_VERSION",
    "correspondence_table",
    "generate_synthetic",
    "keypoint_pairs",
]
