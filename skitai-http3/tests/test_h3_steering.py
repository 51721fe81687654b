"""The steering program on a real `SO_REUSEPORT` group after a reload (the new generation
attached): new connections' Initial packets go to the new generation, while Handshake packets
(QUIC v1 and v2) and short-header ones go to the socket of the worker that issued their
destination connection ID, so a handshake begun at an old worker completes there."""
from __future__ import annotations

import os
import select
import socket

import pytest
from h3server import free_udp_port

from skitai_http3.steering import QUIC_V1, QUIC_V2, attach_steering, bind_group

WORKERS = 2   # sockets 0, 1: generation 0; sockets 2, 3: generation 1
V1_TYPES = {"initial": 0, "handshake": 2}
V2_TYPES = {"initial": 1, "handshake": 3}


def long_packet(version: int, packet_type: int, cid_byte: int) -> bytes:
    dcid = bytes([cid_byte]) + os.urandom(7)
    return (bytes([0xC0 | packet_type << 4]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid
            + bytes([8]) + os.urandom(8) + os.urandom(40))


def short_packet(cid_byte: int) -> bytes:
    return bytes([0x40, cid_byte]) + os.urandom(40)


@pytest.fixture
def reloaded():
    """A group bound in generation 0 whose program a reload then replaced with generation 1's."""
    port = free_udp_port()
    group = bind_group("127.0.0.1", port, WORKERS)
    attach_steering(group[2], WORKERS, 1)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def arrives_at(packet: bytes) -> int:
        sender.sendto(packet, ("127.0.0.1", port))
        readable, _, _ = select.select(group, [], [], 5)
        assert len(readable) == 1
        readable[0].recv(2048)
        return group.index(readable[0])
    yield arrives_at
    sender.close()
    for sock in group:
        sock.close()


@pytest.mark.parametrize("version, types", [(QUIC_V1, V1_TYPES), (QUIC_V2, V2_TYPES)], ids=["v1", "v2"])
def test_handshake_packets_reach_the_issuer_and_initials_the_new_generation(reloaded, version, types):
    for issuer in range(2 * WORKERS):
        cid_byte = issuer + 2 * WORKERS * 5   # what worker `issuer`'s connection IDs begin with
        assert reloaded(long_packet(version, types["handshake"], cid_byte)) == issuer
        assert reloaded(short_packet(cid_byte)) == issuer
        assert reloaded(long_packet(version, types["initial"], cid_byte)) == WORKERS + cid_byte % WORKERS
