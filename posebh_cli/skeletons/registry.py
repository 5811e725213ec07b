"""Find skeleton specs: the built-in TOML files plus user folders.

User folders come from `--skeleton-dir` (CLI) and the `POSEBH_SKELETON_DIR` environment variable
(several folders separated by the OS path separator). Every `*.toml` there is one skeleton; a name
that clashes with another spec is an error rather than a silent override.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from posebh_cli.errors import PosebhError
from posebh_cli.skeletons.skeleton import FAMILIES, Skeleton, skeleton_from_table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SKELETON_DIR_ENV = "POSEBH_SKELETON_DIR"
BUILTIN_DIR = Path(__file__).with_name("specs")

_user_dirs: list[Path] = []
_cache: dict[str, Skeleton] | None = None
_cache_env: str | None = None  # the POSEBH_SKELETON_DIR value the cache was built with


def add_skeleton_dirs(dirs: list[str | os.PathLike[str]]) -> None:
    """Register user folders of skeleton TOML files (the CLI's `--skeleton-dir`)."""
    global _cache
    for directory in dirs:
        path = Path(directory)
        if not path.is_dir():
            raise PosebhError(f"--skeleton-dir {path}: not a folder")
        if path not in _user_dirs:
            _user_dirs.append(path)
    _cache = None


def reset_registry() -> None:
    """Forget user folders and cached specs (tests)."""
    global _cache
    _user_dirs.clear()
    _cache = None


def _search_dirs() -> list[Path]:
    dirs = [BUILTIN_DIR, *_user_dirs]
    for entry in os.environ.get(SKELETON_DIR_ENV, "").split(os.pathsep):
        if entry:
            path = Path(entry)
            if not path.is_dir():
                raise PosebhError(f"{SKELETON_DIR_ENV}={entry}: not a folder")
            dirs.append(path)
    return dirs


def load_skeleton_file(path: str | os.PathLike[str]) -> Skeleton:
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosebhError(f"{path}: skeleton file not found") from None
    except IsADirectoryError:
        raise PosebhError(f"{path}: expected a skeleton .toml file, got a folder") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PosebhError(f"{path}: not valid TOML ({error})") from None
    return skeleton_from_table(table, str(path))


def all_skeletons() -> dict[str, Skeleton]:
    """Every known skeleton by name (built-in first, then user folders in order)."""
    global _cache, _cache_env
    env = os.environ.get(SKELETON_DIR_ENV, "")
    if _cache is not None and _cache_env == env:
        return _cache
    skeletons: dict[str, Skeleton] = {}
    for directory in _search_dirs():
        for path in sorted(directory.glob("*.toml")):
            skeleton = load_skeleton_file(path)
            if skeleton.name in skeletons:
                raise PosebhError(
                    f"{path}: skeleton name '{skeleton.name}' is already defined by "
                    f"{skeletons[skeleton.name].source}; pick another name"
                )
            skeletons[skeleton.name] = skeleton
    _cache, _cache_env = skeletons, env
    return skeletons


def skeleton_names() -> list[str]:
    return list(all_skeletons())


def unknown_name_error(kind: str, name: str, valid: list[str]) -> PosebhError:
    """One line: the unknown name, a close match if any, and the valid names."""
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return PosebhError(f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}")


def get_skeleton(name: str) -> Skeleton:
    """The skeleton called `name` (or declaring `name` among its aliases)."""
    skeletons = all_skeletons()
    if name in skeletons:
        return skeletons[name]
    for skeleton in skeletons.values():
        if name in skeleton.aliases:
            return skeleton
    raise unknown_name_error("skeleton", name, list(skeletons))


def skeletons_of_family(family: str) -> list[Skeleton]:
    if family not in FAMILIES:
        raise unknown_name_error("skeleton family", family, list(FAMILIES))
    return [s for s in all_skeletons().values() if s.family == family]
