"""`skitai_http2.transitions` must step h2's state machines exactly as h2's `process_input` does:
every state, every input, the flags a stream's callbacks read, compared on twin machines."""
import itertools

import h2.exceptions
import pytest
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.stream import H2StreamStateMachine, StreamInputs, StreamState

from skitai_http2 import transitions

FLAGS = ("client", "headers_sent", "trailers_sent", "headers_received", "trailers_received")


def outcome(machine, step):
    try:
        events = step(machine)
        result = [(type(event).__name__, vars(event)) for event in events]
    except h2.exceptions.ProtocolError as error:
        result = ("ProtocolError", str(error))
    except ValueError as error:
        result = ("ValueError", str(error))
    return result, {name: value for name, value in vars(machine).items()}


def stream_machine(state, flags):
    machine = H2StreamStateMachine(7)
    machine.state = state
    for name, value in zip(FLAGS, flags, strict=True):
        setattr(machine, name, value)
    return machine


@pytest.mark.parametrize("input_", list(StreamInputs))
def test_a_stream_step_is_h2s_in_every_state(input_):
    step = transitions.StreamStep(input_)
    for state, flags in itertools.product(StreamState, itertools.product((None, False, True), repeat=len(FLAGS))):
        reference = outcome(stream_machine(state, flags), lambda machine: machine.process_input(input_))
        lean = outcome(stream_machine(state, flags), lambda machine: transitions.advance(machine, step))
        assert lean == reference, (state, flags)


def test_the_steps_the_frames_take_are_h2s_inputs():
    for name in ("RECV_HEADERS", "RECV_END_STREAM", "SEND_HEADERS", "SEND_INFORMATIONAL_HEADERS",
                 "SEND_DATA", "SEND_END_STREAM"):
        assert getattr(transitions, name).input is StreamInputs[name]


@pytest.mark.parametrize("input_", list(ConnectionInputs))
def test_a_connection_step_is_h2s_in_every_state(input_):
    step = transitions.ConnectionStep(input_)
    for state in ConnectionState:
        machines = [H2ConnectionStateMachine(), H2ConnectionStateMachine()]
        for machine in machines:
            machine.state = state
        reference = outcome(machines[0], lambda machine: machine.process_input(input_))
        lean = outcome(machines[1], lambda machine: transitions.connection_step(machine, step))
        assert lean == reference, state


def test_only_inputs_that_leave_an_open_server_connection_alone_skip_h2():
    assert transitions.CONNECTION_SEND_HEADERS.stays_open
    assert transitions.CONNECTION_SEND_DATA.stays_open
    assert transitions.CONNECTION_RECV_HEADERS.stays_open
    assert not transitions.ConnectionStep(ConnectionInputs.SEND_GOAWAY).stays_open
    assert not transitions.ConnectionStep(ConnectionInputs.RECV_GOAWAY).stays_open
