"""The reader registry: format name -> reader function (a plain dict, filled by a decorator).

Every reader has one signature:
    read(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
         check_images=False, progress=None) -> (InstanceTable, ReadReport)
`skeleton` is a skeleton name; its keypoint count is what every record must match.
"""

from __future__ import annotations

from collections.abc import Callable

from posebh_cli.errors import PosebhError

Reader = Callable[..., tuple]
READERS: dict[str, Reader] = {}
# The skeleton each format is annotated with, when the user does not say (--skeleton).
DEFAULT_SKELETONS: dict[str, str | None] = {}


def register_reader(name: str, default_skeleton: str | None) -> Callable[[Reader], Reader]:
    """Decorator: add a reader under `name`; a second reader with the same name is a bug."""

    def decorate(function: Reader) -> Reader:
        if name in READERS:
            raise ValueError(f"reader '{name}' is already registered by "
                             f"{READERS[name].__module__}.{READERS[name].__name__}")
        READERS[name] = function
        DEFAULT_SKELETONS[name] = default_skeleton
        return function

    return decorate


def get_reader(name: str) -> Reader:
    if name not in READERS:
        from posebh_cli.skeletons.registry import unknown_name_error

        raise unknown_name_error("dataset format", name, list(READERS))
    return READERS[name]


def default_skeleton(name: str) -> str:
    get_reader(name)
    skeleton = DEFAULT_SKELETONS[name]
    if skeleton is None:
        raise PosebhError(f"dataset format '{name}' has no default skeleton; pass --skeleton "
                          "(or set the dataset's skeleton in the recipe)")
    return skeleton
