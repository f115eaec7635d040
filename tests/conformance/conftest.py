"""Fixtures for the real-client conformance tests: a real skiffd (module scope) with its CA, admin
socket and a subscription-wide Contributor principal. The helpers live in conformance_lib.py (a
module of its own name, so that test files never import another folder's `conftest`)."""

import os
import tempfile
import time

import pytest

from conformance_lib import Skiffd, harness


registry = harness.registry


@pytest.fixture(scope="module")
def skiffd(registry):
    data = tempfile.mkdtemp(prefix="skiff-conf-")
    d = Skiffd(data)
    deadline = time.time() + 20
    while not os.path.exists(d.ca_file) and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.exists(d.ca_file), "no " + d.ca_file
    yield d
    harness._finish(d)


@pytest.fixture(scope="module")
def tmpdir_mod(tmp_path_factory):
    return str(tmp_path_factory.mktemp("conf"))


@pytest.fixture(scope="module")
def owner_sp(skiffd):
    """A principal with Contributor on the whole subscription."""
    sp = skiffd.create_sp("conformance-contributor")
    skiffd.assign(sp["objectId"], "Contributor", skiffd.scope())
    return sp
