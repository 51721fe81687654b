"""An extension found through `skitai.preference(path="addons")`."""


def __mount__(app):
    @app.route("/stats")
    def stats():
        return {"urls": len(app.config["urllist"])}
