"""Mount table routing and preferences, without sockets."""
import sys

import pytest
from h1util import Harness

from skitai.config import ServerConfig
from skitai.mounting import MountTable, decode_path, normalize_point
from skitai.preference import Preference, apply_preference


class Named:
    def __init__(self, name):
        self.name = name


class FakeExchange:
    def __init__(self, path, method="GET"):
        self.path, self.method = path, method
        self.script_name = self.path_info = None


@pytest.fixture
def table():
    table = MountTable()
    for point in ("/", "/v1", "/v1/deep", "/static"):
        table.add(point, "app", Named(point))
    return table


@pytest.mark.parametrize("path, point, script_name, path_info", [
    ("/", "/", "", "/"),
    ("/v1", "/v1", "/v1", ""),
    ("/v1/", "/v1", "/v1", "/"),
    ("/v10", "/", "", "/v10"),
    ("/v1/deep/x", "/v1/deep", "/v1/deep", "/x"),
    ("/v1/deeper", "/v1", "/v1", "/deeper"),
    ("/v%31/x", "/v1", "/v1", "/x"),
    ("/static/a%20b", "/static", "/static", "/a b"),
])
def test_longest_segment_prefix_wins(table, path, point, script_name, path_info):
    exchange = FakeExchange(path)
    assert table.resolve(exchange).name == point
    assert (exchange.script_name, exchange.path_info) == (script_name, path_info)


def test_a_point_takes_one_app_and_one_static_directory():
    table = MountTable()
    table.add("/x/", "app", Named("app"))
    table.add("/x", "static", Named("static"))
    with pytest.raises(ValueError):
        table.add("/x", "app", Named("again"))


def test_points_and_paths_are_normalised():
    assert normalize_point("v1/") == "/v1" and normalize_point("/") == "/"
    assert decode_path("/a%2Fb%ff") == "/a/b\xff"


def test_preference_applies_to_dict_and_attribute_configs():
    from flask import Flask

    flask_app = Flask("t")
    pref = Preference()
    pref.config.answer = 42
    pref.debug = True
    apply_preference(flask_app, pref)
    assert flask_app.config["answer"] == 42 and flask_app.debug is True

    def plain(environ, start_response):
        return []

    pref.use_reloader = True
    apply_preference(plain, pref)
    assert plain.config.answer == 42 and plain.debug is True and plain.use_reloader is True


def test_preference_path_goes_first_on_sys_path(tmp_path):
    saved = list(sys.path)
    try:
        with Preference(path=str(tmp_path)) as pref:
            assert sys.path[0] == str(tmp_path) == pref.path
    finally:
        sys.path[:] = saved


def test_mounting_an_unknown_object_is_a_clear_error():
    with pytest.raises(TypeError, match="no mount adapter"):
        Harness(("/", 42)).close()


def test_config_setters_land_in_one_config():
    config = ServerConfig()
    config.max_ages += [("/", 10), ("/img", 60), ("/img", 90)]
    assert config.max_age_for("/a.js") == 10 and config.max_age_for("/img/x.png") == 90
    config.log_off += ["/static/", "*.css"]
    assert not config.is_logged("/static/x") and not config.is_logged("/a/b.css") and config.is_logged("/x")
