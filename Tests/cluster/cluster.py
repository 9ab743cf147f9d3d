"""A local Hearth cluster for the tests: N hearthd, each with a plaintext internal listener on a
Unix socket, behind HAProxy (Debian's 2.6) from deploy/cluster/haproxy.cfg.template, all on
loopback and plain processes started here."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
from hearth import ROOT, Server, client_tls, free_port  # noqa: E402

TEMPLATE = ROOT / "deploy" / "cluster" / "haproxy.cfg.template"


def missing():
    if not shutil.which("haproxy"):
        return "haproxy is not installed (apt-get install haproxy)"
    if not shutil.which("socat") and not shutil.which("python3"):
        return "no way to reach HAProxy's stats socket"
    return None


class HAProxy:
    """HAProxy in front of `nodes` (hearth.Server objects with an internalListen socket)."""

    def __init__(self, nodes, check_interval="200ms"):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hearth-haproxy-"))
        self.port = free_port()
        self.stats = str(self.dir / "admin.sock")
        cert = self.dir / "haproxy.pem"
        key, crt = self.dir / "key.pem", self.dir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True)
        cert.write_bytes(crt.read_bytes() + key.read_bytes())
        servers = "\n".join(f"    server n{i + 1} unix@{node.internal_socket}" for i, node in enumerate(nodes))
        text = TEMPLATE.read_text()
        for name, value in {"maxconn": "4000", "stats_socket": self.stats, "bind": f"127.0.0.1:{self.port}",
                            "certificate": str(cert), "check_interval": check_interval,
                            "timeout_connect": "200ms", "servers": servers}.items():
            text = text.replace(f"@{name}@", value)
        self.config = self.dir / "haproxy.cfg"
        self.config.write_text(text)
        check = subprocess.run(["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(self.dir / "haproxy.log", "ab")
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(self.config)], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.wait_up(len(nodes))

    @property
    def url(self):
        return f"wss://127.0.0.1:{self.port}"

    def command(self, line):
        """A command on the stats socket (`show table hearth`, `show servers state`, …)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.stats)
            s.sendall(line.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def servers_up(self):
        """Names of the backend servers HAProxy considers up."""
        up = []
        for line in self.command("show servers state hearth").splitlines()[2:]:
            fields = line.split()
            if len(fields) > 5 and fields[5] == "2":  # srv_op_state 2 = running
                up.append(fields[3])
        return up

    def wait_up(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.servers_up()) == count:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"HAProxy has {self.servers_up()} up, expected {count}")

    def owner(self, room):
        """The server the stick table holds for a room (`n1`…), or None."""
        for line in self.command(f"show table hearth key {room}").splitlines():
            if "server_key=" in line:
                return line.split("server_key=")[1].split()[0]
            if "server_id=" in line:
                return "n" + line.split("server_id=")[1].split()[0]
        return None

    def https(self, path, headers=None):
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", headers=headers or {})
        return urllib.request.urlopen(request, context=client_tls(), timeout=5)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


class Node(Server):
    """hearthd with an internal listener on a Unix socket (and its usual TLS port for checks)."""

    def __init__(self, **overrides):
        self.internal_socket = tempfile.mktemp(prefix="hearth-node-", suffix=".sock", dir="/tmp")
        super().__init__(internalListen=f"unix:{self.internal_socket}", **overrides)
