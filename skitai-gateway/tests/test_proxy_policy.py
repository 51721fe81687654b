"""The forward proxy's destination policy and Proxy-Authorization check, without sockets (the
resolver is a stand-in loop whose answers the tests choose: a rebinding name among them)."""
import asyncio
import base64
import ipaddress
import socket

import pytest

from skitai_gateway.destinations import DestinationPolicy, Refused, Unresolvable, is_internal, resolve
from skitai_gateway.proxyauth import ProxyCredentials

INTERNAL = ["127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
            "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
            "fd00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a00:1::1"]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused_by_default(address):
    assert is_internal(ipaddress.ip_address(address))
    with pytest.raises(Refused, match="internal address"):
        DestinationPolicy().check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_admitted_by_default(address):
    assert not is_internal(ipaddress.ip_address(address))
    DestinationPolicy().check_address(ipaddress.ip_address(address))


def test_allow_admits_networks_and_names_and_deny_wins():
    policy = DestinationPolicy(allow=["10.0.0.0/8", "intranet.example", "*.corp.example"],
                               deny=["10.9.0.0/16", "8.8.8.8", "bad.corp.example"], ports=["*"])
    policy.check_address(ipaddress.ip_address("10.1.2.3"))
    policy.check_address(ipaddress.ip_address("::ffff:10.1.2.3"))  # mapped: the IPv4 rule holds
    with pytest.raises(Refused, match="denied"):
        policy.check_address(ipaddress.ip_address("10.9.1.1"))
    with pytest.raises(Refused, match="denied"):
        policy.check_address(ipaddress.ip_address("8.8.8.8"))
    assert policy.check_name("intranet.example", 443) is True
    assert policy.check_name("INTRANET.example.", 443) is True
    assert policy.check_name("a.b.corp.example", 443) is True
    assert policy.check_name("corp.example", 443) is False  # *.domain: its subdomains only
    with pytest.raises(Refused, match="denied"):
        policy.check_name("bad.corp.example", 443)
    # an allowed name admits its addresses, except denied ones
    policy.check_address(ipaddress.ip_address("127.0.0.1"), name_allowed=True)
    with pytest.raises(Refused):
        policy.check_address(ipaddress.ip_address("10.9.0.1"), name_allowed=True)


def test_public_false_admits_only_what_allow_names():
    policy = DestinationPolicy(allow=["93.184.216.0/24"], public=False)
    policy.check_address(ipaddress.ip_address("93.184.216.34"))
    with pytest.raises(Refused, match="not in the allowed"):
        policy.check_address(ipaddress.ip_address("8.8.8.8"))


def test_ports_default_to_80_and_443_and_take_ranges():
    default = DestinationPolicy()
    default.check_name("example.com", 443)
    default.check_name("example.com", 80)
    with pytest.raises(Refused, match="port 22"):
        default.check_name("example.com", 22)
    ranged = DestinationPolicy(ports=[443, "8000-8999"])
    ranged.check_name("example.com", 8500)
    with pytest.raises(Refused):
        ranged.check_name("example.com", 9000)


@pytest.mark.parametrize("settings", [{"allow": ["10.0.0.0/33"]}, {"deny": ["exa mple/x"]}, {"allow": [""]},
                                      {"ports": ["http"]}, {"ports": [0]}, {"ports": ["90-80"]},
                                      {"allow": ["a*b.example"]}, {"deny": [5]}])
def test_bad_settings_are_refused_with_a_message(settings):
    with pytest.raises(ValueError):
        DestinationPolicy(**settings)


class Resolver:
    """A loop whose getaddrinfo answers what the test says (and counts the questions)."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    async def getaddrinfo(self, host, port, **kwargs):
        self.asked.append(host)
        answer = self.answers[host]
        if isinstance(answer, Exception):
            raise answer
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (address, port)) for address in answer]


def run(coroutine):
    return asyncio.run(coroutine)


def test_every_address_of_a_name_is_checked_and_the_checked_ones_are_returned():
    loop = Resolver({"good.example": ["93.184.216.34", "2606:4700::1"],
                     "rebind.example": ["93.184.216.34", "127.0.0.1"]})
    policy = DestinationPolicy()
    targets = run(resolve(loop, policy, "good.example", 443))
    assert targets == [(socket.AF_INET, ("93.184.216.34", 443)), (socket.AF_INET6, ("2606:4700::1", 443))]
    with pytest.raises(Refused, match="127.0.0.1"):
        run(resolve(loop, policy, "rebind.example", 443))


def test_literals_are_not_resolved_and_names_that_fail_are_unresolvable():
    loop = Resolver({"gone.example": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                     "empty.example": []})
    policy = DestinationPolicy()
    assert run(resolve(loop, policy, "93.184.216.34", 80)) == [(socket.AF_INET, ("93.184.216.34", 80))]
    assert run(resolve(loop, policy, "[2606:4700::1]", 443)) == [(socket.AF_INET6, ("2606:4700::1", 443))]
    with pytest.raises(Refused):
        run(resolve(loop, policy, "[::1]", 443))
    assert loop.asked == []
    with pytest.raises(Unresolvable):
        run(resolve(loop, policy, "gone.example", 443))
    with pytest.raises(Unresolvable):
        run(resolve(loop, policy, "empty.example", 443))
    with pytest.raises(Refused, match="port"):  # the port is checked before any question
        run(resolve(loop, policy, "gone.example", 25))
    assert loop.asked == ["gone.example", "empty.example"]


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


def test_proxy_credentials():
    credentials = ProxyCredentials({"alice": "s3cret", "bób": "pässword"}, 'My "proxy"')
    assert credentials.challenge == [("Proxy-Authenticate", 'Basic realm="My \\"proxy\\"", charset="UTF-8"')]
    assert credentials.user_of(basic(b"alice:s3cret")) == "alice"
    assert credentials.user_of("basic  " + base64.b64encode(b"alice:s3cret").decode()) == "alice"
    assert credentials.user_of(basic("bób:pässword".encode())) == "bób"
    for header in (None, "", basic(b"alice:S3cret"), basic(b"alice"), basic(b"carol:s3cret"), basic(b":"),
                   "Basic !!!notbase64", "Bearer " + base64.b64encode(b"alice:s3cret").decode(), "Basic"):
        assert credentials.user_of(header) is None, header


def test_proxy_credentials_refuse_bad_user_tables():
    with pytest.raises(ValueError):
        ProxyCredentials({"a:b": "c"}, "realm")
    with pytest.raises(ValueError):
        ProxyCredentials({"a": 5}, "realm")
