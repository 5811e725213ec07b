from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from posebh_cli import __version__
from posebh_cli.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("skeletons", "recipe"):
        assert command in result.output


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys, runpy; sys.argv=['posebh','--help'];\n"
            "try:\n    runpy.run_module('posebh_cli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported at start-up'")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=REPO)
    assert time.perf_counter() - start < 5.0  # generous for CI; measured ~0.4 s here


def test_skeletons_list_and_show():
    result = runner.invoke(app, ["skeletons"])
    assert result.exit_code == 0 and "coco" in result.output
    result = runner.invoke(app, ["skeletons", "show", "coco", "--json"])
    assert result.exit_code == 0 and '"left_eye"' in result.output


def test_unknown_skeleton_is_one_line_exit_2():
    result = runner.invoke(app, ["skeletons", "show", "cocoo"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'coco'" in lines[0]
    assert "Traceback" not in result.output


def test_recipe_check_good_and_bad(tmp_path):
    result = runner.invoke(app, ["recipe", "check", str(REPO / "recipes" / "vitb_mdt.toml")])
    assert result.exit_code == 0, result.output
    assert "214 keypoint types" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "recipes" / "vitb_mdt.toml").read_text().replace(
        "weight_decay", "weight_decey"))
    result = runner.invoke(app, ["recipe", "check", str(bad)])
    assert result.exit_code == 2
    assert "optimizer.weight_decey: unknown key; did you mean 'weight_decay'?" in result.output


def test_user_skeleton_dir_option(tmp_path):
    spec = (REPO / "posebh_cli/skeletons/specs/coco.toml").read_text()
    (tmp_path / "mine.toml").write_text(spec.replace('name = "coco"', 'name = "mine"'))
    result = runner.invoke(app, ["--skeleton-dir", str(tmp_path), "skeletons", "show", "mine"])
    assert result.exit_code == 0, result.output
    (tmp_path / "bad.toml").write_text(spec.replace('name = "coco"', 'name = "bad"').replace(
        "[1, 2], [3, 4]", "[1, 2], [2, 4]"))
    result = runner.invoke(app, ["--skeleton-dir", str(tmp_path), "skeletons"])
    assert result.exit_code == 2
    assert "bad.toml: key 'flip_pairs[1]'" in result.output and "symmetric" in result.output


def test_error_line_keeps_square_brackets_of_paths(tmp_path):
    # rich would read "[run]" as a style tag and drop it from the one-line error
    missing = tmp_path / "[run]" / "recipe.toml"
    result = runner.invoke(app, ["recipe", "check", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.output.replace("\n", "")


def test_ok_line_keeps_square_brackets_of_paths(tmp_path):
    recipe = tmp_path / "[exp]" / "vitb.toml"
    recipe.parent.mkdir()
    recipe.write_text((REPO / "recipes" / "vitb_mdt.toml").read_text())
    result = runner.invoke(app, ["recipe", "check", str(recipe)])
    assert result.exit_code == 0, result.output
    assert str(recipe) in result.output.replace("\n", "")
