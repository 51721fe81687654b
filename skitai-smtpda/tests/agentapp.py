"""The smallest Skitai script the agent's process tests run as `serve.py`: an app that answers
"ok", so they test the `--smtpda` commands around it, not the app. A module of its own (not
conftest) so test modules can import it."""
import textwrap

SCRIPT = textwrap.dedent('''
    import skitai


    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


    if __name__ == "__main__":
        skitai.mount("/", app)
        skitai.run(port=5000)
''')
