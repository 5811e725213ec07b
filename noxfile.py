"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s demo`, `nox -s bench`.

Every install goes through constraints.txt so pip never swaps the CPU build of torch for a
multi-GB CUDA build (the registry's newest torchvision would pull one in).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
CONSTRAINTS = ("-c", "constraints.txt")


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, "torch==2.13.0")
    session.install(*CONSTRAINTS, "-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the same command .ci/run runs)."""
    _install(session, "dev", "gpu", "tensorboard")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", "posebh_cli", "tests", "benchmarks", "noxfile.py")


DEMO_STEPS = (
    ("prepare", "synthetic", "--out", "data/synthetic", "--overwrite"),
    ("train", "recipes/synthetic_tiny.toml", "--run-dir", "runs/synthetic_tiny", "--overwrite"),
    ("eval", "--dataset", "all", "--out", "runs/synthetic_tiny/eval"),
    ("predict", "data/synthetic/videos/animal.mp4", "--skeleton", "animal",
     "--out", "runs/synthetic_tiny/predict"),
    ("predict", "data/synthetic/images/human/val", "--skeleton", "human",
     "--out", "runs/synthetic_tiny/predict"),
    ("predict", "data/synthetic/videos/hand.mp4", "--skeleton", "hand", "--decoder", "prototypes",
     "--out", "runs/synthetic_tiny/predict"),
    ("visualize-prototypes", "--image", "data/synthetic/images/animal/val/000000.jpg",
     "--expected", "data/synthetic/correspondence.json", "--out", "runs/synthetic_tiny/prototypes"),
)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job end to end on the built-in synthetic data (README's first command)."""
    _install(session)
    for step in DEMO_STEPS:
        session.run("posebh", *step)


@nox.session
def bench(session: nox.Session) -> None:
    _install(session, "gpu")
    for script in ("metrics", "pipeline", "sinkhorn", "train_step"):
        session.run("python", f"benchmarks/{script}.py", "--quick")
