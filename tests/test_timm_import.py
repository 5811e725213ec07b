from __future__ import annotations

import subprocess
import sys


def test_import_timm_builds_a_vit_in_a_fresh_process():
    # A fresh interpreter: the workaround must hold from a cold start, whatever torchvision is.
    code = (
        "from posebh_cli.timm_import import import_timm\n"
        "timm = import_timm()\n"
        "m = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=(64, 48))\n"
        "print(type(m).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "VisionTransformer"


def test_workaround_only_applies_to_the_known_failure(monkeypatch):
    import importlib

    from posebh_cli import timm_import

    def broken(name):
        raise RuntimeError("some other failure")

    monkeypatch.setattr(importlib, "import_module", broken)
    try:
        timm_import.import_timm()
    except RuntimeError as error:
        assert "some other failure" in str(error)
    else:
        raise AssertionError("an unrelated import error must propagate")
