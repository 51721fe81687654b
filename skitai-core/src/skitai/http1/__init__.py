"""HTTP/1.1: a sans-IO request parser (`parser`), response framing (`framing`) and the asyncio
connection protocol that joins them to sockets (`connection`)."""
