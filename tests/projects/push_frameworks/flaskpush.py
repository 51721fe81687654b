"""The spec's "Push Promise" example in Flask: push two images, then answer the page that
shows them. `X-Pushed` tells the tests what `was.push` returned."""
from flask import Flask, make_response

from skitai import was

app = Flask(__name__)


@app.route("/promise")
def promise():
    pushed = [was.push("/images/A.png"), was.push("/images/B.png")]
    response = make_response('Promise Sent<br><br><img src="/images/A.png"><img src="/images/B.png">')
    response.headers["X-Pushed"] = " ".join(map(str, pushed))
    return response
