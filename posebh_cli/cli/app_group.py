"""The Typer group class that turns `PosebhError` into one red line and exit code 2."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from posebh_cli.errors import USER_ERROR_EXIT_CODE, PosebhError


class PosebhGroup(TyperGroup):
    """Commands keep their order of registration in --help; user errors never show a traceback."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except PosebhError as error:
            from rich.markup import escape

            from posebh_cli.cli.console import print_user_error

            print_user_error(escape(str(error)))
            raise typer.Exit(USER_ERROR_EXIT_CODE) from None
