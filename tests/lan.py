"""Several machines on this one: hosts in network namespaces on a test LAN, for the tests of
what crosses a network (workers on different machines sharing one PostgreSQL outbox, a
machine cut off from the database while it can still reach the platforms).

This machine, the test process's own namespace, is the LAN's server. The LAN is a Linux
bridge with two of its addresses: `platforms` for the simulator and `database` for
PostgreSQL, so that a host can lose the one and keep the other. Each host is a network
namespace joined to the bridge by a veth pair, and its processes run under its own host name
(a UTS namespace), as on another machine: they share nothing with the server but the LAN
(and the disk, which the tests use only for the storm's files and the workers' output).

Cutting a host off from an address is a blackhole route in its namespace: a new connection
fails at once, and packets of an open one are dropped, so a request waiting on it stalls, as
across a broken link, until the route is removed.

Needs root and iproute2 (`ip`, `unshare`); without them the tests skip loudly, and fail under
CI=true (tests/not_run.py). Every namespace and link is removed when the LAN closes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from not_run import not_run

# The LANs' addresses: 10.213.<n>.0/24, n unused on this machine when the LAN is made. A
# lock file serializes the choice between the suite's xdist workers.
PREFIX = "10.213"
LOCK = Path(tempfile.gettempdir()) / "stormer-lan.lock"


@dataclass(frozen=True)
class Host:
    name: str  # its host name, as its processes see it
    netns: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run on this host: in its network namespace, under its host name. Each of
        `ip netns exec`, `unshare` and `sh` execs the next, so the process started is `argv`'s
        own (its pid, its signals)."""
        on_host = 'hostname "$0" && exec "$@"'
        namespaces = ["ip", "netns", "exec", self.netns, "unshare", "--uts"]
        return [*namespaces, "sh", "-c", on_host, self.name, *argv]


@dataclass
class Lan:
    bridge: str
    subnet: int  # n of 10.213.n.0/24
    hosts: list[Host] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # the veth ends on the bridge

    @property
    def network(self) -> str:
        return f"{PREFIX}.{self.subnet}.0/24"

    @property
    def platforms(self) -> str:
        return f"{PREFIX}.{self.subnet}.1"

    @property
    def database(self) -> str:
        return f"{PREFIX}.{self.subnet}.2"

    def add_host(self, name: str) -> Host:
        index = len(self.hosts)
        host = Host(name, f"{self.bridge}-{name}", f"{PREFIX}.{self.subnet}.{11 + index}")
        link = f"{self.bridge}v{index}"
        ip("netns", "add", host.netns)
        self.hosts.append(host)  # removed at close, whatever fails next
        ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        self.links.append(link)
        ip("link", "set", link, "master", self.bridge, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def cut_off(self, host: Host, address: str) -> None:
        """From now on `host` cannot reach `address`; everything else it still reaches."""
        ip("-n", host.netns, "route", "add", "blackhole", f"{address}/32")

    def reconnect(self, host: Host, address: str) -> None:
        ip("-n", host.netns, "route", "del", "blackhole", f"{address}/32")

    def close(self) -> None:
        # Deleting a namespace deletes its veth end, and with it the end on the bridge.
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def lan() -> Iterator[Lan]:
    """A new LAN with no hosts yet (`Lan.add_host`), removed with its hosts at the end."""
    if os.geteuid() != 0:
        not_run("several-machine", "network namespaces need root")
    missing = [tool for tool in ("ip", "unshare", "hostname") if shutil.which(tool) is None]
    if missing:
        not_run("several-machine", f"{', '.join(missing)} not found (Debian: iproute2)")
    bridge = f"stl{os.getpid()}"
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subnet = unused_subnet()
        made = Lan(bridge, subnet)
        try:
            ip("link", "add", bridge, "type", "bridge")
            ip("addr", "add", f"{made.platforms}/24", "dev", bridge)
            ip("addr", "add", f"{made.database}/24", "dev", bridge)
            ip("link", "set", bridge, "up")
        except RuntimeError as e:
            made.close()
            not_run("several-machine", f"cannot make a test LAN here: {e}")
    try:
        yield made
    finally:
        made.close()


def unused_subnet() -> int:
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    for n in range(1, 255):
        if f" {PREFIX}.{n}." not in shown:
            return n
    raise RuntimeError(f"every {PREFIX}.n.0/24 is in use on this machine")
