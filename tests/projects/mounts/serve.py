"""The mount object forms of the manual in one service: static folders and apps sharing points,
the script mounting itself, app files by path (two versions both named app.py) and a module by
its dotted name."""
import os

import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    if environ["PATH_INFO"] == "/cwd":
        return [f"{os.getcwd()}|{skitai.getswd()}|{skitai.abspath('static', 'root.txt')}".encode()]
    return [f"main {__name__} script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']}".encode("latin-1")]


if __name__ == "__main__":
    skitai.mount("/", "static")
    skitai.mount("/", __file__)
    skitai.mount("/v1", "app_v1/static")
    skitai.mount("/v1", "app_v1/app")
    skitai.mount("/v2", "app_v2/static")
    skitai.mount("/v2", "app_v2/app.py:app")
    skitai.mount("/mod", "pkgapps.api:application")
    skitai.mount("/café", "pkgapps.api:application")
    skitai.run(port=5000)
