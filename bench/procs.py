"""The bench's view of a server's process tree, read from /proc (no psutil needed, so any python3
runs run.py): which processes a launched server has become, their memory and their CPU time.

run.py samples the tree's memory and CPU time over each load run (UsageSampler);
syscalls.py takes the serving process's CPU time around its `perf stat` runs.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process apart from a later one with its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_tree(root: int) -> dict:
    """{pid: start time} of `root` and all its descendants, read from /proc."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        start = start_time(pid)
        if start is not None:
            tree[pid] = start
            todo.extend(children.get(pid, []))
    return tree


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of `pid`, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def status_kb(pid: int, field: str) -> int | None:
    """A kB figure of /proc/PID/status (`VmRSS`, `VmHWM` ...); None where the process has none
    (a zombie keeps no memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def tree_usage(root: int, tree: dict | None = None) -> tuple:
    """(RSS kB, PSS kB, CPU seconds) summed over the tree of `root` (`tree`: its pids, as
    `process_tree` found them; None: look now), the RSS kB of its
    largest serving process: the largest child of a master that forks its workers (the
    master, which does not serve, is left out), else `root` itself; and the RSS kB of `root`
    alone (a forking server's master, reported beside its worker).

    RSS double-counts pages that forked processes share (a master and its worker),
    so PSS, which splits shared pages among their users, is kept alongside it.
    """
    rss = pss = ticks = largest = root_rss = 0
    tree = process_tree(root) if tree is None else tree
    for pid in tree:
        try:
            ticks += sum(cpu_ticks(pid))
            resident = status_kb(pid, "VmRSS")
            if resident is not None:
                rss += resident
                if pid == root:
                    root_rss = resident
                if pid != root or len(tree) == 1:
                    largest = max(largest, resident)
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return rss, pss, ticks / CLK_TCK, largest, root_rss


class UsageSampler(threading.Thread):
    """Samples the tree every 0.25 s: peak RSS and PSS, and CPU used since start.

    The tree is looked for (a scan of all of /proc) at the start and at the stop only; the
    samples in between read the processes found at the start. Scanning /proc four times a
    second cost an unpinned two-worker Skitai a quarter of its req/s on two CPUs (bench/README,
    "The sampler's own cost"), far more than the scan's ~1 ms of CPU. A process that appears
    during the run is counted from the stop's scan on.
    """

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.tree = process_tree(root)
        self.rss, self.pss, self.cpu0, self.largest, self.root_rss = tree_usage(root, self.tree)
        self.cpu = self.cpu0
        self.t0 = time.monotonic()
        self._stop_event = threading.Event()

    def _sample(self, tree: dict | None = None):
        rss, pss, cpu, largest, root_rss = tree_usage(self.root, tree)
        self.rss, self.pss, self.cpu = max(self.rss, rss), max(self.pss, pss), max(self.cpu, cpu)
        self.largest, self.root_rss = max(self.largest, largest), max(self.root_rss, root_rss)

    def run(self):
        while not self._stop_event.wait(0.25):
            self._sample(self.tree)

    def stop(self) -> dict:
        self._stop_event.set()
        self.join(timeout=2)
        self._sample()
        wall = time.monotonic() - self.t0
        return {"rss_mb": round(self.rss / 1024, 1), "pss_mb": round(self.pss / 1024, 1),
                "process_rss_mb": round(self.largest / 1024, 1), "root_rss_mb": round(self.root_rss / 1024, 1),
                "server_cpu_pct": round(100 * (self.cpu - self.cpu0) / wall),
                "server_cpu_s": round(self.cpu - self.cpu0, 2)}
