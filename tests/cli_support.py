"""Assertions shared by the CLI tests."""

from __future__ import annotations


def assert_user_error(result, *fragments: str) -> None:
    """A user mistake: exit code 2 and exactly one line, the error naming each fragment."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
