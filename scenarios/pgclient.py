#!/usr/bin/env python3
"""Incident 003 in miniature: a client whose pool is rebuilt at every "nightly" refresh
without closing the old set, against a real PostgreSQL server.

    pgclient.py PORT [--pool 5] [--refresh 20] [--fixed]

Opens a pool of --pool connections (PostgreSQL wire protocol v3, trust authentication,
user postgres), runs `SELECT 1` on each every second, and every --refresh seconds opens a
fresh set. The bug: the old set is dropped from the pool but kept referenced (as the
incident's pool kept it in a second collection), so its sockets stay ESTABLISHED.
--fixed closes the old set. Prints "refresh N" at each refresh; exits when stdin closes.
"""

import select
import socket
import struct
import sys
import time


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def read_until_ready(sock: socket.socket) -> None:
    """Reads backend messages until ReadyForQuery ('Z'); fails on ErrorResponse."""
    buffer = b""
    while True:
        while len(buffer) < 5:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        kind = buffer[:1]
        (length,) = struct.unpack("!I", buffer[1:5])
        while len(buffer) < 1 + length:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        body, buffer = buffer[5 : 1 + length], buffer[1 + length :]
        if kind == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        if kind == b"Z":
            return


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    params = b"user\0postgres\0database\0postgres\0application_name\0pgclient\0\0"
    body = struct.pack("!I", 196608) + params
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    read_until_ready(sock)
    return sock


def query(sock: socket.socket, sql: str) -> None:
    sock.sendall(message(b"Q", sql.encode() + b"\0"))
    read_until_ready(sock)


def main() -> None:
    args = sys.argv[1:]
    port = int(args[0])
    pool_size = int(args[args.index("--pool") + 1]) if "--pool" in args else 5
    refresh = float(args[args.index("--refresh") + 1]) if "--refresh" in args else 20.0
    fixed = "--fixed" in args
    pool = [connect(port) for _ in range(pool_size)]
    retired = []  # the second collection that keeps old connections alive
    print("ready", flush=True)
    next_refresh = time.monotonic() + refresh
    refreshes = 0
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 1.0)
        if readable and not sys.stdin.readline():
            return
        for sock in pool:
            query(sock, "SELECT 1")
        if time.monotonic() >= next_refresh:
            next_refresh += refresh
            refreshes += 1
            old, pool = pool, [connect(port) for _ in range(pool_size)]
            if fixed:
                for sock in old:
                    sock.sendall(message(b"X", b""))
                    sock.close()
            else:
                retired.extend(old)
            print(f"refresh {refreshes}", flush=True)


if __name__ == "__main__":
    main()
