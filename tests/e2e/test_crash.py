"""End-to-end: skiffd is crash-only. kill -9 never stops a container; the next start
re-adopts every group, catches up, and leaves no orphans."""

import os
import subprocess
import time

from conftest import containers, group_body, host_leftovers, image, needs_root, state

pytestmark = needs_root


def pids_of_monitors(data):
    return host_leftovers(data)[2]


def test_kill9_keeps_groups_running_and_readopts(fresh_skiffd):
    d = fresh_skiffd
    d.ensure_rg("crash")
    ticker = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done"]
    d.put_group("crash", "ticker", group_body([("c1", image("busybox:latest"), ticker)]))
    d.put_group("crash", "later", group_body([("c1", image("busybox:latest"), ["sh", "-c", "sleep 2; exit 3"])],
                                             policy="Never"))
    d.put_group("crash", "flappy", group_body([("c1", image("busybox:latest"), ["sh", "-c", "sleep 0.3; exit 1"])],
                                              policy="OnFailure"))
    for n in ("ticker", "later", "flappy"):
        d.wait_state("crash", n, "Running")
    monitors = pids_of_monitors(d.data)
    assert len(monitors) == 3
    before = d.get_group("crash", "flappy")[1]
    restarts_before = containers(before)["c1"]["restartCount"]

    d.kill9()
    killed_at = time.time()
    time.sleep(3)
    # nothing stopped: the same monitors still run, the ticker keeps logging
    alive = pids_of_monitors(d.data)
    # the same monitors still run (the "later" one may have finished its group and exited)
    assert set(alive) <= set(monitors) and len(alive) >= 2, (alive, monitors)
    d.start()
    g = d.wait_state("crash", "ticker", "Running")
    assert containers(g)["c1"]["restartCount"] == 0
    # the exit that happened while skiffd was down is reported
    g = d.wait_state("crash", "later", "Failed", 30)
    cur = containers(g)["c1"]["currentState"]
    assert cur["state"] == "Terminated" and cur["exitCode"] == 3
    # restarts (with back-off) went on while skiffd was down, and are counted
    g = d.wait_group("crash", "flappy", lambda g: containers(g)["c1"]["restartCount"] > restarts_before + 2, 30,
                     "restarts counted across the crash")
    # log lines written while skiffd was down are kept
    lines = d.logs("crash", "ticker", "c1", "&timestamps=true").splitlines()
    down = [l for l in lines if killed_at + 0.5 < _ts(l) < killed_at + 2.5]
    assert len(down) >= 10, lines[-5:]
    nums = [int(l.split("tick")[1]) for l in lines]
    assert nums == list(range(nums[0], nums[0] + len(nums)))  # none lost


def _ts(line):
    t = line.split(" ", 1)[0]
    import datetime
    base, frac = t.rstrip("Z").split(".")
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + float("0." + frac)


def test_kill9_during_creates_leaves_no_orphans(fresh_skiffd):
    d = fresh_skiffd
    d.ensure_rg("mid")
    names = [f"m{i}" for i in range(6)]
    for n in names:
        d.put_group("mid", n, group_body([("c1", image("busybox:latest"), ["sleep", "100000"]),
                                          ("c2", image("webserver:latest"), None)]))
    d.kill9()  # some groups are mid-create: pulled, half-mounted, monitor not yet started
    d.start()
    for n in names:
        d.wait_state("mid", n, "Running", 60)
    # the host converges on exactly one folder, one monitor and two runtime containers per group
    # (a group re-created after the crash may still be starting its second container)
    deadline = time.time() + 30
    while True:
        folders, mounts, monitors = host_leftovers(d.data)
        runtime = subprocess.run(["crun", "--root", os.path.join(d.data, "run", "runtime"), "list", "-q"],
                                 capture_output=True, text=True).stdout.split()
        if (len(folders), len(monitors), len(runtime)) == (len(names), len(names), 2 * len(names)):
            break
        assert time.time() < deadline, (f"{len(folders)} folders, {len(monitors)} monitors, {len(runtime)} runtime "
                                         f"containers for {len(names)} groups", folders, monitors, runtime,
                                         d.log()[-4000:])
        time.sleep(0.2)
    # a crash in the middle of deletes too
    for n in names:
        st, _, _ = d.request("DELETE", d.cg_path("mid", n) + "?api-version=2023-05-01")
        assert st == 202
    d.kill9()
    d.start()
    deadline = time.time() + 60
    while time.time() < deadline and (d.list_all() or any(host_leftovers(d.data))):
        time.sleep(0.2)
    assert d.list_all() == []
    assert host_leftovers(d.data) == ([], [], [])
    runtime = subprocess.run(["crun", "--root", os.path.join(d.data, "run", "runtime"), "list", "-q"],
                             capture_output=True, text=True).stdout.split()
    assert runtime == []


def test_orphans_from_an_unknown_group_are_removed(fresh_skiffd):
    """A folder and monitor whose group the store never committed is cleaned at start."""
    d = fresh_skiffd
    d.ensure_rg("orph")
    d.put_group("orph", "o1", group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    d.wait_state("orph", "o1", "Running")
    d.kill9()
    # simulate a crash between writing files and committing: drop the row behind skiffd's back
    import sqlite3
    db = sqlite3.connect(os.path.join(d.data, "skiff.db"))
    db.execute("DELETE FROM groups")
    db.commit()
    db.close()
    d.start()
    deadline = time.time() + 30
    while time.time() < deadline and any(host_leftovers(d.data)):
        time.sleep(0.2)
    assert host_leftovers(d.data) == ([], [], [])


def test_runc_can_be_chosen(registry):
    import shutil
    import tempfile
    from conftest import Skiffd, _finish
    runc = shutil.which("runc") or "/usr/sbin/runc"
    if not os.path.exists(runc):
        import pytest
        pytest.skip("runc is not installed")
    d = Skiffd(tempfile.mkdtemp(prefix="skiff-e2e-"), ["--runtime", runc])
    try:
        d.ensure_rg("runc")
        d.put_group("runc", "r1", group_body([("c1", image("busybox:latest"), ["sh", "-c", "echo via-runc; id -u"])],
                                             policy="Never"))
        d.wait_state("runc", "r1", "Succeeded", 60)
        assert d.logs("runc", "r1", "c1") == "via-runc\n0\n"
    finally:
        _finish(d)
