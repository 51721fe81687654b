"""The proxy's header rewriting, sans-IO (`skitai_gateway.proxyheaders`)."""
from skitai_gateway.proxyheaders import request_headers, response_headers


def forwarded(headers, **options):
    settings = {"client": "192.0.2.7", "scheme": "https", "host": "example.com", "version": "1.1",
                "trusted": False, "upstream_host": "10.0.0.5:8080"}
    settings.update(options)
    return request_headers(headers, **settings)


def test_fields_named_by_connection_and_hop_by_hop_fields_are_dropped_case_insensitively():
    out = dict(forwarded([("Connection", "close, X-Hop"), ("x-hop", "1"), ("KEEP-ALIVE", "5"),
                          ("Proxy-Authorization", "x"), ("Upgrade", "h2c"), ("Content-Length", "3"),
                          ("Transfer-Encoding", "chunked"), ("Host", "example.com"), ("Accept", "*/*")]))
    assert out["Host"] == "10.0.0.5:8080" and out["Accept"] == "*/*" and out["TE"] == "trailers"
    for name in ("Connection", "x-hop", "KEEP-ALIVE", "Proxy-Authorization", "Upgrade", "Content-Length",
                 "Transfer-Encoding"):
        assert name not in out


def test_forwarded_quotes_ipv6_and_odd_hosts():
    out = dict(forwarded([], client="2001:db8::1", host="bad host\""))
    assert out["Forwarded"] == 'for="[2001:db8::1]";proto=https;host="bad host"'
    assert out["X-Forwarded-For"] == "2001:db8::1"


def test_untrusted_forwarding_fields_are_replaced_and_trusted_ones_extended():
    incoming = [("X-Forwarded-For", "198.51.100.1"), ("X-Real-IP", "198.51.100.1"), ("Forwarded", "for=198.51.100.1"),
                ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "front.example")]
    untrusted = forwarded(incoming)
    assert ("X-Real-IP", "198.51.100.1") not in untrusted
    assert dict(untrusted)["X-Forwarded-For"] == "192.0.2.7" and dict(untrusted)["X-Forwarded-Proto"] == "https"
    trusted = dict(forwarded(incoming, trusted=True))
    assert trusted["X-Forwarded-For"] == "198.51.100.1, 192.0.2.7"
    assert trusted["Forwarded"] == "for=198.51.100.1, for=192.0.2.7;proto=https;host=example.com"
    assert trusted["X-Forwarded-Proto"] == "http" and trusted["X-Forwarded-Host"] == "front.example"
    assert trusted["X-Real-IP"] == "198.51.100.1"


def test_the_answer_loses_hop_by_hop_fields_and_gains_via():
    out = response_headers([("Content-Type", "text/plain"), ("Connection", "Keep-Alive, X-Secret"),
                            ("X-Secret", "s"), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"),
                            ("Via", "1.0 upstream"), ("Proxy-Authenticate", "Basic")], "1.0")
    assert out == [("Content-Type", "text/plain"), ("Via", "1.0 upstream, 1.0 skitai")]
