def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return f"api {__name__} path={environ['PATH_INFO']}"
