#!/usr/bin/env python3
"""A WebSocket test app (Python's `websockets`): echoes every message, text or binary, as it came.

A text message `close CODE REASON` makes it close the connection with that code. Any plain HTTP request (not an
Upgrade) gets 200 ok, for readiness.
"""
import asyncio, http, os, sys

from websockets.asyncio.server import serve


async def echo(connection):
    async for message in connection:
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            await connection.close(int(code), reason)
            return
        await connection.send(message)


def plain_http(connection, request):
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None


async def main(port):
    async with serve(echo, "127.0.0.1", port, process_request=plain_http, max_size=None, compression=None):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(os.environ.get("PORT") or sys.argv[1])))
