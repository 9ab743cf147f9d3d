"""A local Hearth cluster for the tests: N hearthd, each with a plaintext internal listener on a
Unix socket, behind HAProxy (Debian's 2.6) from deploy/cluster/haproxy.cfg.template, and for
the shared store a throwaway PostgreSQL 15 (scripts/postgres-temp), all on loopback and plain
processes started here."""
import csv
import hashlib
import hmac
import io
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
from hearth import ROOT, Server, b64url, client_tls, free_port  # noqa: E402

TEMPLATE = ROOT / "deploy" / "cluster" / "haproxy.cfg.template"
POSTGRES_TEMP = ROOT / "scripts" / "postgres-temp"
PGBIN = pathlib.Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))


def missing(postgres=True):
    """Why the cluster tests cannot run here (None when they can). The shared store's tests need
    PostgreSQL 15's server binaries and psql besides HAProxy."""
    if not shutil.which("haproxy"):
        return "haproxy is not installed (apt-get install haproxy)"
    if not shutil.which("socat") and not shutil.which("python3"):
        return "no way to reach HAProxy's stats socket"
    if postgres:
        absent = [name for name in ("initdb", "pg_ctl", "postgres", "psql") if not (PGBIN / name).exists()]
        if absent:
            return (f"PostgreSQL 15 is not installed ({', '.join(absent)} missing in {PGBIN}; "
                    "apt-get install postgresql-15)")
    return None


def admin_token(secret, operator="op", ttl=300):
    """An HS256 admin JWT for the operations API (scope hearth-admin), made here."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": operator, "scope": "hearth-admin", "iat": now, "exp": now + ttl}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


class Postgres:
    """A throwaway PostgreSQL 15 in a temporary directory (scripts/postgres-temp): 127.0.0.1
    only, trust authentication for the role `hearth`, fsync off."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        # Run as root, the script hands the directory to the postgres user: let it in.
        os.chmod(self.dir, 0o711)
        self.data = self.dir / "pg"
        out = subprocess.run([str(POSTGRES_TEMP), "start", str(self.data)], capture_output=True, text=True,
                             timeout=90)
        assert out.returncode == 0, f"postgres-temp start failed: {out.stdout}{out.stderr}"
        self.conninfo = out.stdout.strip().splitlines()[-1]

    def query(self, sql, timeout=10):
        """The rows of one SQL statement (psql, CSV), each a tuple of strings (None for NULL)."""
        out = subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv", "-t",
                              "-P", "null=\\N", "-d", self.conninfo, "-c", sql],
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"psql failed on {sql!r}: {out.stderr}"
        return [tuple(None if value == "\\N" else value for value in row)
                for row in csv.reader(io.StringIO(out.stdout)) if row]

    def wait(self, sql, until, timeout=10):
        """Rows of `sql` once `until(rows)` holds; polls (bounded) and returns the last rows read
        either way, for the test to assert."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql)
            if until(rows) or time.monotonic() >= deadline:
                return rows
            time.sleep(0.05)

    def log(self):
        return (self.data / "postgres.log").read_text(errors="replace")

    def stop(self):
        """Stops the server and drops its files (tens of MB), keeping its log."""
        out = subprocess.run([str(POSTGRES_TEMP), "stop", str(self.data)], capture_output=True, text=True,
                             timeout=90)
        assert out.returncode == 0, f"postgres-temp stop failed: {out.stderr}"
        shutil.rmtree(self.data / "data", ignore_errors=True)


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
        servers = "\n".join(f"    server {getattr(node, 'name', None) or f'n{i + 1}'} unix@{node.internal_socket}"
                            for i, node in enumerate(nodes))
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
    """hearthd with an internal listener on a Unix socket (and its usual TLS port for checks).

    With `store="postgres"`, its journal, room ownership and leases are in the shared
    PostgreSQL (`postgres`: a Postgres or a conninfo) under the node name `name` (n1, n2, …;
    also its server name in HAProxy); its audit trail stays in its own data directory."""

    def __init__(self, name=None, store=None, postgres=None, lease_seconds=2, **overrides):
        self.name = name
        self.internal_socket = tempfile.mktemp(prefix="hearth-node-", suffix=".sock", dir="/tmp")
        if store == "postgres":
            assert name and postgres, "a postgres node needs a name and the shared store"
            conninfo = postgres if isinstance(postgres, str) else postgres.conninfo
            overrides["store"] = "postgres"
            overrides["postgres"] = {"conninfo": conninfo, "node": name, "leaseSeconds": lease_seconds}
        elif store is not None:
            overrides["store"] = store
        super().__init__(internalListen=f"unix:{self.internal_socket}", **overrides)

    def signal(self, sig):
        """Sends a signal to the running hearthd (SIGKILL, SIGSTOP, SIGCONT, SIGTERM)."""
        self.process.send_signal(sig)

    def audit_verify(self):
        """`hearthd audit verify` with this node's configuration: the audit trail wherever the node
        keeps it (the store in its data directory, or the cluster's PostgreSQL)."""
        return subprocess.run([os.environ["HEARTHD_BIN"], "audit", "verify", "--config", str(self.config_path)],
                              capture_output=True, text=True, timeout=30)
