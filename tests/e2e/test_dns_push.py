"""skiffd pushes DNS name label records to a real BIND (Debian's bind9) with RFC 2136 updates
signed with TSIG: names appear and go with their groups, also when BIND was down for a while and
when skiffd crashed in between. BIND listens on a loopback address of the test's own."""

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import _finish, _new_skiffd
from test_public import dig, ip_view, public_body, put_group, wait_dig

NAMED = "/usr/sbin/named"
ZONE = "skiff.internal"


class Bind:
    """A private named on 127.0.0.1 and a free port, primary for zone (with extra records, zone
    file lines), taking updates signed with a fresh TSIG key (named only binds addresses of
    interfaces, so not 127.x.y.z)."""

    def __init__(self, zone=ZONE, records=""):
        import socket
        self.zone = zone
        self.addr = "127.0.0.1"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="skiff-bind-")
        os.chmod(self.dir, 0o755)
        secret = base64.b64encode(os.urandom(32)).decode()
        self.key_file = os.path.join(self.dir, "skiff-key.conf")
        with open(self.key_file, "w") as f:
            f.write(f'key "skiff-test-key" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
        with open(os.path.join(self.dir, "zone.db"), "w") as f:
            f.write(f"$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\n"
                    f"ns IN A {self.addr}\n{records}")
        with open(os.path.join(self.dir, "named.conf"), "w") as f:
            f.write(f'include "{self.key_file}";\n'
                    f'options {{ directory "{self.dir}"; pid-file "{self.dir}/named.pid";\n'
                    f'  session-keyfile "{self.dir}/session.key"; listen-on port {self.port} {{ {self.addr}; }};\n'
                    f'  listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; }};\n'
                    f'controls {{ }};\n'
                    f'zone "{zone}" {{ type primary; file "{self.dir}/zone.db";\n'
                    f'  allow-update {{ key "skiff-test-key"; }}; }};\n')
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([NAMED, "-g", "-u", "root", "-c", os.path.join(self.dir, "named.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "named.log"), "a"))
        deadline = time.time() + 20
        while time.time() < deadline:
            out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@" + self.addr,
                                  self.zone, "SOA"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.startswith(f"ns.{self.zone}. "):
                return
            time.sleep(0.2)
        raise AssertionError("named did not start: " + open(os.path.join(self.dir, "named.log")).read()[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bind():
    if not os.path.exists(NAMED):
        pytest.skip("bind9 is not installed (scripts/install-deps.sh --test installs it)")
    b = Bind()
    yield b
    b.close()


def test_label_records_pushed_to_bind(registry, bind):
    d = _new_skiffd(None, ["--dns-update-server", f"{bind.addr}:{bind.port}", "--dns-update-key", bind.key_file])
    try:
        d.ensure_rg("push")
        st, body, _ = put_group(d, "push", "pushed", public_body("pushed-label"))
        assert st == 201, body
        v = ip_view(d, "push", "pushed")
        assert v["fqdn"] == "pushed-label.local." + ZONE
        # the same record in skiff's own server and in BIND
        wait_dig(d, v["fqdn"], [v["ip"]])
        wait_dig(d, v["fqdn"], [v["ip"]], server=bind.addr, port=bind.port)

        # BIND is down while a second group comes: the update arrives once it is back
        bind.stop()
        st, body, _ = put_group(d, "push", "later", public_body("later-label"))
        assert st == 201, body
        v2 = ip_view(d, "push", "later")
        time.sleep(1)
        # skiffd crashes before it could deliver; it delivers after its restart
        d.kill9()
        bind.start()
        d.start()
        wait_dig(d, v2["fqdn"], [v2["ip"]], server=bind.addr, port=bind.port, timeout=60)

        # delete: the name goes from BIND too, with nothing stale
        d.delete_group("push", "pushed")
        wait_dig(d, v["fqdn"], [], server=bind.addr, port=bind.port, timeout=60)
        d.delete_group("push", "later")
        wait_dig(d, v2["fqdn"], [], server=bind.addr, port=bind.port, timeout=60)
        assert dig(d, v2["fqdn"], server=bind.addr, port=bind.port) == []
    finally:
        _finish(d)


def test_wrong_key_is_refused_and_reported(registry, bind):
    bad = os.path.join(bind.dir, "bad-key.conf")
    with open(bad, "w") as f:
        f.write('key "skiff-test-key" { algorithm hmac-sha256; secret "'
                + base64.b64encode(os.urandom(32)).decode() + '"; };\n')
    d = _new_skiffd(None, ["--dns-update-server", f"{bind.addr}:{bind.port}", "--dns-update-key", bad])
    try:
        d.ensure_rg("badkey")
        st, body, _ = put_group(d, "badkey", "g", public_body("badkey-label"))
        assert st == 201, body
        fqdn = ip_view(d, "badkey", "g")["fqdn"]
        deadline = time.time() + 20
        while time.time() < deadline and "DNS update to" not in d.log():
            time.sleep(0.2)
        assert "DNS update to" in d.log()
        assert dig(d, fqdn, server=bind.addr, port=bind.port) == []
        d.delete_group("badkey", "g")
    finally:
        _finish(d)
