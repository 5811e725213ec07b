"""Import timm on a CPU-only torch whose torchvision wheel was built for CUDA.

The registry's torchvision wheel ships compiled ops for CUDA torch; on the CPU build of torch,
loading them fails and `import torchvision` (hence `import timm`) raises "operator
torchvision::nms does not exist". Defining the two operator schemas that torchvision registers
fake kernels for makes the import succeed. Only torchvision's C++ ops stay unavailable, and posebh
uses neither them nor torchvision.io (images go through OpenCV).
This is done once, here, and only when the plain import fails.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

_MISSING_OP_MESSAGE = "torchvision::nms does not exist"
_op_library = None  # keeps the torch.library.Library alive: dropping it unregisters the schemas


def _define_torchvision_op_schemas() -> None:
    global _op_library
    import torch

    if _op_library is not None:
        return
    _op_library = torch.library.Library("torchvision", "DEF")
    _op_library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _op_library.define(
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
    )


def _forget_partial_imports() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    for name in [n for n in sys.modules if n == "timm" or n.startswith("timm.")]:
        del sys.modules[name]


def import_timm() -> ModuleType:
    """Return the `timm` module, working around a CUDA-built torchvision on CPU torch."""
    try:
        return importlib.import_module("timm")
    except RuntimeError as error:
        if _MISSING_OP_MESSAGE not in str(error):
            raise
    _forget_partial_imports()
    _define_torchvision_op_schemas()
    return importlib.import_module("timm")
