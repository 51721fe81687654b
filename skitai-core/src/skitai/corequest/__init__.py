"""Corequests: operations an app starts on the worker's event loop and collects later.

`from skitai import was` in a request, then `was.Thread(...)`, `was.Tasks(...)`, a plugin's
`was.get(...)` ... all answer `Task`s with the same methods (`dispatch`, `wait`, `fetch`, `one`,
`commit`, `returning`) and `Result`s with the same fields. A plugin adds a kind of corequest by
subclassing `Driver` (see `skitai.corequest.driver`).
"""
from .driver import Driver
from .result import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, STA_UNSENT, Result
from .task import LoopBlockedError, Mask, Task
from .tasks import Tasks

__all__ = ["Driver", "LoopBlockedError", "Mask", "Result", "Task", "Tasks",
           "STA_NETERR", "STA_NORMAL", "STA_REQFAIL", "STA_TIMEOUT", "STA_UNSENT"]
