"""The stock Azure CLI (Debian's azure-cli 2.45) against a real skiffd over HTTPS.

Cloud registration (from /metadata/endpoints and with all four endpoints), service-principal login
with a secret and with a certificate, every `az container` command, role-based refusals, and 401s.
Each check compares what az printed with the server's state read over the admin socket, or with what
the container itself printed.
"""

import json
import os
import random
import re
import shlex
import signal
import subprocess
import threading
import time

import pytest
import yaml

from conformance_lib import AZ, TICKER, Az, containers, image, jwt_claims, state

pytestmark = pytest.mark.skipif(AZ is None, reason="az (Debian package azure-cli) is not installed; "
                                                   "scripts/install-deps.sh --test installs it")

RG = "conf-az"
RG_OTHER = "conf-az-other"
SECRET = "s3cr3t-%08x" % random.getrandbits(32)
TICKER_CMD = f"/bin/sh -c 'echo greeting=$GREETING mode=$MODE secret=$SECRET_TOKEN; {TICKER}'"


@pytest.fixture(scope="module")
def az(skiffd, owner_sp, tmpdir_mod):
    """az registered with all four endpoints and logged in as the subscription-wide Contributor."""
    skiffd.ensure_rg(RG)
    skiffd.ensure_rg(RG_OTHER)
    a = Az(skiffd, tmpdir_mod)
    a.register(full=True)
    a.login(owner_sp)
    return a


def admin_group(skiffd, name, rg=RG):
    st, g = skiffd.get_group(rg, name)
    assert st == 200, (st, g)
    return g


def ticks(text):
    return [int(n) for n in re.findall(r"tick-(\d+)", text)]


def check_same_group(printed, real):
    """A group as az printed it against the server's: identity and spec."""
    assert printed["id"].lower() == real["id"].lower()
    assert printed["name"] == real["name"]
    pc, rc = printed["containers"], real["properties"]["containers"]
    assert [c["name"] for c in pc] == [c["name"] for c in rc]
    for p, r in zip(pc, rc):
        assert p["image"] == r["properties"]["image"]
        assert p["resources"]["requests"]["cpu"] == r["properties"]["resources"]["requests"]["cpu"]
        assert p["resources"]["requests"]["memoryInGb"] == r["properties"]["resources"]["requests"]["memoryInGB"]
    assert printed["restartPolicy"] == real["properties"]["restartPolicy"]


# --- cloud and login ------------------------------------------------------------------------------

def test_cloud_register_from_metadata(skiffd, owner_sp, tmpdir_mod):
    meta = skiffd.https("GET", "/metadata/endpoints?api-version=2015-01-01")
    assert meta.status_code == 200, meta.text
    meta = meta.json()
    a = Az(skiffd, tmpdir_mod)
    a.register(full=False)
    cloud = a.json("cloud", "show", "-n", a.cloud)
    ep = cloud["endpoints"]
    assert ep["resourceManager"] == skiffd.url + "/"
    assert ep["activeDirectory"] == meta["authentication"]["loginEndpoint"].lower()
    assert ep["activeDirectory"].endswith("/adfs")
    assert ep["activeDirectoryResourceId"] == meta["authentication"]["audiences"][0]
    assert a.json("cloud", "show")["name"] == a.cloud
    subs = a.login(owner_sp)
    assert [s["id"] for s in subs] == [skiffd.sub]
    assert a.json("account", "show")["id"] == skiffd.sub


def test_login_with_secret(skiffd, az, owner_sp):
    st, real, _ = skiffd.request("GET", "/subscriptions?api-version=2022-12-01")
    assert st == 200
    acct = az.json("account", "show")
    assert acct["id"] == skiffd.sub
    assert acct["id"] in [s["subscriptionId"] for s in real["value"]]
    assert acct["tenantId"] == owner_sp["tenant"]
    assert acct["user"] == {"name": owner_sp["appId"], "type": "servicePrincipal"}
    assert acct["environmentName"] == az.cloud
    assert acct["state"] == "Enabled"
    # The token az holds is one skiffd issued for this principal, and skiffd accepts it.
    tok = az.json("account", "get-access-token")
    claims = jwt_claims(tok["accessToken"])
    assert owner_sp["appId"] in (claims.get("appid"), claims.get("azp"), claims.get("sub")), claims
    assert claims.get("tid") == owner_sp["tenant"]
    r = skiffd.https("GET", "/subscriptions?api-version=2019-11-01", token=tok["accessToken"])
    assert r.status_code == 200 and r.json()["value"][0]["subscriptionId"] == skiffd.sub


def test_login_wrong_secret_fails(skiffd, owner_sp, tmpdir_mod):
    a = Az(skiffd, tmpdir_mod)
    a.register(full=True)
    p = a.run("login", "--service-principal", "-u", owner_sp["appId"], "-p", "not-the-secret",
              "--tenant", owner_sp["tenant"], check=False)
    assert p.returncode != 0
    # az shows the token endpoint's own OAuth error description
    r = skiffd.https("POST", "/adfs/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": owner_sp["appId"], "client_secret": "not-the-secret",
        "scope": "https://management.core.windows.net//.default"})
    assert r.status_code in (400, 401) and r.json()["error"] in ("invalid_client", "unauthorized_client"), r.text
    assert r.json()["error_description"] in p.stderr, (r.text, p.stderr)
    assert a.run("account", "show", check=False).returncode != 0


def test_login_with_certificate(skiffd, tmpdir_mod):
    d = os.path.join(tmpdir_mod, "cert")
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=skiff-conformance"], check=True, capture_output=True)
    sp = skiffd.create_sp("conformance-cert", certificate=open(cert).read())
    skiffd.assign(sp["objectId"], "Reader", skiffd.scope())
    st, info, _ = skiffd.request("GET", f"/skiff/servicePrincipals/{sp['appId']}?api-version=1")
    assert st == 200 and info["hasCertificate"] is True, info
    combined = os.path.join(d, "combined.pem")
    with open(combined, "w") as f:
        f.write(open(key).read() + open(cert).read())
    a = Az(skiffd, tmpdir_mod)
    a.register(full=True)
    subs = a.login(sp, password=combined)
    assert [s["id"] for s in subs] == [skiffd.sub]
    acct = a.json("account", "show")
    assert acct["user"] == {"name": sp["appId"], "type": "servicePrincipal"}
    claims = jwt_claims(a.json("account", "get-access-token")["accessToken"])
    assert sp["appId"] in (claims.get("appid"), claims.get("azp"), claims.get("sub")), claims
    # Reader at the subscription may list.
    assert isinstance(a.json("container", "list"), list)
    # Another key for the same appId is refused.
    other_key = os.path.join(d, "other.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", other_key, "-out",
                    os.path.join(d, "other-cert.pem"), "-days", "2", "-subj", "/CN=intruder"],
                   check=True, capture_output=True)
    with open(os.path.join(d, "other-combined.pem"), "w") as f:
        f.write(open(other_key).read() + open(os.path.join(d, "other-cert.pem")).read())
    b = Az(skiffd, tmpdir_mod)
    b.register(full=True)
    p = b.run("login", "--service-principal", "-u", sp["appId"], "-p", os.path.join(d, "other-combined.pem"),
              "--tenant", sp["tenant"], check=False)
    assert p.returncode != 0, p.stdout


# --- container commands ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ticker(az, skiffd):
    """A group made with `az container create` and flags; it prints a numbered line every second."""
    p = az.run("container", "create", "-g", RG, "-n", "ticker", "--image", image("busybox:latest"), "--cpu", "1",
               "--memory", "1", "--restart-policy", "OnFailure", "--environment-variables", "GREETING=hello",
               "MODE=conformance", "--secure-environment-variables", f"SECRET_TOKEN={SECRET}",
               "--command-line", TICKER_CMD, "-o", "json")
    return {"name": "ticker", "stdout": p.stdout, "created": json.loads(p.stdout)}


def test_create_with_flags(skiffd, ticker):
    out = ticker["created"]
    assert SECRET not in ticker["stdout"]
    assert out["provisioningState"] == "Succeeded"
    real = skiffd.wait_state(RG, "ticker", "Running")
    check_same_group(out, real)
    c = real["properties"]["containers"][0]["properties"]
    assert c["image"] == image("busybox:latest")
    assert c["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.0} or (
        c["resources"]["requests"]["cpu"] == 1 and c["resources"]["requests"]["memoryInGB"] == 1)
    assert real["properties"]["restartPolicy"] == "OnFailure"
    assert c["command"] == ["/bin/sh", "-c", TICKER_CMD.split("-c ", 1)[1][1:-1]]
    env = {e["name"]: e for e in c["environmentVariables"]}
    assert env["GREETING"]["value"] == "hello" and env["MODE"]["value"] == "conformance"
    assert "SECRET_TOKEN" in env and "secureValue" not in env["SECRET_TOKEN"]
    assert SECRET not in json.dumps(real)
    printed_env = {e["name"]: e for e in out["containers"][0]["environmentVariables"]}
    assert printed_env["GREETING"]["value"] == "hello"
    assert not printed_env["SECRET_TOKEN"].get("secureValue")
    # The container really got both kinds of variables.
    deadline = time.time() + 20
    while time.time() < deadline:
        logs = skiffd.logs(RG, "ticker", "ticker")
        if "greeting=" in logs:
            break
        time.sleep(0.2)
    assert f"greeting=hello mode=conformance secret={SECRET}" in logs, logs


def test_show(skiffd, az, ticker):
    p = az.run("container", "show", "-g", RG, "-n", "ticker", "-o", "json")
    assert SECRET not in p.stdout
    shown = json.loads(p.stdout)
    real = admin_group(skiffd, "ticker")
    check_same_group(shown, real)
    assert shown["instanceView"]["state"] == state(real) == "Running"
    cv = shown["containers"][0]["instanceView"]
    assert cv["currentState"]["state"] == containers(real)["ticker"]["currentState"]["state"] == "Running"
    assert cv["restartCount"] == containers(real)["ticker"]["restartCount"]


def test_list(skiffd, az, ticker):
    skiffd.put_group(RG_OTHER, "quiet", harness_body("quiet"))
    in_rg = az.json("container", "list", "-g", RG)
    st, real_rg, _ = skiffd.request("GET", skiffd.cg_path(RG) + "?api-version=2023-05-01")
    assert st == 200
    assert sorted(g["id"].lower() for g in in_rg) == sorted(g["id"].lower() for g in real_rg["value"])
    assert "ticker" in [g["name"] for g in in_rg] and "quiet" not in [g["name"] for g in in_rg]
    everything = az.json("container", "list")
    assert sorted(g["id"].lower() for g in everything) == sorted(g["id"].lower() for g in skiffd.list_all())
    assert {"ticker", "quiet"} <= {g["name"] for g in everything}
    table = az.run("container", "list", "-o", "table").stdout.splitlines()
    assert table[0].split()[:2] == ["Name", "ResourceGroup"], table
    rows = {line.split()[0]: line.split() for line in table[2:] if line.strip()}
    assert rows["ticker"][1] == RG and rows["quiet"][1] == RG_OTHER
    # Status: the list item's instanceView.state, else its provisioningState (lists may omit instance views)
    real_ticker = [g for g in skiffd.list_all() if g["name"] == "ticker"][0]["properties"]
    status = real_ticker.get("instanceView", {}).get("state") or real_ticker["provisioningState"]
    assert rows["ticker"][2] == status and image("busybox:latest") in rows["ticker"], (status, rows["ticker"])
    assert "1.0 core/1.0 gb" in " ".join(rows["ticker"]), rows["ticker"]


def harness_body(name):
    from conformance_lib import harness

    return harness.group_body([(name, image("busybox:latest"), ["sleep", "3600"])], policy="Never")


def test_logs(skiffd, az, ticker):
    time.sleep(2)
    printed = az.run("container", "logs", "-g", RG, "-n", "ticker").stdout
    real = skiffd.logs(RG, "ticker", "ticker")
    assert f"greeting=hello mode=conformance secret={SECRET}" in printed
    got = ticks(printed)
    assert len(got) >= 2 and got == list(range(got[0], got[0] + len(got))), printed
    # everything az printed is what the container wrote, in order
    assert printed.strip() in real or real.startswith(printed.strip()[:200]), (printed, real)
    assert set(got) <= set(ticks(real))


def _stream(args, env, seconds):
    """Runs a command for `seconds`, returning [(arrival time, line)], then kills it."""
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    lines = []

    def reader():
        for line in p.stdout:
            lines.append((time.time(), line.rstrip("\n")))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        p.wait(seconds)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    t.join(5)
    return p.returncode, lines


def test_logs_follow(skiffd, az, ticker):
    before = max(ticks(skiffd.logs(RG, "ticker", "ticker")))
    start = time.time()
    rc, lines = _stream([AZ, "container", "logs", "-g", RG, "-n", "ticker", "--follow"], az.env, 14)
    assert rc == -signal.SIGKILL, (rc, lines)  # still following when killed
    new = [(t, n) for t, line in lines for n in ticks(line) if n > before]
    assert len(new) >= 2, lines
    # new lines arrived while the command ran, not all at once at the start
    assert new[-1][0] - new[0][0] >= 1.5, new
    assert new[0][0] - start < 13
    real = ticks(skiffd.logs(RG, "ticker", "ticker"))
    assert {n for _, n in new} <= set(real)


def test_attach(skiffd, az, ticker):
    before = max(ticks(skiffd.logs(RG, "ticker", "ticker")))
    rc, lines = _stream([AZ, "container", "attach", "-g", RG, "-n", "ticker"], az.env, 16)
    text = "\n".join(l for _, l in lines)
    assert rc == -signal.SIGKILL, text
    real = admin_group(skiffd, "ticker")
    # the container's events as the server has them, then its logs
    events = containers(real)["ticker"].get("events", [])
    assert events, real
    assert any(e["message"] in text for e in events if e.get("message")), (events, text)
    assert "Start streaming logs" in text, text
    assert any(n > before for n in ticks(text)), text
    assert set(ticks(text)) <= set(ticks(skiffd.logs(RG, "ticker", "ticker")))


def _script(cmd, env, stdin=None, timeout=90):
    """Runs cmd (a shell command line) under a pseudo-terminal with `script`."""
    return subprocess.run(["script", "-qec", cmd, "/dev/null"], env=env, capture_output=True, timeout=timeout,
                          input=stdin)


def test_exec(skiffd, az, ticker):
    marker = "conformance-%06d" % random.randrange(10**6)
    inner = f'/bin/sh -c "echo {marker}-$((6*7)) host=$(hostname)"'
    cmd = f"{shlex.quote(AZ)} container exec -g {RG} -n ticker --exec-command {shlex.quote(inner)}"
    p = _script(cmd, az.env)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    # the shell ran inside the group: the UTS namespace is named after the group
    assert f"{marker}-42 host=ticker" in out, out
    assert state(admin_group(skiffd, "ticker")) == "Running"


def test_exec_interactive_stdin(skiffd, az, ticker):
    cmd = f"{shlex.quote(AZ)} container exec -g {RG} -n ticker --exec-command /bin/sh"
    # script forwards its stdin to the terminal az reads; az sends it raw over the WebSocket. Input is
    # written only once the shell's prompt is there: az flushes pending input when it enters raw mode.
    p = subprocess.Popen(["script", "-qec", cmd, "/dev/null"], env=az.env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    out = bytearray()

    def reader():
        while True:
            b = p.stdout.read1(4096)
            if not b:
                return
            out.extend(b)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        deadline = time.time() + 60
        while b"# " not in out and time.time() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert b"# " in out, out
        p.stdin.write(b"echo interactive-$((20+3)) $(hostname)\r")
        p.stdin.flush()
        time.sleep(1)
        p.stdin.write(b"exit\r")
        p.stdin.flush()
        p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    t.join(5)
    text = out.decode(errors="replace")
    assert "interactive-23 ticker" in text, text
    assert p.returncode == 0, text  # the server closed the session when the shell exited


def _events(g):
    evs = list(g["properties"].get("instanceView", {}).get("events", []))
    for c in containers(g).values():
        evs += c.get("events", [])
    return evs


def test_restart(skiffd, az, ticker):
    before = admin_group(skiffd, "ticker")
    count0 = containers(before)["ticker"].get("restartCount", 0)
    start0 = containers(before)["ticker"]["currentState"].get("startTime")
    restarting0 = sum(e.get("count", 1) for e in _events(before) if "restart" in (e.get("name", "") + e.get("message", "")).lower())
    az.run("container", "restart", "-g", RG, "-n", "ticker")

    def restarted(g):
        cv = containers(g)["ticker"]
        r = sum(e.get("count", 1) for e in _events(g) if "restart" in (e.get("name", "") + e.get("message", "")).lower())
        return state(g) == "Running" and cv["currentState"].get("state") == "Running" and (
            cv.get("restartCount", 0) > count0 or cv["currentState"].get("startTime") != start0 or r > restarting0)

    skiffd.wait_group(RG, "ticker", restarted, 60, "a restart")
    # the process really started over: tick-0 again after the restart
    deadline = time.time() + 20
    while time.time() < deadline:
        if ticks(skiffd.logs(RG, "ticker", "ticker")).count(0) >= 2:
            break
        time.sleep(0.3)
    assert ticks(skiffd.logs(RG, "ticker", "ticker")).count(0) >= 2


def test_stop(skiffd, az, ticker):
    az.run("container", "stop", "-g", RG, "-n", "ticker")
    assert state(admin_group(skiffd, "ticker")) == "Stopped"
    assert az.json("container", "show", "-g", RG, "-n", "ticker")["instanceView"]["state"] == "Stopped"
    time.sleep(2.5)  # stop grace is 1 s in the tests
    a = skiffd.logs(RG, "ticker", "ticker")
    time.sleep(2.5)
    assert skiffd.logs(RG, "ticker", "ticker") == a, "the container still prints after stop"


def test_start(skiffd, az, ticker):
    az.run("container", "start", "-g", RG, "-n", "ticker")
    skiffd.wait_state(RG, "ticker", "Running", 60)
    assert az.json("container", "show", "-g", RG, "-n", "ticker")["instanceView"]["state"] == "Running"
    n0 = len(ticks(skiffd.logs(RG, "ticker", "ticker")))
    time.sleep(3)
    assert len(ticks(skiffd.logs(RG, "ticker", "ticker"))) > n0, "no new output after start"


def test_export(skiffd, az, ticker, tmpdir_mod):
    path = os.path.join(tmpdir_mod, "out.yaml")
    az.run("container", "export", "-g", RG, "-n", "ticker", "-f", path)
    text = open(path).read()
    assert SECRET not in text
    doc = yaml.safe_load(text)
    real = admin_group(skiffd, "ticker")
    assert doc["name"] == "ticker" and doc["location"] == real["location"]
    assert doc["type"] == "Microsoft.ContainerInstance/containerGroups"
    assert doc["apiVersion"]
    ec = doc["properties"]["containers"][0]["properties"]
    rc = real["properties"]["containers"][0]["properties"]
    assert ec["image"] == rc["image"] == image("busybox:latest")
    req = {k.lower(): v for k, v in ec["resources"]["requests"].items()}
    assert req["cpu"] == rc["resources"]["requests"]["cpu"] == 1
    assert req["memoryingb"] == rc["resources"]["requests"]["memoryInGB"] == 1
    assert ec["command"] == rc["command"]
    assert "instanceView" not in doc["properties"] and "instanceView" not in ec
    assert doc["properties"]["restartPolicy"] == "OnFailure"


def test_create_from_yaml(skiffd, az, tmpdir_mod):
    doc = {
        "apiVersion": "2021-10-01",
        "name": "fromyaml",
        "type": "Microsoft.ContainerInstance/containerGroups",
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "containers": [{"name": "main", "properties": {
                "image": image("busybox:latest"),
                "command": ["/bin/sh", "-c", "echo yaml-says $WHO; sleep 3600"],
                "environmentVariables": [{"name": "WHO", "value": "hi-from-yaml"}],
                "resources": {"requests": {"cpu": 0.5, "memoryInGb": 0.5}}}}],
        },
    }
    path = os.path.join(tmpdir_mod, "cg.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    out = az.json("container", "create", "-g", RG, "--file", path)
    assert out["name"] == "fromyaml"
    real = skiffd.wait_state(RG, "fromyaml", "Running")
    rc = real["properties"]["containers"][0]["properties"]
    assert rc["resources"]["requests"]["memoryInGB"] == 0.5 and rc["resources"]["requests"]["cpu"] == 0.5
    assert rc["image"] == image("busybox:latest")
    deadline = time.time() + 20
    while "yaml-says" not in skiffd.logs(RG, "fromyaml", "main") and time.time() < deadline:
        time.sleep(0.2)
    assert "yaml-says hi-from-yaml" in skiffd.logs(RG, "fromyaml", "main")
    az.run("container", "delete", "-g", RG, "-n", "fromyaml", "--yes")
    deadline = time.time() + 60
    while skiffd.get_group(RG, "fromyaml")[0] != 404 and time.time() < deadline:
        time.sleep(0.2)
    assert skiffd.get_group(RG, "fromyaml")[0] == 404


# --- errors and roles -----------------------------------------------------------------------------

def test_show_missing(skiffd, az):
    assert skiffd.get_group(RG, "no-such-group")[0] == 404
    p = az.run("container", "show", "-g", RG, "-n", "no-such-group", check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "ResourceNotFound" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def reader(skiffd, tmpdir_mod, ticker):
    sp = skiffd.create_sp("conformance-reader")
    skiffd.assign(sp["objectId"], "Reader", skiffd.scope(RG))
    a = Az(skiffd, tmpdir_mod)
    a.register(full=True)
    a.login(sp)
    return sp, a


def _assert_denied(p, sp, action_part):
    assert p.returncode != 0, p.stdout
    assert "AuthorizationFailed" in p.stderr, p.stderr
    assert sp["appId"] in p.stderr and "does not have authorization to perform action" in p.stderr, p.stderr
    assert action_part.lower() in p.stderr.lower(), p.stderr


def test_reader_can_read(skiffd, reader):
    sp, a = reader
    shown = a.json("container", "show", "-g", RG, "-n", "ticker")
    check_same_group(shown, admin_group(skiffd, "ticker"))
    assert "ticker" in [g["name"] for g in a.json("container", "list", "-g", RG)]
    assert "ticker" in [g["name"] for g in a.json("container", "list")]
    assert ticks(a.run("container", "logs", "-g", RG, "-n", "ticker").stdout)


def test_reader_cannot_write(skiffd, reader):
    sp, a = reader
    p = a.run("container", "create", "-g", RG, "-n", "by-reader", "--image", image("busybox:latest"), "--cpu", "1",
              "--memory", "0.5", "--command-line", "sleep 60", check=False)
    _assert_denied(p, sp, "Microsoft.ContainerInstance/containerGroups/write")
    assert skiffd.get_group(RG, "by-reader")[0] == 404
    p = a.run("container", "delete", "-g", RG, "-n", "ticker", "--yes", check=False)
    _assert_denied(p, sp, "Microsoft.ContainerInstance/containerGroups/delete")
    assert state(admin_group(skiffd, "ticker")) == "Running"
    cmd = f"{shlex.quote(AZ)} container exec -g {RG} -n ticker --exec-command 'echo nope'"
    p = _script(cmd, a.env)
    out = p.stdout.decode(errors="replace")
    assert p.returncode != 0 and "AuthorizationFailed" in out, out
    assert "exec" in out.lower()


def test_principal_of_other_group_sees_nothing(skiffd, tmpdir_mod, ticker):
    sp = skiffd.create_sp("conformance-other")
    skiffd.assign(sp["objectId"], "Contributor", skiffd.scope(RG_OTHER))
    a = Az(skiffd, tmpdir_mod)
    a.register(full=True)
    a.login(sp)
    names = {(g["resourceGroup"], g["name"]) for g in a.json("container", "list")}
    assert RG not in {rg for rg, _ in names}, names
    assert (RG_OTHER, "quiet") in names
    p = a.run("container", "show", "-g", RG, "-n", "ticker", check=False)
    assert p.returncode != 0 and "AuthorizationFailed" in p.stderr, p.stderr


def test_delete(skiffd, az, ticker):
    az.run("container", "delete", "-g", RG, "-n", "ticker", "--yes")
    deadline = time.time() + 60
    while skiffd.get_group(RG, "ticker")[0] != 404 and time.time() < deadline:
        time.sleep(0.2)
    assert skiffd.get_group(RG, "ticker")[0] == 404
    p = az.run("container", "show", "-g", RG, "-n", "ticker", check=False)
    assert p.returncode == 3 and "ResourceNotFound" in p.stderr, (p.returncode, p.stderr)
    assert "ticker" not in [g["name"] for g in az.json("container", "list", "-g", RG)]


# --- tokens ---------------------------------------------------------------------------------------

def _b64(data):
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resign(token, key_path, tmp, **changes):
    """Returns token with its claims changed and signed again (RS256) with the key in key_path."""
    import base64

    h, c, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
    claims.update(changes)
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=signing_input.encode(),
                       capture_output=True, check=True)
    return signing_input + "." + _b64(p.stdout)


def _assert_401(r, codes=("InvalidAuthenticationToken",)):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), r.headers
    assert r.json()["error"]["code"] in codes, r.text


def test_bad_and_expired_tokens(skiffd, owner_sp, tmpdir_mod):
    path = skiffd.cg_path(RG) + "?api-version=2022-10-01-preview"
    # garbage, with curl
    p = subprocess.run(["curl", "-sS", "--cacert", skiffd.ca_file, "-D", "-", "-H", "Authorization: Bearer garbage",
                        skiffd.url + path], capture_output=True, text=True, timeout=30)
    head, _, body = p.stdout.partition("\n\n")  # (text mode turned CRLF into LF)
    assert head.split()[1] == "401", p.stdout
    assert re.search(r"(?im)^www-authenticate:\s*bearer", head), head
    assert json.loads(body)["error"]["code"] == "InvalidAuthenticationToken", body
    # no token at all
    r = skiffd.https("GET", path)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers, (r.status_code, r.headers)
    good = skiffd.token_for(owner_sp["appId"], owner_sp["password"])
    assert skiffd.https("GET", path, token=good).status_code == 200
    key = os.path.join(skiffd.data, "keys", "token-signing.pem")
    now = int(time.time())
    # re-signed with the server's own key and still valid: accepted (the forging is right)
    assert skiffd.https("GET", path, token=_resign(good, key, tmpdir_mod, exp=now + 600)).status_code == 200
    # expired
    expired = _resign(good, key, tmpdir_mod, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    _assert_401(skiffd.https("GET", path, token=expired), ("InvalidAuthenticationToken", "ExpiredAuthenticationToken"))
    # signed with another key
    other = os.path.join(tmpdir_mod, "other-signing.pem")
    subprocess.run(["openssl", "genrsa", "-out", other, "2048"], check=True, capture_output=True)
    _assert_401(skiffd.https("GET", path, token=_resign(good, other, tmpdir_mod)))
    # a principal that was deleted can no longer use its token
    sp = skiffd.create_sp("conformance-doomed")
    skiffd.assign(sp["objectId"], "Reader", skiffd.scope())
    tok = skiffd.token_for(sp["appId"], sp["password"])
    assert skiffd.https("GET", path, token=tok).status_code == 200
    st, _, _ = skiffd.request("DELETE", f"/skiff/servicePrincipals/{sp['appId']}?api-version=1")
    assert st in (200, 204)
    r = skiffd.https("GET", path, token=tok)
    assert r.status_code in (401, 403), (r.status_code, r.text)
