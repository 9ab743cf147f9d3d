"""The SFU media plane for the browser tests and loadtest/media: a veth pair and a Janus process
inside the test's OWN network namespace, and a minimal client of Janus's API (Unix socket).

Janus cannot do ICE on loopback alone ("Couldn't find any address!"): it needs a real interface.
The tests make one inside the network namespace the browser conftest re-executed pytest in
(`unshare -n`): a veth pair hv0 (10.77.0.1/24) <-> hv1 (10.77.0.2/24), both up. That namespace has
no route anywhere else, and `make_veth` refuses to run in the host's namespace (the one of pid 1).
Janus is configured by scripts/janus-config (API on a Unix socket only, ICE on hv0 only) and run
as `janus -F DIR -o -L LOG`.
"""
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
JANUS = os.environ.get("JANUS_BIN", "/usr/bin/janus")
VETH = ("hv0", "hv1")
VETH_ADDRESSES = ("10.77.0.1/24", "10.77.0.2/24")
#: Chromium must show its real host candidates (not mDNS names) for Janus to reach them.
CHROME_SFU_ARGS = ["--disable-features=WebRtcHideLocalIpsWithMdns"]


def missing():
    """Why the SFU media plane cannot be set up here, or None."""
    if not os.path.exists(JANUS):
        return f"janus not found at {JANUS} (Debian package `janus`)"
    if not shutil.which("ip"):
        return "iproute2 (`ip`) is not installed"
    if not in_own_netns():
        return "not inside a network namespace of the test's own (run under unshare -n)"
    return None


def in_own_netns():
    """Whether this process runs in a network namespace the test made: not the one of pid 1 when
    that can be read, and in any case one whose only interfaces are loopback and our veth pair
    (a fresh `unshare -n` namespace has only `lo`)."""
    try:
        if os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net"):
            return False
    except OSError:
        pass  # pid 1's namespace is not readable here: the interface check decides
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False  # cannot tell: never touch interfaces then
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()}
    return names <= {"lo", *VETH}


def make_veth():
    """Creates the veth pair (once) in this process's own network namespace."""
    if not in_own_netns():
        raise RuntimeError("refusing to create a veth pair outside a network namespace of the test's own")
    if subprocess.run(["ip", "link", "show", VETH[0]], capture_output=True).returncode == 0:
        return
    commands = [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]],
        ["ip", "addr", "add", VETH_ADDRESSES[0], "dev", VETH[0]],
        ["ip", "addr", "add", VETH_ADDRESSES[1], "dev", VETH[1]],
        ["ip", "link", "set", VETH[0], "up"],
        ["ip", "link", "set", VETH[1], "up"],
    ]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=10)


class JanusApi:
    """A minimal client of Janus's API over its Unix socket (SOCK_SEQPACKET, one JSON message per
    packet): requests matched by transaction; events for the session arrive on the same socket."""

    def __init__(self, path, api_secret, timeout=10.0):
        self.secret = api_secret
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.session = None
        self.backlog = []

    def close(self):
        self.sock.close()

    def _send(self, message):
        message = dict(message, transaction=secrets.token_hex(6), apisecret=self.secret)
        if self.session is not None and "session_id" not in message and message["janus"] != "create":
            message["session_id"] = self.session
        self.sock.send(json.dumps(message).encode())
        return message["transaction"]

    def _wait(self, match, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.backlog):
                if match(m):
                    return self.backlog.pop(i)
            if time.monotonic() > deadline:
                raise TimeoutError(f"janus: no reply (backlog {self.backlog[-3:]})")
            self.backlog.append(json.loads(self.sock.recv(1 << 20)))

    def call(self, message, want=("success",), timeout=15.0):
        """Sends a request; returns its reply (a `want` message with its transaction)."""
        tx = self._send(message)
        reply = self._wait(lambda m: m.get("transaction") == tx and m.get("janus") in (*want, "error"), timeout)
        if reply["janus"] == "error":
            raise RuntimeError(f"janus error: {reply}")
        return reply

    def create_session(self):
        self.session = self.call({"janus": "create"})["data"]["id"]
        return self.session

    def attach(self, plugin="janus.plugin.videoroom"):
        return self.call({"janus": "attach", "plugin": plugin})["data"]["id"]

    def message(self, handle, body, jsep=None):
        """A plugin request: a synchronous `success` reply, or an `ack` and then the `event`."""
        message = {"janus": "message", "handle_id": handle, "body": body}
        if jsep:
            message["jsep"] = jsep
        reply = self.call(message, want=("success", "ack", "event"))
        if reply["janus"] == "ack":
            tx = reply["transaction"]
            reply = self._wait(lambda m: m.get("transaction") == tx and m.get("janus") == "event")
        data = reply.get("plugindata", {}).get("data", {})
        if data.get("error_code"):
            raise RuntimeError(f"videoroom error: {data}")
        return reply

    def keepalive(self):
        self.call({"janus": "keepalive"}, want=("ack",))


class Janus:
    """One Janus process with scripts/janus-config's configuration, ICE on hv0."""

    def __init__(self, workdir=None):
        self.dir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="hearth-janus-"))
        self.conf = self.dir / "conf"
        self.socket = self.dir / "janus.sock"
        self.api_secret = secrets.token_hex(12)
        self.admin_key = secrets.token_hex(12)
        self.log_path = self.dir / "janus.log"
        self.process = None
        subprocess.run([str(ROOT / "scripts" / "janus-config"), str(self.conf), str(self.socket),
                        self.api_secret, self.admin_key, VETH[0]], check=True, capture_output=True, timeout=10)

    @property
    def hearthd_config(self):
        """The `sfu` block of a hearthd configuration that drives this Janus."""
        return {"janusSocket": str(self.socket), "apiSecret": self.api_secret, "adminKey": self.admin_key}

    def start(self, timeout=20.0, attempts=3):
        """Starts Janus and waits until its API answers on the socket. A Janus that exits at start
        (its Unix-socket transport was seen, once, on a loaded machine, to end its thread and
        Janus to stop with "No Janus API transport is available") is started again, up to
        `attempts` times."""
        for attempt in range(attempts):
            try:
                return self._start_once(timeout / attempts)
            except RuntimeError:
                self.kill()
                if attempt == attempts - 1:
                    raise

    def _start_once(self, timeout):
        if self.socket.exists():
            self.socket.unlink()  # a stale socket of a killed Janus
        self.process = subprocess.Popen([JANUS, "-F", str(self.conf), "-o", "-L", str(self.log_path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited with {self.process.returncode}: {self.log()[-2000:]}")
            if self.socket.exists():
                try:
                    api = JanusApi(self.socket, self.api_secret, timeout=2)
                    try:
                        api.call({"janus": "info"}, want=("server_info",), timeout=2)
                        return self
                    finally:
                        api.close()
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"janus did not answer within {timeout}s: {self.log()[-2000:]}")

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def api(self):
        return JanusApi(self.socket, self.api_secret)


#: Installed in every SFU page before its scripts: keeps every RTCPeerConnection the page makes
#: (window.__pcs) and a log of the SFU messages both ways (window.__sfuLog, SDPs shortened),
#: so a test can count outbound streams across all of a page's connections and say exactly what
#: was exchanged when something fails.
PAGE_PROBE = r"""
(() => {
  const Original = window.RTCPeerConnection;
  const pcs = [];
  window.__pcs = pcs;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); pcs.push(this); }
  };
  const log = [];
  window.__sfuLog = log;
  const brief = (m) => {
    const out = { ...m, at: Date.now() };
    if (typeof out.sdp === 'string') out.sdp = `${out.sdp.length} bytes, ${(out.sdp.match(/^m=/mg) || []).length} m-lines`;
    if (out.candidate && out.candidate.candidate) out.candidate = out.candidate.candidate.slice(0, 60);
    return out;
  };
  const OriginalWS = window.WebSocket;
  window.WebSocket = class extends OriginalWS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string') return;
        for (const line of e.data.split('\n')) {
          if (!line.includes('"sfu-') && !line.includes('"error"') && !line.includes('"room-updated"')) continue;
          try {
            const m = JSON.parse(line);
            if (m.type.startsWith('sfu-') || m.type === 'error' || m.type === 'room-updated') log.push({ dir: 'in', ...brief(m) });
          } catch (_) {}
        }
      });
    }
    send(data) {
      try {
        const m = JSON.parse(data);
        if (m.type && (m.type.startsWith('sfu-') || m.type === 'media')) log.push({ dir: 'out', ...brief(m) });
      } catch (_) {}
      return super.send(data);
    }
  };
})();
"""

#: Counts what a page sends across ALL its live peer connections (mesh and SFU alike).
OUTBOUND_JS = r"""
async () => {
  const result = { pcs: 0, video: [], audio: [] };
  for (const pc of window.__pcs || []) {
    if (pc.signalingState === 'closed') continue;
    result.pcs++;
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type === 'outbound-rtp') (r.kind === 'video' ? result.video : result.audio).push({ bytesSent: r.bytesSent || 0, framesEncoded: r.framesEncoded || 0 });
    });
  }
  return result;
}
"""
