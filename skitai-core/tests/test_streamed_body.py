"""StreamedBody's back-pressure between the loop (which feeds it and pauses the protocol) and an
app thread (which reads it and asks the loop to resume), with the loop's queue played by hand."""
import threading

from skitai.body import HIGH_WATER, LOW_WATER, StreamedBody


class Protocol:
    """What a protocol's pause and resume do: stop and restart taking input."""

    def __init__(self):
        self.taking_input = True

    def pause(self):
        self.taking_input = False

    def resume(self):
        self.taking_input = True


def test_a_resume_the_loop_runs_after_a_newer_pause_is_undone_by_the_next_feed():
    protocol = Protocol()
    loop_queue = []  # the resumes the reader asked for, not yet run by the loop
    body = StreamedBody(protocol.pause, lambda: loop_queue.append(protocol.resume), timeout=5)
    body.feed(b"x" * (HIGH_WATER + 1))
    assert not protocol.taking_input

    # The reader wants more than is buffered: it asks the loop to resume and waits ...
    got = []
    reader = threading.Thread(target=lambda: got.append(body.read(HIGH_WATER + 100)))
    reader.start()
    while not loop_queue:
        reader.join(0.01)
    # ... the loop feeds it over the mark again, pausing, before it runs that resume; the reader
    # takes what it asked for and leaves enough that it asks for no other resume
    body.feed(b"x" * (LOW_WATER + 200))
    reader.join(5)
    assert len(got[0]) == HIGH_WATER + 100 and len(loop_queue) == 1
    loop_queue.pop()()  # the stale resume: the protocol takes input again
    assert protocol.taking_input

    body.feed(b"x" * (2 * HIGH_WATER))  # over the mark with the body still marked paused
    assert not protocol.taking_input, "the body went on growing with input unpaused"
