from __future__ import annotations

import tomllib

from posebh_cli.io.toml_writer import dumps


def test_round_trip_of_nested_tables_and_arrays_of_tables():
    data = {
        "name": "x \"quoted\"",
        "seed": 3,
        "flag": True,
        "lr": 1e-3,
        "sizes": [256, 192],
        "model": {"backbone": "base", "betas": [0.9, 0.999]},
        "datasets": [
            {"name": "a", "train": {"ann": "a.json", "images": "img"}},
            {"name": "b", "ratio": 0.5},
        ],
    }
    assert tomllib.loads(dumps(data)) == data
