"""The export spec's hooks: `__setup__` turns the user's settings into what the apps need
before they are imported, `__mount__` finishes each app once it is mounted."""


def __setup__(pref):
    with open(pref.config.urlfile, encoding="utf-8") as file:
        pref.config.urllist = [line.rstrip("\n").split("  ", 1) for line in file if line.strip()]


def __mount__(app):
    @app.route("/health")
    def health():
        return "ok"
