"""Helpers for the real-client conformance tests (the fixtures are in conftest.py): a real skiffd (HTTPS on its TCP port, plain HTTP
with the admin token on <data>/api.sock), service principals and role assignments made through the
admin socket, and isolated environments for the stock Azure CLI (`az`, Debian's azure-cli) and the
Azure SDK for JavaScript (@azure/identity + @azure/arm-containerinstance, installed by
scripts/install-js-clients.sh into $SKIFF_JS_DIR, default /var/cache/skiff-js).

Every check compares what a client printed with the server's own state, read over the admin socket.
"""

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# The e2e harness (Skiffd, group helpers) is reused as a plain module, not as a conftest.
_spec = importlib.util.spec_from_file_location("skiff_e2e_harness", os.path.join(ROOT, "tests", "e2e", "conftest.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

FIXTURES = harness.FIXTURES
REGISTRY = harness.REGISTRY
JS_DIR = os.environ.get("SKIFF_JS_DIR", "/var/cache/skiff-js")
AZ = shutil.which("az")
NODE = shutil.which("node")
ROLE_IDS = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}
# A container that keeps running and prints a numbered line every second.
TICKER = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done"

state = harness.state
containers = harness.containers
image = harness.image


class Skiffd(harness.Skiffd):
    """harness.Skiffd whose admin requests go over the unix socket (the TCP port is TLS only),
    plus HTTPS, token, principal and role helpers."""

    # (named apart from the harness's own attributes, which it sets in start())
    @property
    def sock_path(self):
        return os.path.join(self.data, "api.sock")

    @property
    def ca_file(self):
        return os.path.join(self.data, "pki", "ca.pem")

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def connect(self, host="127.0.0.1"):
        """Admin requests go over the unix socket (plain HTTP); clients use HTTPS on the port."""
        deadline = time.time() + 10
        while not os.path.exists(self.sock_path) and time.time() < deadline:
            time.sleep(0.05)
        return harness.UnixHTTPConnection(self.sock_path)

    # --- HTTPS on the TCP port ------------------------------------------------
    def https(self, method, path, token=None, **kw):
        """A request over HTTPS to the TCP port (python-requests, verified against the CA)."""
        import requests

        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        return requests.request(method, self.url + path, headers=headers, verify=self.ca_file, timeout=30, **kw)

    def token_for(self, app_id, secret, scope="https://management.core.windows.net//.default"):
        r = self.https("POST", "/adfs/oauth2/token", data={"grant_type": "client_credentials", "client_id": app_id,
                                                           "client_secret": secret, "scope": scope})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["access_token"]

    # --- principals and roles (admin socket) --------------------------------
    def create_sp(self, name, certificate=None):
        body = {"displayName": name}
        if certificate is not None:
            body["certificate"] = certificate
        st, out, _ = self.request("POST", "/skiff/servicePrincipals?api-version=1", body)
        assert st == 201, (st, out)
        for k in ("appId", "objectId", "displayName", "tenant"):
            assert out.get(k), (k, out)
        return out

    def scope(self, rg=None, group=None):
        s = f"/subscriptions/{self.sub}"
        if rg:
            s += f"/resourceGroups/{rg}"
        if group:
            s += f"/providers/Microsoft.ContainerInstance/containerGroups/{group}"
        return s

    def assign(self, principal_id, role, scope):
        rid = str(uuid.uuid4())
        body = {"properties": {"roleDefinitionId": f"/subscriptions/{self.sub}/providers/Microsoft.Authorization/"
                                                  f"roleDefinitions/{ROLE_IDS[role]}", "principalId": principal_id}}
        st, out, _ = self.request("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{rid}"
                                         "?api-version=2022-04-01", body)
        assert st in (200, 201), (st, out)
        return out


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def client_env(d, config_dir=None):
    """The environment of a client process pointed at d: trust its CA, no proxy, no telemetry."""
    env = dict(os.environ)
    for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update({
        "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1",
        "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_NO_COLOR": "1",
        "REQUESTS_CA_BUNDLE": d.ca_file, "WEBSOCKET_CLIENT_CA_BUNDLE": d.ca_file, "NODE_EXTRA_CA_CERTS": d.ca_file,
        "NODE_PATH": os.path.join(JS_DIR, "node_modules"),
    })
    if config_dir:
        env["AZURE_CONFIG_DIR"] = config_dir
    return env


class Az:
    """The az CLI with its own AZURE_CONFIG_DIR, pointed at one skiffd."""

    def __init__(self, d, tmp):
        self.d = d
        self.dir = tempfile.mkdtemp(prefix="azcfg-", dir=tmp)
        self.env = client_env(d, self.dir)
        self.cloud = f"skiff{d.port}"

    def run(self, *args, check=True, timeout=180, input=None):
        p = subprocess.run([AZ, *args], env=self.env, capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert p.returncode == 0, f"az {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        return p

    def json(self, *args, **kw):
        p = self.run(*args, "-o", "json", **kw)
        return json.loads(p.stdout) if p.stdout.strip() else None

    def register(self, full=True, profile=None):
        """Registers skiffd as a cloud and makes it current; profile: the cloud's API profile
        (az's default, `latest`, when None)."""
        u = self.d.url
        extra = ["--profile", profile] if profile else []
        if full:
            self.run("cloud", "register", "-n", self.cloud, "--endpoint-resource-manager", u + "/",
                     "--endpoint-active-directory", u + "/adfs",
                     "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
                     "--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/", *extra)
        else:
            self.run("cloud", "register", "-n", self.cloud, "--endpoint-resource-manager", u + "/", *extra)
        self.run("cloud", "set", "-n", self.cloud)

    def login(self, sp, password=None):
        # --password=VALUE: a generated secret may start with `-`, which argparse takes for an option
        return self.json("login", "--service-principal", "-u", sp["appId"], "--password=" + (password or sp["password"]),
                         "--tenant", sp["tenant"])
