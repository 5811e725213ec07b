"""`python -m posebh_cli`: the same as the `posebh` console script."""

from posebh_cli.cli import app

if __name__ == "__main__":
    app(prog_name="posebh")
