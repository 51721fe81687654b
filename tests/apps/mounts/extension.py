"""An extension mounted with pref.mount(): it decorates the app it is mounted on."""


def __mount__(app):
    app.extended = True
