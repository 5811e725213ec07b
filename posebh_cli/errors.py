"""Errors a user can fix (bad paths, keys, values) versus bugs.

`PosebhError` is raised for user mistakes: the CLI prints its message as one red line and exits
with code 2, without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

USER_ERROR_EXIT_CODE = 2


class PosebhError(Exception):
    """A user mistake: the message is one line naming the file/key and what was expected."""

    def __init__(self, message: str) -> None:
        # One line: the CLI prints it as-is, so newlines would break the "one clear line" promise.
        super().__init__(" ".join(str(message).split()))
