"""What both apps do with `was`, so the two frameworks are tested on the same calls."""
import os

from skitai import was


def square(value):
    return value * value


def concurrent_work():
    """A thread, a process, a subprocess and a Mask at once; answers their data."""
    tasks = was.Tasks(was.Thread(square, 3), was.Process(square, 4), was.Subprocess("echo sub"),
                      mask=was.Mask("masked"), timeout=60)
    data = tasks.fetch()
    return {"data": data, "named": tasks.dict(), "pid": os.getpid()}


def visit():
    was.setgs("visits", was.getgs("visits") + 1)
    return {"visits": was.getgs("visits")}


def gone():
    return was.Mask([]).one()  # HTTP 410: no record
