"""APT-36K's video-level split: 7:1:2 per species, seeded, so train and eval never share a video.

The raw `apt36k_annotations.json` has no official split (METHOD.md §5, §8.5). Videos (not frames)
are assigned: for each species (category), its videos are shuffled with a generator seeded by
`seed` and the species' own id, then cut by largest remainders of 7:1:2, so every species keeps
the proportions and the split does not depend on the order of the file. A video belongs to the
species most of its annotations name.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from posebh_cli.data.readers.common import expect_coco_layout, load_json
from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_write_json

SPLITS = ("train", "val", "test")
RATIOS = (7, 1, 2)
PATH_PARTS = 3  # species folder / clip folder / frame file, as PoseBH keeps them


def split_counts(n: int, ratios: tuple[int, ...] = RATIOS) -> list[int]:
    """n videos -> counts per split by largest remainder (ties go to the earlier split)."""
    quotas = [n * r / sum(ratios) for r in ratios]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(ratios)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def assign_videos(video_species: dict[int, int], seed: int) -> dict[int, str]:
    """{video id: species id} -> {video id: split name}, deterministic for a seed."""
    by_species: dict[int, list[int]] = defaultdict(list)
    for video, species in video_species.items():
        by_species[species].append(video)
    assignment: dict[int, str] = {}
    for species in sorted(by_species):
        videos = sorted(by_species[species])
        # One stream per species: adding a species never reshuffles another one.
        rng = np.random.default_rng([seed, species & 0x7FFFFFFF])
        shuffled = [videos[i] for i in rng.permutation(len(videos))]
        start = 0
        for name, count in zip(SPLITS, split_counts(len(videos)), strict=True):
            for video in shuffled[start:start + count]:
                assignment[video] = name
            start += count
    return assignment


def relative_frame_path(file_name: str) -> str:
    r"""'D:\Animal_pose\AP-36k-patr1\29wolf\v3c2\frame7.jpg' -> '29wolf/v3c2/frame7.jpg'."""
    return "/".join(PureWindowsPath(file_name).parts[-PATH_PARTS:])


def split_apt36k(data: Any, source: str | os.PathLike[str], seed: int) -> dict[str, dict]:
    """The raw APT-36K object -> {split: pre-split-layout object} (iscrowd, POSIX paths)."""
    images, annotations = expect_coco_layout(data, source)
    video_of_image: dict[Any, int] = {}
    for i, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or "video_id" not in image:
            raise PosebhError(f"{source}: images[{i}]: missing key 'id' or 'video_id' (APT-36K "
                              "splits by video)")
        video_of_image[image["id"]] = int(image["video_id"])
    species_votes: dict[int, Counter] = defaultdict(Counter)
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise PosebhError(f"{source}: annotations[{i}]: missing key 'image_id'")
        if annotation["image_id"] not in video_of_image:
            raise PosebhError(f"{source}: annotations[{i}]: field 'image_id': "
                              f"{annotation['image_id']} is not in 'images'")
        video = int(annotation.get("video_id", video_of_image[annotation["image_id"]]))
        species_votes[video][int(annotation.get("category_id", 0))] += 1
    video_species = {video: -1 for video in set(video_of_image.values())}
    for video, votes in species_votes.items():
        # most_common is stable on ties; min() over ties makes it independent of file order.
        top = max(votes.values())
        video_species[video] = min(s for s, c in votes.items() if c == top)
    assignment = assign_videos(video_species, seed)
    header = {key: value for key, value in data.items() if key not in ("images", "annotations")}
    outputs = {name: dict(header, images=[], annotations=[]) for name in SPLITS}
    split_of_image = {}
    for image in images:
        name = assignment[int(image["video_id"])]
        split_of_image[image["id"]] = name
        outputs[name]["images"].append(dict(image, file_name=relative_frame_path(
            str(image.get("file_name", "")))))
    for annotation in annotations:
        converted = {key: value for key, value in annotation.items() if key != "is_crowd"}
        converted["iscrowd"] = int(annotation.get("is_crowd", annotation.get("iscrowd", 0)))
        outputs[split_of_image[annotation["image_id"]]]["annotations"].append(converted)
    return outputs


def split_file_name(split: str) -> str:
    return f"apt36k_{split}.json"


def write_apt36k_split(raw_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       seed: int = 0, data: Any = None) -> dict[str, Path]:
    """Read the raw file once, write `apt36k_{train,val,test}.json` atomically; their paths."""
    raw_path, out_dir = Path(raw_path), Path(out_dir)
    if data is None:
        data = load_json(raw_path)
    outputs = split_apt36k(data, raw_path, seed)
    paths = {}
    for name, content in outputs.items():
        paths[name] = out_dir / split_file_name(name)
        atomic_write_json(paths[name], content, indent=None)
    return paths
