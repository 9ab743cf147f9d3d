"""Janus (Debian's `janus` package) for the SFU tests: a network namespace with a veth pair, and
a Janus process with the configuration of scripts/janus-config.

Janus does no ICE on loopback alone (../shared/research/sfu-janus.md), so the SFU tests run in a
network namespace of their own (`unshare -n`, made by `reexec_in_netns`) holding loopback and a
veth pair `hv0`/`hv1` (10.77.0.1/24, 10.77.0.2/24) that exists only there: Janus gathers its
candidates on hv0 and nothing can leave the namespace.
"""
import json
import os
import socket
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

VETH = ("hv0", "10.77.0.1/24", "hv1", "10.77.0.2/24")
NETNS_FLAG = "HEARTH_SFU_NETNS"
API_SECRET = "janus-test-api-secret"
ADMIN_KEY = "janus-test-admin-key"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def missing():
    """Why Janus tests cannot run here, or None."""
    if not shutil.which("janus"):
        return "janus is not installed (apt-get install janus)"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip missing"
    return None


def reexec_in_netns():
    """Re-executes this process (pytest) in a new network namespace with loopback and the veth
    pair up. Returns only when already inside one (or when namespaces are not permitted)."""
    if os.environ.get(NETNS_FLAG) == "1" or missing():
        return
    if os.system("unshare -n true >/dev/null 2>&1") != 0:
        raise RuntimeError("cannot create a network namespace (unshare -n): the SFU tests need one")
    a, a_ip, b, b_ip = VETH
    setup = (f"ip link set lo up && ip link add {a} type veth peer name {b} && "
             f"ip addr add {a_ip} dev {a} && ip addr add {b_ip} dev {b} && "
             f"ip link set {a} up && ip link set {b} up && exec \"$@\"")
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ, **{NETNS_FLAG: "1"})
    os.execvpe("unshare", ["unshare", "-n", "--", "sh", "-c", setup, "sh", *argv], env)


class Janus:
    """One Janus process; its API only on a Unix socket (pfunix), ICE only on hv0."""

    def __init__(self, interface="hv0"):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hearth-janus-"))
        self.socket = str(self.dir / "janus.sock")
        self.log_path = self.dir / "janus.log"
        subprocess.run([str(ROOT / "scripts" / "janus-config"), str(self.dir / "conf"), self.socket, API_SECRET,
                        ADMIN_KEY, interface, "20000-20199"], check=True)
        self.process = None
        self.start()

    @property
    def hearthd_config(self):
        """The `sfu` block of hearthd's configuration for this Janus."""
        return {"janusSocket": self.socket, "apiSecret": API_SECRET, "adminKey": ADMIN_KEY}

    def start(self, timeout=10, attempts=5):
        """Starts Janus and waits for its API socket. Janus 1.1's Unix-socket transport was seen,
        once, on a machine loaded by eight browsers, to end its thread at start ("No Janus API
        transport is available"), and on 2026-11-30 three times in a row when restarted right
        after a kill (test_janus_lost_then_back_control_and_chat_go_on, in a clean-clone CI run):
        such a start is tried again, up to `attempts` times, with a growing pause between."""
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.5 * attempt)
            if os.path.exists(self.socket):
                os.unlink(self.socket)
            self.process = subprocess.Popen(["janus", "-F", str(self.dir / "conf"), "-o", "-L", str(self.log_path)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while not os.path.exists(self.socket) and self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.process.poll() is None and os.path.exists(self.socket) and self.answers():
                return
            self.kill()
        raise RuntimeError(f"janus did not start: {self.log()[-2000:]}")

    def answers(self, timeout=3):
        """Whether Janus answers `info` on its API socket (its transport thread can end after
        creating the socket)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                s.settimeout(timeout)
                s.connect(self.socket)
                s.send(json.dumps({"janus": "info", "transaction": "probe", "apisecret": API_SECRET}).encode())
                return json.loads(s.recv(1 << 20)).get("janus") == "server_info"
        except (OSError, ValueError):
            return False

    def kill(self):
        """SIGKILL, as a crash: hearthd's link breaks without a goodbye."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
