"""What skitai-http3's flood budgets (`skitai_http3.floods`, a look at each STREAM frame before
aioquic handles it) add to aioquic's handling of one STREAM frame, in process: a connection
pair handshaken with aioquic's sans-IO API, then the server's STREAM frame handler timed with
and without the budgets, alternating, medians of the runs.

    python bench/h3_frames.py [--runs 7]
"""
import argparse
import statistics
import tempfile
import timeit

from aioquic.buffer import Buffer, encode_uint_var
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicNetworkPath, QuicReceiveContext
from aioquic.tls import Epoch

from skitai.testing import make_certificates
from skitai_http3.floods import PeerFloods
from skitai_http3.settings import Limits

STREAM_OFF_LEN = 0x0E
FRAMES = 20000


def handshaken_server(certs, budgets: bool) -> QuicConnection:
    client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                            server_name="localhost", verify_mode=0))
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    configuration.load_cert_chain(certs.cert, certs.key)
    client.connect(("192.0.2.1", 443), now=0)
    server = None
    for _ in range(10):
        for data, _ in client.datagrams_to_send(now=0):
            if server is None:
                server = QuicConnection(configuration=configuration,
                                        original_destination_connection_id=client.original_destination_connection_id)
                if budgets:
                    PeerFloods(server, Limits())
            server.receive_datagram(data, ("192.0.2.2", 1234), now=0)
        for data, _ in server.datagrams_to_send(now=0):
            client.receive_datagram(data, ("192.0.2.1", 443), now=0)
    return server


def ns_per_frame(certs, budgets: bool) -> float:
    server = handshaken_server(certs, budgets)
    handle, _ = server._QuicConnection__frame_handlers[STREAM_OFF_LEN]
    frame = encode_uint_var(0) + encode_uint_var(0) + encode_uint_var(100) + b"x" * 100
    context = QuicReceiveContext(epoch=Epoch.ONE_RTT, host_cid=b"", network_path=QuicNetworkPath(("192.0.2.2", 1234)),
                                 quic_logger_frames=None, time=0, version=1)
    return min(timeit.repeat(lambda: handle(context, STREAM_OFF_LEN, Buffer(data=frame)),
                             number=FRAMES, repeat=3)) / FRAMES * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    certs = make_certificates(tempfile.mkdtemp())
    alone, budgeted = [], []
    for _ in range(runs):
        alone.append(ns_per_frame(certs, False))
        budgeted.append(ns_per_frame(certs, True))
    a, b = statistics.median(alone), statistics.median(budgeted)
    print(f"STREAM frame: aioquic {a:,.0f} ns, with the flood budgets {b:,.0f} ns "
          f"(+{b - a:,.0f} ns, {b / a:.2f}x), medians of {runs} runs")


if __name__ == "__main__":
    main()
