"""A Flask app mounted under /flaskapp by the tests."""
import os

from flask import Flask, abort, jsonify, request, send_file, url_for

app = Flask(__name__)
DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "glance", "statics", "site.css")


@app.route("/hello")
def hello():
    return "Hello"


@app.route("/where")
def where():
    return url_for("hello")


@app.route("/form", methods=["POST"])
def form():
    return "name=" + request.form["name"]


@app.route("/json", methods=["POST"])
def json_echo():
    return jsonify(got=request.get_json())


@app.route("/upload", methods=["POST"])
def upload():
    return str(len(request.get_data()))


@app.route("/file")
def file():
    return send_file(DATA_FILE, mimetype="text/css")


@app.route("/teapot")
def teapot():
    abort(418)


@app.errorhandler(418)
def handle_teapot(error):
    return "short and stout", 418
