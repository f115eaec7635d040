"""End-to-end: the skiff CLI's identity and interactive commands against the real skiffd:
`sp create|list|show|delete`, `role assignment create|list|delete`, `container exec|attach`,
over the admin unix socket (the default) and over HTTPS with the local CA."""

import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest

from conftest import BUILD, image, needs_root

pytestmark = needs_root

SKIFF = os.path.abspath(os.path.join(BUILD, "skiff"))
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
AUTHZ = "2022-04-01"


def cli_env(d, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    env["SKIFF_DATA"] = d.data
    env.update(extra)
    return env


def skiff(d, *args, check=None, env=None, input=None, timeout=180, cwd=None):
    """Runs the CLI; by default it finds skiffd through $SKIFF_DATA (the admin unix socket)."""
    kw = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    r = subprocess.run([SKIFF, *args], capture_output=True, text=True, env=env or cli_env(d), timeout=timeout,
                       cwd=cwd, **kw)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


def https_env(d, token=None):
    return cli_env(d, SKIFF_ENDPOINT=open(os.path.join(d.data, "endpoint")).read().strip(),
                   SKIFF_TOKEN=token or d.token, SKIFF_CA_BUNDLE=os.path.join(d.data, "pki", "ca.pem"))


class _Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def admin(d, method, path, body=None):
    """One request over the admin socket with the admin token: (status, parsed body)."""
    c = _Unix(os.path.join(d.data, "api.sock"))
    try:
        hdrs = {"Authorization": "Bearer " + d.token}
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def https_request(d, method, path, body=None, headers=None):
    """One unauthenticated request over HTTPS (trusting the local CA): (status, parsed body)."""
    ctx = ssl.create_default_context(cafile=os.path.join(d.data, "pki", "ca.pem"))
    port = int(open(os.path.join(d.data, "endpoint")).read().strip().rsplit(":", 1)[1])
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=ctx)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        c.close()


def read_until(proc, pred, timeout=30):
    """Reads proc.stdout (bytes) until pred(text so far) holds; returns the text."""
    out = b""
    deadline = time.time() + timeout
    fd = proc.stdout.fileno()
    while time.time() < deadline:
        if pred(out.decode(errors="replace")):
            return out.decode(errors="replace")
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    raise AssertionError("timed out; output so far: %r; stderr: %r" % (out, proc.stderr.read() if proc.poll() is not None
                                                                         else ""))


@pytest.fixture(scope="module")
def running(skiffd):
    """A resource group with a sleeping container (exec) and a ticking one (attach)."""
    d = skiffd
    skiff(d, "group", "create", "-n", "authcli", check=0)
    skiff(d, "container", "create", "-g", "authcli", "-n", "sleeper", "--image", image("busybox:latest"),
          "--command-line", "sleep 3600", "--cpu", "0.5", "--memory", "0.25", check=0)
    skiff(d, "container", "create", "-g", "authcli", "-n", "ticker", "--image", image("busybox:latest"),
          "--command-line", "sh -c 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done'",
          "--cpu", "0.5", "--memory", "0.25", check=0)
    yield d
    for n in ("sleeper", "ticker"):
        skiff(d, "container", "delete", "-g", "authcli", "-n", n, "-y")


# ---------------------------------------------------------------- service principals


def test_sp_lifecycle(skiffd, tmp_path):
    d = skiffd
    r = skiff(d, "sp", "create", "--name", "cli-sp", check=0)
    sp = json.loads(r.stdout)
    for k in ("appId", "password", "tenant", "displayName", "objectId"):
        assert sp.get(k), (k, sp)
    assert sp["displayName"] == "cli-sp"
    st, got = admin(d, "GET", "/skiff/servicePrincipals/%s?api-version=1" % sp["appId"])
    assert st == 200 and got["objectId"] == sp["objectId"] and "password" not in got
    listed = json.loads(skiff(d, "sp", "list", check=0).stdout)
    assert sp["appId"] in [x["appId"] for x in listed]
    assert "cli-sp" in skiff(d, "sp", "list", "-o", "table", check=0).stdout
    assert json.loads(skiff(d, "sp", "show", "--id", sp["appId"], check=0).stdout)["appId"] == sp["appId"]

    r = skiff(d, "sp", "create", "--name", "cli-cert", "--create-cert", check=0, cwd=str(tmp_path))
    cert_sp = json.loads(r.stdout)
    path = cert_sp["fileWithCertAndPrivateKey"]
    assert os.path.dirname(path) == str(tmp_path) and oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = open(path).read()
    assert "PRIVATE KEY-----" in text and "BEGIN CERTIFICATE" in text
    st, got = admin(d, "GET", "/skiff/servicePrincipals/%s?api-version=1" % cert_sp["appId"])
    assert st == 200 and got["hasCertificate"] is True
    r = skiff(d, "sp", "create", "--name", "cli-certfile", "--cert-file", path, check=0)
    other = json.loads(r.stdout)

    for x in (sp, cert_sp, other):
        skiff(d, "sp", "delete", "--id", x["appId"], check=0)
        st, _ = admin(d, "GET", "/skiff/servicePrincipals/%s?api-version=1" % x["appId"])
        assert st == 404
    r = skiff(d, "sp", "show", "--id", sp["appId"])
    assert r.returncode == 3, (r.stdout, r.stderr)


# ---------------------------------------------------------------- role assignments


def test_role_assignments(skiffd):
    d = skiffd
    skiff(d, "group", "create", "-n", "rbaccli", check=0)
    sp = json.loads(skiff(d, "sp", "create", "--name", "cli-rbac", check=0).stdout)
    try:
        r = skiff(d, "role", "assignment", "create", "--assignee", sp["appId"], "--role", "Reader", "-g", "rbaccli",
                  check=0)
        ra = json.loads(r.stdout)
        rg_scope = "/subscriptions/%s/resourceGroups/rbaccli" % d.sub
        assert ra["id"].lower() == (rg_scope + "/providers/Microsoft.Authorization/roleAssignments/" + ra["name"]).lower()
        st, got = admin(d, "GET", ra["id"] + "?api-version=" + AUTHZ)
        assert st == 200, got
        assert got["properties"]["principalId"] == sp["objectId"]
        assert got["properties"]["roleDefinitionId"].endswith(READER)
        assert got["properties"]["scope"].lower() == rg_scope.lower()

        r = skiff(d, "role", "assignment", "create", "--assignee", sp["objectId"], "--role", "Contributor", check=0)
        sub_ra = json.loads(r.stdout)
        assert sub_ra["properties"]["scope"] == "/subscriptions/%s" % d.sub
        assert sub_ra["properties"]["roleDefinitionId"].endswith(CONTRIBUTOR)

        listed = json.loads(skiff(d, "role", "assignment", "list", "--assignee", sp["appId"], "-g", "rbaccli",
                                  check=0).stdout)
        assert ra["id"] in [x["id"] for x in listed]
        table = skiff(d, "role", "assignment", "list", "-g", "rbaccli", "-o", "table", check=0).stdout
        assert sp["objectId"] in table and "Reader" in table

        skiff(d, "role", "assignment", "delete", "--ids", ra["id"], check=0)
        st, _ = admin(d, "GET", ra["id"] + "?api-version=" + AUTHZ)
        assert st == 404
        skiff(d, "role", "assignment", "delete", "--assignee", sp["appId"], "--role", "Contributor", check=0)
        st, _ = admin(d, "GET", sub_ra["id"] + "?api-version=" + AUTHZ)
        assert st == 404
        r = skiff(d, "role", "assignment", "delete", "--assignee", sp["appId"], "--role", "Contributor")
        assert r.returncode == 1 and "No matched assignments" in r.stderr
    finally:
        skiff(d, "sp", "delete", "--id", sp["appId"])
        skiff(d, "group", "delete", "-n", "rbaccli", "-y")


def test_sp_token_and_authorization_errors(skiffd):
    """A Reader service principal's token works for reading and its writes fail with the ARM error printed."""
    d = skiffd
    skiff(d, "group", "create", "-n", "rbacread", check=0)
    sp = json.loads(skiff(d, "sp", "create", "--name", "cli-reader", check=0).stdout)
    try:
        skiff(d, "role", "assignment", "create", "--assignee", sp["appId"], "--role", "Reader", "-g", "rbacread",
              check=0)
        # the way an Azure SDK client does it: metadata, then client credentials, both over HTTPS
        st, meta = https_request(d, "GET", "/metadata/endpoints?api-version=2015-01-01")
        assert st == 200, meta
        aud = meta["authentication"]["audiences"][0]
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": sp["appId"],
                                       "client_secret": sp["password"], "scope": aud.rstrip("/") + "/.default"})
        st, tok = https_request(d, "POST", "/adfs/oauth2/token", form,
                                {"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, tok
        env = https_env(d, token=tok["access_token"])
        r = skiff(d, "container", "list", "-g", "rbacread", env=env)
        assert r.returncode == 0, r.stderr
        r = skiff(d, "group", "create", "-n", "rbacread2", env=env)
        assert r.returncode == 1 and "(AuthorizationFailed)" in r.stderr and sp["appId"] in r.stderr, r.stderr
        r = skiff(d, "role", "assignment", "create", "--assignee", sp["appId"], "--role", "Owner", "-g", "rbacread",
                  env=env)
        assert r.returncode == 1 and "(AuthorizationFailed)" in r.stderr, r.stderr
    finally:
        skiff(d, "sp", "delete", "--id", sp["appId"])
        skiff(d, "group", "delete", "-n", "rbacread", "-y")


# ---------------------------------------------------------------- exec and attach


def test_exec_echo(running):
    d = running
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--exec-command", "echo marker", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "marker" in r.stdout
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--container-name", "sleeper",
              "--exec-command", "sh -c 'echo $((6*7))'", timeout=60)
    assert r.returncode == 0 and "42" in r.stdout, r.stderr


def test_exec_stdin(running):
    d = running
    # head ends after one line, so the session ends by itself even though stdin's EOF is not sent on
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--exec-command", "head -n 1",
              input="abc\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "abc" in r.stdout
    # cat never sees EOF: read its answer, then end the client
    p = subprocess.Popen([SKIFF, "container", "exec", "-g", "authcli", "-n", "sleeper", "--exec-command", "cat"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(d))
    try:
        p.stdin.write(b"abc\n")
        p.stdin.close()
        out = read_until(p, lambda s: "abc" in s)
        assert "abc" in out
        time.sleep(0.5)
        assert p.poll() is None  # stdin's EOF did not end the session
    finally:
        p.kill()
        p.wait()


def test_attach(running):
    d = running
    p = subprocess.Popen([SKIFF, "container", "attach", "-g", "authcli", "-n", "ticker"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(d))
    try:
        out = read_until(p, lambda s: len([l for l in s.splitlines() if l.strip().startswith("tick")]) >= 3)
        ticks = [int(l.strip()[4:]) for l in out.splitlines() if l.strip().startswith("tick") and l.strip()[4:].isdigit()]
        assert len(ticks) >= 2 and ticks == sorted(ticks)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def test_exec_errors(running):
    d = running
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--container-name", "nothere",
              "--exec-command", "echo x", timeout=60)
    assert r.returncode != 0
    assert r.stderr.startswith("ERROR: (") and "nothere" in r.stderr, r.stderr
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "nogroup", "--exec-command", "echo x", timeout=60)
    assert r.returncode == 3 and "(ResourceNotFound)" in r.stderr, r.stderr
    r = skiff(d, "container", "attach", "-g", "authcli", "-n", "nogroup", timeout=60)
    assert r.returncode == 3, r.stderr


# ---------------------------------------------------------------- transports


def test_https_transport(running, tmp_path):
    """SKIFF_ENDPOINT + SKIFF_CA_BUNDLE, and a data folder without api.sock whose endpoint file is
    https (pki/ca.pem trusted without being named)."""
    d = running
    env = https_env(d)
    assert env["SKIFF_ENDPOINT"].startswith("https://")
    r = skiff(d, "sp", "list", env=env)
    assert r.returncode == 0, r.stderr
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--exec-command", "echo over-tls", env=env,
              timeout=60)
    assert r.returncode == 0 and "over-tls" in r.stdout, r.stderr

    copy = tmp_path / "data"
    (copy / "pki").mkdir(parents=True)
    shutil.copy(os.path.join(d.data, "endpoint"), copy / "endpoint")
    shutil.copy(os.path.join(d.data, "admin.token"), copy / "admin.token")
    shutil.copy(os.path.join(d.data, "pki", "ca.pem"), copy / "pki" / "ca.pem")
    env2 = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    env2["SKIFF_DATA"] = str(copy)
    r = skiff(d, "container", "show", "-g", "authcli", "-n", "sleeper", env=env2)
    assert r.returncode == 0, r.stderr
    r = skiff(d, "container", "exec", "-g", "authcli", "-n", "sleeper", "--exec-command", "echo from-file", env=env2,
              timeout=60)
    assert r.returncode == 0 and "from-file" in r.stdout, r.stderr
    # without the CA the server is not trusted
    os.unlink(copy / "pki" / "ca.pem")
    r = skiff(d, "container", "show", "-g", "authcli", "-n", "sleeper", env=env2)
    assert r.returncode == 1 and "certificate" in r.stderr.lower(), r.stderr


def test_ca_show_names_the_ca_the_server_uses(skiffd):
    out = skiff(skiffd, "ca", "show", "-o", "json", check=0)
    info = json.loads(out.stdout)
    assert info["caFile"] == os.path.join(skiffd.data, "pki", "ca.pem")
    assert info["trust"]["azureCli"] == "export REQUESTS_CA_BUNDLE=" + info["caFile"]
    # the file it names is the CA that signed the server's certificate
    ctx = ssl.create_default_context(cafile=info["caFile"])
    with socket.create_connection(("127.0.0.1", skiffd.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
