#!/usr/bin/env python3
"""A WebSocket client for the tests (Python's `websockets`): runs one scenario against URL, prints what it saw as JSON.

ws_client.py URL echo          text, binary, a 16 MiB message and a ping, then the client closes (1000)
ws_client.py URL server-close  the app closes with 4000 "bye"
ws_client.py URL wait-close    sends one message, prints "open" when echoed, then waits for the close (the test kills
                               the instance meanwhile) and prints its code
ws_client.py URL idle-after-chat  a message every second for 4 s (each echoed), then waits idle for the close
"""
import asyncio, hashlib, json, sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url, scenario):
    seen = {}
    async with connect(url, max_size=None, compression=None, open_timeout=10, close_timeout=10) as ws:
        if scenario == "echo":
            await ws.send("hello, mesh")
            seen["text"] = await ws.recv()
            await ws.send(b"\x00\x01\x02\xff")
            seen["binary"] = list(await ws.recv())
            big = bytes(range(256)) * (16 << 20 >> 8)
            await ws.send(big)
            echoed = await ws.recv()
            seen["big"] = [len(echoed), hashlib.sha256(echoed).hexdigest() == hashlib.sha256(big).hexdigest()]
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 10)
            seen["pong"] = True
            await ws.close(1000, "done")
            seen["close"] = [ws.close_code, ws.close_reason]
        elif scenario == "server-close":
            await ws.send("close 4000 bye")
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                seen["close"] = [closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else None]
        elif scenario == "wait-close":
            await ws.send("first")
            await ws.recv()
            print("open", flush=True)
            try:
                await asyncio.wait_for(ws.recv(), 30)
            except ConnectionClosed as closed:
                seen["close"] = [closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else None]
        elif scenario == "idle-after-chat":
            for i in range(4):
                await ws.send("chat %d" % i)
                seen["echoed"] = seen.get("echoed", 0) + (await ws.recv() == "chat %d" % i)
                await asyncio.sleep(1)
            try:
                await asyncio.wait_for(ws.recv(), 30)
            except ConnectionClosed as closed:
                seen["close"] = [closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else None]
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
