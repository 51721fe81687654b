"""Every kind of mount object the manual describes, in one service."""
import os

import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/cwd":
        return f"{os.getcwd()}|{skitai.getswd()}|{skitai.abspath('static', 'v1.txt')}"
    return f"main {__name__} script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']}"


if __name__ == "__main__":
    import extension
    import unsub

    skitai.mount("/", "static")
    skitai.mount("/", __file__)
    skitai.mount("/v1", "app_v1/app")
    skitai.mount("/v2", "app_v2/app:app")
    skitai.mount("/mod", "pkgapps.api:application")
    with skitai.preference() as pref:
        pref.config.greeting = "hi"
        pref.mount("/ext", extension)
        skitai.mount("/unsub", unsub, pref)
    skitai.mount("/unsub2", (unsub, "app_v2:app"))
    skitai.run(port=5000)
