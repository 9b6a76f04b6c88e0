#!/usr/bin/env python3
"""A TCP relay that delays every chunk by a fixed time in each direction: a long link for the
0-RTT benchmark where `tc netem` is not available (bench/load/zero-rtt.sh).

Usage: delay_relay.py LISTEN_PORT TARGET_PORT DELAY_MS PORT_FILE
Listens on 127.0.0.1:LISTEN_PORT (0: any free port, written to PORT_FILE) and relays each
connection to 127.0.0.1:TARGET_PORT. Bytes keep their order; each chunk read leaves DELAY_MS
after it arrived, so a round trip through the relay costs 2 * DELAY_MS more. A close (or a
half-close) is passed on after the same delay.
"""
import asyncio
import socket
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time() + delay, None))
    await task


async def main():
    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    delay = float(sys.argv[3]) / 1000.0

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        for w in (client_writer, server_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, delay)
        )
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    port = server.sockets[0].getsockname()[1]
    with open(sys.argv[4], "w") as f:
        f.write(f"{port}\n")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
