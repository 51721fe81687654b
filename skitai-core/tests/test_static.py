"""Static files over real sockets with real clients (http.client, httpx, curl, raw sockets)."""
import hashlib
import http.client
import os
import random
import subprocess
import time
import types

import httpx
import pytest
from rawhttp import exchange

import skitai
from skitai import api
from skitai.config import ServerConfig
from skitai.httpdate import http_date, parse_http_date
from skitai.testing import requires_commands

MTIME = 1_700_000_000
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"
DATA = bytes((index * 7 + 3) % 251 for index in range(1000))
HELLO = b"hello, static world\n"

curl = requires_commands("curl", install="apt-get install curl")


# fixtures
@pytest.fixture
def site(tmp_path):
    """tmp/site is the root; tmp/secret, tmp/outside/ and tmp/site-private/ lie outside it."""
    (tmp_path / "secret").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside" / "index.html").write_bytes(SECRET)
    (tmp_path / "site-private").mkdir()           # shares the root's name as a string prefix
    (tmp_path / "site-private" / "secret").write_bytes(SECRET)
    root = tmp_path / "site"
    files = {
        "index.html": b"<h1>home</h1>",
        "hello.txt": HELLO,
        "data.bin": DATA,
        "style.css": b"body{}",
        "app.json": b"{}",
        "pixel.png": b"\x89PNG\r\n\x1a\n",
        "notes.txt.gz": b"\x1f\x8b",
        "blob.unknownext": b"?",
        "empty.txt": b"",
        "sub/index.html": b"<h1>sub</h1>",
        "noindex/file.txt": b"file in noindex",
        "a/b.txt": b"b",
        "trap/placeholder.txt": b"",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / "link-in.txt").symlink_to(root / "hello.txt")
    (root / "link-in-dir").symlink_to(root / "sub")
    (root / "link-out.txt").symlink_to(tmp_path / "secret")
    (root / "link-out-dir").symlink_to(tmp_path / "outside")
    (root / "link-out-prefix").symlink_to(tmp_path / "site-private")
    (root / "trap" / "index.html").symlink_to(tmp_path / "outside" / "index.html")
    os.mkfifo(root / "pipe")
    for path in root.rglob("*"):
        if not path.is_symlink() and path.name != "pipe":
            os.utime(path, (MTIME, MTIME))
    return root


@pytest.fixture
def server(serve, site):
    return serve(("/", str(site)))


@pytest.fixture
def big_file(site):
    """5 MiB of deterministic noise: far above the single-write limit, so it goes by sendfile."""
    content = random.Random(6).randbytes(5 * 1024 * 1024)
    (site / "big.bin").write_bytes(content)
    return content


# clients
def request(server, path, method="GET", headers=None, body=None):
    """(response, body) with http.client, which sends the path exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def raw(server, target, method="GET", headers=""):
    """(status, headers by lower-case name, body bytes) of one request written byte for byte,
    for targets clients would normalise and for checking that nothing follows a head."""
    data = f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    response = exchange(server.port, data.encode("latin-1"), timeout=5)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = dict((name.lower(), value) for name, _, value in (line.partition(": ") for line in lines))
    return int(status_line.split(" ")[1]), fields, body


def run_curl(*args):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "10", *args], capture_output=True,
                          timeout=30, check=True)


def byteranges(content_type, body):
    """[(part headers, part bytes)] of a multipart/byteranges body, checking its framing."""
    kind, _, boundary = content_type.partition("; boundary=")
    assert kind == "multipart/byteranges" and boundary
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode())
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n"
    parts = []
    for chunk in chunks[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0] == ""
        parts.append((dict(line.split(": ", 1) for line in lines[1:]), data))
    return parts


# GET, HEAD, methods
def test_get_sends_the_file_with_its_metadata(server, site):
    response, body = request(server, "/hello.txt")
    assert response.status == 200 and body == HELLO
    assert response.getheader("Content-Type") == "text/plain"
    assert response.getheader("Content-Length") == str(len(HELLO))
    assert response.getheader("Last-Modified") == LAST_MODIFIED
    etag = response.getheader("ETag")
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.getheader("Accept-Ranges") == "bytes"
    assert request(server, "/hello.txt")[0].getheader("ETag") == etag  # stable while unchanged


def test_etag_changes_with_the_file(serve, site):
    server = serve(("/", str(site)), static_cache_valid=0)   # checked at every request
    before = request(server, "/hello.txt")[0].getheader("ETag")
    (site / "hello.txt").write_bytes(b"changed")
    os.utime(site / "hello.txt", (MTIME + 1, MTIME + 1))
    response, body = request(server, "/hello.txt")
    assert body == b"changed" and response.getheader("ETag") != before


def test_head_has_the_headers_and_no_body(server):
    status, headers, body = raw(server, "/hello.txt", "HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(HELLO))
    assert headers["content-type"] == "text/plain"
    assert headers["last-modified"] == LAST_MODIFIED and headers["etag"]


def test_head_of_a_large_file_has_its_length_and_no_body(server, big_file):
    status, headers, body = raw(server, "/big.bin", "HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(big_file))


@pytest.mark.parametrize("path, content_type", [
    ("/index.html", "text/html"),
    ("/style.css", "text/css"),
    ("/app.json", "application/json"),
    ("/pixel.png", "image/png"),
    ("/notes.txt.gz", "application/gzip"),        # gzip data, not text: no Content-Encoding
    ("/blob.unknownext", "application/octet-stream"),
])
def test_content_type_comes_from_the_file_name(server, path, content_type):
    assert request(server, path)[0].getheader("Content-Type") == content_type


def test_empty_file(server):
    response, body = request(server, "/empty.txt")
    assert response.status == 200 and body == b"" and response.getheader("Content-Length") == "0"


def test_large_file_arrives_byte_exact_with_httpx(server, big_file):
    with httpx.Client(timeout=10) as client:
        response = client.get(server.url("/big.bin"))
        again = client.get(server.url("/hello.txt"))   # the kept-alive connection is still in sync
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(big_file))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(big_file).digest()
    assert again.content == HELLO


def test_large_file_range_from_the_middle(server, big_file):
    start, end = 3_000_001, 4_999_999
    with httpx.Client(timeout=10) as client:
        response = client.get(server.url("/big.bin"), headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(big_file)}"
    assert response.content == big_file[start:end + 1]


@curl
def test_curl_downloads_and_resumes_a_large_file(server, big_file, tmp_path):
    target = tmp_path / "download.bin"
    run_curl("-o", str(target), server.url("/big.bin"))
    assert target.read_bytes() == big_file
    target.write_bytes(big_file[:1_234_567])
    result = run_curl("-C", "-", "-o", str(target), "-w", "%{http_code}", server.url("/big.bin"))
    assert result.stdout == b"206" and target.read_bytes() == big_file


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_get_405_with_allow(server, method):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, "/hello.txt", body=b"payload")
        response = conn.getresponse()
        response.read()
        assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"
        conn.request("GET", "/hello.txt")                    # the connection is still usable
        assert conn.getresponse().read() == HELLO
    finally:
        conn.close()


# conditional requests
def etag_of(server, path="/hello.txt"):
    return request(server, path)[0].getheader("ETag")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("header", ["If-Modified-Since", "If-None-Match"])
def test_not_modified_has_validators_and_no_body(server, header, method):
    value = LAST_MODIFIED if header == "If-Modified-Since" else etag_of(server)
    status, headers, body = raw(server, "/hello.txt", method, f"{header}: {value}\r\n")
    assert status == 304 and body == b""
    assert headers["etag"] == etag_of(server) and headers["last-modified"] == LAST_MODIFIED
    assert "content-length" not in headers


def test_if_none_match_compares_weakly_and_in_lists(server):
    etag = etag_of(server)
    for value in ("W/" + etag, f'"nope", {etag}', "*"):
        assert request(server, "/hello.txt", headers={"If-None-Match": value})[0].status == 304


def test_modified_files_are_sent_in_full(server):
    older = http_date(MTIME - 1)
    response, body = request(server, "/hello.txt", headers={"If-Modified-Since": older})
    assert response.status == 200 and body == HELLO
    response, body = request(server, "/hello.txt", headers={"If-None-Match": '"nope"'})
    assert response.status == 200 and body == HELLO


def test_failed_if_match_and_if_unmodified_since_are_412(server):
    etag = etag_of(server)
    assert request(server, "/hello.txt", headers={"If-Match": '"nope"'})[0].status == 412
    assert request(server, "/hello.txt", headers={"If-Match": "W/" + etag})[0].status == 412  # strong
    older = http_date(MTIME - 1)
    assert request(server, "/hello.txt", headers={"If-Unmodified-Since": older})[0].status == 412
    response, body = request(server, "/hello.txt", headers={"If-Match": etag})
    assert response.status == 200 and body == HELLO
    assert request(server, "/hello.txt", headers={"If-Unmodified-Since": LAST_MODIFIED})[0].status == 200


def test_precedence_of_preconditions(server):
    etag = etag_of(server)
    older = http_date(MTIME - 1)
    # If-None-Match decides, If-Modified-Since is ignored (RFC 9110 13.2.2 step 3 before 4)
    assert request(server, "/hello.txt", headers={
        "If-None-Match": '"nope"', "If-Modified-Since": LAST_MODIFIED})[0].status == 200
    assert request(server, "/hello.txt", headers={
        "If-None-Match": etag, "If-Modified-Since": older})[0].status == 304
    # If-Match decides, If-Unmodified-Since is ignored (step 1 before 2)
    assert request(server, "/hello.txt", headers={
        "If-Match": etag, "If-Unmodified-Since": older})[0].status == 200
    assert request(server, "/hello.txt", headers={
        "If-Match": '"nope"', "If-Unmodified-Since": LAST_MODIFIED})[0].status == 412


def test_repeated_if_none_match_headers_are_one_list(server):
    status = raw(server, "/hello.txt", headers=f'If-None-Match: "nope"\r\nIf-None-Match: {etag_of(server)}\r\n')[0]
    assert status == 304


def test_httpx_revalidates_with_the_etag(server):
    with httpx.Client(timeout=10) as client:
        first = client.get(server.url("/data.bin"))
        second = client.get(server.url("/data.bin"), headers={"If-None-Match": first.headers["etag"]})
    assert first.content == DATA and second.status_code == 304 and second.content == b""


# ranges
def get_range(server, value, path="/data.bin", **headers):
    return request(server, path, headers={"Range": value, **headers})


@pytest.mark.parametrize("value, first, last", [
    ("bytes=0-9", 0, 9),
    ("bytes=-10", 990, 999),
    ("bytes=990-", 990, 999),
    ("bytes=500-5000", 500, 999),
    ("bytes=0-0", 0, 0),
])
def test_single_range(server, value, first, last):
    response, body = get_range(server, value)
    assert response.status == 206 and body == DATA[first:last + 1]
    assert response.getheader("Content-Range") == f"bytes {first}-{last}/1000"
    assert response.getheader("Content-Length") == str(last - first + 1)
    assert response.getheader("Content-Type") == "application/octet-stream"
    assert response.getheader("ETag") and response.getheader("Last-Modified") == LAST_MODIFIED


def test_multiple_ranges_are_multipart_byteranges(server):
    response, body = get_range(server, "bytes=900-909,0-4,-3")
    assert response.status == 206 and response.getheader("Content-Range") is None
    assert int(response.getheader("Content-Length")) == len(body)
    parts = byteranges(response.getheader("Content-Type"), body)
    assert [(headers["Content-Range"], data) for headers, data in parts] == [
        ("bytes 0-4/1000", DATA[0:5]), ("bytes 900-909/1000", DATA[900:910]), ("bytes 997-999/1000", DATA[997:])]
    assert all(headers["Content-Type"] == "application/octet-stream" for headers, _ in parts)


def test_overlapping_ranges_are_coalesced(server):
    response, body = get_range(server, "bytes=0-99,50-149,140-199")
    assert response.status == 206 and body == DATA[:200]
    assert response.getheader("Content-Range") == "bytes 0-199/1000"
    response, body = get_range(server, "bytes=0-9,5-14,100-109,105-119")
    parts = byteranges(response.getheader("Content-Type"), body)
    assert [(headers["Content-Range"], data) for headers, data in parts] == [
        ("bytes 0-14/1000", DATA[0:15]), ("bytes 100-119/1000", DATA[100:120])]


def test_if_range_with_the_current_etag_or_date_gives_the_range(server):
    etag = etag_of(server, "/data.bin")
    for validator in (etag, LAST_MODIFIED):
        response, body = get_range(server, "bytes=0-9", **{"If-Range": validator})
        assert response.status == 206 and body == DATA[:10]


@pytest.mark.parametrize("validator", ['"stale"', "W/{etag}", "Tue, 14 Nov 2023 22:13:19 GMT"])
def test_if_range_with_another_validator_gives_the_whole_file(server, validator):
    validator = validator.format(etag=etag_of(server, "/data.bin"))
    response, body = get_range(server, "bytes=0-9", **{"If-Range": validator})
    assert response.status == 200 and body == DATA and response.getheader("Content-Range") is None


@pytest.mark.parametrize("path, value, size", [
    ("/data.bin", "bytes=1000-", 1000),
    ("/data.bin", "bytes=5000-6000,2000-", 1000),
    ("/data.bin", "bytes=-0", 1000),
    ("/empty.txt", "bytes=0-", 0),
    ("/empty.txt", "bytes=-5", 0),
])
def test_unsatisfiable_range_is_416_with_the_size(server, path, value, size):
    response, _ = get_range(server, value, path)
    assert response.status == 416 and response.getheader("Content-Range") == f"bytes */{size}"


@pytest.mark.parametrize("value", [
    "bytes=9-1", "bytes=a-b", "pages=0-1", "bytes", "bytes=,", "bytes=0-1,x", "bytes=0-1\xb2"])
def test_malformed_range_is_ignored(server, value):
    status, headers, body = raw(server, "/data.bin", headers=f"Range: {value}\r\n")
    assert status == 200 and body == DATA and "content-range" not in headers


def test_two_range_headers_are_ignored(server):
    status, _, body = raw(server, "/data.bin", headers="Range: bytes=0-1\r\nRange: bytes=3-4\r\n")
    assert status == 200 and body == DATA


def test_range_on_head_is_ignored(server):
    status, headers, body = raw(server, "/data.bin", "HEAD", "Range: bytes=0-9\r\n")
    assert status == 200 and body == b"" and headers["content-length"] == "1000"
    assert "content-range" not in headers


def test_preconditions_come_before_ranges(server):
    etag = etag_of(server, "/data.bin")
    assert get_range(server, "bytes=0-9", **{"If-None-Match": etag})[0].status == 304
    assert get_range(server, "bytes=5000-", **{"If-Match": '"nope"'})[0].status == 412


@curl
def test_curl_ranges(server):
    assert run_curl("-r", "10-19", server.url("/data.bin")).stdout == DATA[10:20]
    head = run_curl("-i", "-r", "0-1,10-11", server.url("/data.bin")).stdout
    assert head.startswith(b"HTTP/1.1 206") and b"multipart/byteranges" in head


# caching headers
def cache_headers(server, path):
    response, _ = request(server, path)
    assert response.status == 200
    return response.getheader("Cache-Control"), response.getheader("Expires"), response.getheader("Date")


def test_max_age_uses_the_longest_matching_prefix(serve, site):
    (site / "subx").mkdir()
    (site / "subx" / "index.html").write_bytes(b"x")
    server = serve(("/", str(site)), ("/static", str(site)),
                   max_ages=[("/", 60), ("/static", 0), ("/static/sub", 3600)])
    for path, seconds in [("/hello.txt", 60), ("/static/hello.txt", 0), ("/static/sub/", 3600),
                          ("/static/subx/", 0)]:     # a prefix matches whole segments only
        cache_control, expires, date = cache_headers(server, path)
        assert cache_control == f"max-age={seconds}", path
        assert abs(parse_http_date(expires) - parse_http_date(date) - seconds) <= 1, path


def test_set_max_age_reaches_the_responses(serve, site, monkeypatch):
    config = ServerConfig()
    monkeypatch.setattr(api, "_kernel", types.SimpleNamespace(config=config))
    skitai.set_max_age("/", 300)
    server = serve(("/", str(site)), max_ages=config.max_ages)
    assert cache_headers(server, "/hello.txt")[0] == "max-age=300"
    status, headers, _ = raw(server, "/hello.txt", headers=f"If-Modified-Since: {LAST_MODIFIED}\r\n")
    assert status == 304 and headers["cache-control"] == "max-age=300" and "expires" in headers


def test_no_caching_headers_without_max_age_or_in_devel_mode(serve, site):
    plain = serve(("/", str(site)))
    devel = serve(("/", str(site)), devel=True, max_ages=[("/", 60)])
    for server in (plain, devel):
        cache_control, expires, _ = cache_headers(server, "/hello.txt")
        assert cache_control is None and expires is None


# directories
def test_index_html_answers_for_a_directory(server):
    for path, content in [("/", b"<h1>home</h1>"), ("/sub/", b"<h1>sub</h1>"), ("/sub/?x=1", b"<h1>sub</h1>")]:
        response, body = request(server, path)
        assert response.status == 200 and body == content
        assert response.getheader("Content-Type") == "text/html"


@pytest.mark.parametrize("target, location", [
    ("/sub", "/sub/"),
    ("/sub?x=1&y=2", "/sub/?x=1&y=2"),
    ("/link-in-dir", "/link-in-dir/"),
    ("//sub", "/sub/"),                  # never "//sub/": a scheme-relative, off-site URL
    ("///sub", "/sub/"),
])
def test_directory_without_slash_redirects(server, target, location):
    status, headers, _ = raw(server, target)
    assert status == 301 and headers["location"] == location


def test_httpx_follows_the_directory_redirect(server):
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        response = client.get(server.url("/sub"))
    assert response.status_code == 200 and response.text == "<h1>sub</h1>"
    assert str(response.url).endswith("/sub/")


@pytest.mark.parametrize("path", ["/noindex/", "/noindex", "/missing", "/missing/", "/hello.txt/", "/pipe"])
def test_not_found(server, path):
    response, _ = request(server, path)
    assert response.status == 404


def test_asterisk_form_target_names_no_file(server, site):
    (site / "*").write_bytes(b"STAR")
    assert raw(server, "*")[0] == 400  # the parser allows * only for OPTIONS
    status, _, body = raw(server, "*", method="OPTIONS")
    assert status in (404, 405) and b"STAR" not in body


# path safety
TRAVERSALS = [
    "/../secret", "/../../secret", "/%2e%2e/secret", "/%2E%2E%2Fsecret", "/..%2fsecret", "/.%2e/secret",
    "/a/../../secret", "/a/%2e%2e/%2e%2e/secret", "/sub/..%2F..%2Fsecret", "/..\\secret", "/..%5csecret",
    "/%5c..%5csecret", "/%2e%2e%5csecret", "/hello.txt%00", "/%00/../secret", "/%252e%252e/secret",
    "/%c0%ae%c0%ae/secret", "/%c0%ae%c0%ae%c0%afsecret", "/%e0%80%ae%e0%80%ae/secret",
    "http://h/../secret", "http://h/%2e%2e/secret", "/../site-private/secret", "/link-out.txt",
    "/link-out-dir/", "/link-out-dir/secret.txt", "/link-out-prefix/secret", "/trap/", "/trap",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_nothing_outside_the_root_is_served(server, target):
    status, _, body = raw(server, target)
    assert status in (403, 404), target
    assert SECRET not in body


@pytest.mark.parametrize("target", ["/static/../secret", "/static/%2e%2e/secret", "/static%2f..%2fsecret",
                                    "/static/..%2f..%2fsecret", "/static/link-out.txt"])
def test_nothing_outside_a_sub_mount_is_served(serve, site, target):
    server = serve(("/static", str(site / "a")))
    (site / "a" / "link-out.txt").symlink_to(site.parent / "secret")
    status, _, body = raw(server, target)
    assert status in (403, 404) and SECRET not in body


@curl
def test_curl_path_as_is_traversal(server):
    result = run_curl("--path-as-is", "-w", "%{http_code}", server.url("/../secret"))
    assert result.stdout.endswith(b"404") and SECRET not in result.stdout


def test_symlinks_inside_the_root_are_followed(server):
    assert request(server, "/link-in.txt")[1] == HELLO
    assert request(server, "/link-in-dir/")[1] == b"<h1>sub</h1>"


def test_a_fifo_does_not_block_the_server(server):
    started = time.monotonic()
    assert raw(server, "/pipe")[0] == 404
    assert request(server, "/hello.txt")[1] == HELLO
    assert time.monotonic() - started < 5


# sharing a mount point with an app
def fallback_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"app {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]


@pytest.mark.parametrize("point", ["/", "/static"])
def test_static_and_app_share_a_point(serve, site, point):
    server = serve((point, str(site)), (point, fallback_app))
    prefix = point.rstrip("/")
    script_name = prefix
    assert request(server, prefix + "/hello.txt")[1] == HELLO
    assert request(server, prefix + "/sub/")[1] == b"<h1>sub</h1>"
    assert request(server, prefix + "/missing")[1] == f"app {script_name}|/missing".encode()
    assert request(server, prefix + "/noindex/")[1] == f"app {script_name}|/noindex/".encode()
    assert request(server, prefix + "/hello.txt/")[1] == f"app {script_name}|/hello.txt/".encode()
    assert request(server, prefix + "/../secret")[1] == f"app {script_name}|/../secret".encode()


def test_static_at_a_sub_point_beside_an_app_at_the_root(serve, site):
    server = serve(("/static", str(site)), ("/", fallback_app))
    assert request(server, "/static/hello.txt")[1] == HELLO
    assert request(server, "/static/")[1] == b"<h1>home</h1>"
    assert raw(server, "/static")[1]["location"] == "/static/"
    assert request(server, "/hello.txt")[1] == b"app |/hello.txt"
    assert request(server, "/staticx/hello.txt")[1] == b"app |/staticx/hello.txt"
    assert request(server, "/static/missing")[0].status == 404


# the per-worker cache (skitai.static.cache; its own cases in test_static_cache.py)
def count_loop_filesystem_calls(monkeypatch, server):
    """The names of the filesystem calls made from now on by the server's loop thread."""
    import threading
    calls = []
    for name in ("stat", "lstat", "open", "scandir", "listdir"):
        real = getattr(os, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            if threading.current_thread() is server._thread:
                calls.append(_name)
            return _real(*args, **kwargs)
        monkeypatch.setattr(os, name, counted)
    return calls


def test_an_apps_requests_cost_no_filesystem_call_at_a_shared_point(serve, site, monkeypatch):
    server = serve(("/", str(site)), ("/", fallback_app), static_cache_valid=60)
    assert request(server, "/hello.txt")[1] == HELLO
    assert request(server, "/api/users/0")[1] == b"app |/api/users/0"    # the root's snapshot is taken
    calls = count_loop_filesystem_calls(monkeypatch, server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for index in range(1, 30):                     # every path new to the cache
            conn.request("GET", f"/api/users/{index}")
            assert conn.getresponse().read() == f"app |/api/users/{index}".encode()
        conn.request("GET", "/sub/missing")            # below a static directory: the sub's snapshot
        assert conn.getresponse().read() == b"app |/sub/missing"
        calls.clear()
        conn.request("GET", "/sub/missing-too")
        assert conn.getresponse().read() == b"app |/sub/missing-too"
        conn.request("GET", "/hello.txt")
        assert conn.getresponse().read() == HELLO
    finally:
        conn.close()
    assert calls == []


def test_within_the_interval_a_changed_file_is_answered_whole_as_it_was(serve, site):
    """A range of a cached file comes from the cached bytes, never from the changed disk: its
    ETag, length and bytes are of one version."""
    server = serve(("/", str(site)), static_cache_valid=60)
    response, body = request(server, "/data.bin")
    etag = response.getheader("ETag")
    (site / "data.bin").write_bytes(bytes(reversed(DATA)))
    os.utime(site / "data.bin", (MTIME + 5, MTIME + 5))
    response, body = get_range(server, "bytes=0-9", **{"If-Range": etag})
    assert response.status == 206 and body == DATA[:10] and response.getheader("ETag") == etag
    response, body = request(server, "/data.bin")
    assert body == DATA and response.getheader("Content-Length") == str(len(DATA))
    assert request(server, "/data.bin", headers={"If-None-Match": etag})[0].status == 304


def test_a_large_file_changed_within_the_interval_has_its_new_length(serve, site, big_file):
    server = serve(("/", str(site)), static_cache_valid=60)
    assert request(server, "/big.bin")[1] == big_file
    (site / "big.bin").write_bytes(big_file[:3_000_000])
    response, body = request(server, "/big.bin")
    assert response.getheader("Content-Length") == "3000000" and body == big_file[:3_000_000]
    (site / "big.bin").unlink()
    assert request(server, "/big.bin")[0].status == 404


def test_devel_mode_sees_every_edit_at_once(serve, site):
    server = serve(("/", str(site)), devel=True)
    assert request(server, "/hello.txt")[1] == HELLO
    (site / "hello.txt").write_bytes(b"edited")
    assert request(server, "/hello.txt")[1] == b"edited"
    (site / "new.txt").write_bytes(b"new")
    assert request(server, "/new.txt")[1] == b"new"
    (site / "new.txt").unlink()
    assert request(server, "/new.txt")[0].status == 404


def test_set_static_cache_reaches_the_settings(monkeypatch):
    config = ServerConfig()
    monkeypatch.setattr(api, "_kernel", types.SimpleNamespace(config=config))
    skitai.set_static_cache(valid=0.5, entries=10, memory=2048, file_size=512)
    assert (config.static_cache_valid, config.static_cache_entries, config.static_cache_memory,
            config.static_cache_file_size) == (0.5, 10, 2048, 512)
    skitai.set_static_cache(valid=2)
    assert config.static_cache_valid == 2 and config.static_cache_entries == 10


def test_a_cached_file_is_framed_for_each_request_shape(server):
    """The encoded head is kept per method, version and keep-alive: pipelined GET, HEAD, an
    HTTP/1.0 GET and a closing GET of one cached file each get their own framing."""
    request(server, "/hello.txt")                                     # cached
    data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = exchange(server.port, data, timeout=5)
    heads, bodies = [], []
    rest = response
    for has_body in (True, False, True, True):
        head, _, rest = rest.partition(b"\r\n\r\n")
        heads.append(head.decode("latin-1"))
        bodies.append(rest[:len(HELLO)] if has_body else b"")
        rest = rest[len(HELLO):] if has_body else rest
    assert rest == b"" and bodies == [HELLO, b"", HELLO, HELLO]
    assert all(f"Content-Length: {len(HELLO)}\r\n" in head for head in heads)
    assert heads[0].startswith("HTTP/1.1 200") and "Connection" not in heads[0]
    assert heads[2].startswith("HTTP/1.0 200") and "Connection: keep-alive" in heads[2]
    assert heads[3].startswith("HTTP/1.1 200") and "Connection: close" in heads[3]
