#!/usr/bin/env bash
# Idempotent installer for the Skitai benchmark harness.
#
# Installs wrk, nginx, h2load (nghttp2-client) and gtlsclient (ngtcp2-client, bench/h3.py's HTTP/3
# load client) from Debian (apt-get update only when something is missing, so reruns are fast) and builds
# three venvs under bench/.venvs/:
#   peers  - the servers we compare against (gunicorn, waitress, hypercorn,
#            granian, websockets) plus psutil for RSS sampling; uvloop also runs
#            the WebSocket echo load client (ws_echo_client.py);
#            uvicorn (with uvloop and httptools) is the reference Python server;
#   orig   - the ORIGINAL skitai 0.57.16 from PyPI; it has the same import name
#            as the rebuild, so it must live in its own venv;
#   skitai - the Skitai under test, installed editable from ../skitai-core, with the
#            HTTP/2 plugin from ../skitai-http2 (the h2c-hello scenario).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
VENVS="$BENCH_DIR/.venvs"
CORE="$BENCH_DIR/../skitai-core"
PYTHON="${PYTHON:-python3}"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v gtlsclient >/dev/null 2>&1 || missing+=(ngtcp2-client)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}" \
        || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y wrk nginx
fi

# make_venv NAME PACKAGES...: create the venv once, then (re)install packages.
# pip skips what is already satisfied, so a rerun costs a few seconds.
make_venv() {
    local name="$1"; shift
    local venv="$VENVS/$name"
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
}

mkdir -p "$VENVS"
echo "setup: venv peers"
make_venv peers gunicorn waitress hypercorn granian psutil websockets uvloop "uvicorn[standard]"
echo "setup: venv orig (skitai 0.57.16 from PyPI)"
make_venv orig "skitai==0.57.16"
if [ -f "$CORE/pyproject.toml" ]; then
    echo "setup: venv skitai (editable from $CORE)"
    make_venv skitai uvloop -e "$CORE" -e "$BENCH_DIR/../skitai-http2"
else
    echo "setup: $CORE not found yet; skipping the skitai venv (its bench entries will fail)"
fi
echo "setup: done"
