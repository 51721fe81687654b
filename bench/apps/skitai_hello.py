"""Launch script for the Skitai under test (bench/.venvs/skitai).

Mounts the hello app at "/", with BENCH_LARGE=1 the large-body app (`large.py`, the h2c-large
scenarios) at "/large", with BENCH_WORK=1 the CPU-bound app (`work.py`, work-scaling) at "/work",
and, when BENCH_STATIC_DIR is set, that directory at "/static" so the static scenarios hit the
same files nginx serves.
Threads come from BENCH_THREADS (default 4; 0 runs the app on the loop thread), worker
processes from BENCH_WORKERS (default 1).
Access logging is switched off unless BENCH_ACCESS_LOG is set: printing one line per request
would measure the console, not the server. With BENCH_LOG_DIR too, the logs go to files in that
directory (`skitai.enable_file_logging`), the way a user runs a server with its access log on
(run.py's `-log` entries). The port is given as --port=N by run.py.
"""
import os

import large
import work
from hello import app  # the script's directory is on sys.path

import skitai

skitai.mount("/", app)
if os.environ.get("BENCH_LARGE"):
    skitai.mount("/large", large.app)
if os.environ.get("BENCH_WORK"):
    skitai.mount("/work", work.app)
static_dir = os.environ.get("BENCH_STATIC_DIR")
if static_dir:
    skitai.mount("/static", static_dir)
if not os.environ.get("BENCH_ACCESS_LOG"):  # bench/callgrind.py --access-log
    skitai.log_off("/")
if os.environ.get("BENCH_LOG_DIR"):  # run.py's -log entries: request.log and the rest in files
    skitai.enable_file_logging(os.environ["BENCH_LOG_DIR"])
skitai.run(address="127.0.0.1", port=5000, threads=int(os.environ.get("BENCH_THREADS", "4")),
           workers=int(os.environ.get("BENCH_WORKERS", "1")))
