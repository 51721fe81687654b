"""unsub's v1 API."""
from flask import Flask, current_app, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(version="v1", urls=current_app.config["urllist"], script_root=request.script_root)
