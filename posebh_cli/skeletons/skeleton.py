"""A skeleton spec: keypoint names, flip pairs, links, OKS sigmas, colours, family.

Specs are data (one TOML file per skeleton); this module turns one parsed TOML table into a
validated, frozen `Skeleton`. Validation names the file and the key, so a user adding a skeleton
sees exactly what to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError

FAMILIES = ("human", "animal", "hand", "wholebody")
_REQUIRED_KEYS = ("name", "family", "keypoints", "flip_pairs", "links", "sigmas")
_OPTIONAL_KEYS = ("description", "upper_body", "keypoint_colors", "link_colors", "aliases",
                  "reference")
_SIDE_COLORS = {"left": (0, 255, 0), "right": (255, 128, 0), "centre": (51, 153, 255)}


@dataclass(frozen=True)
class Skeleton:
    """One keypoint layout. Indices are 0-based positions in `keypoints`.

    flip_index: (K,) int64, the mirror of each keypoint (itself when unpaired).
    sigmas: (K,) float64 OKS sigmas.
    keypoint_colors: (K, 3) uint8 RGB; link_colors: (L, 3) uint8 RGB.
    """

    name: str
    family: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    links: tuple[tuple[int, int], ...]
    sigmas: np.ndarray
    upper_body: tuple[int, ...]
    keypoint_colors: np.ndarray
    link_colors: np.ndarray
    description: str = ""
    aliases: tuple[str, ...] = ()
    source: str = ""
    flip_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        flip_index = np.arange(len(self.keypoints), dtype=np.int64)
        for a, b in self.flip_pairs:
            flip_index[a], flip_index[b] = b, a
        object.__setattr__(self, "flip_index", flip_index)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def lower_body(self) -> tuple[int, ...]:
        upper = set(self.upper_body)
        return tuple(i for i in range(self.num_keypoints) if i not in upper)

    def index(self, keypoint_name: str) -> int:
        try:
            return self.keypoints.index(keypoint_name)
        except ValueError:
            raise PosebhError(
                f"skeleton '{self.name}' has no keypoint '{keypoint_name}'"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain TOML/JSON-ready data (round-trips through `skeleton_from_table`)."""
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "aliases": list(self.aliases),
            "keypoints": list(self.keypoints),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "links": [list(link) for link in self.links],
            "sigmas": [float(s) for s in self.sigmas],
            "upper_body": list(self.upper_body),
            "keypoint_colors": self.keypoint_colors.astype(int).tolist(),
            "link_colors": self.link_colors.astype(int).tolist(),
        }


def _fail(source: str, key: str, expected: str) -> PosebhError:
    return PosebhError(f"{source}: key '{key}': {expected}")


def _int_pairs(table: dict[str, Any], key: str, count: int, source: str) -> tuple:
    pairs = table.get(key, [])
    if not isinstance(pairs, list):
        raise _fail(source, key, "expected a list of [i, j] pairs")
    out = []
    for n, pair in enumerate(pairs):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise _fail(source, f"{key}[{n}]", f"expected a pair of integers, got {pair!r}")
        if not all(0 <= v < count for v in pair):
            raise _fail(source, f"{key}[{n}]",
                        f"indices {pair} out of range for {count} keypoints (0..{count - 1})")
        if pair[0] == pair[1]:
            raise _fail(source, f"{key}[{n}]", f"pair {pair} joins a keypoint to itself")
        out.append((pair[0], pair[1]))
    return tuple(out)


def _check_flip_pairs(pairs: tuple, names: tuple[str, ...], source: str) -> None:
    # Symmetric: every keypoint appears in at most one pair, so flipping twice is the identity.
    seen: dict[int, int] = {}
    for n, (a, b) in enumerate(pairs):
        for v in (a, b):
            if v in seen:
                raise _fail(source, f"flip_pairs[{n}]",
                            f"keypoint {v} ('{names[v]}') already paired in flip_pairs[{seen[v]}];"
                            " flip pairs must be symmetric (each keypoint in one pair at most)")
            seen[v] = n


def _colors(table: dict[str, Any], key: str, rows: int, default: np.ndarray, source: str):
    if key not in table:
        return default
    try:
        colors = np.asarray(table[key], dtype=np.int64)
    except (TypeError, ValueError):
        raise _fail(source, key, "expected a list of [r, g, b] integer triples") from None
    if colors.shape != (rows, 3) or colors.min(initial=0) < 0 or colors.max(initial=0) > 255:
        raise _fail(source, key, f"expected {rows} [r, g, b] triples with values 0..255")
    return colors.astype(np.uint8)


def _side_colors(names: tuple[str, ...]) -> np.ndarray:
    def side(name: str) -> str:
        lowered = name.lower()
        if "left" in lowered or lowered.startswith("l_"):
            return "left"
        if "right" in lowered or lowered.startswith("r_"):
            return "right"
        return "centre"

    return np.asarray([_SIDE_COLORS[side(n)] for n in names], dtype=np.uint8)


def skeleton_from_table(table: dict[str, Any], source: str) -> Skeleton:
    """Validate one parsed TOML table (from file `source`) and build the `Skeleton`."""
    unknown = sorted(set(table) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise _fail(source, unknown[0], "unknown key; expected one of "
                    + ", ".join(_REQUIRED_KEYS + _OPTIONAL_KEYS))
    for key in _REQUIRED_KEYS:
        if key not in table:
            raise _fail(source, key, "missing")
    name = table["name"]
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise _fail(source, "name", "expected a name of letters, digits, '_' or '-'")
    if table["family"] not in FAMILIES:
        raise _fail(source, "family", f"expected one of {', '.join(FAMILIES)}, "
                    f"got {table['family']!r}")
    names = table["keypoints"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(source, "keypoints", "expected a non-empty list of keypoint names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(source, "keypoints", f"names must be unique; repeated: {duplicates[0]!r}")
    names = tuple(names)
    count = len(names)
    flip_pairs = _int_pairs(table, "flip_pairs", count, source)
    _check_flip_pairs(flip_pairs, names, source)
    links = _int_pairs(table, "links", count, source)
    sigmas = table["sigmas"]
    if (not isinstance(sigmas, list)
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in sigmas)):
        raise _fail(source, "sigmas", "expected a list of numbers")
    if len(sigmas) != count:
        raise _fail(source, "sigmas", f"expected {count} sigmas (one per keypoint), "
                    f"got {len(sigmas)}")
    if any(not math.isfinite(s) or s <= 0 for s in sigmas):
        raise _fail(source, "sigmas", "every sigma must be a finite number > 0")
    upper_body = table.get("upper_body", [])
    if (not isinstance(upper_body, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count
                    for i in upper_body)):
        raise _fail(source, "upper_body", f"expected keypoint indices in 0..{count - 1}")
    keypoint_colors = _colors(table, "keypoint_colors", count, _side_colors(names), source)
    # A link takes the colour of its far end, so left and right limbs differ.
    default_link_colors = np.asarray([keypoint_colors[b] for _, b in links],
                                     dtype=np.uint8).reshape(len(links), 3)
    link_colors = _colors(table, "link_colors", len(links), default_link_colors, source)
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _fail(source, "aliases", "expected a list of names")
    return Skeleton(
        name=name,
        family=table["family"],
        keypoints=names,
        flip_pairs=flip_pairs,
        links=links,
        sigmas=np.asarray(sigmas, dtype=np.float64),
        upper_body=tuple(upper_body),
        keypoint_colors=keypoint_colors,
        link_colors=link_colors,
        description=str(table.get("description", "")),
        aliases=tuple(aliases),
        source=str(Path(source)),
    )
