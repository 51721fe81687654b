"""An extension in the manual's style (extends/apis.py): `__mount__` adds a route to the app."""


def __mount__(app):
    @app.route("/apis")
    def apis_index():
        return "APIS"
