"""h2's state machine steps, taken without hashing h2's enums.

Why: h2 looks every step up in a dict keyed by `(state, input)`, and `StreamInputs`,
`ConnectionInputs` and `ConnectionState` are plain `Enum`s, whose `__hash__` runs in Python.
A small HTTP/2 request takes eight such steps (stream and connection, received and sent); the
profile of the h2c hello had `Enum.__hash__` called eleven times per request.

* `StreamStep` holds h2's transitions for one stream input in a list indexed by the state
  (`StreamState` is an `IntEnum` counted from 0), and `advance` takes the step as
  `H2StreamStateMachine.process_input` does: the same new state, the same callback and
  events, and for an input the state does not take, h2's own `process_input` raises its error.
* `connection_step` skips h2's connection state machine where h2's own table says the input
  leaves an open server connection as it is, with no callback (receiving HEADERS, sending
  HEADERS or DATA); in any other state it goes to h2.

The tables are read from h2 at import (`h2.stream._transitions`,
`H2ConnectionStateMachine._transitions`), so they follow the installed h2.
"""
from __future__ import annotations

import h2.stream
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.exceptions import ProtocolError
from h2.stream import StreamInputs, StreamState

if [state.value for state in StreamState] != list(range(len(StreamState))):  # pragma: no cover
    raise ImportError("h2's StreamState is no longer numbered from 0: skitai_http2.transitions needs a review")


class StreamStep:
    """One stream input with h2's transition for it from each state (None: not allowed)."""

    __slots__ = ("input", "by_state")

    def __init__(self, input_: StreamInputs) -> None:
        self.input = input_
        self.by_state: list[tuple | None] = [None] * len(StreamState)
        for (state, candidate), transition in h2.stream._transitions.items():
            if candidate is input_:
                self.by_state[state] = transition


def advance(machine: h2.stream.H2StreamStateMachine, step: StreamStep) -> list:
    """`machine.process_input(step.input)`."""
    previous = machine.state
    transition = step.by_state[previous]
    if transition is None:
        return machine.process_input(step.input)  # h2's error, and the stream CLOSED
    callback, machine.state = transition
    if callback is None:
        return []
    try:
        return callback(machine, previous)
    except ProtocolError:
        machine.state = StreamState.CLOSED
        raise
    except AssertionError as error:
        machine.state = StreamState.CLOSED
        raise ProtocolError(error) from error


RECV_HEADERS = StreamStep(StreamInputs.RECV_HEADERS)
RECV_END_STREAM = StreamStep(StreamInputs.RECV_END_STREAM)
SEND_HEADERS = StreamStep(StreamInputs.SEND_HEADERS)
SEND_INFORMATIONAL_HEADERS = StreamStep(StreamInputs.SEND_INFORMATIONAL_HEADERS)
SEND_DATA = StreamStep(StreamInputs.SEND_DATA)
SEND_END_STREAM = StreamStep(StreamInputs.SEND_END_STREAM)

# The connection inputs that h2's table maps from an open server connection back to it with
# no callback, found once here (a `frozenset` lookup would hash the enum on every call).
_STAYS_OPEN = {input_ for (state, input_), (callback, target) in H2ConnectionStateMachine._transitions.items()
               if state is ConnectionState.SERVER_OPEN and target is ConnectionState.SERVER_OPEN
               and callback is None}


class ConnectionStep:
    __slots__ = ("input", "stays_open")

    def __init__(self, input_: ConnectionInputs) -> None:
        self.input = input_
        self.stays_open = input_ in _STAYS_OPEN


def connection_step(machine: H2ConnectionStateMachine, step: ConnectionStep) -> list:
    """`machine.process_input(step.input)`."""
    if step.stays_open and machine.state is ConnectionState.SERVER_OPEN:
        return []
    return machine.process_input(step.input)


CONNECTION_RECV_HEADERS = ConnectionStep(ConnectionInputs.RECV_HEADERS)
CONNECTION_SEND_HEADERS = ConnectionStep(ConnectionInputs.SEND_HEADERS)
CONNECTION_SEND_DATA = ConnectionStep(ConnectionInputs.SEND_DATA)
