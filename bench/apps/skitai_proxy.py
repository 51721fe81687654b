"""The Skitai reverse proxy of `bench/proxy.py`: `/` mounted on the alias `@member`, whose one
member is `PROXY_MEMBER` (host:port) of the environment; no access log; uploads up to 4 GiB."""
import os

import skitai

skitai.alias("@member", skitai.PROTO_HTTP, os.environ["PROXY_MEMBER"])
skitai.mount("/", "@member")
skitai.log_off("/")
skitai.set_max_upload_size(4 * 1024 ** 3)
skitai.run(threads=0)
