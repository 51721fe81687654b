"""Flask with `was`: Flask turns every exception into its own 500, so the app hands
`skitai.HTTPError` back as a response (it is a WSGI app)."""
from flask import Flask, jsonify
from work import concurrent_work, gone, visit

import skitai

app = Flask(__name__)
app.register_error_handler(skitai.HTTPError, lambda error: error)


@app.route("/tasks")
def tasks():
    return jsonify(concurrent_work())


@app.route("/visit")
def visits():
    return jsonify(visit())


@app.route("/gone")
def gone_record():
    return jsonify(gone())
