"""`CompactSettings`: h2's settings bookkeeping with lists for deques, the same answers in less
memory per connection."""
import gc
import tracemalloc

import h2.config
import h2.connection
import h2.settings
from h2.settings import SettingCodes

from skitai_http2.session import H2Session
from skitai_http2.settings import CompactSettings

UNKNOWN = 0x7A


def exercise(settings):
    """What h2 does with a Settings: set values (one it did not hold), read them before and after
    acknowledgement, and the changes an acknowledgement reports."""
    seen = [dict(settings), settings.max_concurrent_streams]
    settings[SettingCodes.INITIAL_WINDOW_SIZE] = 1000
    settings[SettingCodes.MAX_CONCURRENT_STREAMS] = 7   # one held or not held yet: not in force
    seen.append(settings.max_concurrent_streams)
    settings[UNKNOWN] = 5
    seen.append((settings.initial_window_size, UNKNOWN in settings))
    changed = settings.acknowledge()
    seen.append({code: (c.original_value, c.new_value) for code, c in changed.items()})
    seen.append((settings.initial_window_size, settings[UNKNOWN], settings.max_concurrent_streams))
    settings.initial_window_size = 2000
    settings.max_concurrent_streams = 9
    seen.append((settings.initial_window_size, settings.max_concurrent_streams))
    seen.append({code: (c.original_value, c.new_value) for code, c in settings.acknowledge().items()})
    seen.append((settings.initial_window_size, settings.max_concurrent_streams))
    settings[SettingCodes.MAX_FRAME_SIZE] = 32768
    settings[SettingCodes.MAX_FRAME_SIZE] = 65536
    seen.append(settings.max_frame_size)
    seen.append({code: (c.original_value, c.new_value) for code, c in settings.acknowledge().items()})
    seen.append((dict(settings), len(settings)))
    return seen


def test_answers_as_h2s_settings_do():
    initial = {SettingCodes.MAX_CONCURRENT_STREAMS: 100, SettingCodes.ENABLE_PUSH: 0}
    assert exercise(CompactSettings(False, initial)) == exercise(h2.settings.Settings(False, initial))
    assert exercise(CompactSettings(True)) == exercise(h2.settings.Settings(True))


def handshaken():
    server = H2Session()
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    server.receive(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send(), 0.0)  # the client's ACK of our SETTINGS
    server.data_to_send()
    return server


def test_settings_from_both_sides_apply():
    server = handshaken()
    assert server.h2.remote_settings.initial_window_size == 1000
    assert server.h2.local_settings.initial_window_size == server.limits.stream_window


def test_an_idle_connection_holds_under_12_kib():
    """With h2's deques (760 bytes each, some 13 of them) it held 18 KiB."""
    handshaken()  # caches at their working size
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sessions = [handshaken() for _ in range(20)]
        gc.collect()
        each = (tracemalloc.get_traced_memory()[0] - before) / len(sessions)
    finally:
        tracemalloc.stop()
    assert each < 12 * 1024
