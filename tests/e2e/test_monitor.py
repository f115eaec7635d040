"""End-to-end tests of skiff-monitor with real crun over hand-made busybox bundles.

Run as root:  /usr/bin/python3 -m pytest -v -s tests/e2e/test_monitor.py
Skipped when not root or when crun/busybox are missing. The monitor binary is
$SKIFF_BUILD/skiff-monitor (default build/; override with SKIFF_MONITOR); the client side is driven through
the real src/monclient code, compiled here into a small tool (monclient_tool.c).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CRUN = shutil.which("crun") or "/usr/bin/crun"
BUSYBOX = "/bin/busybox"
HYBRID = os.path.join(os.environ.get("SKIFF_FIXTURES", os.path.join(REPO, "..", "shared", "fixtures")), "cgroup-hybrid.sh")
MEMCG_ROOT = "/sys/fs/cgroup/memory"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(CRUN) or not os.path.exists(BUSYBOX),
    reason="needs root, crun and busybox-static",
)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env():
    if os.path.exists(HYBRID):
        subprocess.run(["bash", HYBRID, "apply"], check=False, capture_output=True)
    # the monitor of the build under test (scripts/test.sh sets SKIFF_BUILD), else build/
    build = os.environ.get("SKIFF_BUILD", os.path.join(REPO, "build"))
    monitor = os.environ.get("SKIFF_MONITOR", os.path.join(build, "skiff-monitor"))
    if "SKIFF_MONITOR" not in os.environ and "SKIFF_BUILD" not in os.environ:
        r = subprocess.run(["make", "-C", REPO, "build/skiff-monitor"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    top = tempfile.mkdtemp(prefix="skiff-mon-e2e-")
    os.chmod(top, 0o755)  # the containers' root (uid 100000 here) must reach the rootfs
    tool = os.path.join(top, "monclient_tool")
    srcs = [os.path.join(REPO, "tests", "e2e", "monclient_tool.c")]
    for d in ("monclient", "common"):
        dd = os.path.join(REPO, "src", d)
        srcs += [os.path.join(dd, f) for f in sorted(os.listdir(dd)) if f.endswith(".c")]
    r = subprocess.run(
        ["gcc", "-std=gnu17", "-O1", "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "src"), "-o", tool]
        + srcs + ["-ljansson"],
        capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    rootfs = os.path.join(top, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
    subprocess.run(["chown", "-R", "100000:100000", rootfs], check=True)
    e = {"top": top, "monitor": monitor, "tool": tool, "rootfs": rootfs,
         "root": os.path.join(top, "crun-root"), "groups": [], "ids": [], "cgroups": []}
    yield e
    # Leave nothing behind: monitors, runtime containers, cgroups.
    for g in e["groups"]:
        if tool_run(e, "alive", g).strip() == "1":
            tool_run(e, "request", g, json.dumps({"op": "stop", "graceSeconds": 0}), "5000")
    for i in e["ids"]:
        subprocess.run([CRUN, "--root", e["root"], "delete", "-f", i], capture_output=True)
    for cg in e["cgroups"]:
        for ctl in ("memory", "pids", "cpu", "cpuacct", "blkio", "devices", "freezer", "cpuset", "hugetlb"):
            p = os.path.join("/sys/fs/cgroup", ctl, cg.lstrip("/"))
            if os.path.isdir(p):
                try:
                    os.rmdir(p)
                except OSError:
                    pass
    for ctl in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(os.path.join("/sys/fs/cgroup", ctl, "skiff-test"))
        except OSError:
            pass  # absent, or still used by another test run
    if not os.environ.get("SKIFF_KEEP"):
        shutil.rmtree(top, ignore_errors=True)


def tool_run(e, *args, check=False):
    r = subprocess.run([e["tool"], *args], capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def make_bundle(e, args, memory_mb=None):
    name = "b-" + uuid.uuid4().hex[:10]
    bundle = os.path.join(e["top"], name)
    os.makedirs(bundle)
    subprocess.run([CRUN, "spec"], cwd=bundle, check=True, capture_output=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["root"] = {"path": e["rootfs"], "readonly": True}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    spec["process"].pop("rlimits", None)
    linux = spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cgroup = "/skiff-test/" + name
    linux["cgroupsPath"] = cgroup
    if memory_mb:
        linux.setdefault("resources", {})["memory"] = {"limit": memory_mb * 1024 * 1024,
                                                       "swap": memory_mb * 1024 * 1024}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    e["cgroups"].append(cgroup)
    return bundle, os.path.join(MEMCG_ROOT, cgroup.lstrip("/"))


def make_group(e, containers, init=(), policy="Never", backoff=None, grace=1, log_max=4194304):
    gid = "g-" + uuid.uuid4().hex[:8]
    gdir = os.path.join(e["top"], gid)
    os.makedirs(gdir)

    def entry(c):
        name, args = c[0], c[1]
        bundle, memcg = make_bundle(e, args, c[2] if len(c) > 2 else None)
        cid = gid + "-" + name
        e["ids"].append(cid)
        return {"name": name, "id": cid, "bundle": bundle, "memoryCgroup": memcg}

    cfg = {"group": gid, "runtime": CRUN, "runtimeRoot": e["root"], "restartPolicy": policy,
           "backoff": backoff or {"initialMs": 100, "maxMs": 400, "resetAfterMs": 60000},
           "stopGraceSeconds": grace, "logMaxBytes": log_max,
           "initContainers": [entry(c) for c in init], "containers": [entry(c) for c in containers]}
    with open(os.path.join(gdir, "monitor.json"), "w") as f:
        json.dump(cfg, f)
    e["groups"].append(gdir)
    return gdir


def spawn(e, gdir):
    out = tool_run(e, "spawn", e["monitor"], gdir)
    assert out.strip() == "ok", out
    return int(open(os.path.join(gdir, "monitor.pid")).read())


def request(e, gdir, obj, timeout_ms=30000):
    out = tool_run(e, "request", gdir, json.dumps(obj), str(timeout_ms))
    assert not out.startswith("error"), out
    return json.loads(out)


def state_file(gdir):
    try:
        with open(os.path.join(gdir, "state.json")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def events_file(gdir):
    with open(os.path.join(gdir, "events.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def ctr(state, name):
    return next(c for c in state["containers"] if c["name"] == name)


def wait_for(pred, timeout=15.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def wait_phase(gdir, phases, timeout=15.0):
    return wait_for(lambda: (s := state_file(gdir)) and s["phase"] in phases and s, timeout,
                    "phase in %s" % (phases,))


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes (the monitor's parent is init).
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def private_dirty_kb(pid):
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                total += int(line.split()[1])
    return total


LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$")


def read_log(gdir, name):
    with open(os.path.join(gdir, "logs", name + ".log")) as f:
        data = f.read()
    entries = []
    for line in data.split("\n")[:-1]:
        m = LOG_RE.match(line)
        assert m, "bad CRI log line: %r" % line[:200]
        entries.append(m.groups())
    return entries


# ---------------------------------------------------------------- tests


def test_exit_codes_never(env):
    g = make_group(env, [("c1", ["sh", "-c", "exit 3"]), ("c2", ["sh", "-c", "echo hi; exit 0"])])
    pid = spawn(env, g)
    s = wait_phase(g, ("Exited",))
    c1, c2 = ctr(s, "c1"), ctr(s, "c2")
    assert c1["currentState"]["state"] == "Terminated"
    assert c1["currentState"]["exitCode"] == 3 and c1["currentState"]["detailStatus"] == "Error"
    assert c2["currentState"]["exitCode"] == 0 and c2["currentState"]["detailStatus"] == "Completed"
    assert c1["restartCount"] == 0 and c2["restartCount"] == 0
    assert "previousState" not in c1
    for st in (c1["currentState"], c2["currentState"]):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", st["finishTime"])
        assert st["startTime"] <= st["finishTime"]
    wait_for(lambda: pid_gone(pid), what="monitor exit")
    assert not os.path.exists(os.path.join(g, "monitor.sock"))
    assert tool_run(env, "alive", g).strip() == "0"
    out = tool_run(env, "request", g, '{"op":"status"}')
    assert out.startswith("error 2 "), out  # ENOENT: monitor gone
    evs = events_file(g)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    names = [(e["container"], e["name"]) for e in evs]
    assert ("c1", "Started") in names and ("c1", "Terminated") in names
    assert ("c2", "Started") in names and ("c2", "Terminated") in names
    assert s["lastSeq"] == evs[-1]["seq"]
    assert [x[3] for x in read_log(g, "c2")] == ["hi"]
    # Read without the monitor, through monclient_read_state.
    both = json.loads(tool_run(env, "state", g, "2"))
    assert both["state"]["phase"] == "Exited"
    assert [e["seq"] for e in both["events"]] == list(range(3, len(evs) + 1))
    listed = subprocess.run([CRUN, "--root", env["root"], "list", "-q"], capture_output=True, text=True).stdout
    assert os.path.basename(g) not in listed


def test_onfailure_backoff(env):
    g = make_group(env, [("c1", ["sh", "-c", "echo fail; exit 1"]), ("c2", ["sh", "-c", "exit 0"])],
                   policy="OnFailure", backoff={"initialMs": 100, "maxMs": 400, "resetAfterMs": 60000})
    spawn(env, g)
    sub = subprocess.Popen([env["tool"], "subscribe", g, "1000"], stdout=subprocess.PIPE, text=True)
    try:
        s = wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["restartCount"] >= 4 and s, 20,
                     "4 restarts")
        c2 = ctr(s, "c2")
        assert c2["restartCount"] == 0 and c2["currentState"]["detailStatus"] == "Completed"
        evs = events_file(g)
        starts = [time.mktime(time.strptime(e["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
                  + float("0" + e["timestamp"][19:-1])
                  for e in evs if e["container"] == "c1" and e["name"] == "Started"]
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        # 100, 200, 400, 400 ms (plus the run itself): exponential, capped.
        assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39 and gaps[3] >= 0.39, gaps
        assert gaps[3] < 1.5, gaps
        backoffs = [e for e in evs if e["name"] == "BackOff"]
        assert backoffs and all(e["container"] == "c1" and e["type"] == "Warning" for e in backoffs)
        assert backoffs[0]["message"] == "Back-off restarting failed container"
        st = request(env, g, {"op": "status", "sinceSeq": 0})
        assert st["ok"] and ctr(st["state"], "c1")["restartCount"] >= 4
        assert len(st["events"]) == st["state"]["lastSeq"] or st["events"][-1]["seq"] <= st["state"]["lastSeq"]
        stop = request(env, g, {"op": "stop", "graceSeconds": 1})
        assert stop == {"ok": True}
    finally:
        out, _ = sub.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0] == "subscribed" and lines[-1] == "EOF"
    updates = [json.loads(l) for l in lines[1:-1]]
    waiting = [u for u in updates if ctr(u["state"], "c1")["currentState"]["state"] == "Waiting"
               and ctr(u["state"], "c1")["currentState"]["detailStatus"] == "CrashLoopBackOff"]
    assert waiting, "never saw CrashLoopBackOff"
    w = ctr(waiting[0]["state"], "c1")
    assert w["previousState"]["state"] == "Terminated" and w["previousState"]["exitCode"] == 1
    seqs = [e["seq"] for u in updates for e in u["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert updates[-1]["state"]["phase"] == "Stopped"
    assert len([x for x in read_log(g, "c1") if x[3] == "fail"]) >= 5


def test_always_restarts_after_success(env):
    g = make_group(env, [("c1", ["sh", "-c", "echo run; exit 0"])], policy="Always")
    spawn(env, g)
    s = wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["restartCount"] >= 2 and s, 15, "restarts")
    assert s["phase"] == "Running"
    assert request(env, g, {"op": "stop", "graceSeconds": 0}) == {"ok": True}
    assert len([x for x in read_log(g, "c1") if x[3] == "run"]) >= 3


def test_logs_format_split_and_streams(env):
    script = ("echo out1; echo err1 >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; "
              "printf 'no-newline'")
    t0 = time.time()
    g = make_group(env, [("c1", ["sh", "-c", script])])
    spawn(env, g)
    wait_phase(g, ("Exited",))
    entries = read_log(g, "c1")
    t1 = time.time()
    out = [(x[2], x[3]) for x in entries if x[1] == "stdout"]
    err = [(x[2], x[3]) for x in entries if x[1] == "stderr"]
    assert err == [("F", "err1")]
    assert out[0] == ("F", "out1")
    assert out[1][0] == "P" and out[1][1] == "x" * 16384
    assert out[2][0] == "F" and out[2][1] == "x" * (20000 - 16384)
    assert out[3] == ("F", "no-newline")
    assert len(out) == 4
    for ts, *_ in entries:
        secs = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert t0 - 2 <= secs <= t1 + 2, ts


def test_log_rotation(env):
    g = make_group(env, [("c1", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done"])],
                   log_max=2000)
    spawn(env, g)
    wait_phase(g, ("Exited",))
    cur = os.path.join(g, "logs", "c1.log")
    old = cur + ".1"
    assert os.path.getsize(cur) <= 2000 and os.path.getsize(old) <= 2000
    last = read_log(g, "c1")[-1]
    assert last[3] == "line-199"


def test_oom_killed(env):
    g = make_group(env, [("c1", ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], 32)])
    spawn(env, g)
    s = wait_phase(g, ("Exited",), timeout=60)
    c1 = ctr(s, "c1")
    assert c1["currentState"]["exitCode"] == 137, c1
    assert c1["currentState"]["detailStatus"] == "OOMKilled"
    assert "survived" not in [x[3] for x in read_log(g, "c1")]


def test_start_failure(env):
    g = make_group(env, [("c1", ["/no/such/binary"])])
    spawn(env, g)
    s = wait_phase(g, ("Exited",))
    cs = ctr(s, "c1")["currentState"]
    assert cs["state"] == "Terminated" and cs["exitCode"] == 127
    assert "not found" in cs["detailStatus"] or "No such file" in cs["detailStatus"]
    failed = [e for e in events_file(g) if e["name"] == "Failed"]
    assert failed and failed[0]["type"] == "Warning" and "/no/such/binary" in failed[0]["message"]


def test_idle_memory_and_stop_sigkill_after_grace(env):
    g = make_group(env, [("c1", ["sleep", "1000"]), ("c2", ["sleep", "1000"])], policy="Always")
    pid = spawn(env, g)
    s = wait_for(lambda: (s := state_file(g)) and all(c["currentState"]["state"] == "Running"
                                                      for c in s["containers"]) and s, 15, "running")
    # Exercise the socket a little, then measure the idle monitor.
    for _ in range(5):
        request(env, g, {"op": "status", "sinceSeq": 0})
    time.sleep(0.3)
    kb = private_dirty_kb(pid)
    print("\nskiff-monitor private dirty memory, idle, 2 containers: %d kB" % kb)
    with open("/proc/%d/maps" % pid) as f:
        sanitized = "asan" in f.read()
    if not sanitized:  # ASan builds carry shadow memory: the number means nothing there
        assert kb < 256, kb
    pids = [c["pid"] for c in s["containers"]]
    t0 = time.time()
    assert request(env, g, {"op": "stop", "graceSeconds": 1}) == {"ok": True}
    took = time.time() - t0
    assert 0.9 <= took < 5, took  # sleep as PID 1 ignores SIGTERM: SIGKILL after the grace
    s = state_file(g)
    assert s["phase"] == "Stopped"
    for c in s["containers"]:
        assert c["currentState"]["state"] == "Terminated" and c["currentState"]["exitCode"] == 137
        assert c["pid"] == 0
    kills = [e for e in events_file(g) if e["name"] == "Killing"]
    assert sorted(e["container"] for e in kills) == ["c1", "c2"]
    wait_for(lambda: pid_gone(pid), what="monitor exit")
    for p in pids:
        assert pid_gone(p)
    listed = subprocess.run([CRUN, "--root", env["root"], "list", "-q"], capture_output=True, text=True).stdout
    assert os.path.basename(g) not in listed


def test_sigterm_to_monitor_stops_group(env):
    g = make_group(env, [("c1", ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])],
                   policy="Always", grace=5)
    pid = spawn(env, g)
    wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["currentState"]["state"] == "Running", 15, "running")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: pid_gone(pid), 10, "monitor exit")
    s = state_file(g)
    assert s["phase"] == "Stopped"
    assert ctr(s, "c1")["currentState"]["exitCode"] in (0, 143)


def test_restart_op(env):
    g = make_group(env, [("c1", ["sleep", "1000"])], init=[("i1", ["true"])], policy="Always")
    spawn(env, g)
    s = wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["currentState"]["state"] == "Running" and s,
                 15, "running")
    old_pid = ctr(s, "c1")["pid"]
    assert request(env, g, {"op": "restart", "graceSeconds": 0}) == {"ok": True}
    s = wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["currentState"]["state"] == "Running"
                 and ctr(s, "c1")["pid"] != old_pid and s, 15, "running again")
    c1 = ctr(s, "c1")
    assert c1["restartCount"] == 1 and ctr(s, "i1")["restartCount"] == 1
    assert c1["previousState"]["state"] == "Terminated" and c1["previousState"]["exitCode"] == 137
    assert s["phase"] == "Running"
    assert pid_gone(old_pid)
    names = [(e["container"], e["name"]) for e in events_file(g)]
    assert names.count(("i1", "Started")) == 2 and names.count(("c1", "Started")) == 2
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_init_containers_in_order(env):
    g = make_group(env, [("c1", ["sh", "-c", "exit 0"])],
                   init=[("i1", ["sh", "-c", "sleep 0.2"]), ("i2", ["sh", "-c", "exit 0"])])
    spawn(env, g)
    s = wait_phase(g, ("Exited",))
    order = [(e["container"], e["name"]) for e in events_file(g) if e["name"] in ("Started", "Terminated")]
    assert order == [("i1", "Started"), ("i1", "Terminated"), ("i2", "Started"), ("i2", "Terminated"),
                     ("c1", "Started"), ("c1", "Terminated")], order
    assert [c["init"] for c in s["containers"]] == [True, True, False]


def test_failed_init_blocks_containers(env):
    g = make_group(env, [("c1", ["sleep", "1000"])], init=[("i1", ["sh", "-c", "exit 4"])])
    spawn(env, g)
    s = wait_phase(g, ("Exited",))
    assert ctr(s, "i1")["currentState"]["exitCode"] == 4
    assert ctr(s, "c1")["currentState"]["state"] == "Waiting"
    assert not [e for e in events_file(g) if e["container"] == "c1"]


def test_client_kill9_does_nothing_and_monitor_keeps_logging(env):
    g = make_group(env, [("c1", ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done"])],
                   policy="Always")
    pid = spawn(env, g)
    wait_for(lambda: (s := state_file(g)) and ctr(s, "c1")["currentState"]["state"] == "Running", 15, "running")
    # A subscriber and a half-sent request, both killed with SIGKILL.
    sub = subprocess.Popen([env["tool"], "subscribe", g, "100000"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    sub.kill()
    sub.wait()
    import socket
    half = socket.socket(socket.AF_UNIX)
    half.connect(os.path.join(g, "monitor.sock"))
    half.send(b'{"op":"sta')
    half.close()
    n0 = len(read_log(g, "c1"))
    time.sleep(1.0)
    n1 = len(read_log(g, "c1"))
    assert not pid_gone(pid)
    assert n1 >= n0 + 5, (n0, n1)
    s = request(env, g, {"op": "status", "sinceSeq": 10**9})
    assert s["ok"] and s["events"] == [] and ctr(s["state"], "c1")["restartCount"] == 0
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_protocol_errors(env):
    g = make_group(env, [("c1", ["sleep", "1000"])])
    spawn(env, g)
    wait_for(lambda: (s := state_file(g)) and s["phase"] == "Running", 15, "running")
    r = request(env, g, {"op": "dance"})
    assert r["ok"] is False and "unknown op" in r["error"]
    import socket
    c = socket.socket(socket.AF_UNIX)
    c.connect(os.path.join(g, "monitor.sock"))
    c.sendall(b"not json\n" + b'{"op":"status"}\n')
    f = c.makefile("rb")
    assert json.loads(f.readline())["ok"] is False
    assert json.loads(f.readline())["ok"] is True  # two requests on one connection
    c.sendall(b"x" * 70000)
    r = json.loads(f.readline())
    assert r["ok"] is False and "64 KiB" in r["error"]
    try:  # closed after the error (a reset, since our unread bytes were discarded)
        assert f.readline() == b""
    except ConnectionResetError:
        pass
    c.close()
    assert request(env, g, {"op": "status"})["ok"]
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_spawn_errors_and_seq_continues(env):
    g = make_group(env, [("c1", ["true"])])
    spawn(env, g)
    s1 = wait_phase(g, ("Exited",))
    wait_for(lambda: tool_run(env, "alive", g).strip() == "0", what="monitor gone")
    # A second run of the same group continues the event numbering.
    os.unlink(os.path.join(g, "state.json"))
    spawn(env, g)
    s2 = wait_phase(g, ("Exited",))
    evs = events_file(g)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    assert s2["lastSeq"] > s1["lastSeq"]
    # A broken monitor.json: spawn fails with the monitor's reason.
    bad = os.path.join(env["top"], "bad-" + uuid.uuid4().hex[:6])
    os.makedirs(bad)
    with open(os.path.join(bad, "monitor.json"), "w") as f:
        f.write('{"runtime":"/usr/bin/crun","runtimeRoot":"/tmp","restartPolicy":"Sometimes"}')
    out = tool_run(env, "spawn", env["monitor"], bad)
    assert out.startswith("error") and "Sometimes" in out, out
    # Two monitors for one group: the second is refused.
    g2 = make_group(env, [("c1", ["sleep", "1000"])])
    spawn(env, g2)
    out = tool_run(env, "spawn", env["monitor"], g2)
    assert out.startswith("error 17 "), out  # EEXIST
    request(env, g2, {"op": "stop", "graceSeconds": 0})


# ---------------------------------------------------------------- exec and attach streams


def stream(e, gdir, req, no_read=False):
    """Opens an exec/attach stream through monclient_open_stream (monclient_tool stream)."""
    return subprocess.Popen([e["tool"], "stream", gdir, json.dumps(req)] + (["--no-read"] if no_read else []),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stream_run(e, gdir, req, data=b"", timeout=20):
    p = stream(e, gdir, req)
    out, err = p.communicate(data, timeout=timeout)
    return p.returncode, out, err


def running_group(e, containers, running=None, **kw):
    g = make_group(e, containers, **kw)
    spawn(e, g)
    names = running or [c[0] for c in containers]
    wait_for(lambda: (s := state_file(g)) and all(ctr(s, n)["currentState"]["state"] == "Running" for n in names),
             15, "running")
    return g


def pgrep(pattern):
    """pids of `sleep` processes whose command line matches (not shells or our tool)."""
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    pids = set()
    for x in r.stdout.split():
        try:
            with open("/proc/%s/comm" % x) as f:
                if f.read().strip() == "sleep":
                    pids.add(int(x))
        except OSError:
            pass
    return pids


def test_exec_output_tty_and_size(env):
    g = running_group(env, [("c1", ["sh", "-c", "while true; do sleep 1; done"])], policy="Always")
    rc, out, err = stream_run(env, g, {"op": "exec", "container": "c1",
                                       "argv": ["sh", "-c", "echo hello; tty; echo term=$TERM path=$PATH"],
                                       "rows": 0, "cols": 0})
    assert rc == 0, (out, err)
    assert b"open" in err and b"eof" in err
    assert b"hello\r\n" in out, out
    assert re.search(rb"/dev/pts/\d+", out), out
    assert b"term=xterm path=/usr/local/sbin:" in out, out  # the container's environment, plus TERM
    # crun 1.8 sizes the pty (consoleSize) in its parent while the process already starts,
    # so a process that asks at once may see 0x0 (then SIGWINCH): ask a moment later.
    for rows, cols in ((33, 101), (24, 80), (120, 300)):
        rc, out, err = stream_run(env, g, {"op": "exec", "container": "c1",
                                           "argv": ["sh", "-c", "sleep 0.2; stty size"], "rows": rows, "cols": cols})
        assert rc == 0 and out.strip() == b"%d %d" % (rows, cols), (out, err)
    # The exec'd processes' exits are not the container's.
    time.sleep(0.3)
    s = state_file(g)
    c1 = ctr(s, "c1")
    assert c1["currentState"]["state"] == "Running" and c1["restartCount"] == 0, c1
    assert not [e for e in events_file(g) if e["name"] == "Terminated"]
    assert not [f for f in os.listdir(os.path.join(g, "run")) if f.startswith("exec-")]
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_exec_cat_echoes_and_ends_on_ctrl_d(env):
    g = running_group(env, [("c1", ["sh", "-c", "while true; do sleep 1; done"])], policy="Always")
    p = stream(env, g, {"op": "exec", "container": "c1", "argv": ["cat"]})
    try:
        p.stdin.write(b"hello-cat\n")
        p.stdin.flush()
        # cat is still there: the stream stays open until Ctrl-D.
        time.sleep(0.5)
        assert p.poll() is None
        p.stdin.write(b"\x04")
        p.stdin.flush()
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and b"eof" in err, (out, err)
    # the terminal's echo and cat's own output
    assert out.count(b"hello-cat") == 2, out
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_exec_errors(env):
    g = running_group(env, [("c1", ["sh", "-c", "while true; do sleep 1; done"]), ("c2", ["true"])],
                      running=["c1"])
    wait_for(lambda: ctr(state_file(g), "c2")["currentState"]["state"] == "Terminated", 15, "c2 done")
    rc, out, err = stream_run(env, g, {"op": "exec", "container": "c1", "argv": ["/no/such/bin"]})
    # Either an error reply or a stream that ends with the runtime's message.
    if rc == 1:
        assert out.startswith(b"error ") and b"ExecFailed" in out, out
    else:
        assert rc == 0 and b"/no/such/bin" in out and b"not found" in out, (out, err)
    rc, out, _ = stream_run(env, g, {"op": "exec", "container": "c2", "argv": ["true"]})
    assert rc == 1 and out.startswith(b"error 0 409 ContainerNotRunning "), out
    rc, out, _ = stream_run(env, g, {"op": "exec", "container": "nope", "argv": ["true"]})
    assert rc == 1 and out.startswith(b"error 0 404 ContainerNotFound "), out
    rc, out, _ = stream_run(env, g, {"op": "exec", "container": "c1", "argv": []})
    assert rc == 1 and out.startswith(b"error 0 400 InvalidRequestContent "), out
    rc, out, _ = stream_run(env, g, {"op": "exec", "container": "c1", "argv": ["x"] * 257})
    assert rc == 1 and out.startswith(b"error 0 400 "), out
    rc, out, _ = stream_run(env, g, {"op": "attach", "container": "c2"})
    assert rc == 1 and out.startswith(b"error 0 409 ContainerNotRunning "), out
    rc, out, _ = stream_run(env, g, {"op": "attach", "container": "nope"})
    assert rc == 1 and out.startswith(b"error 0 404 ContainerNotFound "), out
    # The control protocol still works on the same monitor.
    assert request(env, g, {"op": "status"})["ok"]
    request(env, g, {"op": "stop", "graceSeconds": 0})
    rc, out, _ = stream_run(env, g, {"op": "attach", "container": "c1"})
    assert rc == 1 and out.startswith(b"error 0 409 ContainerGroupNotRunning "), out


@pytest.mark.parametrize("argv", [
    ["sleep", "1000"],                                                # dies of SIGHUP
    ["sh", "-c", "trap '' HUP; exec sleep 1000"],                     # ignores it: SIGKILL after the grace
    ["sh", "-c", "(trap '' HUP; exec sleep 1000); echo never"]])      # only its child ignores it
def test_exec_client_close_ends_process(env, argv):
    g = running_group(env, [("c1", ["sh", "-c", "while true; do sleep 1; done"])], policy="Always")
    before = pgrep("sleep 1000")
    p = stream(env, g, {"op": "exec", "container": "c1", "argv": argv})
    try:
        new = wait_for(lambda: pgrep("sleep 1000") - before, 10, "the exec'd sleep")
    finally:
        p.kill()  # the client goes away without a word
        p.wait()
    wait_for(lambda: not (pgrep("sleep 1000") & new), 6, "the exec'd sleep to be gone")
    wait_for(lambda: not [f for f in os.listdir(os.path.join(g, "run")) if f.startswith("exec-")], 5,
             "session files removed")
    s = state_file(g)
    assert ctr(s, "c1")["currentState"]["state"] == "Running" and ctr(s, "c1")["restartCount"] == 0
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_exec_session_cap(env):
    g = running_group(env, [("c1", ["sh", "-c", "while true; do sleep 1; done"])], policy="Always")
    ps = []
    try:
        for _ in range(16):
            ps.append(stream(env, g, {"op": "exec", "container": "c1", "argv": ["sleep", "1002"]}))
        for p in ps:
            wait_for(lambda: p.poll() is not None or len(pgrep("sleep 1002")) >= 1, 10, "sessions")
        wait_for(lambda: len(pgrep("sleep 1002")) >= 16, 15, "16 sessions")
        rc, out, _ = stream_run(env, g, {"op": "exec", "container": "c1", "argv": ["true"]})
        assert rc == 1 and out.startswith(b"error 0 429 TooManyRequests "), out
    finally:
        for p in ps:
            p.kill()
            p.wait()
    wait_for(lambda: not pgrep("sleep 1002"), 8, "sessions ended")
    rc, out, _ = stream_run(env, g, {"op": "exec", "container": "c1", "argv": ["echo", "again"]})
    assert rc == 0 and b"again" in out
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_attach_follows_output(env):
    g = running_group(env, [("c1", ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"])],
                      policy="Always")
    p = stream(env, g, {"op": "attach", "container": "c1"})
    time.sleep(1.6)
    p.kill()
    out, err = p.communicate(timeout=5)
    assert b"open" in err, err
    ticks = [int(x) for x in re.findall(rb"tick-(\d+)\n", out)]
    assert len(ticks) >= 5, out
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks
    logged = [x[3] for x in read_log(g, "c1")]
    assert all(("tick-%d" % t) in logged for t in ticks)
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_attach_ends_with_the_run(env):
    g = running_group(env, [("c1", ["sh", "-c", "sleep 0.8; echo last-words; echo oops >&2; exit 3"])],
                      policy="Always", backoff={"initialMs": 3000, "maxMs": 3000, "resetAfterMs": 60000})
    rc, out, err = stream_run(env, g, {"op": "attach", "container": "c1"}, timeout=10)
    assert rc == 0 and b"eof" in err, (out, err)
    assert b"last-words\n" in out and b"oops\n" in out, out
    request(env, g, {"op": "stop", "graceSeconds": 0})


def test_attach_slow_client_does_not_block_logging(env):
    script = "i=0; while true; do echo line-$i-padding-padding-padding-padding-padding; i=$((i+1)); done"
    g = running_group(env, [("c1", ["sh", "-c", script])], policy="Always", log_max=512 * 1024 * 1024)
    p = stream(env, g, {"op": "attach", "container": "c1"}, no_read=True)
    try:
        assert p.stderr.readline() == b"open\n"

        def last_line():
            with open(os.path.join(g, "logs", "c1.log"), "rb") as f:
                f.seek(max(0, os.path.getsize(f.name) - 4096))
                m = re.findall(rb"line-(\d+)-", f.read())
                return int(m[-1]) if m else 0

        time.sleep(1.0)
        n0 = last_line()
        time.sleep(1.0)
        n1 = last_line()
        assert n1 > n0 + 1000, (n0, n1)
        with open(os.path.join(g, "monitor.log")) as f:
            assert "does not keep up" in f.read()
        assert request(env, g, {"op": "status"}, 5000)["ok"]
    finally:
        p.kill()
        p.wait()
    request(env, g, {"op": "stop", "graceSeconds": 0})
    nums = [int(x[3].split("-")[1]) for x in read_log(g, "c1") if x[3].startswith("line-")]
    assert nums == list(range(nums[0], nums[0] + len(nums))), "log lines were lost"
