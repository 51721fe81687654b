"""Response framing decisions, as pure functions."""
import pytest

from skitai.http1.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, chunk, frame_response


def head_lines(framing):
    return framing.head.decode("latin-1").split("\r\n")


@pytest.mark.parametrize("version, method, status, headers, length, mode, keep_alive", [
    ("1.1", "GET", "200 OK", [], 5, LENGTH, True),
    ("1.1", "GET", "200 OK", [], None, CHUNKED, True),
    ("1.0", "GET", "200 OK", [], None, UNTIL_CLOSE, False),
    ("1.0", "GET", "200 OK", [], 3, LENGTH, True),
    ("1.1", "GET", "200 OK", [("Content-Length", "9")], None, LENGTH, True),
    ("1.1", "HEAD", "200 OK", [], None, NO_BODY, True),
    ("1.1", "GET", "204 No Content", [], None, NO_BODY, True),
    ("1.1", "GET", "304 Not Modified", [], None, NO_BODY, True),
    ("1.1", "GET", "200 OK", [("Connection", "close")], 1, LENGTH, False),
])
def test_framing_mode(version, method, status, headers, length, mode, keep_alive):
    framing = frame_response(status, headers, version, method, True, length)
    assert framing.mode == mode and framing.keep_alive == keep_alive


def test_server_owns_transfer_encoding_and_connection_headers():
    framing = frame_response("200 OK", [("Transfer-Encoding", "gzip"), ("Connection", "keep-alive"),
                                        ("X-App", "1")], "1.1", "GET", True, None)
    lines = head_lines(framing)
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Transfer-Encoding: chunked" in lines and "Transfer-Encoding: gzip" not in lines
    assert "X-App: 1" in lines and not any(line.startswith("Connection") for line in lines)


def test_head_keeps_declared_length_but_204_drops_it():
    head = head_lines(frame_response("200 OK", [("Content-Length", "42")], "1.1", "HEAD", True))
    assert "Content-Length: 42" in head
    no_content = head_lines(frame_response("204 No Content", [("Content-Length", "0")], "1.1", "GET", True))
    assert not any(line.startswith("Content-Length") for line in no_content)


def test_http10_keep_alive_is_announced_and_close_is_announced():
    assert "Connection: keep-alive" in head_lines(frame_response("200 OK", [], "1.0", "GET", True, 1))
    assert "Connection: close" in head_lines(frame_response("200 OK", [], "1.1", "GET", False, 1))


def test_every_response_has_date_and_server():
    lines = head_lines(frame_response("404 Not Found", [], "1.1", "GET", True, 0))
    assert any(line.startswith("Date: ") and line.endswith(" GMT") for line in lines)
    assert any(line.startswith("Server: skitai/") for line in lines)


def test_an_apps_own_date_and_server_are_sent_once():
    head = frame_response("200 OK", [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Server", "myapp")],
                          "1.1", "GET", True, 0).head.decode()
    assert head.count("Date: ") == 1 and "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" in head
    assert head.count("Server: ") == 1 and "Server: myapp\r\n" in head


def test_chunk_encoding():
    assert chunk(b"hello world!") == b"c\r\nhello world!\r\n"


def test_a_remembered_head_follows_every_argument_and_the_apps_list_as_it_is_now():
    """frame_response remembers heads for the current second: a repeat must still follow each
    argument, and a header list the app changed in place after an earlier response."""
    headers = [("Content-Type", "text/plain")]
    first = frame_response("200 OK", headers, "1.1", "GET", True, 5)
    assert frame_response("200 OK", headers, "1.1", "GET", True, 5).head == first.head
    assert b"Content-Length: 6\r\n" in frame_response("200 OK", headers, "1.1", "GET", True, 6).head
    assert b"Connection: close\r\n" in frame_response("200 OK", headers, "1.1", "GET", False, 5).head
    assert frame_response("200 OK", headers, "1.1", "HEAD", True, 5).mode == NO_BODY
    assert frame_response("404 Not Found", headers, "1.1", "GET", True, 5).head.startswith(b"HTTP/1.1 404 ")
    assert frame_response("200 OK", headers, "1.0", "GET", True, 5).head.startswith(b"HTTP/1.0 200 ")
    headers[0] = ("Content-Type", "text/html")
    assert b"Content-Type: text/html\r\n" in frame_response("200 OK", headers, "1.1", "GET", True, 5).head
    headers.append(("X-Extra", "1"))
    assert b"X-Extra: 1\r\n" in frame_response("200 OK", headers, "1.1", "GET", True, 5).head
