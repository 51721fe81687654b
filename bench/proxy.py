#!/usr/bin/env python3
"""The reverse proxy's two benchmarks, run in the development venv (skitai, skitai-gateway,
gunicorn; wrk, curl and nginx on PATH): `python bench/proxy.py [--duration 10] [--runs 3]
[--size-mib 1024]`.

- proxy-hello: `wrk -t1 -c32` (the median of `--runs` runs, the peers interleaved) on `GET
  /hello` through the Skitai reverse proxy (`apps/skitai_proxy.py`) to one gunicorn member
  (`apps/proxy_member.py`, `-k gthread -w 1 --threads 4`), against nginx `proxy_pass` with
  upstream keepalive to the same member, and against the member direct, in one run. The member
  is the limit for both proxies, so the ratio Skitai/nginx shows the proxies' own cost. Goal:
  >= 0.7x nginx.
- proxy-large: one `GET /big` of `--size-mib` MiB (1 GiB by default) through each with curl to
  /dev/null, and one chunked upload of as much (`curl -T -` from /dev/zero) to `/sink`: MB/s,
  and the RSS of the proxy's processes (master and workers) before and at its peak during each
  transfer (sampled from /proc every 20 ms). nginx streams both ways too (`proxy_request_buffering
  off`, `proxy_max_temp_file_size 0`), as the Skitai proxy does.

Nothing is pinned: member, proxies and load share this machine's cores, so compare the ratios
of one run rather than absolute figures.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from skitai.testing import Nginx, ServerProcess, free_port, stop_process, wait_for_port

APPS = Path(__file__).resolve().parent / "apps"
IN_FLIGHT = 32
NGINX_HTTP = """
    upstream member {{ server 127.0.0.1:{member}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://member;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_max_temp_file_size 0;
            proxy_request_buffering off;
            client_max_body_size 0;
        }}
    }}
"""


def tree_rss(pid: int) -> int:
    """VmRSS of a process and its children, in bytes, from /proc."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Peak:
    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, tree_rss(self.pid))

    def __enter__(self) -> "Peak":
        if self.pid is not None:
            self.peak = tree_rss(self.pid)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def wrk_rate(url: str, duration: float) -> float:
    subprocess.run(["wrk", "-t1", f"-c{IN_FLIGHT}", "-d1s", url], capture_output=True, timeout=60, check=True)
    output = subprocess.run(["wrk", "-t1", f"-c{IN_FLIGHT}", f"-d{duration:.0f}s", url], capture_output=True,
                            text=True, timeout=duration + 60, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} answers were errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def download(url: str, pid: int | None) -> tuple[float, int, int]:
    """(MB/s, RSS of `pid`'s tree before, its peak during) one curl download to /dev/null."""
    with Peak(pid) as peak:
        before = peak.peak
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}", url],
                             capture_output=True, text=True, timeout=600, check=True).stdout
    return float(out) / 1e6, before, peak.peak


def upload(url: str, size: int, pid: int | None) -> tuple[float, int, int]:
    """(MB/s, RSS before, peak) of one chunked upload of `size` zero bytes."""
    with Peak(pid) as peak, open("/dev/zero", "rb") as zero:
        before = peak.peak
        source = subprocess.Popen(["head", "-c", str(size)], stdin=zero, stdout=subprocess.PIPE)
        try:
            done = subprocess.run(["curl", "-sS", "-X", "POST", "-T", "-", "-w", "\n%{http_code} %{speed_upload}", url],
                                  stdin=source.stdout, capture_output=True, text=True, timeout=600)
        finally:
            source.stdout.close()
            source.kill()  # when the server answered before taking it all
            source.wait(10)
    body, _, figures = done.stdout.rpartition("\n")
    status, speed = figures.split()
    if status != "200" or body.strip() != str(size):
        raise RuntimeError(f"{url}: answered {status} {body[:200]!r} {done.stderr[:200]} to {size} bytes")
    return float(speed) / 1e6, before, peak.peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per peer, interleaved; the median counts")
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    for tool in ("wrk", "curl", "nginx"):
        if shutil.which(tool) is None:
            print(f"bench/proxy.py: {tool} is not installed (bash bench/setup.sh)", file=sys.stderr)
            return 2
    member_port = free_port()
    member = subprocess.Popen([sys.executable, "-m", "gunicorn", "--chdir", str(APPS), "-b",
                               f"127.0.0.1:{member_port}", "-k", "gthread", "-w", "1", "--threads", "4",
                               "--keep-alive", "60", "--log-level", "warning", "proxy_member:app"])
    tmp = tempfile.mkdtemp(prefix="skitai-bench-nginx-")
    nginx_port = free_port()
    try:
        wait_for_port(member_port, 20, member)
        peer = Nginx(tmp, NGINX_HTTP.format(member=member_port, port=nginx_port), nginx_port, connections=1024)
        skitai = ServerProcess(str(APPS / "skitai_proxy.py"), env={"PROXY_MEMBER": f"127.0.0.1:{member_port}"})
        with peer as nginx, skitai:
            peers = {"member direct": (member_port, None), "nginx proxy_pass": (nginx_port, nginx.process.pid),
                     "skitai proxy": (skitai.port, skitai.process.pid)}
            runs: dict[str, list[float]] = {name: [] for name in peers}
            for _ in range(args.runs):  # interleaved, so a burst of load elsewhere hits every peer alike
                for name, (port, _) in peers.items():
                    runs[name].append(wrk_rate(f"http://127.0.0.1:{port}/hello", args.duration))
            rates = {name: statistics.median(values) for name, values in runs.items()}
            size = args.size_mib * 1024 * 1024
            large = {name: download(f"http://127.0.0.1:{port}/big?size={size}", pid)
                     for name, (port, pid) in peers.items()}
            uploads = {name: upload(f"http://127.0.0.1:{port}/sink", size, pid) for name, (port, pid) in peers.items()}
    finally:
        stop_process(member)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"proxy-hello (wrk -t1 -c{IN_FLIGHT}, median of {args.runs} x {args.duration:g} s, GET /hello, "
          f"one gunicorn gthread member)")
    for name, rate in rates.items():
        print(f"  {name:18} {rate:10.0f} req/s   runs: {', '.join(f'{value:.0f}' for value in runs[name])}")
    ratio = rates["skitai proxy"] / rates["nginx proxy_pass"]
    print(f"  skitai / nginx     {ratio:10.2f}x   goal >= 0.70x: {'PASS' if ratio >= 0.7 else 'MISS'}")
    print(f"  skitai / direct    {rates['skitai proxy'] / rates['member direct']:10.2f}x")
    for title, figures in ((f"proxy-large download (curl, one GET of {args.size_mib} MiB)", large),
                           (f"proxy-large upload (curl -T -, {args.size_mib} MiB chunked)", uploads)):
        print(title)
        for name, (speed, before, rss) in figures.items():
            memory = (f"RSS {before / 2**20:6.1f} MiB before, peak {rss / 2**20:6.1f} MiB "
                      f"(+{(rss - before) / 2**20:.1f} MiB)") if rss else ""
            print(f"  {name:18} {speed:10.0f} MB/s   {memory}")
        print(f"  skitai / nginx     {figures['skitai proxy'][0] / figures['nginx proxy_pass'][0]:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
