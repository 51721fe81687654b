"""The API gateway's decision (`skitai_gateway.apiguard.decide`), without sockets: tokens made
with PyJWT (HS256, RS256, ES256, a JWKS file), their time and audience claims, roles, sources,
the auth handler, and the RFC 6750 challenges."""
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from skitai.backends import Alias, Member, parse_sources
from skitai.config import ApiGatewaySettings
from skitai_gateway.apiguard import Allow, GuardRequest, Refuse, claim_header, decide, roles_of
from skitai_gateway.tokens import TokenVerifier

SECRET = "8fa06210-e109-11e6-934f-001b216d6e71"
MEMBERS = (Member("127.0.0.1", 5000),)


def alias(role="", source=""):
    return Alias("@members", "http", MEMBERS, role, parse_sources(source))


def request(token=None, client="127.0.0.1", headers=None):
    if headers is None:
        headers = [("authorization", f"Bearer {token}")] if token is not None else []
    return GuardRequest("GET", "/members/1", headers, client)


def hs_settings(**options):
    return ApiGatewaySettings(secret=SECRET, **options)


def verdict(token, settings=None, target=None, **kwargs):
    settings = settings or hs_settings()
    return decide(request(token, **kwargs), target or alias(), settings, TokenVerifier(settings))


def hs(claim, secret=SECRET, **kwargs):
    return jwt.encode(claim, secret, algorithm="HS256", **kwargs)


def challenge(refusal):
    (name, value), = [(n, v) for n, v in refusal.headers if n == "WWW-Authenticate"]
    return value


def test_a_valid_hs256_token_is_allowed_with_its_claim():
    result = verdict(hs({"user": "Hans Roh", "roles": ["user"]}))
    assert result == Allow({"user": "Hans Roh", "roles": ["user"]})


def test_no_token_is_a_401_challenge_without_an_error_code():
    result = verdict(None)
    assert isinstance(result, Refuse) and result.status == 401
    assert challenge(result) == 'Bearer realm="API Gateway"'


@pytest.mark.parametrize("headers", [
    [("authorization", "Basic YWxpY2U6eA==")],
    [("authorization", "Bearer")],
    [("authorization", "Bearer a.b.c"), ("authorization", "Bearer a.b.c")],
])
def test_a_field_that_is_no_single_bearer_token_is_invalid_request(headers):
    settings = hs_settings()
    result = decide(request(headers=headers), alias(), settings, TokenVerifier(settings))
    assert result.status == 400
    assert 'error="invalid_request"' in challenge(result)


@pytest.mark.parametrize("token, description", [
    (hs({"user": "x"}, secret="another secret"), "the token's signature does not verify"),
    (hs({"exp": int(time.time()) - 60}), "the token has expired"),
    (hs({"nbf": int(time.time()) + 600}), "the token is not valid yet"),
    ("not-a-token", "the token is malformed"),
    (jwt.encode({"user": "x"}, None, algorithm="none"), "the token's algorithm is not accepted"),
    (jwt.encode({"user": "x"}, SECRET, algorithm="HS512"), "the token's algorithm is not accepted"),
])
def test_a_bad_token_is_a_401_invalid_token_saying_why(token, description):
    result = verdict(token)
    assert result.status == 401
    assert challenge(result) == (f'Bearer realm="API Gateway", error="invalid_token", '
                                 f'error_description="{description.replace(chr(34), chr(39))}"')


def test_leeway_admits_a_token_just_expired():
    token = hs({"exp": int(time.time()) - 5})
    assert verdict(token).status == 401
    assert isinstance(verdict(token, hs_settings(leeway=30)), Allow)


def test_audience_and_issuer_are_required_when_configured():
    settings = hs_settings(audience=("members-api",), issuer="https://auth.example")
    good = hs({"aud": "members-api", "iss": "https://auth.example"})
    assert isinstance(verdict(good, settings), Allow)
    wrong_audience = verdict(hs({"aud": "other", "iss": "https://auth.example"}), settings)
    assert 'error_description="the token is not for this audience"' in challenge(wrong_audience)
    wrong_issuer = verdict(hs({"aud": "members-api", "iss": "https://evil.example"}), settings)
    assert 'error_description="the token\'s issuer is not accepted"' in challenge(wrong_issuer)
    missing = verdict(hs({"iss": "https://auth.example"}), settings)
    assert missing.status == 401 and "lacks the claim aud" in challenge(missing)


def test_the_alias_role_must_be_among_the_token_roles():
    admin = alias(role="admin")
    refused = verdict(hs({"roles": ["user"]}), target=admin)
    assert refused.status == 403
    assert challenge(refused) == ('Bearer realm="API Gateway", error="insufficient_scope", '
                                  'error_description="the role \'admin\' is required"')
    assert verdict(hs({"user": "x"}), target=admin).status == 403
    assert isinstance(verdict(hs({"roles": ["user", "admin"]}), target=admin), Allow)
    assert isinstance(verdict(hs({"roles": "user admin"}), target=admin), Allow)
    assert isinstance(verdict(hs({"grants": ["admin"]}), hs_settings(roles_claim="grants"), target=admin), Allow)


def test_roles_of_reads_lists_and_strings_only():
    assert roles_of({"roles": "a, b c"}, "roles") == ["a", "b", "c"]
    assert roles_of({"roles": ["a", 5, None]}, "roles") == ["a"]
    assert roles_of({"roles": {"admin": True}}, "roles") == []


def test_the_source_networks_are_checked_first():
    internal = alias(source="172.30.1.0/24,192.168.1/24")
    token = hs({"roles": ["admin"]})
    assert isinstance(verdict(token, target=internal, client="192.168.1.20"), Allow)
    refused = verdict(token, target=internal, client="10.0.0.1")
    assert refused.status == 403 and refused.headers == []
    assert verdict(None, target=internal, client="10.0.0.1").status == 403  # before asking for a token


def test_the_auth_handler_changes_or_refuses_the_claim():
    settings = hs_settings()
    seen = []

    def handler(claim, req):
        seen.append((claim, req.path))
        if claim.get("expires", 0) and claim["expires"] < time.time():
            return None
        return {**claim, "roles": ["admin"]}

    verifier = TokenVerifier(settings)
    allowed = decide(request(hs({"user": "a"})), alias(role="admin"), settings, verifier, handler)
    assert allowed == Allow({"user": "a", "roles": ["admin"]})
    refused = decide(request(hs({"user": "b", "expires": 1})), alias(), settings, verifier, handler)
    assert refused.status == 401 and 'error_description="the token was refused"' in challenge(refused)
    assert seen == [({"user": "a"}, "/members/1"), ({"user": "b", "expires": 1}, "/members/1")]


def test_without_authentication_only_sources_count_and_a_role_cannot_be_met():
    settings = ApiGatewaySettings(enable_auth=False)
    assert decide(request(None), alias(), settings, None) == Allow(None)
    assert decide(request(None), alias(role="admin"), settings, None).status == 403
    assert decide(request(None, client="10.0.0.1"), alias(source="192.168.0.0/16"), settings, None).status == 403


# keys
@pytest.fixture
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def test_rs256_and_es256_with_a_public_key_file(tmp_path, rsa_key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "rsa.pem").write_bytes(pem(rsa_key))
    (tmp_path / "ec.pem").write_bytes(pem(ec_key))
    rs = ApiGatewaySettings(public_key=str(tmp_path / "rsa.pem"), algorithms=("RS256",))
    assert isinstance(verdict(jwt.encode({"u": 1}, rsa_key, algorithm="RS256"), rs), Allow)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert verdict(jwt.encode({"u": 1}, other, algorithm="RS256"), rs).status == 401
    es = ApiGatewaySettings(public_key=str(tmp_path / "ec.pem"), algorithms=("ES256",))
    assert isinstance(verdict(jwt.encode({"u": 1}, ec_key, algorithm="ES256"), es), Allow)


def test_an_hmac_token_signed_with_the_public_key_is_refused(tmp_path, rsa_key):
    """The algorithm confusion attack: HS256 with the RSA public key as its secret."""
    public = pem(rsa_key)
    (tmp_path / "rsa.pem").write_bytes(public)
    settings = ApiGatewaySettings(public_key=str(tmp_path / "rsa.pem"), algorithms=("RS256",))
    forged = jwt.api_jws.PyJWS(algorithms=["HS256"])
    forged._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT refuses a PEM secret itself
    token = forged.encode(json.dumps({"roles": ["admin"]}).encode(), public, algorithm="HS256")
    assert verdict(token, settings).status == 401


def test_a_jwks_file_picks_the_key_by_kid(tmp_path, rsa_key):
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = []
    for kid, key in (("one", rsa_key), ("two", second)):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    settings = ApiGatewaySettings(jwks=str(tmp_path / "jwks.json"), algorithms=("RS256",))
    assert isinstance(verdict(jwt.encode({"u": 2}, second, algorithm="RS256", headers={"kid": "two"}), settings), Allow)
    wrong = verdict(jwt.encode({"u": 2}, second, algorithm="RS256", headers={"kid": "one"}), settings)
    assert wrong.status == 401
    unknown = verdict(jwt.encode({"u": 2}, second, algorithm="RS256", headers={"kid": "three"}), settings)
    assert 'error_description="the token\'s key is unknown"' in challenge(unknown)
    no_kid = verdict(jwt.encode({"u": 2}, second, algorithm="RS256"), settings)
    assert no_kid.status == 401


@pytest.mark.parametrize("options, message", [
    ({"secret": SECRET, "algorithms": ("HS256", "none")}, "none"),
    ({"secret": None, "algorithms": ("HS256",), "jwks": None}, "needs the secret"),
    ({"secret": SECRET, "algorithms": ("RS256",)}, "need a public_key or a jwks"),
    ({"public_key": "/no/such/key.pem", "algorithms": ("RS256",)}, "/no/such/key.pem"),
])
def test_unusable_settings_are_refused_at_start_up(options, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        TokenVerifier(ApiGatewaySettings(**options))


def test_a_broken_jwks_file_is_refused(tmp_path):
    (tmp_path / "jwks.json").write_text('{"keys": [{"kty": "nope"}]}')
    with pytest.raises(ValueError, match="jwks"):
        TokenVerifier(ApiGatewaySettings(jwks=str(tmp_path / "jwks.json"), algorithms=("RS256",)))


def test_error_descriptions_carry_no_quote_or_backslash():
    result = verdict(hs({"roles": []}), target=alias(role='ad"m\\in'))
    value = challenge(result)
    description = value.split('error_description="', 1)[1][:-1]
    assert '"' not in description and "\\" not in description


def test_the_claim_header_is_compact_ascii_json():
    name, value = claim_header({"user": "Hans Röh", "roles": ["user"]})
    assert name == "X-Gateway-Claim"
    assert value == '{"roles":["user"],"user":"Hans R\\u00f6h"}'
    assert value.isascii()
