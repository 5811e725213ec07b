"""The rich consoles every command prints through (stdout for results, stderr for errors)."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)


def print_user_error(message: str) -> None:
    """One red line on stderr: the contract for user mistakes (exit code 2 follows)."""
    error_console.print(f"[bold red]error:[/bold red] [red]{message}[/red]", soft_wrap=True,
                        markup=True, emoji=False)
