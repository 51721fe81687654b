"""A Skitai reverse proxy as a script (its own process, so its memory can be measured):
`python proxyscript.py --port=N` mounts `/` on the alias `@members`, whose members are the
space-separated `PROXY_MEMBERS` of the environment."""
import os

import skitai

skitai.alias("@members", skitai.PROTO_HTTP, os.environ["PROXY_MEMBERS"].split())
skitai.mount("/", "@members")
skitai.set_max_upload_size(4 * 1024 ** 3)
skitai.set_proxy_keep_alive(channel=float(os.environ.get("PROXY_CHANNEL", "60")))
skitai.run()
