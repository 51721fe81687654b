"""The manual's "At a Glance" myservice.py, unchanged but for its static folder: an app and a
static directory both at /."""
PROJECT = "glance/myservice.py"


def test_the_app_says_hello_world(client):
    response = client.get("/")
    assert response.status_code == 200 and response.text == "Hello World"
    assert response.headers["content-type"] == "text/plain"


def test_a_file_of_the_static_folder_wins_over_the_app(client):
    css = client.get("/site.css")
    assert css.status_code == 200 and css.text == "body { color: teal; }\n"
    assert css.headers["content-type"] == "text/css"


def test_paths_without_a_file_go_to_the_app(client):
    assert client.get("/missing.css").text == "Hello World"
