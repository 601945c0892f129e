"""An HTTP/1.1 proxy that adds a fixed latency to every request (a WAN
round trip), for the benchmarks.

    python latency_proxy.py UPSTREAM_URL LATENCY_MS PORTFILE

Listens on a free port on 127.0.0.1 and writes it to PORTFILE. Every request
waits LATENCY_MS before it is forwarded, and the waits run side by side
(asyncio): the emulator behind it is single-threaded, so the latency must not
queue behind it. Each client connection keeps its own upstream connection.
`GET /__proxy_stats` answers the counts as JSON (requests, AssumeRole calls,
the most and the time-averaged number in flight), without the latency.
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

stats = {"requests": 0, "assume_role": 0, "by_operation": {}, "max_in_flight": 0}
in_flight = 0
busy_since = None
area = 0.0  # integral of in-flight over time
first = None
last = None


def mark(delta):
    global in_flight, area, first, last
    now = time.monotonic()
    if last is not None:
        area += in_flight * (now - last)
    if first is None:
        first = now
    last = now
    in_flight += delta
    stats["max_in_flight"] = max(stats["max_in_flight"], in_flight)


async def read_message(reader, is_response):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            parts.append(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            parts.append(chunk)
            if size == 0:
                break
        body = b"".join(parts)
    elif is_response and not lines[0].split(" ")[1].startswith(("1", "204", "304")):
        body = await reader.read()
        headers["connection"] = "close"
    return lines[0], head, body, headers


def operation(headers, body):
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if body[:200].find(b"Action=") >= 0:
        text = body.decode("latin-1")
        for kv in text.split("&"):
            if kv.startswith("Action="):
                return kv[len("Action="):]
    return "other"


async def handle(client_r, client_w, upstream, latency):
    up = None
    try:
        while True:
            try:
                start, head, body, headers = await read_message(client_r, False)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if start.startswith("GET /__proxy_stats"):
                s = dict(stats)
                span = (last - first) if first is not None and last is not None else 0.0
                s["avg_in_flight_while_busy"] = round(area / span, 2) if span > 0 else 0.0
                payload = json.dumps(s).encode()
                client_w.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                    + payload
                )
                await client_w.drain()
                continue
            op = operation(headers, body)
            stats["requests"] += 1
            stats["by_operation"][op] = stats["by_operation"].get(op, 0) + 1
            if op == "AssumeRole":
                stats["assume_role"] += 1
            mark(+1)
            try:
                await asyncio.sleep(latency)
                for attempt in (0, 1):
                    if up is None:
                        up = await asyncio.open_connection(*upstream)
                    try:
                        up[1].write(head + body)
                        await up[1].drain()
                        rstart, rhead, rbody, rheaders = await read_message(up[0], True)
                        break
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # The emulator closed a kept-alive connection: reopen once.
                        up[1].close()
                        up = None
                        if attempt:
                            raise
                if rheaders.get("connection", "").lower() == "close" or rstart.startswith("HTTP/1.0"):
                    up[1].close()
                    up = None
            finally:
                mark(-1)
            client_w.write(rhead + rbody)
            await client_w.drain()
    except Exception as e:  # a broken client or upstream ends this connection only
        print(f"latency_proxy: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        if up is not None:
            up[1].close()
        client_w.close()


async def main():
    upstream_url, latency_ms, portfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    u = urlsplit(upstream_url)
    upstream = (u.hostname, u.port or 80)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, latency_ms / 1000.0), "127.0.0.1", 0, limit=1 << 24
    )
    port = server.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    import os

    os.replace(portfile + ".tmp", portfile)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
