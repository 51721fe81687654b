"""Test sessions: one per distribution folder (skitai-*/), `integration` for tests/, plus
`lint`, `fuzz` (long fuzzing runs) and `bench`. `nox` alone runs everything but the fuzzing and
the benchmark."""
from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
DISTRIBUTIONS = sorted(path.parent for path in ROOT.glob("skitai-*/pyproject.toml"))
nox.options.reuse_existing_virtualenvs = True


TEST_REQUIREMENTS = ROOT / "requirements-test.txt"
PYTEST = ("pytest", "--timeout=300", "-rs")  # -rs: every skipped test with its reason


def _install_all(session: nox.Session) -> None:
    """Every distribution from its folder, and the project's test dependencies (kept out of the
    distributions' extras, which are for users)."""
    editable = [arg for folder in DISTRIBUTIONS for arg in ("-e", str(folder))]
    session.install(*editable, "-r", str(TEST_REQUIREMENTS))


def _distribution_session(folder: Path):
    def run_tests(session: nox.Session) -> None:
        _install_all(session)
        session.run(*PYTEST, str(folder / "tests"), *session.posargs)

    run_tests.__doc__ = f"Tests of {folder.name}."
    return run_tests


DISTRIBUTION_SESSIONS = []
for _folder in DISTRIBUTIONS:
    _name = _folder.name.removeprefix("skitai-")
    nox.session(name=_name)(_distribution_session(_folder))
    DISTRIBUTION_SESSIONS.append(_name)


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package integration and end-to-end tests in tests/."""
    _install_all(session)
    session.run(*PYTEST, str(ROOT / "tests"), *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The fuzz tests (names containing "fuzz") of every distribution, run long: each runs
    SKITAI_FUZZ_EXAMPLES examples (default 20000) instead of the suite's few seconds' worth.
    Not among the default sessions."""
    _install_all(session)
    examples = os.environ.get("SKITAI_FUZZ_EXAMPLES", "20000")
    for folder in DISTRIBUTIONS:
        session.run("pytest", "--timeout=0", "-k", "fuzz", str(folder / "tests"), *session.posargs,
                    env={"SKITAI_FUZZ_EXAMPLES": examples}, success_codes=[0, 5])  # 5: no fuzz test there


@nox.session(name="fuzz_h2")
def fuzz_h2(session: nox.Session) -> None:
    """The HTTP/2 frame fuzzer for longer than the suite's few seconds: SKITAI_FUZZ_SECONDS
    (default 300); SKITAI_FUZZ_SEED replays a failure."""
    _install_all(session)
    session.run("pytest", "--timeout=0", "-s", str(ROOT / "skitai-http2" / "tests" / "test_fuzz_frames.py"),
                *session.posargs, env={"SKITAI_FUZZ_SECONDS": os.environ.get("SKITAI_FUZZ_SECONDS", "300")})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", str(ROOT))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against peer servers (installs wrk, nginx and the peers; takes minutes)."""
    session.run("bash", str(ROOT / "bench" / "setup.sh"), external=True)
    session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs, external=True)


nox.options.sessions = [*DISTRIBUTION_SESSIONS, "integration", "lint"]
