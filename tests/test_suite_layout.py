"""The test folders of every distribution and tests/ run in one pytest session
(`pytest skitai-*/tests tests`): pytest imports test modules by basename from folders without
`__init__.py`, so two modules of one name, or a test module importing `conftest` (there is
one per folder), break collection for everyone."""
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_FOLDERS = sorted(ROOT.glob("skitai-*/tests")) + [ROOT / "tests"]


def python_modules():
    return [path for folder in TEST_FOLDERS for path in folder.glob("*.py") if path.name != "conftest.py"]


def test_module_basenames_are_unique_across_test_folders():
    counts = Counter(path.name for path in python_modules())
    assert [name for name, count in counts.items() if count > 1] == []


def test_no_test_module_imports_conftest():
    importing = [str(path.relative_to(ROOT)) for path in python_modules()
                 if any(line.startswith(("from conftest ", "import conftest"))
                        for line in path.read_text().splitlines())]
    assert importing == []


def test_every_test_folder_collects_in_one_session():
    folders = [str(folder.relative_to(ROOT)) for folder in TEST_FOLDERS]
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             *folders], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error" not in result.stdout.splitlines()[-1], result.stdout[-3000:]
    # the repository is the rootdir (pytest.ini): test ids name their folder, and each folder's
    # conftest fixtures (several define `serve`) stay its own instead of serving every folder
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    assert all(line.startswith(tuple(f"{folder}/" for folder in folders)) for line in ids), ids[:5]
