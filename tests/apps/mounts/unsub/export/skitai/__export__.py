def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    config = app.config
    return (f"unsub {config.greeting} setup={config.setup_ran} mounted={getattr(app, 'mounted', False)} "
            f"extended={getattr(app, 'extended', False)} path={environ['PATH_INFO']}")
