"""The plugin's settings, set by a script before `skitai.run()` (inherited by the workers)."""
from __future__ import annotations

POOL_SIZE = 10


class Settings:
    pool_size = POOL_SIZE


settings = Settings()


def set_pool_size(size: int) -> None:
    """At most `size` connections per database member in each worker process (default 10);
    statements beyond that wait for a free connection within their timeout."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"skitai_dbi.set_pool_size: a pool needs at least one connection, not {size!r}")
    settings.pool_size = size
