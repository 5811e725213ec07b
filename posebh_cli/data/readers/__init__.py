"""Dataset readers, one module per source format, all producing an `InstanceTable`.

`READERS` maps a format name (recipe `datasets.format`) to its reader; importing this package
registers them all.
"""

from posebh_cli.data.readers import coco_style, interhand, mpii, wholebody  # noqa: F401
from posebh_cli.data.readers.common import InvalidRecord, ReadReport
from posebh_cli.data.readers.detections import read_detections
from posebh_cli.data.readers.registry import (
    DEFAULT_SKELETONS,
    READERS,
    default_skeleton,
    get_reader,
    register_reader,
)

__all__ = [
    "DEFAULT_SKELETONS",
    "READERS",
    "InvalidRecord",
    "ReadReport",
    "default_skeleton",
    "get_reader",
    "read_detections",
    "register_reader",
]
