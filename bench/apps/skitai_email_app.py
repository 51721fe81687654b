"""The app of bench/smtpda.py: /spool sends one message with `was.email(...).send()` (spooled,
delivered by the agent `--smtpda` runs); /inline sends the same message with smtplib in the
request (connect, send, quit), what an app does without an agent (/inline-tls: over TLS
with AUTH, the `BENCH_SMTP_TLS` server trusting `BENCH_CA`); /compose only builds it. SMTP is the `BENCH_SMTP`
"host:port"; the spool is SKITAI_SMTPDA_SPOOL."""
import os
import smtplib
import ssl

import skitai
from skitai import was

SMTP = os.environ["BENCH_SMTP"]
BODY = "Hello,\n\nthis is message number {n} of the benchmark.\n" + "Some text of a usual mail. " * 20


def compose(n):
    e = was.email(f"Benchmark message {n}", "Bench <bench@example.com>", "Reader <reader@example.com>")
    e.add_content(BODY.format(n=n))
    return e


def app(environ, start_response):
    n = environ.get("QUERY_STRING", "0")
    e = compose(n)
    if environ["PATH_INFO"] == "/compose":
        e.message().as_bytes()  # the same work without the spool: what the write costs
    elif environ["PATH_INFO"] == "/inline":
        host, port = SMTP.rsplit(":", 1)
        with smtplib.SMTP(host, int(port), timeout=30) as smtp:
            smtp.sendmail("bench@example.com", ["reader@example.com"], e.message().as_bytes())
    elif environ["PATH_INFO"] == "/inline-tls":
        host, port = os.environ["BENCH_SMTP_TLS"].rsplit(":", 1)
        context = ssl.create_default_context(cafile=os.environ["BENCH_CA"])
        with smtplib.SMTP_SSL(host, int(port), timeout=30, context=context) as smtp:
            smtp.login("bench", "bench")
            smtp.sendmail("bench@example.com", ["reader@example.com"], e.message().as_bytes())
    else:
        e.send()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"sent"]


if __name__ == "__main__":
    skitai.set_smtp(SMTP)
    skitai.log_off("/")
    skitai.mount("/", app)
    skitai.run(threads=4)
