"""`skitai.testing.requires_commands`: a test whose tool is missing skips with a reason naming
the tool and how CI installs it; under CI (CI=true) the module fails instead, so CI never skips
it unseen. Run in a pytest subprocess, the way the suites use it."""
import os
import subprocess
import sys

TEST_MODULE = '''
from skitai.testing import requires_commands

needs_tool = requires_commands("{command}", install="apt-get install some-package")


@needs_tool
def test_uses_the_tool():
    assert True
'''


def run_pytest(tmp_path, command, ci):
    (tmp_path / "test_tool.py").write_text(TEST_MODULE.format(command=command))
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_tool_skips_with_its_name_and_install_line(tmp_path):
    result = run_pytest(tmp_path, "skitai-no-such-tool", ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "skitai-no-such-tool not installed (CI: apt-get install some-package)" in result.stdout


def test_a_missing_tool_fails_under_ci(tmp_path):
    result = run_pytest(tmp_path, "skitai-no-such-tool", ci=True)
    assert result.returncode != 0
    assert "CI=true but skitai-no-such-tool not installed (CI: apt-get install some-package): " \
           ".ci/run must install it" in result.stdout
    assert "1 passed" not in result.stdout and "skipped" not in result.stdout


def test_a_present_tool_runs_the_test_under_ci_too(tmp_path):
    result = run_pytest(tmp_path, "sh", ci=True)
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout
