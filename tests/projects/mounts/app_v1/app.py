"""Version 1 in the manual's versioning layout: app_v1/app.py with its own templates and static."""
from flask import Flask, render_template, request

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html")


@app.route("/where/<path:rest>")
def where(rest):
    return f"v1 script={request.script_root} path={request.path}"
