"""A leaky bucket: how protections tell a busy peer from an abusive one without timers (the
HTTP/2 and HTTP/3 plugins' flood protections)."""
from __future__ import annotations


class Budget:
    """Allows `burst` events at once and `rate` more per second after that.

    `spend(now)` returns False once the peer has used more than it earned; the caller then
    ends the connection. Time is passed in, so the bucket is testable without a clock.
    """

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self.level = 0.0
        self.updated = 0.0

    def spend(self, now: float, amount: float = 1.0) -> bool:
        level = self.level
        if level > 0.0:  # time drains what was spent; earned credit (below zero) stays
            level = max(0.0, level - (now - self.updated) * self.rate)
        self.level = level + amount
        self.updated = now
        return self.level <= self.burst

    def refund(self, amount: float) -> None:
        """Credit events the peer now has reason to send (a WINDOW_UPDATE for each DATA frame
        we sent). Credit is kept for later, up to one burst's worth, since the answers arrive
        after what earned them."""
        self.level = max(-float(self.burst), self.level - amount)
