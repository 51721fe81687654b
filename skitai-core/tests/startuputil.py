"""Checks shared by the tests of scripts that must refuse to start."""
from __future__ import annotations

import subprocess

# a test run as root is warned about it before the workers start; not a refusal's line
ROOT_WARNING = "skitai: WARNING: running as root"


def one_line(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The refusal's only stderr line without its `skitai: error: ` prefix, after checking the
    exit status and that the line is the only one."""
    assert result.returncode == status, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith(ROOT_WARNING)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("skitai: error: "), result.stderr
    return lines[0][len("skitai: error: "):]
