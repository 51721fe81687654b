"""`from skitai import was` in Flask and Django apps served by Skitai
(tests/projects/was_frameworks): corequests of every background kind, shared states, and an
HTTPError from a corequest answered with its status."""
import pytest

PROJECT = "was_frameworks/serve.py"


@pytest.mark.parametrize("prefix", ["/flask", "/django"])
def test_corequests_inside_the_framework(client, prefix):
    response = client.get(f"{prefix}/tasks", timeout=90)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == [9, 16, "sub\n", "masked"] and body["named"] == {"mask": "masked"}


def test_states_are_shared_across_frameworks(client):
    assert client.get("/flask/visit").json() == {"visits": 1}
    assert client.get("/django/visit").json() == {"visits": 2}


@pytest.mark.parametrize("prefix", ["/flask", "/django"])
def test_http_error_from_a_corequest_keeps_its_status(client, prefix):
    response = client.get(f"{prefix}/gone")
    assert response.status_code == 410 and "one() expects exactly one record" in response.text
