"""A leaky bucket: how protections tell a busy peer from an abusive one without timers."""
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
        self.level = max(0.0, self.level - (now - self.updated) * self.rate) + amount
        self.updated = now
        return self.level <= self.burst

    def refund(self, amount: float) -> None:
        """Give back what a legitimate exchange earned (a frame the peer had reason to send)."""
        self.level = max(0.0, self.level - amount)
