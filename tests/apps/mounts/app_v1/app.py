def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return f"v1 script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']}"
