"""Sans-IO HTTP/2 server session: the h2 state machine plus Skitai's settings, protections and
flow-controlled output. Bytes in, events out, bytes to send; no sockets, no event loop.

`receive(data, now)` returns h2 events the connection acts on, or raises `SessionError` after
queueing a GOAWAY when the peer broke the protocol or abused it:

* rapid reset (CVE-2023-44487): streams the client resets cost from a `Budget`;
* SETTINGS and PING floods: every frame that makes us answer costs from another one;
* oversized header lists and HPACK bombs: h2's decoder enforces SETTINGS_MAX_HEADER_LIST_SIZE
  on the decoded size, and h2 caps a header block at 64 CONTINUATION frames; any other
  decoding error ends the connection with COMPRESSION_ERROR (`_Decoder`);
* too many concurrent streams: h2 refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS;
* frames that cost us work but carry nothing (CVE-2019-9513/9515/9518 and kin), counted per
  frame as h2 receives it, since h2 drops some without an event (a WINDOW_UPDATE for a closed
  stream) and answers others itself (empty DATA on a reset stream): WINDOW_UPDATE beyond the
  two each DATA frame we send earns, PRIORITY and unknown-type frames, empty DATA frames
  without END_STREAM and empty header blocks each cost from their own `Budget`;
* malformed requests, each answered with a stream reset (`reject`), cost from another.

Response bodies are queued per stream (`Outbox`: bytes and file segments) and leave as the
peer's flow-control windows allow (`flush`), so a stream that stops reading holds back only its
own data; `stalled(now, timeout)` names the streams that have waited on a closed window too long.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from h2.frame_buffer import FrameBuffer
from h2.stream import H2Stream, StreamState
from hpack import Decoder, Encoder
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hpack.table import HeaderTable
from hyperframe.frame import (
    DataFrame,
    ExtensionFrame,
    GoAwayFrame,
    HeadersFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from skitai.budget import Budget
from skitai.outbox import Outbox
from skitai.plugin import FileSegment

from . import frames
from .closedstreams import ClosedStreams
from .frames import RequestHeaders, take_request_headers
from .framing import FrameHeaderCheck
from .settings import CompactSettings

KiB = 1024
MiB = 1024 * KiB


@dataclass
class Limits:
    """What the server announces in SETTINGS and tolerates from a peer."""

    max_concurrent_streams: int = 100
    stream_window: int = 256 * KiB        # inbound bytes a stream may have unread
    connection_window: int = 16 * MiB     # inbound bytes all streams together may have in flight
    max_header_list_size: int = 64 * KiB
    max_frame_size: int = 16 * KiB
    reset_burst: int = 200                # client resets tolerated at once ...
    reset_rate: float = 100.0             # ... and per second after that
    control_burst: int = 500              # SETTINGS and PING frames tolerated at once ...
    control_rate: float = 50.0            # ... and per second after that
    window_update_burst: int = 1000       # WINDOW_UPDATE frames beyond those our DATA earned ...
    window_update_rate: float = 100.0     # ... and per second after that
    idle_burst: int = 500                 # PRIORITY and unknown-type frames ...
    idle_rate: float = 50.0
    empty_burst: int = 100                # empty DATA (without END_STREAM) and HEADERS frames ...
    empty_rate: float = 10.0
    malformed_burst: int = 100            # malformed requests (each costs us a reset) ...
    malformed_rate: float = 10.0
    max_pushes_per_request: int = 16      # server push: promises one response may make ...
    max_pushed_streams: int = 32          # ... and pushed streams in flight on a connection


class Flood(Exception):
    """A frame went over its budget (raised from inside h2's frame loop, turned into GOAWAY)."""


class CompressionError(h2.exceptions.ProtocolError):
    """A header block that does not decode (RFC 9113 4.3)."""

    error_code = ErrorCodes.COMPRESSION_ERROR


class _VersionedTable(HeaderTable):
    """hpack's dynamic table counting its changes, so a decoded block can be reused while the
    table is as it was."""

    version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @HeaderTable.maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)


_PLAIN = {tuple}   # the types of the fields of a remembered block: plain tuples only


class _Encoder(Encoder):
    """hpack's encoder remembering the blocks it made without changing its table (the same
    response head again: every field an index), for as long as the table is unchanged.
    Only lists of plain tuples are remembered: a NeverIndexedHeaderTuple compares equal to a
    plain one but must be encoded otherwise."""

    CACHE_SIZE = 64

    def __init__(self) -> None:
        super().__init__()
        table = _VersionedTable()
        table.maxsize = self.header_table.maxsize
        self.header_table = table
        self._cache: dict[tuple, tuple[int, bytes]] = {}

    def encode(self, headers, huffman=True):
        table = self.header_table
        if table.resized or type(headers) is not list or set(map(type, headers)) != _PLAIN:
            return super().encode(headers, huffman)
        key = (tuple(headers), huffman)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == table.version:
            return cached[1]
        version = table.version
        block = super().encode(headers, huffman)
        if table.version == version:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (version, block)
        return block


class _Decoder(Decoder):
    """hpack's decoder, with two changes.

    Decoding errors end the connection with COMPRESSION_ERROR: h2 turns them into a plain
    ProtocolError, so a GOAWAY with PROTOCOL_ERROR. An oversized header list stays h2's
    (ENHANCE_YOUR_CALM).

    A block that leaves the dynamic table unchanged decodes to the same fields (and passes
    hpack's checks again) for as long as the table and the limits stay the same, and clients
    send the same few blocks again and again (a page's assets, an API client's calls: after the
    first request every field is an index). Such blocks are remembered with the table's version;
    decoding was a sixth of the time of a small request. The table (`header_table`) is hpack's
    attribute, replaced by a counting one.
    """

    CACHE_SIZE = 64

    def __init__(self) -> None:
        super().__init__()
        table = _VersionedTable()
        table.maxsize = self.header_table.maxsize
        self.header_table = table
        self._cache: dict[tuple[bytes, bool], tuple[int, tuple[int, int], tuple]] = {}

    def decode(self, data, raw=False):
        table = self.header_table
        key = (bytes(data), raw)
        cached = self._cache.get(key)
        limits = (self.max_header_list_size, self.max_allowed_table_size)
        if cached is not None and cached[0] == table.version and cached[1] == limits:
            return list(cached[2])
        version = table.version
        try:
            headers = super().decode(data, raw)
        except OversizedHeaderListError:
            raise
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as error:
            raise CompressionError(f"header block does not decode: {error}") from None
        if table.version == version:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (version, limits, tuple(headers))
        return headers


class _FrameBuffer(FrameBuffer):
    """h2's frame buffer showing each frame to `inspect` before h2 handles it: h2 iterates its
    `incoming_buffer` in `receive_data`, and a HEADERS frame comes out whole, its CONTINUATION
    frames joined to it. Events alone cannot account for every frame (module docstring).
    A plain request HEADERS frame comes out as a `frames.RequestHeaders`, read without
    hyperframe (unless a header block is still waiting for its CONTINUATION frames)."""

    def __init__(self, inspect) -> None:
        super().__init__(server=True)
        self._inspect = inspect

    def __iter__(self):
        while True:
            frame = None if self._headers_buffer else take_request_headers(self._data, self.max_frame_size)
            if frame is None:
                try:
                    frame = self.__next__()
                except StopIteration:
                    return
                self._inspect(frame)
            elif not frame.data:  # a request's header block is all `_inspect` charges for it
                self._inspect(frame)
            yield frame


class _Connection(h2.connection.H2Connection):
    """h2's connection with the plugin's HPACK coder, frame buffer, closed-stream record and
    settings (`CompactSettings`, also for ours: `H2Session`) in place of its own."""

    # How many closed streams h2 remembers (to tell a late frame on a reset stream from a
    # protocol error). h2's 65536 cost up to 8 MiB per long-lived connection (seen as worker
    # memory growing for 65536 requests on each h2load connection); 4096 covers 40 times the
    # concurrent streams we allow. They are kept a byte each (`ClosedStreams`) for the client's
    # last 4096 stream ids (odd ones: twice as many ids).
    MAX_CLOSED_STREAMS = 4096

    def __init__(self, config: h2.config.H2Configuration, inspect) -> None:
        super().__init__(config)
        self._closed_streams = ClosedStreams(2 * self.MAX_CLOSED_STREAMS)
        self.remote_settings = CompactSettings(client=not config.client_side)
        decoder = _Decoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        decoder.max_allowed_table_size = self.decoder.max_allowed_table_size
        self.decoder = decoder
        self.encoder = _Encoder()
        self.incoming_buffer = _FrameBuffer(inspect)
        # the HEADERS frames read without hyperframe, their headers taken as decoded where the
        # configuration asks no more of h2 (the session's does not)
        headers_as_decoded = not (config.client_side or config.normalize_inbound_headers
                                  or config.validate_inbound_headers
                                  or isinstance(config.header_encoding, str))
        self._frame_dispatch_table[RequestHeaders] = partial(frames.receive_request_headers, self,
                                                             headers_as_decoded=headers_as_decoded)


class SessionError(Exception):
    """The connection must end; a GOAWAY with `error_code` is already queued."""

    def __init__(self, reason: str, error_code: int = ErrorCodes.PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.error_code = error_code


def valid_settings_header(value: str) -> bool:
    """Whether an `HTTP2-Settings` value (base64url SETTINGS payload, RFC 7540 3.2.1) parses."""
    try:
        payload = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        SettingsFrame(0).parse_body(memoryview(payload))
    except Exception:
        return False
    return True


class H2Session:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits = limits or Limits()
        # Header validation is `request.request_fields`' job (one pass instead of h2's ten);
        # outbound headers are built lower-case and filtered by `H2Exchange`.
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False,
            normalize_outbound_headers=False)
        self.h2 = _Connection(config, self._inspect)
        self.frame_headers = FrameHeaderCheck(limits.max_frame_size)
        self.h2.local_settings = CompactSettings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            # RFC 8441: extended CONNECT, how WebSockets travel over HTTP/2
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        })
        # Until our SETTINGS are acknowledged h2 applies the protocol defaults; the header list
        # limit must hold from the first frame on.
        self.h2.decoder.max_header_list_size = limits.max_header_list_size
        self.outboxes: dict[int, Outbox] = {}
        self.resets = Budget(limits.reset_burst, limits.reset_rate)
        self.control = Budget(limits.control_burst, limits.control_rate)
        self.window_updates = Budget(limits.window_update_burst, limits.window_update_rate)
        self.idle_frames = Budget(limits.idle_burst, limits.idle_rate)
        self.empty_frames = Budget(limits.empty_burst, limits.empty_rate)
        self.malformed = Budget(limits.malformed_burst, limits.malformed_rate)
        self._now = 0.0
        self.goaway_sent = False
        self.last_stream_id = 0   # after a graceful GOAWAY: streams above it are refused
        self._out = bytearray()
        self._connection_unacked = 0
        self.cut_short = False   # whether the last `flush` left sendable data for the next one

    # setup
    def start(self, upgrade_settings: str | None = None) -> None:
        """Queue the server preface; with `upgrade_settings` (the h2c `HTTP2-Settings` value)
        the connection continues an upgraded HTTP/1.1 request as stream 1."""
        if upgrade_settings is None:
            self.h2.initiate_connection()
        else:
            self.h2.initiate_upgrade_connection(upgrade_settings.strip().encode("ascii"))
        self.h2.increment_flow_control_window(self.limits.connection_window - 65535)

    # input
    def receive(self, data: bytes, now: float) -> list[Any]:
        self._now = now
        try:
            self.frame_headers.feed(data)
        except h2.exceptions.ProtocolError as error:
            self.refuse(str(error), error.error_code)
        try:
            events = self.h2.receive_data(data)
        except Flood as flood:
            self.refuse(str(flood))
        except h2.exceptions.DenialOfServiceError as error:
            raise SessionError(str(error), ErrorCodes.ENHANCE_YOUR_CALM) from None
        except h2.exceptions.ProtocolError as error:
            raise SessionError(str(error) or type(error).__name__,
                               getattr(error, "error_code", ErrorCodes.PROTOCOL_ERROR)) from None
        for event in events:
            kind = type(event)
            if kind is h2.events.StreamReset:
                self.outboxes.pop(event.stream_id, None)
                if event.remote_reset and not self.resets.spend(now):
                    self.refuse("too many streams reset by the client (rapid reset)")
            elif kind in (h2.events.PingReceived, h2.events.RemoteSettingsChanged):
                if not self.control.spend(now):
                    self.refuse("SETTINGS or PING flood")
            elif kind is h2.events.DataReceived:
                self._ack_connection(event.flow_controlled_length)
        return events

    def _inspect(self, frame) -> None:
        """Charge a frame that carries nothing to its budget (h2 calls this for every frame)."""
        kind = type(frame)
        if kind is DataFrame:
            if frame.data or "END_STREAM" in frame.flags:
                return
            budget, what = self.empty_frames, "empty DATA frames"
        elif kind is RequestHeaders or kind is HeadersFrame:
            if frame.data:  # the whole header block: h2 joins CONTINUATION frames to it
                return
            budget, what = self.empty_frames, "empty HEADERS frames"
        elif kind is WindowUpdateFrame:
            budget, what = self.window_updates, "WINDOW_UPDATE frames"
        elif kind is PriorityFrame or kind is ExtensionFrame:
            budget, what = self.idle_frames, "PRIORITY or unknown frames"
        else:
            return
        if not budget.spend(self._now):
            raise Flood(f"{what} flood")

    def refuse(self, reason: str, error_code: int = ErrorCodes.ENHANCE_YOUR_CALM):
        self._close(reason, error_code)
        raise SessionError(reason, error_code)

    def _close(self, reason: str, error_code: int) -> None:
        self.h2.close_connection(error_code, reason.encode("ascii", "replace"))
        self.goaway_sent = True

    def reject(self, stream_id: int, now: float) -> None:
        """Reset a malformed request's stream (RFC 9113 8.1.1); too many of them and the
        connection ends with GOAWAY (`closed` turns true)."""
        self.reset(stream_id, ErrorCodes.PROTOCOL_ERROR)
        if not self.malformed.spend(now) and not self.closed:
            self._close("malformed requests flood", ErrorCodes.ENHANCE_YOUR_CALM)

    def _ack_connection(self, length: int) -> None:
        """The connection window is only a sum of stream windows here: per-stream windows bound
        what each stream may buffer, so connection credit goes back as soon as data arrives."""
        self._connection_unacked += length
        if self._connection_unacked >= self.limits.connection_window // 4 and not self.closed:
            self.h2.increment_flow_control_window(self._connection_unacked)
            self._connection_unacked = 0

    def ack_stream(self, stream_id: int, length: int) -> None:
        """The app consumed `length` bytes of a stream's body: let the client send more."""
        if length > 0 and not self.closed and self._stream_open_remote(stream_id):
            self.h2.increment_flow_control_window(length, stream_id)

    def _stream_open_remote(self, stream_id: int) -> bool:
        stream = self.h2.streams.get(stream_id)
        return stream is not None and stream.state_machine.state is StreamState.OPEN

    # output: quietly nothing once h2 has closed the connection (a GOAWAY either way), since
    # h2 refuses every frame from then on and the connection is ending anyway
    @property
    def closed(self) -> bool:
        return self.h2.state_machine.state is ConnectionState.CLOSED

    # Every send checks that the stream can still take frames: h2 handles all the frames of a
    # read before its events are acted on, so a request's stream may already be reset (or
    # forgotten) by the time its answer is made; such an answer is dropped, not an error.
    def may_send(self, stream_id: int) -> bool:
        return self._sendable(stream_id) is not None

    def _sendable(self, stream_id: int) -> H2Stream | None:
        """The stream, when frames may still go on it (`may_send`)."""
        h2conn = self.h2
        if h2conn.state_machine.state is ConnectionState.CLOSED:   # `closed`, without the call
            return None
        stream = h2conn.streams.get(stream_id)
        return stream if stream is not None and stream.state_machine.state in _TAKES_FRAMES else None

    def send_head(self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]],
                  end_stream: bool) -> bool:
        """HEADERS of a response; False when the stream is gone (nothing was sent)."""
        stream = self._sendable(stream_id)
        if stream is None:
            return False
        frames.send_stream_headers(self.h2, stream, [(b":status", b"%d" % status), *headers], end_stream)
        if end_stream:
            self._forget_if_closed(stream)
        return True

    def send_response(self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]],
                      body: bytes) -> bool | None:
        """HEADERS, then `body` in one DATA frame that ends the stream, when the windows and the
        frame size take it now: True; None when they do not (nothing sent: the body is queued
        and `end`ed as usual); False when the stream is gone (as `send_head`)."""
        stream = self._sendable(stream_id)
        if stream is None:
            return False
        if not self._takes_at_once(stream, len(body)):
            return None
        frames.send_stream_headers(self.h2, stream, [(b":status", b"%d" % status), *headers], False)
        self._send_last(stream, body)
        return True

    def may_push(self, in_flight: int) -> bool:
        """Whether one more pushed stream is welcome: the client takes pushes, the connection
        is not ending, and `in_flight` pushed streams leave room under the client's concurrent
        stream limit and ours."""
        h2conn = self.h2
        remote = h2conn.remote_settings
        return (not self.goaway_sent and not self.closed and bool(remote.enable_push)
                and in_flight < min(self.limits.max_pushed_streams, remote.max_concurrent_streams))

    def push(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> int | None:
        """PUSH_PROMISE on `stream_id` for the request `headers`; the promised stream's id, or
        None when the stream can no longer promise (it ended, or the ids ran out)."""
        h2conn = self.h2
        try:
            promised = h2conn.get_next_available_stream_id()
            h2conn.push_stream(stream_id, promised, headers)
        except h2.exceptions.ProtocolError:
            return None
        return promised

    def send_informational(self, stream_id: int, status: int) -> None:
        if self.may_send(stream_id):
            frames.send_headers(self.h2, stream_id, [(b":status", b"%d" % status)])

    def queue(self, stream_id: int, piece: bytes | FileSegment) -> int:
        """Queue body data; returns the bytes now waiting on the stream."""
        box = self.outboxes.get(stream_id)
        if box is None:
            box = self.outboxes[stream_id] = Outbox()
        box.add(piece)
        return box.pending

    def end(self, stream_id: int, trailers: list[tuple[bytes, bytes]] | None = None) -> bool:
        """End the stream once its queued data is sent (with trailers when given). True when
        it ended at once: a body of one bytes piece that the windows and one frame take (most
        responses) goes out now, END_STREAM on its DATA frame, instead of waiting in its outbox
        for the next `flush`."""
        box = self.outboxes.get(stream_id)
        if trailers is None and box is not None and len(box.pieces) == 1:
            data = box.pieces[0]
            stream = self._sendable(stream_id) if type(data) is bytes else None
            if stream is not None and self._takes_at_once(stream, len(data)):
                del self.outboxes[stream_id]
                self._send_last(stream, data)
                return True
        if box is None:
            box = self.outboxes[stream_id] = Outbox()
        box.ending = True
        box.trailers = trailers
        return False

    def _window(self, stream: H2Stream) -> int:
        """What the peer lets us send on the stream now (its window and the connection's)."""
        return min(self.h2.outbound_flow_control_window, stream.outbound_flow_control_window)

    def _takes_at_once(self, stream: H2Stream, size: int) -> bool:
        """Whether `size` bytes go now in one DATA frame: the frame size and windows take them."""
        h2conn = self.h2
        return (size <= h2conn.max_outbound_frame_size and size <= h2conn.outbound_flow_control_window
                and size <= stream.outbound_flow_control_window)   # `_window`, without the call

    def _send_last(self, stream: H2Stream, data: bytes) -> None:
        """`data` (`_takes_at_once`) as the DATA frame that ends the stream."""
        frames.send_stream_data(self.h2, stream, data, True)
        self.window_updates.refund(2)  # as `_send_frames` does for each DATA frame
        self._forget_if_closed(stream)

    def pending(self, stream_id: int) -> int:
        box = self.outboxes.get(stream_id)
        return 0 if box is None else box.pending

    def flush(self, now: float, limit: int | None = None) -> tuple[list[int], list[int]]:
        """Send queued data as the windows allow, at most about `limit` bytes of it (None: no
        limit); returns the streams that ended and those that failed: their file body could not
        be read, or the stream can take no more frames (reset by the client); the caller drops
        them (a reset goes out where the stream still exists). `cut_short` tells whether the
        limit left sendable data behind: the caller writes what was made and flushes again on a
        later loop iteration, so a large body goes out in slices that the socket takes while
        other connections get their turn."""
        ended, failed = [], []
        self.cut_short = False
        if self.closed:
            return ended, failed
        h2conn = self.h2
        frame_size = h2conn.max_outbound_frame_size
        budget = limit
        for stream_id, box in list(self.outboxes.items()):
            if budget is not None and budget <= 0:
                self.cut_short = True
                break
            stream = h2conn.streams.get(stream_id)
            if stream is None or not _takes_frames(stream):
                failed.append(stream_id)
                del self.outboxes[stream_id]
                continue
            window = 1
            while box.pieces:
                window = self._window(stream)
                if window <= 0:
                    break
                if budget is not None:
                    if budget <= 0:
                        break
                    window = min(window, budget)
                try:
                    data = box.take(window)
                except OSError:
                    failed.append(stream_id)
                    del self.outboxes[stream_id]
                    break
                if budget is not None:
                    budget -= len(data)
                last = box.ending and not box.pieces and box.trailers is None
                self._send_frames(stream, data, frame_size, last)
                if last:
                    break
            if stream_id in failed:
                continue
            if box.pieces:
                if window <= 0:
                    if box.blocked_since is None:
                        box.blocked_since = now
                else:  # the limit stopped it: it goes last in the next round
                    self.cut_short = True
                    del self.outboxes[stream_id]
                    self.outboxes[stream_id] = box
                continue
            box.blocked_since = None
            if box.ending:
                del self.outboxes[stream_id]
                if box.trailers is not None:
                    frames.send_headers(h2conn, stream_id, box.trailers, end_stream=True)
                elif _takes_frames(stream):
                    h2conn.end_stream(stream_id)
                ended.append(stream_id)
                self._forget_if_closed(stream)
        return ended, failed

    def _send_frames(self, stream: H2Stream, data: bytes | memoryview, frame_size: int, last: bool) -> None:
        """`data` (within the stream's window) as DATA frames of at most `frame_size` bytes."""
        h2conn = self.h2
        view = memoryview(data) if len(data) > frame_size else data
        end = len(data)
        for start in range(0, end, frame_size):
            stop = start + frame_size
            frames.send_stream_data(h2conn, stream, view[start:stop], last and stop >= end)
            # the client may answer a DATA frame with a WINDOW_UPDATE for the stream and one
            # for the connection: those two are not a flood
            self.window_updates.refund(2)

    def stalled(self, now: float, timeout: float) -> list[int]:
        """Streams whose data has waited on a closed flow-control window for `timeout`."""
        return [stream_id for stream_id, box in self.outboxes.items()
                if box.blocked_since is not None and now - box.blocked_since >= timeout]

    def reset(self, stream_id: int, error_code: int = ErrorCodes.INTERNAL_ERROR) -> None:
        self.outboxes.pop(stream_id, None)
        stream = self.h2.streams.get(stream_id)
        if stream is not None and not stream.closed and not self.closed:
            self.h2.reset_stream(stream_id, error_code)
            self._forget_if_closed(stream)

    def _forget_if_closed(self, stream: H2Stream) -> None:
        """Drop a stream our last frame closed from h2's streams, recording how it closed, as
        h2's walk over all its streams would (`frames.WALK_AT`): until that walk a connection
        held up to 32 finished streams, some 430 bytes each."""
        machine = stream.state_machine
        if machine.state is StreamState.CLOSED:
            h2conn = self.h2
            h2conn.streams.pop(stream.stream_id, None)
            h2conn._closed_streams[stream.stream_id] = machine.stream_closed_by  # `stream.closed_by`

    def goaway(self) -> None:
        """Graceful GOAWAY: streams so far are served, newer ones refused. Written outside h2's
        state machine, which would otherwise stop sending the in-flight responses."""
        if self.goaway_sent:
            return
        self.goaway_sent = True
        self.last_stream_id = self.h2.highest_inbound_stream_id
        frame = GoAwayFrame(0, last_stream_id=self.last_stream_id, error_code=ErrorCodes.NO_ERROR)
        self._out += self.h2.data_to_send() + frame.serialize()

    def data_to_send(self) -> bytes:
        data = self.h2.data_to_send()
        if self._out:
            data, self._out = bytes(self._out) + data, bytearray()
        return data


# The states in which frames may still go on a stream: not reset by the client, not ended by us.
# A tuple, whose `in` compares by identity in C (h2's enums hash in Python).
_TAKES_FRAMES = (StreamState.HALF_CLOSED_REMOTE, StreamState.OPEN, StreamState.RESERVED_LOCAL)


def _takes_frames(stream: H2Stream) -> bool:
    """Whether frames may still go on the stream (`_TAKES_FRAMES`)."""
    return stream.state_machine.state in _TAKES_FRAMES
