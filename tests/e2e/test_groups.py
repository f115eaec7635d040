"""End-to-end: container groups through the real skiffd, crun and skiff-monitor."""

import json
import os
import re
import time

import pytest

from conftest import API, QUICK, containers, group_body, image, state, needs_root

pytestmark = needs_root


def test_create_get_list_delete(skiffd):
    skiffd.ensure_rg("crud")
    body = group_body([("c1", image("busybox:latest"), ["sh", "-c", "echo hello; sleep 100000"])],
                      tags={"team": "a"})
    body["tags"] = {"team": "a"}
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "PLAIN", "value": "visible"}, {"name": "SECRET", "secureValue": "s3cr3t-value"}]
    out, hdrs = skiffd.put_group("crud", "g1", body, expect=(201,))
    assert out["properties"]["provisioningState"] in ("Pending", "Creating")
    assert "azure-asyncoperation" in hdrs and hdrs.get("retry-after") == "1"
    assert out["id"] == skiffd.cg_path("crud", "g1")
    # the async operation finishes
    op = hdrs["azure-asyncoperation"].split(str(skiffd.port), 1)[1]
    deadline = time.time() + 60
    while True:
        st, opb, ohdrs = skiffd.request("GET", op)
        assert st == 200 and opb["status"] in ("InProgress", "Succeeded"), opb
        if opb["status"] == "Succeeded":
            assert "retry-after" not in ohdrs
            break
        assert ohdrs.get("retry-after") == "1", ohdrs  # the next poll in a second, not the SDKs' 30 s
        assert time.time() < deadline
        time.sleep(0.1)
    g = skiffd.wait_state("crud", "g1", "Running")
    assert g["properties"]["provisioningState"] == "Succeeded"
    c = containers(g)["c1"]
    assert c["currentState"]["state"] == "Running" and c["restartCount"] == 0
    names = [e["name"] for e in c["events"]]
    assert "Pulling" in names and "Pulled" in names and "Started" in names
    text = json.dumps(g)
    assert "s3cr3t-value" not in text and "visible" in text
    assert g["tags"] == {"team": "a"}
    # the secret did reach the container
    out, _ = skiffd.put_group("crud", "g2", group_body(
        [("c1", image("busybox:latest"), ["sh", "-c", "echo SECRET=$SECRET; sleep 100000"],
          0.5, 0.25, {"environmentVariables": [{"name": "SECRET", "secureValue": "s3cr3t-value"}]})]))
    skiffd.wait_state("crud", "g2", "Running")
    deadline = time.time() + 10
    while "SECRET=s3cr3t-value" not in skiffd.logs("crud", "g2", "c1") and time.time() < deadline:
        time.sleep(0.1)
    assert "SECRET=s3cr3t-value" in skiffd.logs("crud", "g2", "c1")
    assert "s3cr3t-value" not in skiffd.log()  # never in skiffd's own log
    # list per resource group and per subscription, without instance views
    st, lst, _ = skiffd.request("GET", skiffd.cg_path("crud") + "?api-version=" + API)
    assert st == 200 and sorted(x["name"] for x in lst["value"]) == ["g1", "g2"]
    assert all("instanceView" not in x["properties"] for x in lst["value"])
    assert "s3cr3t-value" not in json.dumps(lst)
    assert {"g1", "g2"} <= {x["name"] for x in skiffd.list_all()}
    # PATCH tags
    st, p, _ = skiffd.request("PATCH", skiffd.cg_path("crud", "g1") + "?api-version=" + API, {"tags": {"x": "y"}})
    assert st == 200 and p["tags"] == {"x": "y"}
    # delete: the group, its monitor and its files go away
    for name in ("g1", "g2"):
        skiffd.delete_group("crud", name)
    st, lst, _ = skiffd.request("GET", skiffd.cg_path("crud") + "?api-version=" + API)
    assert lst["value"] == []
    assert os.listdir(os.path.join(skiffd.data, "groups")) == []
    st, _, _ = skiffd.request("DELETE", skiffd.cg_path("crud", "g1") + "?api-version=" + API)
    assert st == 204
    st, err = skiffd.get_group("crud", "g1")
    assert st == 404 and err["error"]["code"] == "ResourceNotFound"


def test_two_containers_share_localhost(skiffd):
    skiffd.ensure_rg("net")
    skiffd.put_group("net", "pair", group_body([
        ("web", image("webserver:latest"), None),
        ("client", image("busybox:latest"),
         ["sh", "-c", "until wget -qO- http://127.0.0.1:80/; do sleep 0.1; done; hostname; sleep 100000"]),
    ]))
    skiffd.wait_state("net", "pair", "Running")
    deadline = time.time() + 20
    while "ocifix webserver OK" not in skiffd.logs("net", "pair", "client") and time.time() < deadline:
        time.sleep(0.1)
    logs = skiffd.logs("net", "pair", "client")
    assert "ocifix webserver OK" in logs
    assert "pair" in logs.splitlines()  # shared UTS namespace named after the group
    skiffd.delete_group("net", "pair")


def test_logs_tail_and_timestamps(skiffd):
    skiffd.ensure_rg("logs")
    skiffd.put_group("logs", "lg", group_body(
        [("c1", image("busybox:latest"), ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2"])],
        policy="Never"))
    skiffd.wait_state("logs", "lg", ("Succeeded", "Failed"))
    assert skiffd.logs("logs", "lg", "c1") == "line1\nline2\nline3\nline4\nline5\noops\n"
    assert skiffd.logs("logs", "lg", "c1", "&tail=2") == "line5\noops\n"
    ts = skiffd.logs("logs", "lg", "c1", "&tail=1&timestamps=true")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z oops\n$", ts), ts
    st, err, _ = skiffd.request("GET", skiffd.cg_path("logs", "lg") + "/containers/c1/logs?api-version=1&tail=-1")
    assert st == 400
    st, err, _ = skiffd.request("GET", skiffd.cg_path("logs", "lg") + "/containers/zz/logs?api-version=1")
    assert st == 404
    skiffd.delete_group("logs", "lg")


@pytest.mark.parametrize("policy,code,final_state,restarts", [
    ("Never", 3, "Failed", False),
    ("Never", 0, "Succeeded", False),
    ("OnFailure", 0, "Succeeded", False),
    ("OnFailure", 4, "Running", True),
    ("Always", 0, "Running", True),
])
def test_restart_policies(skiffd, policy, code, final_state, restarts):
    rg = "policy"
    name = f"p-{policy.lower()}-{code}"
    skiffd.ensure_rg(rg)
    skiffd.put_group(rg, name, group_body([("c1", image("busybox:latest"), ["sh", "-c", f"echo run; exit {code}"])],
                                          policy=policy))
    if restarts:
        g = skiffd.wait_group(rg, name, lambda g: containers(g)["c1"].get("restartCount", 0) >= 2, 60, "restarts")
        assert state(g) == "Running"
        prev = containers(g)["c1"].get("previousState") or containers(g)["c1"]["currentState"]
        assert prev["state"] == "Terminated" and prev["exitCode"] == code
        assert skiffd.logs(rg, name, "c1").count("run") >= 2
    else:
        g = skiffd.wait_state(rg, name, final_state)
        cur = containers(g)["c1"]["currentState"]
        assert cur.get("state") == "Terminated", json.dumps(g, indent=1)
        assert cur["state"] == "Terminated" and cur["exitCode"] == code
        assert cur["detailStatus"] == ("Completed" if code == 0 else "Error")
        assert "startTime" in cur and "finishTime" in cur
        time.sleep(0.5)
        g = skiffd.get_group(rg, name)[1]
        assert containers(g)["c1"]["restartCount"] == 0 and state(g) == final_state
    skiffd.delete_group(rg, name)


def test_oom_kill_reported(skiffd):
    skiffd.ensure_rg("oom")
    skiffd.put_group("oom", "hog", group_body(
        [("c1", image("busybox:latest"),
          ["sh", "-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"], 0.5, 0.05)],
        policy="Never"))
    g = skiffd.wait_state("oom", "hog", ("Failed", "Succeeded"))
    cur = containers(g)["c1"]["currentState"]
    assert cur["exitCode"] == 137 and cur["detailStatus"] == "OOMKilled", cur
    assert state(g) == "Failed"
    skiffd.delete_group("oom", "hog")


def test_limits_visible_in_cgroup(skiffd):
    skiffd.ensure_rg("limits")
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
              "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max 2>/dev/null || "
              "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max; sleep 100000")
    skiffd.put_group("limits", "lim", group_body([
        {"name": "c1", "properties": {"image": image("busybox:latest"), "command": ["sh", "-c", script],
                                      "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.25},
                                                    "limits": {"cpu": 0.75, "memoryInGB": 0.5}}}},
        ("c2", image("busybox:latest"), ["sh", "-c", script], 0.5, 0.25)]))
    skiffd.wait_state("limits", "lim", "Running")
    deadline = time.time() + 10
    while len(skiffd.logs("limits", "lim", "c2").split()) < 3 and time.time() < deadline:
        time.sleep(0.1)
    c1 = skiffd.logs("limits", "lim", "c1").split()
    c2 = skiffd.logs("limits", "lim", "c2").split()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # v2
        assert c1[0] == str(512 * 1024 * 1024) and c1[1:3] == ["75000", "100000"] and c1[3] == "4096"
        assert c2[0] == str(256 * 1024 * 1024) and c2[1:3] == ["50000", "100000"]
    else:
        assert c1 == [str(512 * 1024 * 1024), "75000", "100000", "4096"], c1
        assert c2 == [str(256 * 1024 * 1024), "50000", "100000", "4096"], c2
    # and on the host, under skiff's own cgroup tree
    gid = os.listdir(os.path.join(skiffd.data, "groups"))
    found = [p for p in (f"/sys/fs/cgroup/memory/skiff/{g}/c2/memory.limit_in_bytes" for g in gid) if os.path.exists(p)]
    if found:
        assert open(found[0]).read().strip() == str(256 * 1024 * 1024)
    skiffd.delete_group("limits", "lim")


def test_stop_start_restart(skiffd):
    skiffd.ensure_rg("ssr")
    skiffd.put_group("ssr", "svc", group_body([("c1", image("busybox:latest"),
                                                 ["sh", "-c", "echo started; sleep 100000"])]))
    skiffd.wait_state("ssr", "svc", "Running")
    p = skiffd.cg_path("ssr", "svc")
    # restart in place
    st, _, _ = skiffd.request("POST", p + "/restart?api-version=" + API)
    assert st == 204
    g = skiffd.wait_group("ssr", "svc", lambda g: containers(g)["c1"].get("restartCount", 0) >= 1
                          and containers(g)["c1"]["currentState"]["state"] == "Running", 30, "restart")
    assert state(g) == "Running"
    # stop: every container terminated, group Stopped, no monitor left
    st, _, _ = skiffd.request("POST", p + "/stop?api-version=" + API)
    assert st == 204
    g = skiffd.get_group("ssr", "svc")[1]
    assert state(g) == "Stopped"  # at once, as ACI answers stop
    # the containers are terminated within the grace period
    g = skiffd.wait_group("ssr", "svc", lambda g: containers(g)["c1"]["currentState"]["state"] == "Terminated", 30,
                          "containers terminated")
    assert state(g) == "Stopped"
    time.sleep(0.3)
    from conftest import host_leftovers
    assert host_leftovers(skiffd.data)[2] == []
    # start: runs again
    st, _, hdrs = skiffd.request("POST", p + "/start?api-version=" + API)
    assert st == 202 and "azure-asyncoperation" in hdrs
    skiffd.wait_group("ssr", "svc", lambda g: state(g) == "Running"
                      and containers(g)["c1"]["currentState"]["state"] == "Running", 30, "running after start")
    st, _, _ = skiffd.request("POST", p + "/start?api-version=" + API)
    assert st == 204  # already running
    skiffd.delete_group("ssr", "svc")


def test_update_replaces_spec(skiffd):
    skiffd.ensure_rg("upd")
    cmd = ["sh", "-c", "echo v=$V; sleep 100000"]
    skiffd.put_group("upd", "u", group_body([("c1", image("busybox:latest"), cmd, 0.5, 0.25,
                                               {"environmentVariables": [{"name": "V", "value": "one"}]})]))
    skiffd.wait_state("upd", "u", "Running")
    out, _ = skiffd.put_group("upd", "u", group_body([("c1", image("busybox:latest"), cmd, 0.5, 0.25,
                                                       {"environmentVariables": [{"name": "V", "value": "two"}]})]),
                              expect=(200,))
    deadline = time.time() + 30
    while "v=two" not in skiffd.logs("upd", "u", "c1") and time.time() < deadline:
        time.sleep(0.1)
    assert "v=two" in skiffd.logs("upd", "u", "c1")
    skiffd.delete_group("upd", "u")


def test_finished_group_gives_back_mounts_but_keeps_logs(skiffd):
    skiffd.ensure_rg("done")
    before = set(os.listdir(os.path.join(skiffd.data, "groups")))
    skiffd.put_group("done", "job", group_body([("c1", image("busybox:latest"), ["echo", "finished"])],
                                               policy="Never"))
    skiffd.wait_state("done", "job", "Succeeded")
    new = set(os.listdir(os.path.join(skiffd.data, "groups"))) - before
    assert len(new) == 1
    gdir = os.path.join(skiffd.data, "groups", new.pop())
    deadline = time.time() + 10
    while time.time() < deadline and any(gdir in l.split()[4] for l in open("/proc/self/mountinfo")):
        time.sleep(0.1)
    assert not any(gdir in l.split()[4] for l in open("/proc/self/mountinfo"))
    assert skiffd.logs("done", "job", "c1") == "finished\n"
    assert state(skiffd.get_group("done", "job")[1]) == "Succeeded"
    skiffd.delete_group("done", "job")


def test_api_not_reachable_from_a_container(skiffd):
    skiffd.ensure_rg("iso")
    # a TCP connect to the API port (busybox nc: 1 when refused, 0 when it connected), and the
    # unix socket's path (not in the container's mount namespace)
    cmd = ["sh", "-c", f"timeout 3 nc 127.0.0.1 {skiffd.port} </dev/null >/dev/null 2>&1; rc=$?; "
                       f"[ $rc -eq 1 ] && echo TCP-BLOCKED || echo TCP-REACHED-$rc; "
                       f"[ -e {skiffd.socket} ] && echo SOCKET-VISIBLE || echo SOCKET-ABSENT"]
    skiffd.put_group("iso", "probe", group_body([("c1", image("busybox:latest"), cmd)], policy="Never"))
    skiffd.wait_state("iso", "probe", ("Succeeded", "Failed"))
    assert skiffd.logs("iso", "probe", "c1") == "TCP-BLOCKED\nSOCKET-ABSENT\n"
    skiffd.delete_group("iso", "probe")


def test_security_defaults(skiffd):
    skiffd.ensure_rg("sec")
    script = ("grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status; cat /proc/self/uid_map; "
              "unshare -U true 2>/dev/null && echo UNSHARE-ALLOWED || echo UNSHARE-DENIED; "
              "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNT-ALLOWED || echo MOUNT-DENIED; "
              "cat /proc/kcore >/dev/null 2>&1 && echo KCORE || echo NOKCORE; "
              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo SYSCTL-WRITABLE || echo SYSCTL-RO; id -u")
    skiffd.put_group("sec", "sec", group_body([("c1", image("busybox:latest"), ["sh", "-c", script])],
                                              policy="Never"))
    skiffd.wait_state("sec", "sec", ("Succeeded", "Failed"))
    out = skiffd.logs("sec", "sec", "c1")
    assert "Seccomp:\t2" in out, out
    assert "NoNewPrivs:\t1" in out
    assert "CapBnd:\t00000000a80425fb" in out  # docker's default capability set
    assert re.search(r"^\s*0\s+100000\s+65536$", out, re.M), out  # a user namespace
    for word in ("UNSHARE-DENIED", "MOUNT-DENIED", "NOKCORE", "SYSCTL-RO"):
        assert word in out, out
    assert "0" in out.splitlines()  # id -u (stderr lines may interleave)
    skiffd.delete_group("sec", "sec")


def test_init_containers_run_first(skiffd):
    skiffd.ensure_rg("init")
    body = group_body([("main", image("busybox:latest"), ["sh", "-c", "echo main-started; sleep 100000"])])
    body["properties"]["initContainers"] = [
        {"name": "init1", "properties": {"image": image("busybox:latest"), "command": ["sh", "-c", "echo init-one"]}},
        {"name": "init2", "properties": {"image": image("busybox:latest"), "command": ["sh", "-c", "echo init-two"]}},
    ]
    skiffd.put_group("init", "withinit", body)
    g = skiffd.wait_state("init", "withinit", "Running")
    inits = {c["name"]: c["properties"]["instanceView"] for c in g["properties"]["initContainers"]}
    for n in ("init1", "init2"):
        cur = inits[n]["currentState"]
        assert cur["state"] == "Terminated" and cur["exitCode"] == 0, inits
    assert skiffd.logs("init", "withinit", "init1") == "init-one\n"
    main_start = containers(g)["main"]["currentState"]["startTime"]
    assert inits["init2"]["currentState"]["finishTime"] <= main_start
    skiffd.delete_group("init", "withinit")
    # a failing init container under Never: the group fails and its containers never start
    body["properties"]["restartPolicy"] = "Never"
    body["properties"]["initContainers"][1]["properties"]["command"] = ["sh", "-c", "exit 5"]
    skiffd.put_group("init", "badinit", body)
    g = skiffd.wait_group("init", "badinit", lambda g: state(g) == "Failed", 60, "Failed")
    assert containers(g)["main"]["currentState"]["state"] != "Running"
    assert skiffd.logs("init", "badinit", "main") == ""
    skiffd.delete_group("init", "badinit")
