"""The plugin's settings, set by a script before `skitai.run()` (inherited by the workers), and
the spool folder the agent and the commands share."""
from __future__ import annotations

import os

from skitai.paths import abspath, user_name

SPOOL_ENV = "SKITAI_SMTPDA_SPOOL"      # overrides the default spool (tests, containers)
SYSTEM_SPOOL = "/var/tmp/skitai/smtpda"  # the manual's spool, for root
RETRY_DELAY = 60.0   # seconds before the first retry; doubles at each attempt
MAX_ATTEMPTS = 8     # 60 s, 2, 4, 8, 16, 32, 64 min: a failing server gets about two hours


class Settings:
    spool: str | None = None
    retry_delay = RETRY_DELAY
    max_attempts = MAX_ATTEMPTS


settings = Settings()


def default_spool() -> str:
    """`SKITAI_SMTPDA_SPOOL`, else the manual's `/var/tmp/skitai/smtpda` for root, else
    `/var/tmp/skitai-<user>/smtpda`: one agent per user serves every app of that user, no user
    reads another's mail, and no user needs a folder another user made first (/var/tmp keeps
    files across reboots, unlike /tmp)."""
    override = os.environ.get(SPOOL_ENV)
    if override:
        return os.path.abspath(override)
    if os.geteuid() == 0:
        return SYSTEM_SPOOL
    return os.path.join(f"/var/tmp/skitai-{user_name()}", "smtpda")


def spool_path() -> str:
    return settings.spool or default_spool()


def set_spool(path: str) -> None:
    """Spool messages in `path` (relative to the script's directory) instead of the default; the
    agent started with `--smtpda` and `skitai smtpda ... --spool PATH` serve that folder."""
    if not path:
        raise ValueError("skitai_smtpda.set_spool(path) needs a path")
    settings.spool = abspath(path)


def set_retry(delay: float = RETRY_DELAY, attempts: int = MAX_ATTEMPTS) -> None:
    """A message that meets a temporary failure (a 4xx answer, a connection that fails) is
    tried again after `delay` seconds, then twice as long each time, `attempts` times in all
    before it goes to the dead letters. Carried by each message, so every agent honours it."""
    if float(delay) <= 0 or int(attempts) < 1:
        raise ValueError("skitai_smtpda.set_retry(delay, attempts) needs delay > 0 and attempts >= 1")
    settings.retry_delay, settings.max_attempts = float(delay), int(attempts)
