"""The Autobahn TestSuite's cases against Skitai's WebSocket server, run by kosoku's fuzzing
client (the classic autobahntestsuite needs Python 2; kosoku drives its case files natively).

    python skitai-core/tests/autobahn_suite.py            # the selection the test runs (~1 min)
    python skitai-core/tests/autobahn_suite.py --all      # every case, 1.* to 13.* (~6 min)
    python skitai-core/tests/autobahn_suite.py -i '12.2.*' -x '12.2.1?'
    python skitai-core/tests/autobahn_suite.py --all --url ws://127.0.0.1:PORT/   # another server

It starts autobahn_echo.py (`skitai.run`, a master and one worker) on a free port of 127.0.0.1,
runs `kosoku`, writes kosoku's report (index.html, index.json and one file a case) to
skitai-core/tests/autobahn-reports/ (git ignores it) or `-o DIR`, prints the verdicts per group,
the cases that failed and the slowest ones, and exits 1 when any case failed. A case passes when
its behavior is OK, NON-STRICT or INFORMATIONAL and its closing behavior OK or INFORMATIONAL;
UNIMPLEMENTED fails (Skitai speaks permessage-deflate, which 12.* and 13.* need).

This file is not named autobahn.py: kosoku puts a package of that name on sys.path.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHO_SERVER = HERE / "autobahn_echo.py"
REPORTS = HERE / "autobahn-reports"

# The quick selection: every case of 1.* to 10.* (framing, pings, reserved bits and opcodes,
# fragments, UTF-8, closing, limits, the 9.* sizes up to 16 MiB) and, of the 12.* and 13.*
# compression cases (1000 messages each, one at a time), those with 16- and 1024-byte messages
# and those whose 8 KiB messages come in 256-byte fragments, for every data set and every
# permessage-deflate offer. Left out: the bigger compressed messages, most of the full run.
# (Ids, not globs: kosoku 0.1 takes "12.*.1" to match 12.1.10 to 12.1.18 as well.)
QUICK_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*",
               *(f"12.{data}.{case}" for data in range(1, 6) for case in (1, 4, 11)),
               *(f"13.{offer}.{case}" for offer in range(1, 8) for case in (1, 4, 11))]

PASSING_BEHAVIORS = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASSING_CLOSES = {"OK", "INFORMATIONAL"}


def kosoku_command() -> list[str] | None:
    """kosoku's console script, beside this interpreter first (a virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "kosoku"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("kosoku")
    return [found] if found else None


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def run_kosoku(url: str, include: list[str] | None = None, exclude: list[str] | None = None,
               outdir: Path = REPORTS, parallelism: int = 1, timeout: float = 1800) -> dict:
    """Run the cases against `url`; their entries of kosoku's index.json (behavior,
    behaviorClose, duration in ms, remoteCloseCode, reportfile), by case id, plus `result`
    (kosoku's explanation) for the cases that failed. kosoku's output goes to outdir/kosoku.log."""
    command = kosoku_command()
    if command is None:
        raise RuntimeError("kosoku is not installed (pip install 'kosoku>=0.1')")
    outdir = Path(outdir)
    if outdir.exists():
        shutil.rmtree(outdir)  # no verdict of an earlier run may stay
    outdir.mkdir(parents=True)
    args = [*command, url, "-o", str(outdir), "-p", str(parallelism)]
    for case in include or ():
        args += ["-i", case]
    for case in exclude or ():
        args += ["-x", case]
    log = outdir / "kosoku.log"
    with open(log, "wb") as output:
        # exit status 1 means some case failed: the report tells which
        subprocess.run(args, stdout=output, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    index = outdir / "index.json"
    if not index.exists():
        raise RuntimeError(f"kosoku wrote no report:\n{log.read_text(errors='replace')[-3000:]}")
    (_agent, cases), = json.loads(index.read_text()).items()
    for case_id in failures(cases):
        entry = cases[case_id]
        report = json.loads((outdir / entry["reportfile"]).read_text())
        entry["result"] = report.get("result", "")
        entry["resultClose"] = report.get("resultClose", "")
    return cases


def failures(cases: dict) -> list[str]:
    return sorted((case_id for case_id, entry in cases.items()
                   if entry["behavior"] not in PASSING_BEHAVIORS
                   or entry["behaviorClose"] not in PASSING_CLOSES), key=case_key)


def describe_failures(cases: dict) -> str:
    return "\n".join(
        f"  {case_id}: behavior={cases[case_id]['behavior']}, "
        f"behaviorClose={cases[case_id]['behaviorClose']}, "
        f"close code {cases[case_id].get('remoteCloseCode')}: {cases[case_id].get('result', '')}"
        for case_id in failures(cases))


def summary(cases: dict, slowest: int = 10) -> str:
    behaviors = Counter(entry["behavior"] for entry in cases.values())
    closes = Counter(entry["behaviorClose"] for entry in cases.values())
    groups: dict[int, Counter] = defaultdict(Counter)
    durations: dict[int, int] = defaultdict(int)
    for case_id, entry in cases.items():
        group = case_key(case_id)[0]
        groups[group][entry["behavior"]] += 1
        durations[group] += entry["duration"]
    lines = [f"{len(cases)} cases; behavior: {dict(behaviors)}; closing: {dict(closes)}"]
    for group in sorted(groups):
        lines.append(f"  {group:>2}.*  {sum(groups[group].values()):>4} cases  "
                     f"{durations[group] / 1000:7.1f} s  {dict(groups[group])}")
    total = sum(durations.values()) / 1000
    ranked = sorted(cases, key=lambda case_id: -cases[case_id]["duration"])[:slowest]
    lines.append(f"cases' own time: {total:.1f} s; slowest: "
                 + ", ".join(f"{case_id} {cases[case_id]['duration'] / 1000:.1f} s" for case_id in ranked))
    bad = failures(cases)
    lines.append(f"{len(bad)} failed" + (":\n" + describe_failures(cases) if bad else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every case (default: the quick selection)")
    parser.add_argument("-i", "--include", action="append", metavar="CASE", help="case id or glob (repeatable)")
    parser.add_argument("-x", "--exclude", action="append", metavar="CASE", help="case id or glob to leave out")
    parser.add_argument("-p", "--parallelism", type=int, default=1, help="cases run at once (default 1)")
    parser.add_argument("-o", "--outdir", type=Path, default=REPORTS, help=f"report folder (default {REPORTS})")
    parser.add_argument("--url", help="a WebSocket server already running, instead of Skitai's echo server")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds the whole run may take")
    args = parser.parse_args(argv)
    if kosoku_command() is None:
        parser.error("kosoku is not installed: pip install 'kosoku>=0.1' (in skitai's test extra)")
    include = args.include or (None if args.all else QUICK_CASES)
    started = time.monotonic()
    if args.url:
        cases = run_kosoku(args.url, include, args.exclude, args.outdir, args.parallelism, args.timeout)
    else:
        from skitai.testing import ServerProcess

        with ServerProcess(str(ECHO_SERVER)) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            print(f"Skitai echo server on {url}; kosoku's report goes to {args.outdir}/", flush=True)
            cases = run_kosoku(url, include, args.exclude, args.outdir, args.parallelism, args.timeout)
        if server.returncode:
            print(f"the echo server exited with status {server.returncode}:\n{server.output[-3000:]}")
    print(summary(cases))
    print(f"run time: {time.monotonic() - started:.1f} s; report: {args.outdir / 'index.html'}")
    return 1 if failures(cases) else 0


if __name__ == "__main__":
    sys.exit(main())
