# SPDX-License-Identifier: Apache-2.0
"""Real servers and clients from Debian packages, started inside the
namespaces of topology.py. Each server's configuration is written into the
run's temp dir; nothing is installed as a service. Each scenario is a
function clients(env, path) that runs its clients against the server
addresses of `path` ("plain" or "vxlan") and returns the commands that
failed (a client failing is reported, the capture is compared anyway).
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from topology import ADDR

DOMAIN = "example.test"
DEBIAN_PYTHON = "/usr/bin/python3"
UA = "metaprobe-traffic/1.0"
# sendxmpp names the JID's domain in the stream header and connects to it:
# with no resolver in the namespaces the XMPP domain is the server's address
XMPP_HOST = ADDR["plain"]["srv4"]


class env:
    """What the scenarios share: topology, temp dir, started processes."""

    def __init__(self, topo, work: Path, log):
        self.topo = topo
        self.work = work
        self.log = log
        self.procs: List[subprocess.Popen] = []
        self.failed: List[str] = []

    def start(self, ns: str, argv: List[str], name: str) -> subprocess.Popen:
        out = open(self.work / f"{name}.log", "wb")
        p = subprocess.Popen(self.topo.exec_argv(ns, argv), stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p

    def run(self, ns: str, argv: List[str], timeout=20, input_bytes=None) -> bool:
        """Runs a client to completion; a failure is remembered by name."""
        try:
            p = subprocess.run(self.topo.exec_argv(ns, argv), input=input_bytes,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
            ok = p.returncode == 0
            why = f"exit {p.returncode}: {p.stderr.decode('utf-8', 'replace').strip()[-300:]}"
        except subprocess.TimeoutExpired:
            ok, why = False, f"did not finish within {timeout} s"
        if not ok:
            self.failed.append(f"{' '.join(argv)[:160]} ({why})")
        return ok

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()


def wait_port(topo, ns: str, port: int, proto="tcp", timeout=10.0) -> bool:
    """Waits until something listens on `port` inside ns (ss from iproute2)."""
    flag = "-ltn" if proto == "tcp" else "-lun"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = subprocess.run(topo.exec_argv(ns, ["ss", "-H", flag, f"sport = :{port}"]),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if p.stdout.strip():
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- servers

def tool(name: str) -> Optional[str]:
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return shutil.which(name)


def start_nginx(e: env) -> Optional[str]:
    d = e.work / "nginx"
    (d / "www" / "dav").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    (d / "www" / "index.html").write_text("<html><body>metaprobe traffic test</body></html>\n")
    (d / "www" / "big.bin").write_bytes(os.urandom(60000))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN=www.{DOMAIN}",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = d / "tmp"
    (d / "nginx.conf").write_text(f"""
daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fcgi;
  uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
  keepalive_requests 1000;
  server {{
    listen 80; listen [::]:80;
    listen 443 ssl; listen [::]:443 ssl;
    server_name _;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root {d}/www;
    location /dav/ {{ dav_methods PUT DELETE MKCOL COPY MOVE; create_full_put_path on; }}
  }}
}}
""")
    e.start(e.topo.srv, [tool("nginx"), "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
            "nginx")
    if not wait_port(e.topo, e.topo.srv, 80) or not wait_port(e.topo, e.topo.srv, 443):
        return "nginx did not listen on 80/443: " + _tail(d / "error.log")
    return None


def start_unbound(e: env) -> Optional[str]:
    d = e.work / "unbound"
    d.mkdir(exist_ok=True)
    data = [
        f'"www.{DOMAIN}. 300 IN A 10.201.0.1"',
        f'"www.{DOMAIN}. 300 IN A 10.201.2.1"',
        f'"www.{DOMAIN}. 300 IN AAAA fd00:201::1"',
        f'"{DOMAIN}. 600 IN MX 10 mail.{DOMAIN}."',
        f'"{DOMAIN}. 600 IN NS ns1.{DOMAIN}."',
        f'"{DOMAIN}. 600 IN TXT \\"v=spf1 -all\\""',
        f'"{DOMAIN}. 600 IN SOA ns1.{DOMAIN}. host.{DOMAIN}. 1 3600 600 86400 60"',
        f'"mail.{DOMAIN}. 300 IN A 10.201.0.1"',
        f'"ns1.{DOMAIN}. 300 IN A 10.201.0.1"',
        f'"alias.{DOMAIN}. 300 IN CNAME www.{DOMAIN}."',
        f'"_sip._udp.{DOMAIN}. 300 IN SRV 10 5 5060 sip.{DOMAIN}."',
    ]
    conf = ["server:", '  username: ""', '  chroot: ""', f'  directory: "{d}"', f'  pidfile: "{d}/pid"',
            "  use-syslog: no", f'  logfile: "{d}/unbound.log"', "  do-daemonize: no",
            "  interface: 0.0.0.0", "  interface: ::0", "  port: 53", "  num-threads: 1",
            "  access-control: 0.0.0.0/0 allow", "  access-control: ::/0 allow",
            '  module-config: "iterator"',
            # nothing is ever asked upstream: every name outside the test zones is refused
            '  local-zone: "." refuse',
            f'  local-zone: "{DOMAIN}." static',
            '  local-zone: "201.10.in-addr.arpa." static',
            '  local-data-ptr: "10.201.0.1 www.example.test."']
    conf += [f"  local-data: {x}" for x in data]
    conf += ["remote-control:", "  control-enable: no"]
    (d / "unbound.conf").write_text("\n".join(conf) + "\n")
    e.start(e.topo.srv, [tool("unbound"), "-d", "-c", str(d / "unbound.conf")], "unbound")
    if not wait_port(e.topo, e.topo.srv, 53, "udp") or not wait_port(e.topo, e.topo.srv, 53, "tcp"):
        return "unbound did not listen on 53: " + _tail(e.work / "unbound.log") + _tail(d / "unbound.log")
    return None


def start_sipp(e: env) -> Optional[str]:
    d = e.work / "sipp"
    d.mkdir(exist_ok=True)
    for path in ("plain", "vxlan"):
        a = ADDR[path]["srv4"]
        for t, port in (("u1", 5060), ("t1", 5060)):
            e.start(e.topo.srv, [tool("sipp"), "-sn", "uas", "-i", a, "-p", str(port), "-t", t,
                                 "-nostdin", "-timeout_error", "-max_socket", "64"],
                    f"sipp-uas-{path}-{t}")
    if not wait_port(e.topo, e.topo.srv, 5060, "udp") or not wait_port(e.topo, e.topo.srv, 5060, "tcp"):
        return "sipp uas did not listen on 5060"
    return None


def start_smtp_sink(e: env) -> Optional[str]:
    # postfix's SMTP test server: accepts and discards mail
    e.start(e.topo.srv, [tool("smtp-sink"), "-u", "root", "-c", "-R", str(e.work), "0.0.0.0:25", "32"],
            "smtp-sink")
    if not wait_port(e.topo, e.topo.srv, 25):
        return "smtp-sink did not listen on 25: " + _tail(e.work / "smtp-sink.log")
    return None


def start_dovecot(e: env) -> Optional[str]:
    d = e.work / "dovecot"
    (d / "mail").mkdir(parents=True, exist_ok=True)
    # the mail processes run as nobody (dovecot never runs them as root)
    for p in (e.work, d):
        os.chmod(p, 0o711)
    os.chmod(d / "mail", 0o1777)
    (d / "run").mkdir(exist_ok=True)
    # two messages for alice, delivered the way an MDA does (Maildir/new)
    new = d / "mail" / "alice" / "new"
    for sub in ("new", "cur", "tmp"):
        (new.parent / sub).mkdir(parents=True, exist_ok=True)
    for i, subj in enumerate(("first test message", "second test message"), 1):
        (new / f"17000000{i}.M1P1.traffic").write_text(
            f"From: Bob <bob@{DOMAIN}>\r\nTo: Alice <alice@{DOMAIN}>\r\nCc: carol@{DOMAIN}\r\n"
            f"Subject: {subj}\r\nMessage-ID: <m{i}@{DOMAIN}>\r\nDate: Mon, 07 Dec 2026 10:00:0{i} +0000\r\n"
            f"\r\nbody {i}\r\n")
    subprocess.run(["chown", "-R", "nobody:nogroup", str(new.parent)], check=False)
    (d / "users").write_text("alice:{PLAIN}wonderland::::::\n")
    (d / "dovecot.conf").write_text(f"""
protocols = pop3 imap
listen = *, ::
base_dir = {d}/run
state_dir = {d}/run
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login apop
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
pop3_uidl_format = %08Xu%08Xv
""")
    e.start(e.topo.srv, [tool("dovecot"), "-F", "-c", str(d / "dovecot.conf")], "dovecot")
    if not wait_port(e.topo, e.topo.srv, 110) or not wait_port(e.topo, e.topo.srv, 143):
        return "dovecot did not listen on 110/143: " + _tail(d / "dovecot.log") + _tail(e.work / "dovecot.log")
    return None


def start_vsftpd(e: env) -> Optional[str]:
    d = e.work / "vsftpd"
    (d / "root" / "pub").mkdir(parents=True, exist_ok=True)
    (d / "root" / "pub" / "file.txt").write_text("metaprobe ftp test file\n" * 50)
    os.chmod(d / "root", 0o555)
    (d / "vsftpd.conf").write_text(f"""
listen=YES
listen_ipv6=NO
background=NO
anonymous_enable=YES
no_anon_password=NO
anon_root={d}/root
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30031
port_enable=YES
connect_from_port_20=NO
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
vsftpd_log_file={d}/vsftpd.log
ftpd_banner=metaprobe test FTP
""")
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    e.start(e.topo.srv, [tool("vsftpd"), str(d / "vsftpd.conf")], "vsftpd")
    if not wait_port(e.topo, e.topo.srv, 21):
        return "vsftpd did not listen on 21: " + _tail(e.work / "vsftpd.log")
    return None


def start_prosody(e: env) -> Optional[str]:
    d = e.work / "prosody"
    (d / "data").mkdir(parents=True, exist_ok=True)
    conf = d / "prosody.cfg.lua"
    conf.write_text(f"""
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
daemonize = false
log = {{ info = "{d}/prosody.log" }}
interfaces = {{ "*" }}
c2s_ports = {{ 5222 }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "presence"; "message"; "iq"; "offline" }}
modules_disabled = {{ "s2s"; "tls"; "posix" }}
VirtualHost "{XMPP_HOST}"
""")
    # prosody drops to its own user: it must read the config and own its data
    os.chmod(e.work, 0o711)
    subprocess.run(["chown", "-R", "prosody:prosody", str(d)], check=False)
    for user in ("alice", "bob"):
        p = subprocess.run([tool("prosodyctl"), "--config", str(conf), "register", user, XMPP_HOST, "wonderland"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            return f"prosodyctl register {user} failed: {p.stdout.strip()[-300:]}"
    e.start(e.topo.srv, [tool("prosody"), "--config", str(conf), "-F"], "prosody")
    if not wait_port(e.topo, e.topo.srv, 5222):
        return "prosody did not listen on 5222: " + _tail(e.work / "prosody.log") + _tail(d / "prosody.log")
    return None


# ngtcp2's example server (ngtcp2-server, gnutls): UDP 443 (QUIC's port),
# UDP 4433 (no QUIC port: metaprobe's payload probe must find it) and UDP
# 8443 with address validation (-V: every connection starts with a Retry).
QUIC_PORTS = {443: [], 4433: [], 8443: ["-V"]}


def start_ngtcp2(e: env) -> Optional[str]:
    d = e.work / "ngtcp2"
    (d / "www").mkdir(parents=True, exist_ok=True)
    (d / "www" / "index.html").write_text("<html><body>metaprobe quic traffic test</body></html>\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN=quic.{DOMAIN}",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port, opts in QUIC_PORTS.items():
        # '*': one socket per family, IPv4 and IPv6
        e.start(e.topo.srv, [tool("gtlsserver"), "-q", "-d", str(d / "www"), "--timeout=5s", *opts,
                             "*", str(port), str(d / "key.pem"), str(d / "cert.pem")], f"ngtcp2-{port}")
    for port in QUIC_PORTS:
        if not wait_port(e.topo, e.topo.srv, port, "udp"):
            return f"gtlsserver did not listen on UDP {port}: " + _tail(e.work / f"ngtcp2-{port}.log")
    return None


def with_hosts(hosts: Path, argv: List[str]) -> List[str]:
    """argv run with `hosts` bind-mounted over /etc/hosts in a private mount
    namespace of its own (no resolver in the namespaces; nothing of the
    host's /etc is changed)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *argv]


# Forward proxy (issue 17): tinyproxy in the server namespace on 3128
# (squid's port: an HTTP port for tshark's http.tcp.port and for metaprobe's
# HTTP registry entry), every address of both families. It resolves the
# origin names through its own hosts file: www.example.test is the server's
# IPv4 address only, www6.example.test its IPv6 address only, so each
# client picks the family of the proxy's request to the origin. The
# origin is in the proxy's own namespace: that leg runs over lo (the proxy
# capture is taken on `any`, see traffic_test.py).
PROXY_PORT = 3128
WS_PORT = 8080  # the WebSocket echo server: an HTTP port for tshark and metaprobe


def start_tinyproxy(e: env) -> Optional[str]:
    d = e.work / "tinyproxy"
    d.mkdir(exist_ok=True)
    a = ADDR["plain"]
    hosts = d / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 localhost\n{a['srv4']} www.{DOMAIN}\n{a['srv6']} www6.{DOMAIN}\n")
    (d / "tinyproxy.conf").write_text(f"""
Port {PROXY_PORT}
Timeout 30
LogFile "{d}/tinyproxy.log"
LogLevel Info
PidFile "{d}/tinyproxy.pid"
MaxClients 20
ViaProxyName "tinyproxy"
ConnectPort 443
ConnectPort 80
ConnectPort {WS_PORT}
""")
    e.start(e.topo.srv, with_hosts(hosts, [tool("tinyproxy"), "-d", "-c", str(d / "tinyproxy.conf")]), "tinyproxy")
    if not wait_port(e.topo, e.topo.srv, PROXY_PORT):
        return f"tinyproxy did not listen on {PROXY_PORT}: " + _tail(d / "tinyproxy.log") + _tail(e.work / "tinyproxy.log")
    return None


WS_SERVER = """
import asyncio, sys
import websockets

async def echo(ws, path):
    async for m in ws:
        await ws.send(m)

async def main():
    async with websockets.serve(echo, None, int(sys.argv[1])):
        await asyncio.Future()

asyncio.run(main())
"""


def start_websockets(e: env) -> Optional[str]:
    """An echo server of python3-websockets (Debian's /usr/bin/python3),
    every address of both families."""
    script = e.work / "ws_echo.py"
    script.write_text(WS_SERVER)
    e.start(e.topo.srv, [DEBIAN_PYTHON, str(script), str(WS_PORT)], "websockets")
    if not wait_port(e.topo, e.topo.srv, WS_PORT):
        return f"the websockets echo server did not listen on {WS_PORT}: " + _tail(e.work / "websockets.log")
    return None


def _tail(p: Path, n=400) -> str:
    try:
        return p.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# ---------------------------------------------------------------- clients

def curl(e: env, *args, timeout=20) -> bool:
    return e.run(e.topo.cli, ["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--noproxy", "*", *args],
                 timeout=timeout)


def resolve(path: str, port: int) -> List[str]:
    return ["--resolve", f"www.{DOMAIN}:{port}:{ADDR[path]['srv4']}"]


def http_clients(e: env, path: str):
    a = ADDR[path]
    base = f"http://www.{DOMAIN}"
    r = resolve(path, 80)
    hdr = ["-A", UA, "-e", f"{base}/from", "-b", "sid=abc123; theme=dark"]
    # keep-alive: several requests on one connection
    curl(e, *r, *hdr, f"{base}/index.html", f"{base}/missing?q=1&x=%20y", f"{base}/big.bin")
    curl(e, *r, "-A", UA, "-d", "a=1&b=2", f"{base}/form")
    # a 6 kB body: curl sends Expect: 100-continue; then a chunked upload
    body = e.work / "body.bin"
    body.write_bytes(b"x" * 6000)
    curl(e, *r, "-A", UA, "--data-binary", f"@{body}", f"{base}/upload")
    curl(e, *r, "-A", UA, "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{body}", f"{base}/chunked")
    curl(e, *r, "-A", UA, "-I", f"{base}/index.html")
    curl(e, *r, "-A", UA, "-T", str(e.work / "nginx" / "www" / "index.html"), f"{base}/dav/up/file.html")
    curl(e, *r, "-A", UA, "-X", "MKCOL", f"{base}/dav/newdir/")
    curl(e, *r, "-A", UA, "-X", "COPY", "-H", f"Destination: {base}/dav/copy.html", f"{base}/dav/up/file.html")
    curl(e, *r, "-A", UA, "-X", "MOVE", "-H", f"Destination: {base}/dav/moved.html", f"{base}/dav/copy.html")
    curl(e, *r, "-A", UA, "-X", "DELETE", f"{base}/dav/moved.html")
    curl(e, *r, "-A", UA, "-X", "OPTIONS", f"{base}/")
    curl(e, *r, "-A", UA, "-X", "PROPFIND", "-H", "Depth: 1", f"{base}/dav/")
    curl(e, *r, "-A", UA, "-0", f"{base}/index.html?http10")
    # IPv6 and wget (keep-alive over two URLs)
    curl(e, "-A", UA, "-g", f"http://[{a['srv6']}]/index.html?v6")
    e.run(e.topo.cli, ["wget", "-q", "-O", "/dev/null", "--no-proxy", "-U", "Wget-traffic/1.21",
                       f"http://{a['srv4']}/index.html", f"http://{a['srv4']}/index.html?again"])


def https_clients(e: env, path: str):
    base = f"https://www.{DOMAIN}"
    r = resolve(path, 443)
    curl(e, *r, "-k", "-A", UA, "--tlsv1.2", "--tls-max", "1.2", f"{base}/index.html")
    curl(e, *r, "-k", "-A", UA, "--tlsv1.3", f"{base}/index.html?tls13")
    curl(e, *r, "-k", "-A", UA, "--tlsv1.2", "--tls-max", "1.2", "--http1.1",
         "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256", f"{base}/?cipher")
    # IPv6, the name resolved to the server's IPv6 address
    curl(e, "--resolve", f"www.{DOMAIN}:443:[{ADDR[path]['srv6']}]", "-k", "-A", UA, f"{base}/index.html?v6")
    srv = ADDR[path]["srv4"]
    for v in ("-tls1_2", "-tls1_3"):
        e.run(e.topo.cli, ["openssl", "s_client", "-connect", f"{srv}:443", "-servername", f"s{v[-1]}.{DOMAIN}",
                           v, "-alpn", "http/1.1"], input_bytes=b"")
    # no SNI; then a TLS 1.2 session resumed from a saved session
    e.run(e.topo.cli, ["openssl", "s_client", "-connect", f"{srv}:443", "-noservername", "-tls1_2"], input_bytes=b"")
    sess = e.work / f"tls-{path}.sess"
    e.run(e.topo.cli, ["openssl", "s_client", "-connect", f"{srv}:443", "-servername", f"resume.{DOMAIN}",
                       "-tls1_2", "-sess_out", str(sess)], input_bytes=b"")
    e.run(e.topo.cli, ["openssl", "s_client", "-connect", f"{srv}:443", "-servername", f"resume.{DOMAIN}",
                       "-tls1_2", "-sess_in", str(sess)], input_bytes=b"")


def dns_clients(e: env, path: str):
    a = ADDR[path]
    s4 = a["srv4"]
    for q in (["www", "A"], ["www", "AAAA"], ["", "MX"], ["", "NS"], ["", "TXT"], ["", "SOA"],
              ["alias", "CNAME"], ["_sip._udp", "SRV"], ["nx", "A"]):
        name = f"{q[0]}.{DOMAIN}" if q[0] else DOMAIN
        e.run(e.topo.cli, ["dig", "+tries=1", "+time=2", f"@{s4}", name, q[1]])
    e.run(e.topo.cli, ["dig", "+tcp", "+tries=1", "+time=2", f"@{s4}", f"www.{DOMAIN}", "A"])
    e.run(e.topo.cli, ["dig", "+tries=1", "+time=2", f"@{s4}", "-x", "10.201.0.1"])
    e.run(e.topo.cli, ["dig", "+tries=1", "+time=2", f"@{a['srv6']}", f"www.{DOMAIN}", "AAAA"])
    e.run(e.topo.cli, ["dig", "+tcp", "+tries=1", "+time=2", f"@{a['srv6']}", DOMAIN, "TXT"])
    if tool("kdig"):
        e.run(e.topo.cli, ["kdig", "+retry=0", "+time=2", f"@{s4}", f"mail.{DOMAIN}", "A"])
        e.run(e.topo.cli, ["kdig", "+tcp", "+retry=0", "+time=2", f"@{s4}", DOMAIN, "MX"])


def sip_clients(e: env, path: str):
    a = ADDR[path]
    for t, lport in (("u1", 5070), ("t1", 5072)):
        e.run(e.topo.cli, [tool("sipp"), "-sn", "uac", f"{a['srv4']}:5060", "-i", a["cli4"], "-p", str(lport),
                           "-t", t, "-m", "2", "-r", "20", "-d", "100", "-nostdin", "-timeout", "10s",
                           "-timeout_error", "-s", "alice"], timeout=20)


def smtp_clients(e: env, path: str):
    s4 = ADDR[path]["srv4"]
    common = ["swaks", "--server", s4, "--port", "25", "--helo", f"client.{DOMAIN}", "--to", f"bob@{DOMAIN}",
              "--from", f"alice@{DOMAIN}", "--header", "Subject: metaprobe traffic test", "--silent", "1"]
    e.run(e.topo.cli, common)
    e.run(e.topo.cli, common + ["--to", f"carol@{DOMAIN}", "--body", "second message\nwith two lines"])
    # smtp-sink offers no AUTH: SMTP AUTH is not exercised here


def mail_clients(e: env, path: str):
    s4 = ADDR[path]["srv4"]
    up = ["-u", "alice:wonderland"]
    # pop3://host/N retrieves message N (RETR); imap://host/INBOX;UID=N fetches it
    curl(e, *up, "--login-options", "AUTH=+APOP", f"pop3://{s4}/1")
    curl(e, *up, "--login-options", "AUTH=PLAIN", f"pop3://{s4}/2")
    curl(e, *up, "--login-options", "AUTH=LOGIN", f"pop3://{s4}/1")
    curl(e, *up, f"imap://{s4}/INBOX")                                # LIST/SELECT as curl picks
    if tool("fetchmail"):
        # USER/PASS (curl always prefers the SASL the server offers)
        rc = e.work / "fetchmailrc"
        rc.write_text(f'poll {s4} protocol pop3 auth password user "alice" password "wonderland" '
                      f'keep fetchall mda "/bin/cat >/dev/null"\n')
        os.chmod(rc, 0o600)
        e.run(e.topo.cli, ["fetchmail", "-f", str(rc), "--nosyslog", "-s", "--sslproto", "",
                           "--pidfile", str(e.work / "fetchmail.pid")], timeout=20)
    curl(e, *up, "--login-options", "AUTH=PLAIN", f"imap://{s4}/INBOX;UID=1")
    curl(e, *up, "--login-options", "AUTH=LOGIN", f"imap://{s4}/INBOX;UID=2")


def ftp_clients(e: env, path: str):
    s4 = ADDR[path]["srv4"]
    url = f"ftp://{s4}/pub/file.txt"
    up = ["-u", "anonymous:traffic@example.test"]
    curl(e, *up, url)                                  # EPSV
    curl(e, *up, "--disable-epsv", url)                # PASV
    curl(e, *up, "-P", ADDR[path]["cli4"], url)        # EPRT (active)
    curl(e, *up, "-P", ADDR[path]["cli4"], "--disable-eprt", url)  # PORT (active)
    if tool("lftp"):
        e.run(e.topo.cli, ["lftp", "-u", "anonymous,lftp@example.test", "-e",
                           "set net:max-retries 1; set net:timeout 5; set ftp:passive-mode on; ls pub; cat pub/file.txt; "
                           "set ftp:passive-mode off; ls pub; bye", f"ftp://{s4}"], timeout=30)


def xmpp_clients(e: env, path: str):
    s4 = ADDR[path]["srv4"]
    rc = e.work / "sendxmpprc"
    rc.write_text(f"alice@{XMPP_HOST} wonderland\n")
    os.chmod(rc, 0o600)
    for to, body in ((f"bob@{XMPP_HOST}", "hello bob"), (f"bob@{XMPP_HOST}/phone", "second message")):
        e.run(e.topo.cli, ["sendxmpp", "-f", str(rc), "-j", f"{s4}:5222", "-r", "traffic", "-s", "test",
                           to], input_bytes=body.encode(), timeout=20)


def quic_clients(e: env, path: str):
    """ngtcp2's example client (ngtcp2-client): one GET per connection,
    bounded by its idle timeout and the run's timeout. Its gnutls build
    sends the host it connects to as SNI ("localhost" for an address;
    --sni has no effect there), so each connection names a host of its own,
    resolved through a hosts file bind-mounted over /etc/hosts in a private
    mount namespace of that one client (no resolver in the namespaces)."""
    a = ADDR[path]
    hosts = e.work / f"quic-hosts-{path}"
    names = {}

    def get(fam: str, port: int, label: str, *opts: str):
        host = f"{label}-ip{fam}.quic.{DOMAIN}"
        names[host] = a["srv" + fam]
        hosts.write_text("".join(f"{ip} {h}\n" for h, ip in names.items()))
        e.run(e.topo.cli, with_hosts(hosts, [tool("gtlsclient"), "-q", "--exit-on-all-streams-close",
                                             "--timeout=3s", *opts, host, str(port),
                                             f"https://{host}/index.html"]), timeout=15)

    for fam in ("4", "6"):
        get(fam, 443, "v1", "--version=v1")
        get(fam, 4433, "probe", "--version=v1")
        get(fam, 8443, "retry", "--version=v1")
    # drafts 29 and 32; a version the server does not know (Version
    # Negotiation, then v1 on a new port); QUIC v2 as libngtcp2 0.12 knows it
    # (draft 0x709a50c4: neither tshark 4.0 nor metaprobe opens it; RFC 9369's
    # 0x6b3343cf is not in this client)
    get("4", 443, "draft29", "--version=0xff00001d")
    get("6", 4433, "draft32", "--version=0xff000020")
    get("4", 443, "vn", "--version=0x1a2a3a4a", "--preferred-versions=v1")
    get("4", 443, "v2draft", "--version=v2draft")


def proxied(e: env, path: str, fam: str, *args, timeout=20) -> bool:
    """curl through the forward proxy, reached over IPv4 or IPv6 (`fam`);
    the origin is www.example.test (IPv4) or www6.example.test (IPv6)."""
    a = ADDR[path]
    proxy = f"http://{a['srv4']}:{PROXY_PORT}" if fam == "4" else f"http://[{a['srv6']}]:{PROXY_PORT}"
    return e.run(e.topo.cli, ["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "-x", proxy, "-A", UA, *args],
                 timeout=timeout)


def origin(fam: str) -> str:
    return f"www.{DOMAIN}" if fam == "4" else f"www6.{DOMAIN}"


def proxy_https_clients(e: env, path: str):
    """1. https:// through the proxy: CONNECT host:443, 200, then TLS in the
    tunnel (the ClientHello's SNI is the origin's name)."""
    for fam in ("4", "6"):
        proxied(e, path, fam, "-k", "--tlsv1.3", f"https://{origin(fam)}/index.html?proxy-tls13-ip{fam}")
        proxied(e, path, fam, "-k", "--tlsv1.2", "--tls-max", "1.2", "--http1.1",
                f"https://{origin(fam)}/index.html?proxy-tls12-ip{fam}")


# ALPN names enough to make a ClientHello of about 2 kB: more than one TCP
# segment on the 1500-byte link (the tunnel's TLS split across segments);
# http/1.1, the one nginx picks, comes last. ALPN is not a compared field.
LONG_ALPN = ",".join([f"x-metaprobe-{i}-" + "a" * 230 for i in range(7)] + ["http/1.1"])


def proxy_https_split_clients(e: env, path: str):
    """openssl s_client through the proxy (-proxy: CONNECT host:443) with a
    ClientHello split over two TCP segments of the client's leg. A veth
    hands GSO packets over unsegmented (the capture would show one 2 kB
    segment), so the client's veth has TSO and GSO off meanwhile: the
    segments are those a NIC would send."""
    a = ADDR[path]
    dev = "v0" if path == "plain" else "vx0"
    e.run(e.topo.cli, ["ethtool", "-K", dev, "tso", "off", "gso", "off"])
    try:
        for fam, proxy in (("4", f"{a['srv4']}:{PROXY_PORT}"), ("6", f"[{a['srv6']}]:{PROXY_PORT}")):
            e.run(e.topo.cli, ["openssl", "s_client", "-proxy", proxy, "-connect", f"{origin(fam)}:443",
                               "-servername", f"split-ip{fam}.{DOMAIN}", "-alpn", LONG_ALPN], input_bytes=b"")
    finally:
        e.run(e.topo.cli, ["ethtool", "-K", dev, "tso", "on", "gso", "on"])


def proxy_tunnel_clients(e: env, path: str):
    """2. http:// with --proxytunnel: CONNECT host:80, 200, then a plain GET
    in the tunnel (two requests on the one tunnel: keep-alive)."""
    for fam in ("4", "6"):
        base = f"http://{origin(fam)}"
        proxied(e, path, fam, "--proxytunnel", "-e", f"{base}/from", "-b", "sid=tunnel",
                f"{base}/index.html?proxy-tunnel-ip{fam}", f"{base}/missing?proxy-tunnel-again-ip{fam}")


def proxy_http_clients(e: env, path: str):
    """3. plain proxied HTTP: the request to the proxy has the absolute-form
    target (GET http://host/path); the proxy's own request to the origin
    (over lo) has the origin-form one."""
    for fam in ("4", "6"):
        base = f"http://{origin(fam)}"
        proxied(e, path, fam, "-e", f"{base}/from", "-b", "sid=proxied",
                f"{base}/index.html?proxy-http-ip{fam}")
        proxied(e, path, fam, "-d", "a=1&b=2", f"{base}/form?proxy-post-ip{fam}")


WS_CLIENT = """
import sys
import websocket  # python3-websocket (websocket-client): CONNECT through an HTTP proxy
url, proxy, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ws = websocket.create_connection(url, http_proxy_host=proxy, http_proxy_port=port, proxy_type="http",
                                 header=["User-Agent: metaprobe-traffic-ws/1.0"], timeout=5)
for m in ("hello", "x" * 300):
    ws.send(m)
    if ws.recv() != m:
        sys.exit("echo differs")
ws.close()
"""


def proxy_ws_clients(e: env, path: str):
    """4. WebSocket through the proxy: CONNECT host:8080, 200, then the
    HTTP/1.1 Upgrade: websocket GET in the tunnel, 101, two echoed messages."""
    a = ADDR[path]
    script = e.work / "ws_client.py"
    script.write_text(WS_CLIENT)
    for fam, proxy in (("4", a["srv4"]), ("6", a["srv6"])):
        e.run(e.topo.cli, [DEBIAN_PYTHON, str(script), f"ws://{origin(fam)}:{WS_PORT}/echo?proxy-ws-ip{fam}",
                           proxy, str(PROXY_PORT)])


# name -> (servers it needs, clients, protocols compared)
SCENARIOS: Dict[str, tuple] = {
    "http": (("nginx",), http_clients, ("http",)),
    "https": (("nginx",), https_clients, ("tls", "tls_sh")),
    "dns": (("unbound",), dns_clients, ("dns",)),
    "sip": (("sipp",), sip_clients, ("sip",)),
    "smtp": (("smtp-sink",), smtp_clients, ("smtp",)),
    "mail": (("dovecot",), mail_clients, ("pop", "imap")),
    "ftp": (("vsftpd",), ftp_clients, ("ftp",)),
    "xmpp": (("prosody",), xmpp_clients, ("xmpp",)),
    "quic": (("ngtcp2",), quic_clients, ("quic",)),
    "proxy-https": (("nginx", "tinyproxy"), proxy_https_clients, ("tls", "tls_sh")),
    "proxy-https-split": (("nginx", "tinyproxy"), proxy_https_split_clients, ("tls", "tls_sh")),
    "proxy-tunnel": (("nginx", "tinyproxy"), proxy_tunnel_clients, ("http",)),
    "proxy-http": (("nginx", "tinyproxy"), proxy_http_clients, ("http",)),
    "proxy-ws": (("websockets", "tinyproxy"), proxy_ws_clients, ("http",)),
}
# the scenarios of the forward proxy: captured on their own (proxy.pcap)
PROXY_SCENARIOS = ("proxy-https", "proxy-https-split", "proxy-tunnel", "proxy-http", "proxy-ws")

SERVERS: Dict[str, Callable[[env], Optional[str]]] = {
    "nginx": start_nginx,
    "unbound": start_unbound,
    "sipp": start_sipp,
    "smtp-sink": start_smtp_sink,
    "dovecot": start_dovecot,
    "vsftpd": start_vsftpd,
    "prosody": start_prosody,
    "ngtcp2": start_ngtcp2,
    "tinyproxy": start_tinyproxy,
    "websockets": start_websockets,
}

# the Debian binary each server and the clients need
NEEDS = {
    "nginx": ("nginx", "curl", "wget", "openssl"),
    "unbound": ("unbound", "dig"),
    "sipp": ("sipp",),
    "smtp-sink": ("smtp-sink", "swaks"),
    "dovecot": ("dovecot", "curl"),
    "vsftpd": ("vsftpd", "curl"),
    "prosody": ("prosody", "prosodyctl", "sendxmpp"),
    "ngtcp2": ("gtlsserver", "gtlsclient", "openssl", "unshare", "mount"),
    "tinyproxy": ("tinyproxy", "curl", "openssl", "unshare", "mount"),
    # python3-websockets (server) and python3-websocket (client), both for
    # Debian's /usr/bin/python3
    "websockets": ("python3:websockets", "python3:websocket"),
}


# what a scenario's clients need besides its servers' NEEDS
CLIENT_NEEDS = {
    "proxy-https-split": ("ethtool",),
}


def missing(need: str) -> bool:
    """A binary of NEEDS, or `python3:MODULE`: a module Debian's python3
    cannot import."""
    if need.startswith("python3:"):
        return subprocess.run([DEBIAN_PYTHON, "-c", f"import {need[8:]}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0
    return not tool(need)
