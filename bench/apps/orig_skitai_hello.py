"""Launch script for the ORIGINAL skitai 0.57.16 (bench/.venvs/orig), as a baseline.

How 0.57.16 is made comparable (read from its skitai/__init__.py and backbone/):
- `workers=1`: on POSIX it always forks, so this is one master (which does not
  serve) plus one serving worker; run.py measures RSS over the whole tree.
- `threads` from BENCH_THREADS (default 4), its own default too.
- `skitai.log_off("/")` silences per-request access lines for every path except
  exactly "/", which 0.57.16 always logs; that is why run.py requests /hello.
  Server events still go to the screen; run.py sends them to a log file.
- `--port=N` on the command line overrides the port, as in the rebuild.
- It mounts a static directory the same way (`skitai.mount("/static", dir)`).
- Its lock and data files go under ~/.skitai/apps-orig_skitai_hello/.
- On SIGTERM its master logs "unmounting app" and then hangs; run.py kills the
  tree with SIGKILL after its stop timeout.
"""
import os

from hello import app  # the script's directory is on sys.path

import skitai

skitai.mount("/", app)
static_dir = os.environ.get("BENCH_STATIC_DIR")
if static_dir:
    skitai.mount("/static", static_dir)
skitai.log_off("/")
skitai.run(
    address="127.0.0.1",
    port=5000,
    workers=1,
    threads=int(os.environ.get("BENCH_THREADS", "4")),
)
