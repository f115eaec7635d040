"""Shared fixtures for the end-to-end tests: the local fixture registry and a real
skiffd (with real crun and skiff-monitor) on a private data folder and a free port."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SKIFF_BUILD", os.path.join(ROOT, "build"))
FIXTURES = os.environ.get("SKIFF_FIXTURES", os.path.abspath(os.path.join(ROOT, "..", "shared", "fixtures")))
REGISTRY = os.environ.get("SKIFF_TEST_REGISTRY", "127.0.0.1:5000")
IMAGES = os.environ.get("OCIFIX_IMAGES", os.path.join(os.environ.get("TMPDIR", "/tmp"), "ocifix-images"))
QUICK = os.environ.get("SKIFF_E2E_QUICK") == "1"
API = "2023-05-01"
GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def image(name):
    return f"{REGISTRY}/{name}"


def group_body(containers, policy="Always", location="local", **props):
    """An ACI PUT body; containers are (name, image, command or None, cpu, memoryInGB, extra props) tuples or dicts."""
    out = []
    for c in containers:
        if isinstance(c, dict):
            out.append(c)
            continue
        name, img, cmd = c[0], c[1], c[2]
        cpu = c[3] if len(c) > 3 else 0.5
        mem = c[4] if len(c) > 4 else 0.25
        p = {"image": img, "resources": {"requests": {"cpu": cpu, "memoryInGB": mem}}}
        if cmd is not None:
            p["command"] = cmd
        if len(c) > 5:
            p.update(c[5])
        out.append({"name": name, "properties": p})
    body = {"location": location, "properties": {"osType": "Linux", "restartPolicy": policy, "containers": out}}
    body["properties"].update(props)
    return body


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Skiffd:
    """A real skiffd process on a private data folder."""

    def __init__(self, data, extra=()):
        self.data = data
        self.extra = list(extra)
        # each test skiffd gets a group network of its own (bridge, nftables table, /24), so that
        # instances running side by side never share addresses
        self.bridge = None
        if "--network" not in self.extra:
            self.bridge, self.subnet = new_test_network()
            n = int(self.bridge[3:])
            # its public addresses and its DNS server are on loopback addresses of its own
            self.public_pool = f"127.43.{n}.0/24"
            self.dns = f"127.44.{n}.1"
            self.extra += ["--network", self.subnet, "--bridge", self.bridge]
            if "--public-ips" not in self.extra:
                self.extra += ["--public-ips", self.public_pool]
            if "--dns-listen" not in self.extra:
                self.extra += ["--dns-listen", self.dns + ":53"]
            if "--dns-forward" not in self.extra:
                # containers' other queries go nowhere but to a server a test starts on loopback
                self.extra += ["--dns-forward", "none"]
        self.proc = None
        self.log_path = os.path.join(data, "skiffd.test.log")
        self.conn = None
        self.start()

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        ep = os.path.join(self.data, "endpoint")
        if os.path.exists(ep):
            os.unlink(ep)
        log = open(self.log_path, "ab")
        args = [os.path.join(BUILD, "skiffd"), "--data", self.data, "--port", "0", "--backoff-initial-ms", "200",
                "--backoff-max-ms", "1000", "--stop-grace", "1"] + self.extra
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(ep) and os.path.getsize(ep) > 0:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("skiffd exited: " + self.log())
            time.sleep(0.02)
        else:
            raise RuntimeError("skiffd did not start: " + self.log())
        self.endpoint = open(ep).read().strip()
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self.ca = os.path.join(self.data, "pki", "ca.pem")
        self.socket = os.path.join(self.data, "api.sock")
        self.ssl = ssl.create_default_context(cafile=self.ca) if os.path.exists(self.ca) else None
        self.token = open(os.path.join(self.data, "admin.token")).read().strip()
        self.conn = None
        st, body, _ = self.request("GET", "/subscriptions?api-version=2022-12-01")
        assert st == 200, body
        self.sub = body["value"][0]["subscriptionId"]

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.conn = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn = None

    def raw(self, method, path, body=None, headers=None):
        """Sends a request; body may be bytes/str (sent as is) or a JSON-able object."""
        hdrs = {"Authorization": "Bearer " + self.token}
        if headers is not None:
            hdrs = headers
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = self.connect()
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data, dict((k.lower(), v) for k, v in r.getheaders())
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn = None
                if attempt == 1:
                    raise

    def connect(self, host="127.0.0.1"):
        """A new HTTPS connection to the API, trusting skiffd's local CA."""
        return http.client.HTTPSConnection(host, self.port, timeout=60, context=self.ssl)

    def unix_connect(self):
        """A new plain-HTTP connection over the unix socket."""
        return UnixHTTPConnection(self.socket)

    def request(self, method, path, body=None, headers=None):
        st, data, hdrs = self.raw(method, path, body, headers)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return st, parsed, hdrs

    # --- ARM helpers -------------------------------------------------------
    def rg_path(self, rg):
        return f"/subscriptions/{self.sub}/resourcegroups/{rg}"

    def cg_path(self, rg, name=""):
        p = f"/subscriptions/{self.sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups"
        return p + ("/" + name if name else "")

    def ensure_rg(self, rg):
        st, body, _ = self.request("PUT", self.rg_path(rg) + "?api-version=2021-04-01", {"location": "local"})
        assert st in (200, 201), body

    def put_group(self, rg, name, body, expect=(200, 201)):
        st, out, hdrs = self.request("PUT", self.cg_path(rg, name) + "?api-version=" + API, body)
        assert st in expect, (st, out)
        return out, hdrs

    def get_group(self, rg, name):
        st, out, _ = self.request("GET", self.cg_path(rg, name) + "?api-version=" + API)
        return st, out

    def wait_group(self, rg, name, pred, timeout=60, what="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            st, last = self.get_group(rg, name)
            if st == 200 and pred(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"group {rg}/{name}: timed out waiting for {what}; last: {json.dumps(last)[:3000]}\n"
                             f"skiffd log: {self.log()}")

    def wait_state(self, rg, name, states, timeout=60):
        if isinstance(states, str):
            states = (states,)
        return self.wait_group(rg, name, lambda g: state(g) in states, timeout, f"state in {states}")

    def delete_group(self, rg, name, timeout=60):
        st, _, _ = self.request("DELETE", self.cg_path(rg, name) + "?api-version=" + API)
        assert st in (200, 202, 204)
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, _ = self.get_group(rg, name)
            if st == 404:
                return
            time.sleep(0.1)
        raise AssertionError(f"group {rg}/{name} not deleted; skiffd log: {self.log()}")

    def logs(self, rg, name, container, query=""):
        st, out, _ = self.request("GET", self.cg_path(rg, name) + f"/containers/{container}/logs?api-version={API}{query}")
        assert st == 200, out
        return out["content"]

    def list_all(self):
        st, out, _ = self.request("GET", f"/subscriptions/{self.sub}/providers/{GROUP_TYPE}?api-version={API}")
        assert st == 200, out
        items = out["value"]
        while out.get("nextLink"):
            link = out["nextLink"]
            path = link[link.index("/", link.index("//") + 2):]
            st, out, _ = self.request("GET", path)
            items += out["value"]
        return items

    def delete_everything(self):
        for g in self.list_all():
            rg = g["id"].split("/")[4]
            self.delete_group(rg, g["name"])


def state(g):
    return g["properties"].get("instanceView", {}).get("state")


def containers(g):
    return {c["name"]: c["properties"].get("instanceView", {}) for c in g["properties"]["containers"]}


def new_test_network():
    """A bridge name and a /24 that no interface on this host uses yet."""
    import random
    used = set(os.listdir("/sys/class/net"))
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(200):
        n = random.randint(1, 254)
        name, subnet = f"skt{n}", f"10.243.{n}.0/24"
        if name not in used and f" 10.243.{n}." not in addrs:
            return name, subnet
    raise RuntimeError("no free test network")


def bridge_ports(bridge):
    """The interfaces still plugged into a test skiffd's bridge (one per group with a network)."""
    path = f"/sys/class/net/{bridge}/brif"
    return sorted(os.listdir(path)) if bridge and os.path.isdir(path) else []


def skiff_bridges(bridge):
    """The test skiffd's bridges: its default one and those of its virtual networks."""
    if not bridge:
        return []
    return sorted(n for n in os.listdir("/sys/class/net")
                  if n == bridge or (n.startswith(bridge + "v") and len(n) == len(bridge) + 5))


def remove_test_network(bridge):
    if bridge:
        for b in skiff_bridges(bridge) + [bridge + "pub"]:
            subprocess.run(["ip", "link", "del", b], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", bridge], capture_output=True)


def host_leftovers(data):
    """What a data folder still holds on the host: group folders, mounts, monitors."""
    groups = os.path.join(data, "groups")
    folders = sorted(os.listdir(groups)) if os.path.isdir(groups) else []
    mounts = [l.split()[4] for l in open("/proc/self/mountinfo") if data in l.split()[4]]
    monitors = subprocess.run(["pgrep", "-f", "skiff-monitor " + data], capture_output=True, text=True).stdout.split()
    return folders, mounts, monitors


@pytest.fixture(scope="session")
def registry():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    sh = os.path.join(FIXTURES, "registry.sh")
    if subprocess.run(["bash", sh, "status"], capture_output=True).returncode != 0:
        subprocess.run(["bash", sh, "start"], check=True, capture_output=True)
    return REGISTRY


def _new_skiffd(tmp_root, extra=()):
    data = tempfile.mkdtemp(prefix="skiff-e2e-", dir=tmp_root)
    return Skiffd(data, extra)


def _finish(d):
    try:
        if d.proc.poll() is not None:
            d.start()
        d.delete_everything()
    finally:
        d.stop()
    try:
        # a sanitizer build reports leaks and undefined behaviour in skiffd's log and exit status
        log = open(d.log_path, errors="replace").read()
        assert "Sanitizer" not in log and "runtime error" not in log, log[-6000:]
        assert d.proc.returncode == 0, d.proc.returncode
        folders, mounts, monitors = host_leftovers(d.data)
        assert folders == [] and mounts == [] and monitors == [], (folders, mounts, monitors)
        for b in skiff_bridges(d.bridge):
            assert bridge_ports(b) == [], (b, bridge_ports(b))
    finally:
        if not any(host_leftovers(d.data)):
            shutil.rmtree(d.data, ignore_errors=True)
        remove_test_network(d.bridge)


@pytest.fixture(scope="module")
def skiffd(registry):
    d = _new_skiffd(None)
    yield d
    _finish(d)


@pytest.fixture
def fresh_skiffd(registry):
    """A skiffd of the test's own, for tests that kill it or need an empty cache."""
    d = _new_skiffd(None)
    yield d
    _finish(d)
