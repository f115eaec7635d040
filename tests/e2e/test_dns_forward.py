"""Containers ask skiff's DNS (their gateway) for every name; what skiff does not own goes on to
the servers of --dns-forward, as a container engine's embedded DNS does. The upstream here is a
named of the test's own on 127.0.0.1; every query stays between the group's namespace, the
gateway and the host's loopback."""

import os
import re
import subprocess

import pytest

from conftest import _finish, _new_skiffd, group_body, image
from test_dns_push import NAMED, Bind
from test_public import put_group
from test_vnet import make_vnets, subnet_id

OUTSIDE = "outside.test"
OUTSIDE_ADDR = "192.0.2.7"  # only ever a DNS answer: no traffic goes to it


@pytest.fixture
def upstream():
    if not os.path.exists(NAMED):
        pytest.skip("bind9 is not installed (scripts/install-deps.sh --test installs it)")
    b = Bind(OUTSIDE, f"www IN A {OUTSIDE_ADDR}\n")
    yield b
    b.close()


def probe(d, rg, name, script, **extra):
    """Runs script in a busybox group (to completion) and returns its output."""
    st, out, _ = put_group(d, rg, name, group_body([("c1", image("busybox:latest"), ["sh", "-c", script])],
                                                   policy="Never", **extra))
    assert st in (200, 201), out
    d.wait_state(rg, name, ("Succeeded", "Failed"), timeout=90)
    out = d.logs(rg, name, "c1")
    d.delete_group(rg, name)
    return out


def dig_status(d, name):
    out = subprocess.run(["dig", "+time=2", "+tries=1", "-p", "53", "@" + d.dns, name, "A"],
                         capture_output=True, text=True, timeout=20)
    m = re.search(r"status: (\w+)", out.stdout)
    return m.group(1) if m else out.stdout + out.stderr


def test_other_names_are_forwarded_upstream(registry, upstream):
    d = _new_skiffd(None, ["--dns-forward", f"{upstream.addr}:{upstream.port}"])
    try:
        d.ensure_rg("fwd")
        gw = d.subnet.rsplit(".", 1)[0] + ".1"

        # a group of the default network resolves an outside name through its gateway, which is
        # its only nameserver
        out = probe(d, "fwd", "asks", "nslookup www.outside.test 2>&1; echo ==; cat /etc/resolv.conf")
        assert OUTSIDE_ADDR in out.split("==")[0], out
        servers = [line.split()[1] for line in out.split("==")[1].splitlines() if line.startswith("nameserver")]
        assert servers == [gw], out

        # a group in a virtual network too
        _, a, _ = make_vnets(d, "fwd")
        out = probe(d, "fwd", "vasks", "nslookup www.outside.test 2>&1", subnetIds=[{"id": subnet_id(a, "front")}])
        assert OUTSIDE_ADDR in out, out

        # a group with nameServers of its own is not forwarded: the gateway refuses and the group
        # asks its own server next (here its own loopback, where nothing answers)
        out = probe(d, "fwd", "own", "nslookup www.outside.test 2>&1; echo done",
                    dnsConfig={"nameServers": ["127.0.0.53"]})
        assert OUTSIDE_ADDR not in out and "done" in out, out

        # not an open resolver: the host's loopback is no container network
        assert dig_status(d, "www.outside.test") == "REFUSED"

        # the upstream is gone: the container hears SERVFAIL rather than waiting for nothing
        upstream.stop()
        out = probe(d, "fwd", "down", "nslookup www.outside.test 2>&1; echo done")
        assert OUTSIDE_ADDR not in out and "SERVFAIL" in out, out
    finally:
        _finish(d)
