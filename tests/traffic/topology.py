# SPDX-License-Identifier: Apache-2.0
"""Network namespaces of one traffic run: a client and a server namespace
joined by two veth pairs, one carrying plain traffic and one the underlay
of a kernel VXLAN between them. Nothing is routed out: the namespaces have
only the addresses assigned here and no default route.

    cli (mpt<pid>c)                          srv (mpt<pid>s)
      v0 10.201.0.2  fd00:201::2   <veth>    v0 10.201.0.1  fd00:201::1
      u0 10.201.1.2                <veth>    u0 10.201.1.1          (underlay)
      vx0 10.201.2.2 fd00:201:2::2 <vxlan 42 over u0> vx0 10.201.2.1 fd00:201:2::1

Names carry the creating process id, so parallel runs never collide and a
later run removes what a killed run left behind (its pid is gone).
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

PREFIX = "mpt"

# (plain address of the server, of the client), per address family and path
ADDR = {
    "plain": {"srv4": "10.201.0.1", "cli4": "10.201.0.2", "srv6": "fd00:201::1", "cli6": "fd00:201::2"},
    "vxlan": {"srv4": "10.201.2.1", "cli4": "10.201.2.2", "srv6": "fd00:201:2::1", "cli6": "fd00:201:2::2"},
}
UNDERLAY = {"srv4": "10.201.1.1", "cli4": "10.201.1.2"}
CAPTURE_DEV = {"plain": "v0", "vxlan": "u0"}
VNI = 42


def sh(argv: List[str], check=True, timeout=20) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def has_net_admin() -> Optional[str]:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "not root (CAP_NET_ADMIN is needed for network namespaces)"
    name = f"{PREFIX}{os.getpid()}probe"
    p = sh(["ip", "netns", "add", name], check=False)
    if p.returncode != 0:
        return f"cannot create a network namespace: {p.stderr.strip()}"
    sh(["ip", "netns", "del", name], check=False)
    return None


def link_kind_available(ns: str, kind: str, extra=()) -> Optional[str]:
    """None when `ip link add ... type kind` works in namespace ns."""
    p = sh(["ip", "-n", ns, "link", "add", "probe0", "type", kind, *extra], check=False)
    if p.returncode != 0:
        return p.stderr.strip() or f"exit {p.returncode}"
    sh(["ip", "-n", ns, "link", "del", "probe0"], check=False)
    return None


def remove_stale() -> List[str]:
    """Deletes namespaces of earlier runs whose process is gone."""
    gone = []
    p = sh(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        m = re.match(rf"({PREFIX}(\d+)[a-z]+)\b", line)
        if not m:
            continue
        pid = int(m.group(2))
        if pid != os.getpid() and not alive(pid):
            kill_ns_processes(m.group(1))
            sh(["ip", "netns", "del", m.group(1)], check=False)
            gone.append(m.group(1))
    return gone


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_ns_processes(ns: str) -> None:
    """Kills the processes still running in namespace ns (only processes
    this test started live there)."""
    p = sh(["ip", "netns", "pids", ns], check=False)
    for pid in p.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class topology:
    """Creates the namespaces on enter and removes them (and every process
    left inside) on exit, also when the body raised."""

    def __init__(self):
        tag = f"{PREFIX}{os.getpid()}"
        self.cli = tag + "c"
        self.srv = tag + "s"
        self.vxlan_error: Optional[str] = None

    def __enter__(self):
        remove_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _build(self):
        for ns in (self.cli, self.srv):
            sh(["ip", "netns", "add", ns])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            # no router solicitations or DAD delays inside the test links
            for k in ("net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.router_solicitations=0"):
                sh(["ip", "netns", "exec", ns, "sysctl", "-qw", k], check=False)
        for dev in ("v0", "u0"):
            sh(["ip", "-n", self.cli, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", self.srv])
        for ns, side in ((self.cli, "cli"), (self.srv, "srv")):
            a = ADDR["plain"]
            self.addr(ns, "v0", a[side + "4"] + "/24", a[side + "6"] + "/64")
            self.addr(ns, "u0", UNDERLAY[side + "4"] + "/24")
        self.vxlan_error = link_kind_available(self.cli, "vxlan", ("id", "1", "dstport", "4789"))
        if self.vxlan_error is None:
            for ns, side, peer in ((self.cli, "cli", "srv"), (self.srv, "srv", "cli")):
                sh(["ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", str(VNI),
                    "local", UNDERLAY[side + "4"], "remote", UNDERLAY[peer + "4"],
                    "dstport", "4789", "dev", "u0"])
                a = ADDR["vxlan"]
                self.addr(ns, "vx0", a[side + "4"] + "/24", a[side + "6"] + "/64")
        # the links are up; let IPv6 addresses leave the tentative state
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = sh(["ip", "-n", self.srv, "-6", "addr", "show", "tentative"], check=False).stdout
            out += sh(["ip", "-n", self.cli, "-6", "addr", "show", "tentative"], check=False).stdout
            if "tentative" not in out:
                break
            time.sleep(0.1)

    @staticmethod
    def addr(ns: str, dev: str, *cidrs: str):
        for c in cidrs:
            extra = ["nodad"] if ":" in c else []
            sh(["ip", "-n", ns, "addr", "add", c, "dev", dev, *extra])
        sh(["ip", "-n", ns, "link", "set", dev, "up"])

    def exec_argv(self, ns: str, argv: List[str]) -> List[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def close(self):
        for ns in (self.cli, self.srv):
            kill_ns_processes(ns)
            sh(["ip", "netns", "del", ns], check=False)

    def link_kinds(self) -> Dict[str, Optional[str]]:
        """Which kernel tunnel kinds this kernel builds (None) or why not."""
        probes = {
            "vxlan": ("id", "1", "dstport", "4789"),
            "geneve": ("id", "1", "remote", "10.201.1.1"),
            "gretap": ("local", "10.201.1.2", "remote", "10.201.1.1"),
            "erspan": ("local", "10.201.1.2", "remote", "10.201.1.1", "seq", "key", "1",
                       "erspan_ver", "1", "erspan", "1"),
            "ipip": ("local", "10.201.1.2", "remote", "10.201.1.1"),
            "sit": ("local", "10.201.1.2", "remote", "10.201.1.1"),
        }
        return {k: link_kind_available(self.cli, k, v) for k, v in probes.items()}
