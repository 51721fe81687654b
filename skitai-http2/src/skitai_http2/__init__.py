"""HTTP/2 for Skitai, registered through the core's protocol hook (see `skitai_http2.plugin`)."""
