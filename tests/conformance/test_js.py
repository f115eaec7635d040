"""The Azure SDK for JavaScript (@azure/identity ClientSecretCredential + @azure/arm-containerinstance 9)
against a real skiffd over HTTPS, driven through js/aci.js (one operation per node run). Each result
is checked against the server's state read over the admin socket, or against what the container printed.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conformance_lib import JS_DIR, NODE, TICKER, client_env, containers, image, state

HERE = os.path.dirname(os.path.abspath(__file__))
ACI_JS = os.path.join(HERE, "js", "aci.js")
RG = "conf-js"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed; scripts/install-deps.sh --test installs it")


class Js:
    def __init__(self, d, sp, cert_file=None):
        self.env = client_env(d)
        self.env.update({"SKIFF_URL": d.url, "SKIFF_TENANT": sp["tenant"], "SKIFF_APP_ID": sp["appId"],
                         "SKIFF_SUB": d.sub})
        if cert_file:
            self.env["SKIFF_CERT_FILE"] = cert_file
        else:
            self.env["SKIFF_SECRET"] = sp["password"]

    def call(self, op, timeout=120, **args):
        p = subprocess.run([NODE, ACI_JS, op, json.dumps(args)], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        assert p.returncode == 0 and p.stdout.strip(), f"node {op}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
        return json.loads(p.stdout.strip().splitlines()[-1])

    def ok(self, op, **args):
        out = self.call(op, **args)
        assert out["ok"], f"{op} {args}: {out['error']}"
        return out["result"]


@pytest.fixture(scope="module")
def js(skiffd, owner_sp):
    for pkg in ("arm-containerinstance", "identity"):
        assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "@azure", pkg)), \
            f"@azure/{pkg} is not in {JS_DIR}: run scripts/install-js-clients.sh (install-deps.sh --test does)"
    skiffd.ensure_rg(RG)
    return Js(skiffd, owner_sp)


def ticks(text):
    return [int(n) for n in re.findall(r"tick-(\d+)", text)]


@pytest.fixture(scope="module")
def group(skiffd, js):
    out = js.ok("create", rg=RG, name="jsgroup", container="main", image=image("busybox:latest"),
                command=["/bin/sh", "-c", "echo from-js=$FROM; " + TICKER], cpu=1, memoryInGB=0.5,
                env=[{"name": "FROM", "value": "node"}], restartPolicy="Always", tags={"suite": "conformance"})
    return out


def test_token(skiffd, js, owner_sp):
    t = js.ok("token")
    assert t["expiresOnTimestamp"] > time.time() * 1000 + 60_000
    r = skiffd.https("GET", "/subscriptions?api-version=2019-11-01", token=t["token"])
    assert r.status_code == 200 and r.json()["value"][0]["subscriptionId"] == skiffd.sub


def test_wrong_secret(skiffd, js, owner_sp):
    j = Js(skiffd, dict(owner_sp, password="wrong-secret"))
    out = j.call("get", rg=RG, name="whatever")
    assert not out["ok"]
    assert "invalid_client" in out["error"]["message"] or "unauthorized_client" in out["error"]["message"], out


def test_certificate_credential(skiffd, js, group, tmp_path):
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=skiff-js-cert"], check=True, capture_output=True)
    combined = str(tmp_path / "combined.pem")
    with open(combined, "w") as f:
        f.write(open(key).read() + open(cert).read())
    sp = skiffd.create_sp("conformance-js-cert", certificate=open(cert).read())
    skiffd.assign(sp["objectId"], "Reader", skiffd.scope(RG))
    j = Js(skiffd, sp, cert_file=combined)
    got = j.ok("get", rg=RG, name="jsgroup")
    assert got["id"] == skiffd.get_group(RG, "jsgroup")[1]["id"]


def test_create(skiffd, group):
    assert group["provisioningState"] == "Succeeded"
    real = skiffd.wait_state(RG, "jsgroup", "Running")
    assert group["id"].lower() == real["id"].lower() == skiffd.cg_path(RG, "jsgroup").lower()
    rc = real["properties"]["containers"][0]["properties"]
    assert group["containers"][0]["image"] == rc["image"] == image("busybox:latest")
    assert group["containers"][0]["resources"]["requests"] == {"cpu": 1, "memoryInGB": 0.5}
    assert rc["resources"]["requests"]["memoryInGB"] == 0.5 and rc["resources"]["requests"]["cpu"] == 1
    assert real["tags"] == {"suite": "conformance"}
    deadline = time.time() + 20
    while "from-js" not in skiffd.logs(RG, "jsgroup", "main") and time.time() < deadline:
        time.sleep(0.2)
    assert "from-js=node" in skiffd.logs(RG, "jsgroup", "main")


def test_get_and_lists(skiffd, js, group):
    got = js.ok("get", rg=RG, name="jsgroup")
    real = skiffd.get_group(RG, "jsgroup")[1]
    assert got["id"] == real["id"] and got["instanceView"]["state"] == state(real) == "Running"
    assert got["containers"][0]["instanceView"]["currentState"]["state"] == "Running"
    by_rg = js.ok("listByResourceGroup", rg=RG)
    st, real_rg, _ = skiffd.request("GET", skiffd.cg_path(RG) + "?api-version=2023-05-01")
    assert sorted(g["id"] for g in by_rg) == sorted(g["id"] for g in real_rg["value"])
    everything = js.ok("list")
    assert sorted(g["id"] for g in everything) == sorted(g["id"] for g in skiffd.list_all())
    assert real["id"] in [g["id"] for g in everything]


def test_update_tags(skiffd, js, group):
    out = js.ok("update", rg=RG, name="jsgroup", tags={"suite": "conformance", "owner": "js"})
    assert out["tags"] == {"suite": "conformance", "owner": "js"}
    real = skiffd.get_group(RG, "jsgroup")[1]
    assert real["tags"] == {"suite": "conformance", "owner": "js"}
    assert state(real) == "Running"


def test_logs_tail(skiffd, js, group):
    time.sleep(3)
    out = js.ok("logs", rg=RG, name="jsgroup", container="main", tail=2)
    lines = out["content"].splitlines()
    assert len(lines) == 2, out
    real = skiffd.logs(RG, "jsgroup", "main").splitlines()
    # the last two lines as the server had them just before or after
    idx = real.index(lines[0])
    assert real[idx + 1] == lines[1]
    full = js.ok("logs", rg=RG, name="jsgroup", container="main")["content"]
    assert "from-js=node" in full and len(ticks(full)) >= 3


def test_exec(skiffd, js, group):
    out = js.ok("exec", rg=RG, name="jsgroup", container="main",
                command="/bin/sh -c 'echo js-exec-$((6*7)) host=$(hostname)'", reuse=True)
    assert out["webSocketUri"].startswith("wss://") and "/skiff/sessions/" in out["webSocketUri"], out
    assert out["passwordLength"] >= 16
    s = out["session"]
    assert s["error"] is None, s
    assert "js-exec-42 host=jsgroup" in s["output"], s
    assert s["closedByServer"], s
    # the password is single use
    again = out["again"]
    assert "js-exec-42" not in again["output"] and (again["error"] or again["status"] != 101 or again["closedByServer"]), again


def test_exec_stdin(skiffd, js, group):
    out = js.ok("exec", rg=RG, name="jsgroup", container="main", command="/bin/sh",
                input="echo stdin-$((40+2))\nexit\n", ms=20000)
    s = out["session"]
    assert "stdin-42" in s["output"], s
    assert s["closedByServer"], s


def test_attach(skiffd, js, group):
    before = max(ticks(skiffd.logs(RG, "jsgroup", "main")))
    out = js.ok("attach", rg=RG, name="jsgroup", container="main", ms=4500)
    assert out["webSocketUri"].startswith("wss://") and out["passwordLength"] > 0, out
    got = ticks(out["session"]["output"])
    assert len(got) >= 2, out
    assert min(got) >= before, (before, got)  # from now on, not the old logs
    assert set(got) <= set(ticks(skiffd.logs(RG, "jsgroup", "main")))
    assert state(skiffd.get_group(RG, "jsgroup")[1]) == "Running"


def test_stop_start_restart(skiffd, js, group):
    js.ok("stop", rg=RG, name="jsgroup")
    assert state(skiffd.get_group(RG, "jsgroup")[1]) == "Stopped"
    assert js.ok("get", rg=RG, name="jsgroup")["instanceView"]["state"] == "Stopped"
    js.ok("start", rg=RG, name="jsgroup")
    skiffd.wait_state(RG, "jsgroup", "Running", 60)
    before = skiffd.get_group(RG, "jsgroup")[1]
    start0 = containers(before)["main"]["currentState"].get("startTime")
    count0 = containers(before)["main"].get("restartCount", 0)
    js.ok("restart", rg=RG, name="jsgroup")
    skiffd.wait_group(RG, "jsgroup", lambda g: state(g) == "Running" and (
        containers(g)["main"]["currentState"].get("startTime") != start0
        or containers(g)["main"].get("restartCount", 0) > count0), 60, "a restart")


def test_missing(skiffd, js):
    assert skiffd.get_group(RG, "nope")[0] == 404
    out = js.call("get", rg=RG, name="nope")
    assert not out["ok"]
    assert out["error"]["statusCode"] == 404 and out["error"]["code"] == "ResourceNotFound", out


def test_reader_cannot_create(skiffd, js):
    sp = skiffd.create_sp("conformance-js-reader")
    skiffd.assign(sp["objectId"], "Reader", skiffd.scope(RG))
    j = Js(skiffd, sp)
    assert j.ok("get", rg=RG, name="jsgroup")["name"] == "jsgroup"
    out = j.call("create", rg=RG, name="denied", image=image("busybox:latest"), command=["sleep", "60"])
    assert not out["ok"] and out["error"]["statusCode"] == 403 and out["error"]["code"] == "AuthorizationFailed", out
    assert sp["appId"] in out["error"]["message"]
    assert skiffd.get_group(RG, "denied")[0] == 404
    out = j.call("exec", rg=RG, name="jsgroup", container="main", command="echo no")
    assert not out["ok"] and out["error"]["statusCode"] == 403, out


def test_delete(skiffd, js, group):
    js.ok("delete", rg=RG, name="jsgroup")
    assert skiffd.get_group(RG, "jsgroup")[0] == 404
    assert "jsgroup" not in [g["name"] for g in js.ok("listByResourceGroup", rg=RG)]
