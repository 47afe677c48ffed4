"""Free loopback ports for the servers the tests start (and for addresses nobody listens on).

A port is free when asked; another process may take it before a server binds it, so the
fixtures that start servers try a few."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held at once, so the kernel can't repeat one)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    (port,) = free_ports(1)
    return port
