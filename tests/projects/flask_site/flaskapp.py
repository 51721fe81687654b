"""A Flask app that the tests mount under /flaskapp, to see that a framework's routing, URL
building, body parsing, file sending and error handling work below a mount point."""
import hashlib
import os

from flask import Flask, abort, jsonify, redirect, request, send_file, url_for

app = Flask(__name__)
FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")


@app.route("/hello")
def hello():
    return "Hello"


@app.route("/urls")
def urls():
    return jsonify(path=url_for("hello"), external=url_for("hello", _external=True),
                   script_root=request.script_root, path_info=request.path)


@app.route("/go")
def go():
    return redirect(url_for("hello"))


@app.route("/form", methods=["POST"])
def form():
    return "name=" + request.form["name"]


@app.route("/json", methods=["POST"])
def json_echo():
    return jsonify(got=request.get_json())


@app.route("/upload", methods=["POST"])
def upload():
    """Digest and size of the raw body or of each uploaded file, so a test sees every byte arrived."""
    if not request.files:
        body = request.get_data()
        return jsonify(size=len(body), sha256=hashlib.sha256(body).hexdigest())
    received = {}
    for name, storage in request.files.items():
        data = storage.read()
        received[name] = {"filename": storage.filename, "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}
    return jsonify(files=received, fields=request.form.to_dict())


@app.route("/file")
def file():
    return send_file(os.path.join(FILES, "site.css"), mimetype="text/css")


@app.route("/teapot")
def teapot():
    abort(418)


@app.route("/broken")
def broken():
    raise ValueError("no such value")


@app.errorhandler(418)
def handle_teapot(error):
    return "short and stout", 418


@app.errorhandler(ValueError)
def handle_value_error(error):
    return f"handled: {error}", 400
