#!/usr/bin/env python3
"""The corequest hand-off alone, without a server: `python bench/handoff.py [--rounds 20000]`
in the development venv (skitai and uvloop installed).

A uvloop loop runs in one thread; the main thread makes round trips to it one after the other
and prints the mean microseconds per round trip of:
- bare: `loop.call_soon_threadsafe(future.set_result, 1)` and `concurrent.futures.Future.result()`,
  the least a thread-to-loop-and-back trip can cost;
- run_coroutine_threadsafe: `asyncio.run_coroutine_threadsafe(noop(), loop).result()`, how the
  engine handed corequests over before;
- engine: `Engine.submit(noop(), map_error).result()`, what every corequest pays now.
Each is measured three times, interleaved; the best of the three counts (the machine is shared).
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import threading
import time

import uvloop

from skitai.corequest.engine import Engine
from skitai.corequest.result import STA_REQFAIL, Result


async def noop() -> int:
    return 1


def map_error(error: Exception) -> Result:
    return Result.failure(STA_REQFAIL, error)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    engine = Engine(loop, None, None)

    def bare() -> None:
        future = concurrent.futures.Future()
        loop.call_soon_threadsafe(future.set_result, 1)
        future.result()

    variants = {
        "bare": bare,
        "run_coroutine_threadsafe": lambda: asyncio.run_coroutine_threadsafe(noop(), loop).result(),
        "engine": lambda: engine.submit(noop(), map_error).result(),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(3):
        for name, round_trip in variants.items():
            started = time.perf_counter()
            for _ in range(rounds):
                round_trip()
            best[name] = min(best[name], (time.perf_counter() - started) / rounds * 1e6)
    for name, microseconds in best.items():
        print(f"{name}: {microseconds:.1f} us per round trip")
    loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
