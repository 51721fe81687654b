"""`Tasks`: several corequests handled as one.

Its members already run concurrently; `Tasks` only waits for them together, under one deadline
(`timeout` is for the whole bundle, not for each member), and answers lists. Members may be
Tasks, Masks, or Tasks themselves (a nested bundle answers a nested list).
"""
from __future__ import annotations

import time
from typing import Any

from .result import Result
from .task import DEFAULT_CACHE_IF, DEFAULT_TIMEOUT


class Tasks:
    """`Tasks([t1, t2], timeout=10, meta=None)`, `Tasks(t1, t2)` or `Tasks(t1, b=t2)`.

    Members named by keyword come after the positional ones and are what `dict()` answers.
    """

    def __init__(self, *reqs: Any, timeout: float = DEFAULT_TIMEOUT, meta: dict | None = None, **named: Any) -> None:
        if len(reqs) == 1 and isinstance(reqs[0], (list, tuple)):
            reqs = tuple(reqs[0])
        self.tasks: list[Any] = []
        self.names: dict[str, int] = {}
        for task in reqs:
            self.add(task)
        for name, task in named.items():
            self.names[name] = len(self.tasks)
            self.add(task)
        self.timeout = timeout
        self.meta = {} if meta is None else meta

    def __repr__(self) -> str:
        return f"<Tasks of {len(self.tasks)}>"

    # building
    def add(self, task: Any) -> None:
        """Append a corequest (a nested `Tasks` stays one member)."""
        if not callable(getattr(task, "dispatch", None)):
            raise TypeError(f"Tasks takes corequests (Task, Mask, Tasks), not {type(task).__name__}")
        self.tasks.append(task)

    def merge(self, task: Any) -> None:
        """Append a corequest; the members of a `Tasks` are appended one by one."""
        if isinstance(task, Tasks):
            for member in task.tasks:
                self.add(member)
        else:
            self.add(task)

    # waiting, under one deadline for all members
    def _each(self, method: str, timeout: float | None, *args: Any) -> list[Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return [getattr(task, method)(max(0.0, deadline - time.monotonic()), *args) for task in self.tasks]

    def dispatch(self, timeout: float | None = None, cache: float | None = None,
                 cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> list[Result]:
        return self._each("dispatch", timeout, cache, cache_if)

    def wait(self, timeout: float | None = None) -> list[Result]:
        return self._each("wait", timeout)

    def fetch(self, timeout: float | None = None, cache: float | None = None,
              cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> list[Any]:
        """Every member's data; raises the first failure (see `Task.fetch`)."""
        return self._each("fetch", timeout, cache, cache_if)

    def one(self, timeout: float | None = None, cache: float | None = None,
            cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> list[Any]:
        """Every member's single record; HTTP 410 when one of them has none or several."""
        return self._each("one", timeout, cache, cache_if)

    def commit(self, timeout: float | None = None) -> None:
        self._each("commit", timeout)

    def dict(self, timeout: float | None = None, cache: float | None = None,
             cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> dict[str, Any]:
        """The data of the members named by keyword, by name."""
        data = self.fetch(timeout, cache, cache_if)
        return {name: data[index] for name, index in self.names.items()}

    def returning(self, response: Any) -> Any:
        for task in self.tasks:
            task.returning(response)
        return response

    # a sequence of results
    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.dispatch())

    def __getitem__(self, index: int | slice) -> Any:
        """The `Result` of one member (a list of them for a slice); only those are waited on."""
        if isinstance(index, slice):
            return Tasks(self.tasks[index], timeout=self.timeout).dispatch()
        return self.tasks[index].dispatch(self.timeout)
