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


def test_a_server_runs_in_a_process_group_of_its_own_inside_the_bench_s_session(tmp_path):
    """run.py's servers stay in the session of run.py and its load clients: with the kernel's
    autogroup scheduling, a session of their own would make the kernel split the CPUs between
    the server and the load client as two equal groups in the unpinned scenarios (bench/README,
    goal 5). A process group of their own keeps a terminal's Ctrl-C to run.py alone."""
    probe = (
        "import os, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"  # in this child only: bench/'s modules shadow nothing here
        "import run\n"
        "from pathlib import Path\n"
        "server = run.Running([sys.executable, '-c', 'import time; time.sleep(30)'], {}, "
        "Path(sys.argv[2]) / 'server.log', None, Path(sys.argv[2]))\n"
        "pid = server.proc.pid\n"
        "print(os.getsid(pid) == os.getsid(0), os.getpgid(pid) == pid, os.getpgid(pid) != os.getpgid(0))\n"
        "server.stop()\n")
    bench = Path(__file__).resolve().parent.parent / "bench"
    out = subprocess.run([sys.executable, "-c", probe, str(bench), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]
