"""Which backend members failed lately, and the order in which a call tries an alias's members.

One `MemberHealth` and one `Balancer` per worker process, beside its connection pool, used on
the event loop thread only: a member that one request found down is skipped by every other
request of the worker until its back-off has passed, then tried again (doubling the back-off
while it keeps failing, up to `max_backoff`).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from skitai.backends import Alias, Member


class MemberHealth:
    def __init__(self, backoff: float = 1.0, max_backoff: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self._down: dict[Member, tuple[float, float]] = {}  # member -> (retry at, its back-off)

    def is_up(self, member: Member) -> bool:
        down = self._down.get(member)
        return down is None or self.clock() >= down[0]

    def failed(self, member: Member) -> None:
        previous = self._down.get(member)
        backoff = self.backoff if previous is None else min(previous[1] * 2, self.max_backoff)
        self._down[member] = (self.clock() + backoff, backoff)

    def succeeded(self, member: Member) -> None:
        if self._down:  # empty nearly always: no hash of the member per proxied request then
            self._down.pop(member, None)

    def down(self) -> list[Member]:
        """The members still inside their back-off."""
        return [member for member in self._down if not self.is_up(member)]


class Balancer:
    """Smooth weighted round robin (nginx's): over a run of calls each member that is up gets
    its weight's share, spread out rather than in bursts."""

    def __init__(self, health: MemberHealth) -> None:
        self.health = health
        self._current: dict[tuple[str, int], int] = {}

    def order(self, alias: Alias) -> list[Member]:
        """The members to try for one call: the weighted pick among those up first, the other
        members up next (heaviest first), the members in their back-off last."""
        if len(alias.members) == 1:  # up or down, it is the one to try (a proxied alias, often)
            return list(alias.members)
        indexes = range(len(alias.members))
        up = [index for index in indexes if self.health.is_up(alias.members[index])]
        down = [index for index in indexes if index not in up]
        if not up:
            return [alias.members[index] for index in down]
        total = 0
        for index in up:
            weight = alias.members[index].weight
            key = (alias.name, index)
            self._current[key] = self._current.get(key, 0) + weight
            total += weight
        chosen = max(up, key=lambda index: self._current[(alias.name, index)])
        self._current[(alias.name, chosen)] -= total
        rest = sorted((index for index in up if index != chosen), key=lambda index: -alias.members[index].weight)
        return [alias.members[index] for index in (chosen, *rest, *down)]
