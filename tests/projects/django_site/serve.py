"""The manual's "Mount Django App" example: the project's wsgi.py at /, its static folder and
Django's admin static files beside it."""
import os

import skitai

if __name__ == "__main__":
    skitai.mount("/static", "mydjango/static")
    with skitai.preference() as pref:
        import django

        pref.debug = True
        skitai.mount("/", "mydjango/mydjango/wsgi:application", pref)
        skitai.mount(
            "/static/admin",
            os.path.join(os.path.dirname(django.__file__), "contrib", "admin", "static", "admin"),
        )
    skitai.run(port=5000)
