"""The load-test tools themselves: the peer relays keep their contract, and hearth-loadgen
measures what it claims (nothing lost, every delivery counted) against a peer and against
hearthd. Small and bounded: a few groups for a few seconds, loopback only.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from hearth import DEV_SECRET, ROOT, Server, free_port

BIN = pathlib.Path(os.environ.get("HEARTHD_BIN", ROOT / ".build" / "debug" / "hearthd")).parent
LOADGEN = BIN / "hearth-loadgen"
PEERS = ROOT / "loadtest" / "peers"


@pytest.fixture(scope="module")
def cert():
    d = pathlib.Path(tempfile.mkdtemp(prefix="hearth-peers-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=localhost", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def start_peer(name, cert, plain=False):
    port = free_port()
    args = [str(PEERS / "start"), name, "--port", str(port), "--cert", str(cert[0]), "--key", str(cert[1])]
    if plain:
        args.append("--plain")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the build (if any) writes to stderr; stdout is this one line
    assert line.startswith("listening"), f"{name} did not start: {line!r} {proc.stderr.read() if proc.poll() else ''}"
    return proc, port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def loadgen(port, *extra, env=None):
    out = pathlib.Path(tempfile.mkdtemp(prefix="hearth-lg-")) / "report.json"
    args = [str(LOADGEN), "run", "--port", str(port), "--groups", "4", "--group-size", "5", "--connect-rate", "200",
            "--chat-rate", "4", "--duration", "2", "--drain", "1", "--settle", "0.2", "--setup-timeout", "20",
            "--label", "t", "--json", str(out), *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=90, env=env)
    summary = [l for l in r.stdout.splitlines() if l.startswith("t: ")]
    return r, summary[-1] if summary else "", json.loads(out.read_text()) if out.exists() else None


@pytest.mark.parametrize("peer", ["c-relay", "python"])
@pytest.mark.parametrize("plain", [False, True])
def test_peer_relays_keep_the_contract(peer, plain, cert):
    proc, port = start_peer(peer, cert, plain)
    try:
        args = [sys.executable, str(PEERS / "smoke.py"), "--port", str(port)] + (["--plain"] if plain else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "smoke: ok" in r.stdout
    finally:
        stop(proc)


def test_loadgen_relay_mode_counts_every_delivery(cert):
    proc, port = start_peer("c-relay", cert)
    try:
        r, summary, report = loadgen(port, "--relay")
    finally:
        stop(proc)
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary.startswith("t: ok "), summary
    step = report["steps"][0]
    # 20 members x 4 chats/s x 2 s, each delivered to the 5 members of its room (sender included).
    assert step["chatSent"] >= 150
    assert step["chatExpected"] == step["chatSent"] * 5
    assert step["chatDelivered"] == step["chatExpected"]
    assert step["chatLost"] == 0 and step["chatDuplicated"] == 0 and step["chatReordered"] == 0
    # A relay acknowledges nothing, and none is awaited from it.
    assert step["chatAcked"] == 0 and step["chatAckUnmatched"] == 0
    assert "chat acks" not in r.stdout


def test_loadgen_notices_a_relay_that_loses_messages(cert):
    """A relay that never relays: the generator must fail loudly, not report a clean run."""
    import ssl
    import threading
    from websockets.sync.server import serve

    def swallow(ws):
        for _ in ws:
            pass

    port = free_port()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    with serve(swallow, "127.0.0.1", port, ssl=ctx) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        r, summary, report = loadgen(port, "--relay")
        server.shutdown()
    assert r.returncode != 0
    assert summary.startswith("t: FAILED") or "lost" in r.stdout, r.stdout
    assert report is None or report["steps"][0]["chatLost"] > 0


def test_loadgen_against_hearthd_plays_whole_groups(server):
    env = dict(os.environ, HEARTH_TOKEN_SECRET=DEV_SECRET)
    r, summary, report = loadgen(server.port, "--ice-per-pair", "4", "--sdp-bytes", "1000", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary.startswith("t: ok "), summary
    step = report["steps"][0]
    assert step["groupsReady"] == 4 and step["admittedCount"] == 20
    assert step["chatDelivered"] == step["chatExpected"] > 0
    assert step["chatLost"] == 0 and step["seqViolations"] == 0
    # Chat is sent with a rid, as the web app sends it: hearthd acknowledges every message once
    # it is journaled, and each ack names a message the generator sent.
    assert step["chatAcked"] == step["chatSent"] and step["chatAckUnmatched"] == 0
    assert f"chat acks        {step['chatSent']} of {step['chatSent']} sent, unmatched 0;" in r.stdout


def test_loadtest_run_refuses_a_port_in_use():
    """loadtest/run must not start its server and generator when something already listens on
    its port (the generator would measure that instead): it fails before starting anything,
    says why, and records nothing."""
    results = ROOT / "loadtest" / "RESULTS.md"
    before = results.read_bytes()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy.setblocking(False)
        port = busy.getsockname()[1]
        r = subprocess.run([str(ROOT / "loadtest" / "run"), "steady-quick", f"PORT={port}", f"HEARTHD={BIN / 'hearthd'}",
                            f"LOADGEN={LOADGEN}", "DURATION=1"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"port {port} is in use" in r.stderr, r.stderr
        with pytest.raises(BlockingIOError):
            busy.accept()  # nobody connected to the listener
    assert results.read_bytes() == before


def test_loadgen_breakouts_renegotiates_in_every_breakout_and_back(server):
    """The `breakouts` scenario in small: 3 groups of 10 open 4 breakouts each (automatic), every
    member renegotiates and chats in its breakout, the facilitator closes them all and the group
    renegotiates in the main room; nothing crosses rooms and nothing is lost."""
    env = dict(os.environ, HEARTH_TOKEN_SECRET=DEV_SECRET)
    r, summary, report = loadgen(server.port, "--groups", "3", "--group-size", "10", "--chat-rate", "0",
                                 "--duration", "0.5", "--ice-per-pair", "4", "--sdp-bytes", "1000",
                                 "--breakouts", "4", "--breakout-timeout", "20",
                                 "--room-prefix", "lgb", env=env)  # rooms of its own on the module's server
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary.startswith("t: ok ") and " cross_room=0 " in summary, summary
    step = report["steps"][-1]
    assert step["breakoutGroupsOpened"] == step["breakoutGroupsRenegotiated"] == step["breakoutGroupsDone"] == 3
    assert step["breakoutOpened"] and step["breakoutClosed"]
    # 9 members in 4 breakouts (3, 2, 2, 2): one chat each, to everyone in its breakout.
    assert step["breakoutChatSent"] == 27 and step["breakoutChatExpected"] == 3 * (9 + 4 + 4 + 4)
    assert step["breakoutChatDelivered"] == step["breakoutChatExpected"] and step["breakoutChatLost"] == 0
    assert step["breakoutCrossRoom"] == 0 and step["errorCodes"] == {}


def test_loadgen_slow_consumers_are_cut_off_by_hearthd_alone():
    """The `slow-consumer` scenario in small: one member per group stops reading, its buffers and
    then its send queue fill, and hearthd cuts it off (4008, its own count), each non-reader and
    nobody else; once the non-readers read again they see their connection end, so none is still
    open at the end, and the readers lose nothing."""
    server = Server(limits={"socketSendBufferBytes": 4096, "sendQueueMaxMessages": 32,
                            "pingIntervalSeconds": 60, "hangupSeconds": 120})
    try:
        env = dict(os.environ, HEARTH_TOKEN_SECRET=DEV_SECRET)
        r, summary, report = loadgen(server.port, "--chat-bytes", "1500", "--duration", "8", "--slow-per-group", "1",
                                     "--slow-after", "0.5", "--slow-pause", "6", "--no-mesh", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert summary.startswith("t: ok "), summary
        step = report["steps"][-1]
        assert step["slowConnections"] == 4 and step["slowStillOpen"] == 0, step
        assert step["slowCut4008"] + step["slowClosedOtherwise"] == 4
        assert step["chatDelivered"] == step["chatExpected"] > 0 and step["chatLost"] == 0
        with server.https("/metrics") as m:
            drops = [l for l in m.read().decode().splitlines() if l.startswith("hearth_send_queue_drops_total")]
        assert drops and float(drops[0].split()[1]) == 4, drops
    finally:
        assert server.stop() == 0, server.log()


def load_plot_module():
    """loadtest/plot as a module (its parser needs no matplotlib)."""
    return load_loadtest_module("plot")


def load_loadtest_module(name):
    """A python script of loadtest/ (no .py suffix) as a module."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader(f"loadtest_{name}", str(ROOT / "loadtest" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in loadtest/
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def test_loadtest_plot_parses_the_real_results():
    """loadtest/plot finds, in the real RESULTS.md, every block its pictures need, and reads the
    figures those blocks print (checked against the blocks' own lines). No drawing here."""
    plot = load_plot_module()
    assert plot.split_label("peers-SERVER=c-relay-rate=0.5") == ("peers", {"SERVER": "c-relay", "rate": "0.5"})
    assert plot.split_label("reconnect-storm-STORM_JITTER=2") == ("reconnect-storm", {"STORM_JITTER": "2"})
    d = plot.load()
    servers = plot.scenario_value("STEPS").split()
    assert "hearth" in servers and set(d.peers) == set(servers) == set(d.peers_memory)
    for server, rows in d.peers.items():
        assert [r["rate"] for r in rows] == [plot.fmt_rate(x) for x in plot.scenario_value("CHAT_RATE").split(",")]
        for r in rows:
            b = r["block"]
            assert b.ok and b.keys == {"SERVER": server, "rate": r["rate"]} and b.machine
            assert f"server CPU per delivered message {r['cpu_us']:.2f} us" in "\n".join(b.lines)
            assert 0 < r["lat"]["p50"] <= r["lat"]["p99"] <= r["lat"]["p999"] <= r["lat"]["max"]
            assert 0 < r["delivered"] <= 1.01 * r["offered"]
        # later runs of a label supersede earlier ones
        later = [b for b in d.blocks if b.ok and b.label == rows[0]["block"].label and b.line_no > rows[0]["block"].line_no]
        assert later == []
    assert d.density and all(kib > 0 for run in d.density for _, kib, _ in run)
    assert d.storm
    for s in d.storm:
        assert s["clients"] > 0 and s["all_back_s"] * 1000 >= s["back"]["p50"]
        assert s["back"]["p50"] <= s["back"]["p99"] <= s["back"]["p999"] <= s["back"]["max"]
    # The storm timelines agree with their blocks' own summary lines.
    assert d.timelines
    for b in d.timelines:
        rows = b.timeline()
        clients = int(b.number("storm", r"^storm\s+(\d+) clients dropped", "clients"))
        all_back = b.number("all back", r"^all back\s+([\d.]+) s", "seconds")
        width = rows[1][0] - rows[0][0]
        assert rows[0][0] == -2.0 and all(abs(r2[0] - r1[0] - width) < 1e-6 for r1, r2 in zip(rows, rows[1:]))
        backs = [r[1] for r in rows]
        assert backs == sorted(backs) and backs[-1] == clients and all(r[2] == clients for r in rows)
        first_all = next(r for r in rows if r[1] == clients)
        assert first_all[0] < all_back <= first_all[0] + width
        assert sum(r[3] for r in rows if r[0] >= 0) >= int(b.number("unaffected storm", r"\(n=(\d+)\)", "n")) * 0.9
    r = subprocess.run([sys.executable, str(ROOT / "loadtest" / "plot"), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_loadtest_plot_check_fails_on_a_missing_figure(tmp_path):
    """--check exits 1, naming the block, when a figure a picture needs is not in its block."""
    text = (ROOT / "loadtest" / "RESULTS.md").read_text()
    plot = load_plot_module()
    hearth = plot.load().peers["hearth"][-1]["block"]
    line = next(l for l in hearth.lines if l.startswith("server CPU per delivered message"))
    at = text.rindex(line)
    broken = tmp_path / "RESULTS.md"
    broken.write_text(text[:at] + text[at + len(line) + 1:])
    r = subprocess.run([sys.executable, str(ROOT / "loadtest" / "plot"), "--check", "--results", str(broken)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert hearth.label in r.stderr and "server CPU per delivered message" in r.stderr


def test_loadtest_instructions_reads_callgrinds_own_output(tmp_path):
    """loadtest/instructions differences two callgrind runs: its readers, on the real
    callgrind_annotate output of a small C program that calls `work` 100 and 300 times, find
    exactly 200 more calls and the same instructions for each, and it refuses a run that lost
    chats (or, per connection, did not admit every connection)."""
    tool = load_loadtest_module("instructions")
    source = tmp_path / "calls.c"
    source.write_text(
        "#include <stdlib.h>\n"
        "volatile int sink;\n"
        "__attribute__((noinline)) void work(int i) { for (int k = 0; k < 10; k++) sink += i * k; }\n"
        "int main(int argc, char **argv) { int n = atoi(argv[1]); for (int i = 0; i < n; i++) work(i); return 0; }\n")
    program = tmp_path / "calls"
    subprocess.run(["gcc", "-O1", "-o", str(program), str(source)], check=True, timeout=60)
    runs = {}
    for n in (100, 300):
        out = tmp_path / f"callgrind-{n}.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(program), str(n)],
                       check=True, capture_output=True, timeout=120)
        table, total = tool.costs(tool.annotate(str(out)))
        calls = tool.calls_into(tool.annotate(str(out), "--tree=caller"), r"\?\?\?:work \[")
        work = [v for k, v in table.items() if k.startswith("???:work [")]
        assert len(work) == 1, sorted(table)[:20]
        runs[n] = (total, work[0], calls)
    assert runs[100][2] == 100 and runs[300][2] == 300
    extra = runs[300][1] - runs[100][1]
    assert extra > 0 and extra % 200 == 0 and extra // 200 == runs[100][1] // 100
    assert runs[300][0] - runs[100][0] >= extra
    # The report's arithmetic on the same two outputs: 200 extra calls of `work`, per call.
    d = tool.difference(str(tmp_path / "callgrind-100.out"), str(tmp_path / "callgrind-300.out"), 200, str(program))
    assert d["self"][0] == (extra / 200, "work"), d["self"][:3]
    assert ("work", extra / 200) in [(name, value) for value, name in d["inclusive"]]
    assert d["total"] == (runs[300][0] - runs[100][0]) / 200
    assert dict(d["by_object"])["own"] >= extra / 200
    assert d["begin_access"] == 0 and d["hashes"] == 0 and d["exclusivity"] == 0
    log = "received         6000 messages in 5800 frames, 1 bytes\n"
    assert tool.frames(log) == 5800
    assert tool.sent_chats("chat             sent 600, expected 6000, delivered-unique 6000, lost 0, dup 0\n") == 600
    with pytest.raises(SystemExit):
        tool.sent_chats("chat             sent 600, expected 6000, delivered-unique 5990, lost 10, dup 0\n")
    # --per connection counts the admitted connections, and refuses a run where one was not.
    summary = ("groups           40 x 10 (400 connections), ready 40\n"
               "connections      established 400, welcomed 400, admitted {admitted}, connect errors {errors}\n")
    assert tool.admitted_connections(summary.format(admitted=400, errors=0)) == 400
    for admitted, errors in ((399, 0), (400, 1)):
        with pytest.raises(SystemExit):
            tool.admitted_connections(summary.format(admitted=admitted, errors=errors))
    with pytest.raises(SystemExit):
        tool.admitted_connections("chat             sent 600, expected 6000, delivered-unique 6000, lost 0, dup 0\n")


def test_loadtest_instructions_runs_the_c_relay_under_callgrind(tmp_path, cert):
    """--c-relay: the relay is built into the work directory, and `loadtest/peers/start` (as
    `loadtest/run` calls it, with BUILD_DIR set to the wrapper's directory) starts it under
    callgrind, which writes its output where CALLGRIND_OUT says when the relay stops."""
    tool = load_loadtest_module("instructions")
    peer, binary = tool.relay_wrapper(str(tmp_path))
    assert os.access(binary, os.X_OK) and os.access(os.path.join(peer, "c-relay"), os.X_OK)
    out = tmp_path / "callgrind-relay.out"
    port = free_port()
    proc = subprocess.Popen(
        [str(PEERS / "start"), "c-relay", "--port", str(port), "--cert", str(cert[0]), "--key", str(cert[1])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, BUILD_DIR=peer, CALLGRIND_OUT=str(out)))
    try:
        line = proc.stdout.readline()  # valgrind's own lines go to stderr
        assert line.startswith("listening"), (line, proc.stderr.read() if proc.poll() is not None else "")
        assert "callgrind" in pathlib.Path(f"/proc/{proc.pid}/cmdline").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    table, total = tool.costs(tool.annotate(str(out)))
    assert total > 0 and any(name.endswith(f"[{binary}]") for name in table), sorted(table)[:10]


def test_loadtest_loop_iterations_reads_perf_scripts_output():
    """loadtest/loop-iterations: from `perf script` output in the form perf 6 prints it (a
    header line per event, its call chain indented below), an iteration runs from an
    epoll_wait's exit to the next one's entry, and its CPU samples are counted by the object of
    their first frame; samples outside an iteration (the loop asleep in epoll_wait, or before
    the first exit) count for none."""
    tool = load_loadtest_module("loop-iterations")

    def event(time, name, *frames):
        lines = [f"{time:.6f}: {name}: "]
        lines += [f"\t{0x1000 + i:16x} {symbol} ({obj})" for i, (symbol, obj) in enumerate(frames)]
        return "\n".join(lines) + "\n\n"

    libssl = ("[unknown]", "/usr/lib/x86_64-linux-gnu/libssl.so.3")
    kernel = ("tcp_sendmsg", "[kernel.kallsyms]")
    hearthd = ("$s15HearthTransport6WorkerC10flushDirtyyyF", "/opt/hearth/hearthd")
    libc_epoll = ("epoll_wait", "/usr/lib/x86_64-linux-gnu/libc.so.6")
    text = "".join([
        event(100.000, "cpu-clock/freq=1999/", libssl),  # before any iteration: not counted
        event(100.001, "syscalls:sys_exit_epoll_wait", libc_epoll),
        event(100.002, "cpu-clock/freq=1999/", kernel, ("[unknown]", "[unknown]")),
        event(100.003, "cpu-clock/freq=1999/", hearthd),
        event(100.004, "cpu-clock/freq=1999/", kernel),
        event(100.011, "syscalls:sys_enter_epoll_wait", libc_epoll),  # a 10 ms iteration
        event(100.015, "cpu-clock/freq=1999/", libssl),  # asleep: not counted
        event(100.020, "syscalls:sys_exit_epoll_wait", libc_epoll),
        event(100.021, "cpu-clock/freq=1999/", libssl),
        event(100.022, "syscalls:sys_enter_epoll_wait", libc_epoll),  # a 2 ms iteration
        event(100.030, "syscalls:sys_exit_epoll_wait", libc_epoll),  # never ends: not counted
        event(100.031, "cpu-clock/freq=1999/", hearthd),
    ])
    found = tool.parse(text)
    assert [name for _, name, _ in found][:2] == ["cpu-clock/freq=1999/", "syscalls:sys_exit_epoll_wait"]
    done = sorted(tool.iterations(found), key=lambda i: -i[0])
    assert len(done) == 2
    (longest, start, objects), (shorter, _, others) = done
    assert round(longest * 1000) == 10 and start == pytest.approx(100.001)
    assert sorted(objects) == ["[kernel.kallsyms]", "[kernel.kallsyms]", "hearthd"]
    assert round(shorter * 1000) == 2 and others == ["libssl.so.3"]


def test_loadtest_loop_iterations_says_why_it_cannot_read(tmp_path):
    """Without perf, or with a file perf cannot read, loadtest/loop-iterations exits non-zero
    with one line saying which, not a traceback."""
    tool = str(ROOT / "loadtest" / "loop-iterations")
    missing = str(tmp_path / "no-such.perf")
    run = subprocess.run([sys.executable, tool, missing], env={"PATH": str(tmp_path)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and run.stderr.strip() == "perf is not installed (Debian: linux-perf)", run.stderr
    if shutil.which("perf"):
        run = subprocess.run([sys.executable, tool, missing], capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and run.stderr.startswith(f"perf script could not read {missing}:"), run.stderr
        assert "Traceback" not in run.stderr
