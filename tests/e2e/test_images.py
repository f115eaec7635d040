"""End-to-end: image pulls through skiffd: the evil images are refused without
touching the host, and concurrent groups share one download of each layer."""

import os
import re
import subprocess
import time

import pytest

from conftest import FIXTURES, QUICK, containers, group_body, image, needs_root, state

pytestmark = needs_root

EVIL = ["absolute", "bad-digest", "device", "hardlink", "size-lie", "symlink", "traversal", "whiteout-escape"]


@pytest.fixture(scope="module")
def harness():
    sh = os.path.join(FIXTURES, "evil-harness.sh")
    subprocess.run(["bash", sh, "prepare"], check=True, capture_output=True)
    yield sh
    subprocess.run(["bash", sh, "clean"], capture_output=True)


@pytest.mark.parametrize("tag", EVIL)
def test_evil_image_refused(skiffd, harness, tag):
    skiffd.ensure_rg("evil")
    name = "evil-" + tag
    skiffd.put_group("evil", name, group_body([("c1", image("evil:" + tag), ["true"])], policy="Never"))
    g = skiffd.wait_group("evil", name, lambda g: g["properties"]["provisioningState"] == "Failed", 60,
                          "provisioning Failed")
    events = containers(g)["c1"]["events"]
    failed = [e for e in events if e["name"] == "Failed"]
    assert failed and failed[0]["type"] == "Warning", events
    assert "evil:" + tag in failed[0]["message"]
    assert containers(g)["c1"]["currentState"]["state"] != "Running"
    r = subprocess.run(["bash", harness, "check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # nothing of the layer was kept
    assert not [d for d in os.listdir(os.path.join(skiffd.data, "layers")) if d.startswith(".tmp")]
    skiffd.delete_group("evil", name)


def test_unknown_image_and_registry_errors(skiffd):
    skiffd.ensure_rg("evil")
    skiffd.put_group("evil", "missing", group_body([("c1", image("nope:latest"), ["true"])]))
    g = skiffd.wait_group("evil", "missing", lambda g: g["properties"]["provisioningState"] == "Failed", 60,
                          "provisioning Failed")
    assert any(e["name"] == "Failed" for e in containers(g)["c1"]["events"])
    skiffd.delete_group("evil", "missing")


@pytest.mark.skipif(QUICK, reason="slow: pulls 164 MB")
def test_two_groups_share_one_pull(fresh_skiffd):
    d = fresh_skiffd
    d.ensure_rg("share")
    # a registry of this test's own, so its access log shows only this test's downloads
    port = "5017"
    env = dict(os.environ, REGISTRY_PORT=port, OCIFIX_REGISTRY_STATE=f"/tmp/skiff-e2e-registry-{port}")
    sh = os.path.join(FIXTURES, "registry.sh")
    subprocess.run(["bash", sh, "stop"], env=env, capture_output=True)
    subprocess.run(["bash", sh, "start"], env=env, check=True, capture_output=True)
    try:
        _share(d, f"127.0.0.1:{port}", os.path.join(env["OCIFIX_REGISTRY_STATE"], "registry.log"))
    finally:
        subprocess.run(["bash", sh, "stop"], env=env, capture_output=True)


def _share(d, reg, log):
    start = os.path.getsize(log)
    for n in ("s1", "s2", "s3"):
        d.put_group("share", n, group_body([("c1", f"{reg}/big:latest", ["sleep", "100000"])]))
    for n in ("s1", "s2", "s3"):
        g = d.wait_state("share", n, "Running", 120)
        assert "Pulled" in [e["name"] for e in containers(g)["c1"]["events"]]
    with open(log, errors="replace") as f:
        f.seek(start)
        text = f.read()
    gets = re.findall(r'"GET /v2/big/blobs/(sha256:[0-9a-f]{64}) HTTP/1.1" 200', text)
    import json
    import urllib.request
    req = urllib.request.Request(f"http://{reg}/v2/big/manifests/latest",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    manifest = json.load(urllib.request.urlopen(req))
    layers = [l["digest"] for l in manifest["layers"]]
    assert len(layers) == 4
    for digest in layers:
        assert gets.count(digest) == 1, f"layer {digest} downloaded {gets.count(digest)} times"


@pytest.mark.skipif(QUICK, reason="starts a second registry")
def test_private_registry_with_credentials(registry, tmp_path):
    """A registry with TLS and basic auth: credentials from imageRegistryCredentials."""
    from conftest import Skiffd, _finish
    import tempfile
    port = "5018"
    state_dir = f"/tmp/skiff-e2e-registry-{port}"
    env = dict(os.environ, REGISTRY_PORT=port, OCIFIX_REGISTRY_STATE=state_dir)
    sh = os.path.join(FIXTURES, "registry.sh")
    subprocess.run(["bash", sh, "stop"], env=env, capture_output=True)
    subprocess.run(["bash", sh, "start", "--auth", "--tls"], env=env, check=True, capture_output=True)
    d = Skiffd(tempfile.mkdtemp(prefix="skiff-e2e-"), ["--registry-ca", os.path.join(state_dir, "ca", "ca.crt")])
    try:
        d.ensure_rg("priv")
        img = f"127.0.0.1:{port}/busybox:latest"
        d.put_group("priv", "nocreds", group_body([("c1", img, ["echo", "hi"])], policy="Never"))
        g = d.wait_group("priv", "nocreds", lambda g: g["properties"]["provisioningState"] == "Failed", 60, "Failed")
        msg = [e["message"] for e in containers(g)["c1"]["events"] if e["name"] == "Failed"][0]
        assert img in msg
        creds = [{"server": f"127.0.0.1:{port}", "username": "ocifix", "password": "ocifix-pass"}]
        out, _ = d.put_group("priv", "withcreds", group_body([("c1", img, ["echo", "private-ok"])], policy="Never",
                                                             imageRegistryCredentials=creds))
        assert "ocifix-pass" not in str(out)
        g = d.wait_state("priv", "withcreds", "Succeeded", 60)
        assert d.logs("priv", "withcreds", "c1") == "private-ok\n"
        assert "ocifix-pass" not in str(g) and "ocifix-pass" not in d.log()
        assert g["properties"]["imageRegistryCredentials"] == [{"server": f"127.0.0.1:{port}", "username": "ocifix"}]
    finally:
        try:
            _finish(d)
        finally:
            subprocess.run(["bash", sh, "stop"], env=env, capture_output=True)


def test_prune_removes_only_unused_layers(fresh_skiffd):
    d = fresh_skiffd
    d.ensure_rg("prune")
    d.put_group("prune", "keep", group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    d.put_group("prune", "gone", group_body([("c1", image("webserver:latest"), None)]))
    d.wait_state("prune", "keep", "Running")
    d.wait_state("prune", "gone", "Running")
    layers = os.path.join(d.data, "layers")
    before = {x for x in os.listdir(layers) if not x.endswith(".parents")}
    assert len(before) == 2  # the shared base layer and the web server's own
    prune = f"/subscriptions/{d.sub}/providers/Microsoft.ContainerInstance/locations/local/cachedImages/prune" \
            "?api-version=2023-05-01"
    st, out, _ = d.request("POST", prune)
    assert st == 200 and out["removed"] == 0  # both images are in use
    d.delete_group("prune", "gone")
    st, out, _ = d.request("POST", prune)
    assert st == 200 and out["removed"] >= 1
    after = {x for x in os.listdir(layers) if not x.endswith(".parents")}
    assert len(after) == 1 and after < before
    # the group that stays still runs from its layer and can be restarted
    st, _, _ = d.request("POST", d.cg_path("prune", "keep") + "/restart?api-version=2023-05-01")
    assert st == 204
    d.wait_group("prune", "keep", lambda g: containers(g)["c1"]["restartCount"] >= 1
                 and containers(g)["c1"]["currentState"]["state"] == "Running", 30, "restarted")
