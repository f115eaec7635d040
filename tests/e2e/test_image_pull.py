"""e2e: pulls the fixture images from a local registry through libskiff's image module.

Runs the C test binary build/tests/test_image_pull_registry (built by `make`) against
$SKIFF_TEST_REGISTRY (default 127.0.0.1:5000, started with ../shared/fixtures/registry.sh
start). It pulls busybox:latest, busybox:multilayer (mounting the layers as an overlay and
diffing tree-listing.sh against multilayer.expected), webserver:latest, big:latest (timed),
all evil:* tags (each must fail; evil-harness.sh check must pass) and two concurrent pulls of
one image (one download per layer). Needs root.

    /usr/bin/python3 -m pytest tests/e2e/test_image_pull.py
"""
import os
import subprocess
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "build", "tests", "test_image_pull_registry")
REGISTRY = os.environ.get("SKIFF_TEST_REGISTRY", "127.0.0.1:5000")
FIXTURES = os.environ.get("SKIFF_FIXTURES", os.path.join(os.path.dirname(REPO), "shared", "fixtures"))


def registry_up():
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay mount, chown)")
def test_image_pull_registry():
    if not os.path.exists(BIN):
        pytest.skip(f"{BIN} not built (run make)")
    if not registry_up():
        pytest.skip(f"no registry at {REGISTRY} (run {FIXTURES}/registry.sh start)")
    env = dict(os.environ, SKIFF_TEST_REGISTRY=REGISTRY, SKIFF_FIXTURES=FIXTURES)
    p = subprocess.run([BIN], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    print(p.stdout)
    print(p.stderr)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "merged overlay matches multilayer.expected" in p.stdout
    assert "evil" in p.stdout and " 0 failed" in p.stdout
    for tag in ["absolute", "bad-digest", "device", "hardlink", "size-lie", "symlink", "traversal",
                "whiteout-escape"]:
        assert f"evil:{tag} rejected" in p.stdout
    assert "concurrent pulls: 4 layer downloads for 4 layers" in p.stdout
