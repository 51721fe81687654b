"""The export spec: set-up before the app is imported, a hook after."""


def __setup__(pref):
    pref.config.setup_ran = True


def __mount__(app):
    app.mounted = True
