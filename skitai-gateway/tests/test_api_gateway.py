"""The API gateway (`skitai.enable_gateway`) over real sockets: mounted aliases in front of a
Skitai member, tokens made with PyJWT, clients httpx and curl; and a gateway script as users
run it (RS256 with a public key file, the request log's gtxids, a database alias refused)."""
import json
import os
import subprocess
import sys
import textwrap
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fwdproxyservers import origin_app

from skitai.config import ApiGatewaySettings
from skitai.testing import ServerProcess, ServerThread, StartedServers, free_port
from skitai_gateway import plugin

SECRET = "8fa06210-e109-11e6-934f-001b216d6e71"


def gateway_server(aliases, mounts, http2=False, **settings) -> ServerThread:
    """A Skitai server with the gateway plugin, `aliases` ({"@name": (members, role, source)})
    declared and `mounts` ({"/point": "@name"}) mounted; enable_gateway's settings in
    `api_gateway`."""
    settings.setdefault("api_gateway", ApiGatewaySettings(secret=SECRET))
    server = ServerThread(**settings)
    server.kernel.pm.register(plugin)
    plugin.skitai_register_backends(backends=server.kernel.backends)
    plugin.skitai_register_adapters(adapters=server.kernel.adapters)
    if http2:
        from skitai_http2 import plugin as http2_plugin

        http2_plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    for name, (members, role, source) in aliases.items():
        server.kernel.aliases.add(name, "http", members, role=role, source=source)
    for point, target in mounts.items():
        server.mount(point, target)
    return server


@pytest.fixture
def gateway():
    """gateway(role="", source="", **settings) -> a started gateway whose `/members` is the alias
    `@members` of one Skitai member (`origin_app`), and `/` its own app; all stopped after."""
    members = StartedServers(ServerThread)
    gateways = StartedServers(lambda **settings: gateway_server(**settings))

    def start(role="", source="", **settings):
        member = members(origin_app)
        aliases = {"@members": ([f"127.0.0.1:{member.port}"], role, source)}
        return gateways(origin_app, aliases=aliases, mounts={"/members": "@members"}, **settings)

    yield start
    gateways.stop()
    members.stop()


def token(claim, secret=SECRET):
    return jwt.encode(claim, secret, algorithm="HS256")


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


def test_a_mounted_alias_needs_a_bearer_token(gateway):
    server = gateway()
    answer = httpx.get(server.url("/members/headers"), timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="API Gateway"'
    assert httpx.get(server.url("/own"), timeout=10).text == "origin app /own"  # the gateway's own app is open


def test_a_valid_token_reaches_the_member_with_its_claim_and_without_the_token(gateway):
    server = gateway()
    claim = {"user": "Hans Roh", "roles": ["user"]}
    answer = httpx.get(server.url("/members/headers?x=1"), timeout=10,
                       headers={**bearer(token(claim)), "X-Gateway-Claim": '{"roles":["admin"]}'})
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert json.loads(seen["x-gateway-claim"]) == claim  # the client's own claim field is gone
    assert seen["authorization"] is None
    assert seen["query"] == "x=1"
    assert seen["x-gtxn-id"].startswith("GTID-") and seen["x-ltxn-id"] == "1001"


def test_bad_tokens_are_401_invalid_token_with_a_description(gateway):
    server = gateway()
    cases = {
        token({"user": "x", "exp": int(time.time()) - 60}): "the token has expired",
        token({"user": "x"}, secret="not the gateway's secret, long enough"): "the token's signature does not verify",
        "garbage": "the token is malformed",
    }
    for value, description in cases.items():
        answer = httpx.get(server.url("/members/headers"), headers=bearer(value), timeout=10)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == (
            f'Bearer realm="API Gateway", error="invalid_token", error_description="{description}"')
    basic = httpx.get(server.url("/members/headers"), auth=("a", "b"), timeout=10)
    assert basic.status_code == 400 and 'error="invalid_request"' in basic.headers["WWW-Authenticate"]


def test_the_alias_role_is_checked_against_the_token(gateway):
    server = gateway(role="admin")
    user = httpx.get(server.url("/members/headers"), headers=bearer(token({"roles": ["user"]})), timeout=10)
    assert user.status_code == 403
    assert 'error="insufficient_scope"' in user.headers["WWW-Authenticate"]
    admin = httpx.get(server.url("/members/headers"), headers=bearer(token({"roles": ["admin"]})), timeout=10)
    assert admin.status_code == 200


def test_the_alias_source_is_checked_against_the_client(gateway):
    outside = gateway(source="172.30.1.0/24,192.168.1/24")
    answer = httpx.get(outside.url("/members/headers"), headers=bearer(token({"roles": ["admin"]})), timeout=10)
    assert answer.status_code == 403 and "not among the sources of @members" in answer.text
    inside = gateway(source="127.0.0.0/8")
    assert httpx.get(inside.url("/members/headers"), headers=bearer(token({})), timeout=10).status_code == 200


def test_the_auth_handler_decides_from_the_claim(gateway):
    def handle_claim(claim, request):
        expires = claim.get("expires", 0)
        if expires and expires < time.time():
            return None
        return {**claim, "roles": ["admin"] if claim.get("user") == "Hans Roh" else []}

    server = gateway(role="admin", auth_handler=handle_claim)
    hans = httpx.get(server.url("/members/headers"), headers=bearer(token({"user": "Hans Roh"})), timeout=10)
    assert hans.status_code == 200
    assert json.loads(hans.json()["x-gateway-claim"]) == {"user": "Hans Roh", "roles": ["admin"]}
    other = httpx.get(server.url("/members/headers"), headers=bearer(token({"user": "Eve"})), timeout=10)
    assert other.status_code == 403
    stale = httpx.get(server.url("/members/headers"), headers=bearer(token({"user": "Hans Roh", "expires": 1})),
                      timeout=10)
    assert stale.status_code == 401 and "the token was refused" in stale.headers["WWW-Authenticate"]


def test_an_http2_client_is_guarded_the_same(gateway):
    pytest.importorskip("skitai_http2")
    server = gateway(http2=True)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        refused = client.get(server.url("/members/headers"))
        allowed = client.get(server.url("/members/headers"), headers=bearer(token({"user": "h2"})))
    assert refused.http_version == "HTTP/2" and refused.status_code == 401
    assert allowed.status_code == 200 and json.loads(allowed.json()["x-gateway-claim"]) == {"user": "h2"}


SCRIPT = '''
import os
import time

import skitai


def handle_claim(claim, request):
    return claim if claim.get("user") != "banned" else None


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Skitai App Engine: API Gateway"]


if __name__ == "__main__":
    skitai.alias("@members", skitai.PROTO_HTTP, os.environ["MEMBER"], role="admin")
    skitai.mount("/", app)
    skitai.mount("/members", "@members")
    if os.environ.get("PHOTOS"):
        skitai.alias("@photos", skitai.DB_SQLITE3, [os.environ["PHOTOS"]])
        skitai.mount("/photos", "@photos")
    skitai.set_auth_handler(handle_claim)
    skitai.enable_gateway(True, public_key="public.pem", algorithms=["RS256"], audience="members-api", leeway=5)
    skitai.run()
'''


def test_a_gateway_script_with_rs256_tokens_logs_each_call_with_its_gtxid(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    script = tmp_path / "gateway.py"
    script.write_text(textwrap.dedent(SCRIPT))
    members = StartedServers(ServerThread)
    try:
        member = members(origin_app)
        with ServerProcess(str(script), env={"MEMBER": f"127.0.0.1:{member.port}"}) as server:
            def call(claim):
                value = jwt.encode({"aud": "members-api", **claim}, key, algorithm="RS256")
                return httpx.get(server.url("/members/headers"), headers=bearer(value), timeout=20)

            allowed = call({"user": "hans", "roles": ["admin"]})
            banned = call({"user": "banned", "roles": ["admin"]})
            no_role = call({"user": "hans"})
            hs = httpx.get(server.url("/members/headers"), headers=bearer(token({"roles": ["admin"]})), timeout=20)
    finally:
        members.stop()
    assert allowed.status_code == 200, server.output
    assert [banned.status_code, no_role.status_code, hs.status_code] == [401, 403, 401]
    assert "the token's algorithm is not accepted" in hs.headers["WWW-Authenticate"]
    gtxid = allowed.json()["x-gtxn-id"]
    logged = [line for line in server.output.splitlines() if " /members/headers " in line and " HTTP/1.1 " in line]
    assert len(logged) == 4, server.output
    assert gtxid in logged[0] and " 200 " in logged[0]
    assert all(" GTID-" in line for line in logged)


def test_mounting_a_database_alias_stops_the_gateway_saying_what_is_supported(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    script = tmp_path / "gateway.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run([sys.executable, str(script), f"--port={free_port()}"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MEMBER": "127.0.0.1:9",
                                             "PHOTOS": str(tmp_path / "photos.db")})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("skitai: error: ") and "'@photos'" in last and "PROTO_HTTP and PROTO_HTTPS" in last, \
        result.stderr


def test_a_missing_public_key_stops_the_gateway_in_one_line(tmp_path):
    script = tmp_path / "gateway.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run([sys.executable, str(script), f"--port={free_port()}"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MEMBER": "127.0.0.1:9"})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("skitai: error: ") and "public.pem" in last, result.stderr


# without enable_gateway: the alias's own source and role still hold
def test_without_the_gateway_an_alias_source_and_role_still_hold(gateway):
    outside = gateway(source="10.0.0.0/8", api_gateway=None)
    assert httpx.get(outside.url("/members/headers"), timeout=10).status_code == 403
    admin_only = gateway(role="admin", api_gateway=None)
    refused = httpx.get(admin_only.url("/members/headers"), headers=bearer(token({"roles": ["admin"]})), timeout=10)
    assert refused.status_code == 403 and "tokens are not checked" in refused.text


def test_without_the_gateway_authorization_passes_and_a_client_claim_does_not(gateway):
    server = gateway(api_gateway=None)
    answer = httpx.get(server.url("/members/headers"), timeout=10,
                       headers={"Authorization": "Bearer member-s-own", "X-Gateway-Claim": '{"roles":["admin"]}'})
    seen = answer.json()
    assert seen["authorization"] == "Bearer member-s-own" and seen["x-gateway-claim"] is None


def test_an_auth_handler_without_the_gateway_stops_the_start(gateway):
    with pytest.raises(Exception, match="needs skitai.enable_gateway"):
        gateway(api_gateway=None, auth_handler=lambda claim, request: claim)
