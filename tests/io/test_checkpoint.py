from __future__ import annotations

import pytest
import torch
from torch import nn

from posebh_cli.engine import run_dir as rd
from posebh_cli.errors import PosebhError
from posebh_cli.io import checkpoint as ckpt


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model.register_buffer("table", torch.randn(2, 3))
    return model


def test_weights_round_trip_bitwise(tmp_path):
    model = small_model()
    ckpt.save_weights(tmp_path / "m.safetensors", model)
    other = small_model()
    with torch.no_grad():
        other[0].weight.add_(1.0)
    ckpt.load_weights_into(other, tmp_path / "m.safetensors")
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_missing_and_mismatched_weights_are_one_line_errors(tmp_path):
    with pytest.raises(PosebhError, match="checkpoint file not found"):
        ckpt.load_weights_file(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(PosebhError, match="not a readable safetensors checkpoint"):
        ckpt.load_weights_file(tmp_path / "bad.safetensors")
    ckpt.save_weights(tmp_path / "m.safetensors", small_model())
    with pytest.raises(PosebhError, match="does not match the model"):
        ckpt.load_weights_into(nn.Linear(3, 4), tmp_path / "m.safetensors")
    wider = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5))
    wider.register_buffer("table", torch.randn(2, 3))
    with pytest.raises(PosebhError, match="has shape"):
        ckpt.load_weights_into(wider, tmp_path / "m.safetensors")


def test_run_info_and_trainer_state(tmp_path):
    ckpt.save_run_info(tmp_path / "run.json", {"step": 3})
    assert ckpt.load_run_info(tmp_path / "run.json")["step"] == 3
    (tmp_path / "other.json").write_text('{"step": 3}')
    with pytest.raises(PosebhError, match="not a posebh run.json"):
        ckpt.load_run_info(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text('{"step": ')
    with pytest.raises(PosebhError, match="not valid JSON"):
        ckpt.load_run_info(tmp_path / "broken.json")
    ckpt.save_trainer_state(tmp_path / "s.pt", {"step": 7, "rng": torch.get_rng_state()})
    assert ckpt.load_trainer_state(tmp_path / "s.pt")["step"] == 7
    (tmp_path / "s.pt").write_bytes(b"not a pickle")
    with pytest.raises(PosebhError, match="corrupt or unsafe trainer state"):
        ckpt.load_trainer_state(tmp_path / "s.pt")


def test_latest_link_and_run_resolution(tmp_path):
    runs = tmp_path / "runs"
    first, second = runs / "a", runs / "b"
    for run in (first, second):
        run.mkdir(parents=True)
        (run / rd.WEIGHTS_FILE).write_bytes(b"x")
    rd.point_latest_at(first)
    rd.point_latest_at(second)
    assert rd.resolve_run_dir(None, runs) == second.resolve()
    with pytest.raises(PosebhError, match="does not exist: train first"):
        rd.resolve_run_dir(None, tmp_path / "elsewhere")
    (runs / "empty").mkdir()
    with pytest.raises(PosebhError, match="no model.safetensors"):
        rd.resolve_run_dir(runs / "empty", runs)
