"""A mosaic of example renders (rows: human, animal, hand) for the README and quick looks."""

from __future__ import annotations

import cv2
import numpy as np

from posebh_cli.data.synthetic.render import render_image


def example_mosaic(seed: int = 0, per_row: int = 3, tile: int = 160,
                   families: tuple[str, ...] = ("human", "animal", "hand")) -> np.ndarray:
    """(rows * tile, per_row * tile, 3) uint8 BGR: `per_row` renders per family, squashed
    to square tiles."""
    rows = []
    for f, family in enumerate(families):
        tiles = [cv2.resize(render_image(family, np.random.default_rng([seed, f, i]))[0],
                            (tile, tile), interpolation=cv2.INTER_AREA)
                 for i in range(per_row)]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
