"""Skeleton specs as data (one TOML per skeleton) and the global keypoint-type table."""

from posebh_cli.skeletons.registry import (
    add_skeleton_dirs,
    all_skeletons,
    get_skeleton,
    skeleton_names,
    skeletons_of_family,
)
from posebh_cli.skeletons.skeleton import FAMILIES, Skeleton
from posebh_cli.skeletons.type_table import KeypointTypeTable

__all__ = [
    "FAMILIES",
    "KeypointTypeTable",
    "Skeleton",
    "add_skeleton_dirs",
    "all_skeletons",
    "get_skeleton",
    "skeleton_names",
    "skeletons_of_family",
]
