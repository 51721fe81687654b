"""The alias table: the manual's member syntax, kinds served by plugins, refusals that name
their cause. (Aliases reaching a plugin's service in a worker: test_plugins.py.)"""
from __future__ import annotations

import ipaddress

import pytest

import skitai
from skitai.backends import AliasError, AliasTable, BackendRegistry, Member, parse_member, parse_sources


@pytest.mark.parametrize("text, member", [
    ("members.example.com:5001", Member("members.example.com", 5001)),
    ("username:password@members.example.com:5001", Member("members.example.com", 5001, "username", "password")),
    ("postgres:1234@172.30.0.1:5432/test 20", Member("172.30.0.1", 5432, "postgres", "1234", "test", 20)),
    ("us%40r:p%40ss@db:5432/test", Member("db", 5432, "us@r", "p@ss", "test")),
    ("user@db", Member("db", None, "user")),
    ("a:b:c@db:1", Member("db", 1, "a", "b:c")),
    ("127.0.0.1:6379/2", Member("127.0.0.1", 6379, database="2")),
    ("[::1]:5432/test 3", Member("::1", 5432, database="test", weight=3)),
    ("[::1]", Member("::1")),
    ("  host:80   7 ", Member("host", 80, weight=7)),
])
def test_members_in_the_manuals_syntax(text, member):
    assert parse_member(text) == member


def test_member_address_and_text_never_show_the_password():
    member = parse_member("postgres:secret@[::1]:5432/test 2")
    assert member.address == "[::1]:5432"
    assert str(member) == "postgres@[::1]:5432/test 2" and "secret" not in repr(str(member))


@pytest.mark.parametrize("text, cause", [
    ("", "empty"),
    ("host:0", "between 1 and 65535"),
    ("host:70000", "between 1 and 65535"),
    ("host:http", "between 1 and 65535"),
    ("user@:5432", "no host"),
    ("[::1:5432", "IPv6"),
    ("host:80 heavy", "not a number"),
    ("host:80 0", "1 or more"),
])
def test_members_that_do_not_parse_name_the_cause(text, cause):
    with pytest.raises(AliasError, match=cause):
        parse_member(text)


def test_file_members_are_relative_to_the_scripts_folder(tmp_path):
    member = parse_member("data/db1 5", paths=True, root=str(tmp_path))
    assert member == Member(path=str(tmp_path / "data/db1"), weight=5)
    assert parse_member("/var/tmp/db1", paths=True, root=str(tmp_path)).path == "/var/tmp/db1"


def test_sources_accept_the_manuals_short_networks():
    assert parse_sources("172.30.1.0/24,192.168.1/24, ::1/128") == (
        ipaddress.ip_network("172.30.1.0/24"), ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("::1/128"))
    with pytest.raises(AliasError, match="alias source '300.1/8'"):
        parse_sources("300.1/8")


def table(tmp_path, *kinds, validate=None, paths=False):
    registry = BackendRegistry()
    for kind in kinds:
        registry.add(kind, "test", paths=paths, validate=validate)
    return AliasTable(registry, str(tmp_path))


def test_aliases_by_name_with_role_source_and_ssl(tmp_path):
    aliases = table(tmp_path, skitai.PROTO_HTTP, skitai.PROTO_HTTPS)
    aliases.add("@members", skitai.PROTO_HTTP, ["username:password@members.example.com:5001"], role="admin",
                source="172.30.1.0/24,192.168.1/24")
    aliases.add("api", "https", "api.example.com")   # the manual also writes kinds as strings
    members = aliases.get("members")
    assert members.name == "@members" and members.role == "admin" and not members.ssl
    assert members.allows("192.168.1.7") and not members.allows("10.0.0.1") and not members.allows("nonsense")
    api = aliases.get("@api")
    assert api.ssl and api.allows("10.0.0.1") and api.members == (Member("api.example.com"),)
    assert "@api" in aliases and "@nope" not in aliases
    with pytest.raises(KeyError, match="declared: @api, @members"):
        aliases.get("@nope")


def test_kinds_the_manual_spells_two_ways_are_one(tmp_path):
    assert skitai.DB_PGSQL == skitai.DB_POSTGRESQL
    aliases = table(tmp_path, skitai.DB_POSTGRESQL)
    assert aliases.add("@pg", "pgsql", "db:5432/test").kind == skitai.DB_PGSQL


@pytest.mark.parametrize("kind, message", [
    (skitai.DB_PGSQL, 'DB_PGSQL needs skitai-dbi: pip install "skitai[dbi]"'),
    (skitai.DB_REDIS, 'DB_REDIS needs skitai-dbi: pip install "skitai[dbi]"'),
    (skitai.DJANGO, 'DJANGO needs skitai-dbi: pip install "skitai[dbi]"'),
    (skitai.PROTO_HTTPS, 'PROTO_HTTPS needs skitai-gateway: pip install "skitai[gateway]"'),
    (skitai.PROTO_WS, 'PROTO_WS needs skitai-gateway: pip install "skitai[gateway]"'),
    ("gopher", "unknown alias kind 'gopher'"),
])
def test_a_kind_nobody_serves_names_what_to_install(tmp_path, kind, message):
    with pytest.raises(AliasError) as refused:
        table(tmp_path).add("@x", kind, "host:1")
    assert str(refused.value).startswith(message)


def test_a_plugin_validates_an_alias_as_it_is_declared(tmp_path):
    def one_member_only(alias):
        if len(alias.members) != 1:
            raise ValueError("one member only")

    aliases = table(tmp_path, "solo", validate=one_member_only)
    aliases.add("@a", "solo", "host:1")
    with pytest.raises(AliasError, match="^alias @b: one member only$"):
        aliases.add("@b", "solo", ["host:1", "host:2"])
    assert "@b" not in aliases


@pytest.mark.parametrize("name", ["", "@", "@a/b", "@a b", None])
def test_alias_names_are_checked(tmp_path, name):
    with pytest.raises(AliasError, match="alias name"):
        table(tmp_path, skitai.PROTO_HTTP).add(name, skitai.PROTO_HTTP, "host:1")


def test_a_kind_is_served_by_one_plugin():
    registry = BackendRegistry()
    registry.add(skitai.DB_REDIS, "first")
    with pytest.raises(ValueError, match="served by first already"):
        registry.add("redis", "second")
