"""The Skitai reverse proxy of `bench/proxy.py`: `/` mounted on the alias `@member`, whose one
member is `PROXY_MEMBER` (host:port) of the environment; no access log."""
import os

import skitai

skitai.alias("@member", skitai.PROTO_HTTP, os.environ["PROXY_MEMBER"])
skitai.mount("/", "@member")
skitai.log_off("/")
skitai.run(threads=0)
