"""bench/procs.py: the sampler run.py keeps beside every load run, against a real child process."""
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

# bench/ is no package (see test_bench_targets.py): load the one file
_spec = importlib.util.spec_from_file_location(
    "bench_procs", Path(__file__).resolve().parent.parent / "bench" / "procs.py")
procs = sys.modules["bench_procs"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(procs)


def test_the_sampler_scans_proc_only_at_its_start_and_stop(monkeypatch):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    scans = []
    real_scan = procs.process_tree
    monkeypatch.setattr(procs, "process_tree", lambda root: scans.append(root) or real_scan(root))
    try:
        sampler = procs.UsageSampler(child.pid)
        sampler.start()
        time.sleep(0.8)  # three samples of the tree found at the start, none of /proc
        assert scans == [child.pid]
        usage = sampler.stop()
        assert scans == [child.pid, child.pid]  # the stop looks again, for a process started meanwhile
        assert usage["rss_mb"] > 1 and usage["process_rss_mb"] == usage["rss_mb"]  # one process: itself
    finally:
        child.kill()
        child.wait(timeout=10)
