"""An app mounted by dotted name ("pkgapps.api:application")."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    text = f"api {__name__} script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']}"
    return [text.encode("latin-1")]
