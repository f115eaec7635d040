"""CLIENT-SIDE tests of the `skiff` command (src/cli/).

These tests do NOT exercise skiffd. They start a tiny fake ARM server (http.server on 127.0.0.1,
random port) that records what the CLI sends and answers with canned ARM-shaped bodies, so that
the CLI's own behaviour can be checked in isolation: argument parsing, request bodies, YAML to
JSON conversion, exit status 3 on 404, error printing, nextLink paging, table/yaml/tsv output,
create progress and logs --follow, `sp` and `role assignment`, and `container exec|attach` with a
fake WebSocket endpoint (handshake, password frame, stdin forwarding, close codes, size cap, raw
tty mode). The fake also serves over a unix socket and over HTTPS with its own CA, for the
transport choice. End-to-end tests against the real daemon live elsewhere.

Run: /usr/bin/python3 -m pytest tests/e2e/test_cli.py
The binary is $SKIFF_CLI, else build/skiff (run `make build/skiff` first).
"""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import stat
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIFF = os.path.abspath(os.environ.get("SKIFF_CLI", os.path.join(ROOT, "build", "skiff")))
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TOKEN = "test-token-123"
SUB = "00000000-0000-0000-0000-000000000001"

if not os.access(SKIFF, os.X_OK):
    pytest.skip("build/skiff is not built (make build/skiff)", allow_module_level=True)

CG_RE = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups"
    r"(?:/([^/]+)(?:/(start|stop|restart)|/containers/([^/]+)/(?:logs|exec|attach))?)?$",
    re.I,
)
RG_RE = re.compile(r"^/subscriptions/([^/]+)/resourcegroups(?:/([^/]+))?$", re.I)
OP_RE = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.ContainerInstance/locations/[^/]+/operations/(\w+)$")
SESSION_RE = re.compile(r"/containerGroups/([^/]+)/containers/([^/]+)/(exec|attach)$")
RA_RE = re.compile(
    r"^(/subscriptions/[^/]+(?:/resourceGroups/[^/]+(?:/providers/Microsoft\.ContainerInstance/containerGroups/[^/]+)?)?)"
    r"/providers/Microsoft\.Authorization/roleAssignments(?:/([^/]+))?$",
    re.I,
)
ROLES = {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner", "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
         "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader"}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def ws_read_frame(f):
    """One WebSocket frame from a file: (fin, opcode, payload, masked) or None at EOF."""
    h = f.read(2)
    if len(h) < 2:
        return None
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", f.read(8))[0]
    mask = f.read(4) if h[1] & 0x80 else None
    data = f.read(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bool(h[0] & 0x80), h[0] & 0x0F, data, mask is not None


def ws_frame(opcode, data, fin=True):
    """An unmasked (server) frame."""
    n = len(data)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + data


def ws_close(code, reason=b""):
    return ws_frame(8, struct.pack(">H", code) + reason)


class FakeArm:
    """In-memory ARM + ACI with just enough behaviour for the client: groups, container groups
    whose creation goes through Pending with a Pulling event whose message changes, logs,
    paging, async operations, and a failing image ("fail/..." images)."""

    def __init__(self, unix_path=None, ssl_ctx=None):
        self.requests = []
        self.lock = threading.Lock()
        self.rgs = {"rg1": {"location": "local"}}
        self.cgs = {}  # (rg, name) -> group dict
        self.polls = {}  # (rg, name) -> GET count since PUT
        self.page_size = 0  # >0: paginate lists with nextLink
        self.logs = {}  # (rg, name, container) -> list of (timestamp, text)
        self.ops = {}
        self.pending_polls = 3  # GETs before the group is Running
        self.fail_next_put = None  # (status, code, message)
        self.sps = {}  # appId -> service principal
        self.fail_next_sp = None  # (status, code, message)
        self.assignments = {}  # id -> role assignment
        self.sessions = {}  # session id -> {"kind", "command", "password", ...}
        self.ws = []  # one record per WebSocket session: headers, frames received, ...
        self.bad_accept = False  # answer the WebSocket handshake with a wrong Sec-WebSocket-Accept
        if unix_path:
            self.server = _UnixHTTPServer(unix_path, self._handler())
            self.port = None
            self.url = "http://localhost"
            self.ws_base = "ws://localhost"
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
            self.port = self.server.server_address[1]
            scheme = "https" if ssl_ctx else "http"
            self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
            self.ws_base = "%s://127.0.0.1:%d" % ("wss" if ssl_ctx else "ws", self.port)
            if ssl_ctx:
                self.server.socket = ssl_ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests
    def reqs(self, method=None, contains=None):
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r["method"] == method) and (contains is None or contains in r["path"])
            ]

    def add_group(self, rg, name, state="Running", image="alpine:latest", cpu=1.0, mem=1.5):
        cg = {
            "id": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s"
            % (SUB, rg, name),
            "name": name,
            "type": "Microsoft.ContainerInstance/containerGroups",
            "location": "local",
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "osType": "Linux",
                "restartPolicy": "Always",
                "containers": [
                    {
                        "name": name,
                        "properties": {
                            "image": image,
                            "resources": {"requests": {"cpu": cpu, "memoryInGB": mem}},
                            "instanceView": {"restartCount": 0, "currentState": {"state": "Running"}, "events": []},
                        },
                    }
                ],
                "instanceView": {"state": state, "events": []},
            },
        }
        self.cgs[(rg, name)] = cg
        self.polls[(rg, name)] = 10**6
        return cg

    # -- HTTP
    def _handler(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body=None, headers=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _do(self):
                if self.path.startswith("/skiff/sessions/") and self.command == "GET":
                    fake.websocket(self)
                    self.close_connection = True
                    return
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                path = urllib.parse.unquote(u.path)
                rec = {
                    "method": self.command,
                    "path": path,
                    "query": q,
                    "headers": dict(self.headers),
                    "body": json.loads(raw) if raw else None,
                }
                with fake.lock:
                    fake.requests.append(rec)
                    status, body, headers = fake.route(rec)
                self._send(status, body, headers)

            do_GET = do_PUT = do_POST = do_DELETE = _do

        return H

    def err(self, status, code, message):
        return status, {"error": {"code": code, "message": message}}, None

    def page(self, items, q, path):
        if not self.page_size:
            return 200, {"value": items}, None
        skip = int(q.get("$skiptoken", "0"))
        out = {"value": items[skip : skip + self.page_size]}
        if skip + self.page_size < len(items):
            qq = dict(q)
            qq["$skiptoken"] = str(skip + self.page_size)
            out["nextLink"] = "%s%s?%s" % (self.url, path, urllib.parse.urlencode(qq))
        return 200, out, None

    def route(self, r):
        if r["headers"].get("Authorization") != "Bearer " + TOKEN:
            return self.err(401, "AuthenticationFailed", "bad token")
        m, p, q = r["method"], r["path"], r["query"]
        if "api-version" not in q:
            return self.err(400, "MissingApiVersionParameter", "no api-version")
        if p.startswith("/skiff/servicePrincipals"):
            return self.route_sp(r)
        mo = RA_RE.match(p)
        if mo:
            return self.route_ra(r, mo.group(1), mo.group(2))
        if p == "/subscriptions" and m == "GET":
            return 200, {"value": [{"subscriptionId": SUB, "displayName": "skiff"}]}, None
        mo = OP_RE.match(p)
        if mo:
            return 200, self.ops.get(mo.group(1), {"status": "Succeeded"}), None
        mo = RG_RE.match(p)
        if mo:
            rg = mo.group(2)
            if rg is None:
                items = [{"name": k, "location": v["location"], "properties": {"provisioningState": "Succeeded"}}
                         for k, v in sorted(self.rgs.items())]
                return self.page(items, q, p)
            if m == "PUT":
                self.rgs[rg] = {"location": r["body"]["location"]}
                return 201, {"id": "/subscriptions/%s/resourceGroups/%s" % (SUB, rg), "name": rg,
                             "location": r["body"]["location"], "properties": {"provisioningState": "Succeeded"}}, None
            if rg not in self.rgs:
                return self.err(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
            if m == "GET":
                return 200, {"id": "/subscriptions/%s/resourceGroups/%s" % (SUB, rg), "name": rg,
                             "location": self.rgs[rg]["location"], "properties": {"provisioningState": "Succeeded"}}, None
            if m == "DELETE":
                del self.rgs[rg]
                return 202, None, {"Location": self.url + "/subscriptions/%s/operationresults/x?api-version=1" % SUB}
        if p.startswith("/subscriptions/%s/operationresults" % SUB):
            return 200, None, None
        if re.match(r"^/subscriptions/[^/]+/providers/Microsoft\.ContainerInstance/containerGroups$", p, re.I):
            items = [self.listed(v) for k, v in sorted(self.cgs.items())]
            return self.page(items, q, p)
        mo = CG_RE.match(p)
        if not mo:
            return self.err(404, "NotFound", "no route for %s %s" % (m, p))
        _, rg, name, action, container = mo.groups()
        if rg not in self.rgs:
            return self.err(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
        if name is None:
            items = [self.listed(v) for (g, n), v in sorted(self.cgs.items()) if g == rg]
            return self.page(items, q, p)
        key = (rg, name)
        if m == "PUT":
            return self.put_group(rg, name, r["body"])
        cg = self.cgs.get(key)
        if cg is None:
            if m == "DELETE":
                return 204, None, None
            return self.err(
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under resource group '%s' was not found."
                % (name, rg),
            )
        if action:
            return 204, None, None
        mo = SESSION_RE.search(p)
        if mo and m == "POST":
            cname, kind = mo.group(2), mo.group(3)
            if cname not in [c["name"] for c in cg["properties"]["containers"]]:
                return self.err(404, "ContainerNotFound", "The container '%s' was not found in container group '%s'."
                                % (cname, name))
            sid = uuid.uuid4().hex
            password = "pw-" + uuid.uuid4().hex
            cmd = (r["body"] or {}).get("command") if kind == "exec" else None
            self.sessions[sid] = {"kind": kind, "command": cmd, "password": password}
            return 200, {"webSocketUri": "%s/skiff/sessions/%s" % (self.ws_base, sid), "password": password}, None
        if container:
            lines = self.logs.get((rg, name, container), [])
            tail = q.get("tail")
            if tail is not None:
                lines = lines[len(lines) - int(tail) :] if int(tail) else []
            ts = q.get("timestamps") == "true"
            content = "".join(("%s %s\n" % (t, s)) if ts else s + "\n" for t, s in lines)
            return 200, {"content": content}, None
        if m == "DELETE":
            del self.cgs[key]
            return 200, cg, None
        if m == "GET":
            self.advance(key)
            return 200, cg, None
        return self.err(405, "MethodNotAllowed", m)

    # -- service principals and role assignments
    def route_sp(self, r):
        m, p = r["method"], r["path"]
        if self.fail_next_sp:
            status, code, msg = self.fail_next_sp
            self.fail_next_sp = None
            return self.err(status, code, msg)
        if p == "/skiff/servicePrincipals":
            if m == "POST":
                b = r["body"] or {}
                app = str(uuid.uuid4())
                sp = {"appId": app, "objectId": str(uuid.uuid4()), "displayName": b.get("displayName"),
                      "hasCertificate": "certificate" in b, "createdTime": "2024-01-01T00:00:00Z"}
                self.sps[app] = sp
                out = {k: sp[k] for k in ("appId", "objectId", "displayName")}
                out.update(tenant="11111111-1111-1111-1111-111111111111", password="secret-" + app[:8])
                return 201, out, None
            if m == "GET":
                return 200, {"value": list(self.sps.values())}, None
        app = p.rsplit("/", 1)[1]
        sp = self.sps.get(app)
        if sp is None:
            return self.err(404, "NotFound", "Service principal '%s' does not exist." % app)
        if m == "GET":
            return 200, sp, None
        if m == "DELETE":
            del self.sps[app]
            return 204, None, None
        return self.err(405, "MethodNotAllowed", m)

    def route_ra(self, r, scope, name):
        m, q = r["method"], r["query"]
        if q.get("api-version") != "2022-04-01":
            return self.err(400, "InvalidApiVersionParameter", "api-version")
        if name is None and m == "GET":
            items = [a for a in self.assignments.values()
                     if a["properties"]["scope"].lower().startswith(scope.lower())]
            f = q.get("$filter")
            if f:
                mo = re.match(r"^principalId eq '([^']+)'$", f)
                if not mo:
                    return self.err(400, "InvalidFilter", f)
                items = [a for a in items if a["properties"]["principalId"] == mo.group(1)]
            return 200, {"value": items}, None
        rid = "%s/providers/Microsoft.Authorization/roleAssignments/%s" % (scope, name)
        if m == "PUT":
            props = (r["body"] or {}).get("properties") or {}
            pid = props.get("principalId")
            if pid == "forbidden":
                return self.err(403, "AuthorizationFailed", "The client 'x' with object id 'y' does not have "
                                "authorization to perform action 'Microsoft.Authorization/roleAssignments/write' "
                                "over scope '%s' or the scope is invalid." % scope)
            for sp in self.sps.values():
                if sp["appId"] == pid:
                    pid = sp["objectId"]
            guid = props.get("roleDefinitionId", "").rsplit("/", 1)[-1]
            if guid not in ROLES:
                return self.err(400, "RoleDefinitionDoesNotExist", "no role %s" % guid)
            a = {"id": rid, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                 "properties": {"roleDefinitionId": props["roleDefinitionId"], "roleDefinitionName": ROLES[guid],
                                "principalId": pid, "principalType": "ServicePrincipal", "scope": scope}}
            self.assignments[rid] = a
            return 201, a, None
        a = self.assignments.get(rid)
        if a is None:
            return (204, None, None) if m == "DELETE" else self.err(404, "RoleAssignmentNotFound", "not found")
        if m == "GET":
            return 200, a, None
        if m == "DELETE":
            del self.assignments[rid]
            return 200, a, None
        return self.err(405, "MethodNotAllowed", m)

    # -- WebSocket sessions
    def websocket(self, h):
        """Serves GET /skiff/sessions/{id}: checks the handshake, then plays the session's command."""
        sid = h.path.rsplit("/", 1)[1]
        rec = {"headers": dict(h.headers), "path": h.path, "frames": [], "client_closed": False}
        with self.lock:
            self.ws.append(rec)
            sess = self.sessions.pop(sid, None)
        if sess is None or h.headers.get("Upgrade", "").lower() != "websocket":
            h._send(404, {"error": {"code": "SessionNotFound", "message": "no session %s" % sid}})
            return
        key = h.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if self.bad_accept:
            accept = base64.b64encode(b"x" * 20).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.end_headers()
        h.wfile.flush()
        rf, wf = h.rfile, h.wfile
        first = ws_read_frame(rf)
        rec["first"] = first
        if first is None or first[1] != 1 or first[2].decode() != sess["password"] or not first[3]:
            wf.write(ws_close(1008, b"wrong password"))
            return
        cmd = sess["command"]
        if sess["kind"] == "attach":
            h.connection.settimeout(0.5)
            for i in range(3):
                wf.write(ws_frame(2, b"line%d\n" % i))
            try:  # attach must not forward stdin: anything that arrives is recorded
                while True:
                    fr = ws_read_frame(rf)
                    if fr is None:
                        break
                    rec["frames"].append(fr)
            except (socket.timeout, OSError):
                pass
            try:
                wf.write(ws_close(1000))
            except OSError:
                pass  # the client has gone already
            return
        if cmd.startswith("echo "):
            wf.write(ws_frame(2, cmd[5:].encode() + b"\r\n"))
            wf.write(ws_close(1000))
            ws_read_frame(rf)  # the client's close reply
            return
        if cmd == "cat":
            # echo what arrives; stdin EOF is not signalled, so end after a quiet half second
            h.connection.settimeout(0.5)
            try:
                while True:
                    fr = ws_read_frame(rf)
                    if fr is None:
                        break
                    rec["frames"].append(fr)
                    if fr[1] == 8:
                        rec["client_closed"] = True
                        break
                    wf.write(ws_frame(2, fr[2]))
            except (socket.timeout, OSError):
                pass
            try:
                wf.write(ws_frame(1, b"done\n"))
                wf.write(ws_close(1000))
            except OSError:
                pass  # the client closed first and has gone (its close frame was recorded)
            return
        if cmd == "fragments":
            wf.write(ws_frame(1, b"hel", fin=False))
            wf.write(ws_frame(9, b"ping"))
            wf.write(ws_frame(0, b"lo\n", fin=True))
            h.connection.settimeout(2)
            try:
                while True:
                    fr = ws_read_frame(rf)
                    if fr is None:
                        break
                    rec["frames"].append(fr)
                    if fr[1] == 10:  # the pong: now close
                        wf.write(ws_close(1000))
                    if fr[1] == 8:
                        break
            except (socket.timeout, OSError):
                pass
            return
        if cmd == "big":
            h.connection.settimeout(5)
            try:  # the client stops reading after the frame's header and closes
                wf.write(ws_frame(2, b"x" * (1024 * 1024 + 1)))
            except (socket.timeout, OSError):
                pass
            return
        if cmd == "fail":
            wf.write(ws_frame(2, b"partial\n"))
            wf.write(ws_close(1011, b"the command could not start"))
            return
        if cmd == "drop":
            wf.write(ws_frame(2, b"bye\n"))
            return  # no close frame: the connection just ends

    def listed(self, cg):
        """List answers leave out instanceView, as real Azure does."""
        c = json.loads(json.dumps(cg))
        c["properties"].pop("instanceView", None)
        for ct in c["properties"]["containers"]:
            ct["properties"].pop("instanceView", None)
        return c

    def put_group(self, rg, name, body):
        if self.fail_next_put:
            status, code, msg = self.fail_next_put
            self.fail_next_put = None
            return self.err(status, code, msg)
        cg = json.loads(json.dumps(body))
        cg["id"] = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s" % (
            SUB, rg, name)
        cg["name"] = name
        cg["type"] = "Microsoft.ContainerInstance/containerGroups"
        props = cg["properties"]
        props["provisioningState"] = "Pending"
        props["instanceView"] = {"state": "Pending", "events": []}
        for c in props.get("containers", []):
            for e in c["properties"].get("environmentVariables", []):
                e.pop("secureValue", None)
            c["properties"]["instanceView"] = {"restartCount": 0, "events": []}
        self.cgs[(rg, name)] = cg
        self.polls[(rg, name)] = 0
        op = "op%d" % len(self.ops)
        self.ops[op] = {"status": "InProgress"}
        cg["_op"] = op
        url = "%s/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/local/operations/%s?api-version=2018-06-01" % (
            self.url, SUB, op)
        out = {k: v for k, v in cg.items() if k != "_op"}
        return 201, out, {"Azure-AsyncOperation": url, "Retry-After": "1"}

    def advance(self, key):
        """Each GET after a PUT moves the fake pull along: Pulling 1/2, Pulling 2/2, Pulled, Started."""
        cg = self.cgs[key]
        n = self.polls.get(key, 10**6)
        if n >= 10**6:
            return
        self.polls[key] = n + 1
        c0 = cg["properties"]["containers"][0]
        image = c0["properties"]["image"]
        ev = c0["properties"]["instanceView"]["events"]
        t = "2024-01-01T00:00:0%dZ" % min(n, 9)
        if image.startswith("fail/"):
            ev[:] = [{"name": "Pulling", "message": 'pulling image "%s"' % image, "count": 1, "type": "Normal",
                      "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": t},
                     {"name": "Failed", "message": 'Failed to pull image "%s": not found' % image, "count": 1,
                      "type": "Warning", "firstTimestamp": t, "lastTimestamp": t}]
            cg["properties"]["provisioningState"] = "Failed"
            self.ops[cg["_op"]] = {"status": "Failed", "error": {"code": "InaccessibleImage",
                                   "message": "The image '%s' in container group '%s' is not accessible." % (image, key[1])}}
            return
        pulling = {"name": "Pulling", "count": 1, "type": "Normal", "firstTimestamp": "2024-01-01T00:00:00Z",
                   "lastTimestamp": t}
        if n == 0:
            pulling["message"] = 'pulling image "%s": 1/2 layers, 1.0/2.0 MB' % image
            ev[:] = [pulling]
        elif n == 1:
            pulling["message"] = 'pulling image "%s": 2/2 layers, 2.0/2.0 MB' % image
            ev[:] = [pulling]
        elif n == 2:
            ev.append({"name": "Pulled", "message": 'Successfully pulled image "%s"' % image, "count": 1,
                       "type": "Normal", "firstTimestamp": t, "lastTimestamp": t})
        if n + 1 >= self.pending_polls:
            ev.append({"name": "Started", "message": "Started container", "count": 1, "type": "Normal",
                       "firstTimestamp": t, "lastTimestamp": t})
            cg["properties"]["provisioningState"] = "Succeeded"
            cg["properties"]["instanceView"]["state"] = "Running"
            c0["properties"]["instanceView"]["currentState"] = {"state": "Running"}
            self.ops[cg["_op"]] = {"status": "Succeeded"}
            self.polls[key] = 10**6


@pytest.fixture
def fake():
    f = FakeArm()
    yield f
    f.stop()


def run(fake, *args, env=None, input=None, timeout=30, cwd=None):
    """Runs the CLI against `fake` (None: no SKIFF_ENDPOINT/SKIFF_TOKEN, env says where to go).
    stdin is `input` through a pipe, else /dev/null."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    if fake is not None:
        e["SKIFF_ENDPOINT"] = fake.url
        e["SKIFF_TOKEN"] = TOKEN
    e["SKIFF_DATA"] = "/nonexistent"
    if env:
        e.update(env)
    kw = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([SKIFF] + list(args), capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd, **kw)


def body_of(fake, method, contains):
    rs = fake.reqs(method, contains)
    assert rs, "no %s request to %s; got %s" % (method, contains, [(r["method"], r["path"]) for r in fake.requests])
    return rs[-1]


# ---------------------------------------------------------------- help, version, usage


def test_help_and_version(fake):
    r = run(fake, "--help")
    assert r.returncode == 0 and "container" in r.stdout and "group" in r.stdout
    r = run(fake, "container", "create", "--help")
    assert r.returncode == 0
    for flag in ("--environment-variables", "--command-line", "--restart-policy", "--file", "--no-wait"):
        assert flag in r.stdout
    r = run(fake, "container", "--help")
    assert r.returncode == 0 and "logs" in r.stdout and "export" in r.stdout
    r = run(fake, "version")
    assert r.returncode == 0 and "skiff" in json.loads(r.stdout)
    assert fake.requests == []


def test_usage_errors_exit_2(fake):
    r = run(fake, "container", "show", "-g", "rg1")
    assert r.returncode == 2 and "--name" in r.stderr
    r = run(fake, "container", "create", "-g", "rg1", "-n", "x")
    assert r.returncode == 2 and "--image" in r.stderr
    r = run(fake, "container", "create", "-g", "rg1", "-n", "x", "--image", "a", "-e", "NOEQUALS")
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
    r = run(fake, "container", "create", "-g", "rg1", "-n", "x", "--image", "a", "--restart-policy", "Sometimes")
    assert r.returncode == 2
    r = run(fake, "container", "create", "-g", "rg1", "-n", "x", "--image", "a", "--command-line", "echo 'oops")
    assert r.returncode == 2 and "quotation" in r.stderr
    r = run(fake, "container", "show", "-n", "x", "-g", "rg1", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = run(fake, "container", "frobnicate")
    assert r.returncode == 2
    r = run(fake, "container", "show", "-n", "x", "-g", "rg1", "-o", "xml")
    assert r.returncode == 2
    assert fake.requests == []


# ---------------------------------------------------------------- create from flags


def test_create_body_and_progress(fake):
    r = run(
        fake, "container", "create", "-g", "rg1", "-n", "web", "--image", "127.0.0.1:5000/big:latest",
        "--cpu", "2", "--memory", "0.5",
        "--command-line", "/bin/sh -c 'echo \"hi there\"; sleep 1' extra\\ arg",
        "-e", "A=1", "B=two words", "--environment-variables", "C=x=y",
        "--secure-environment-variables", "PASS=hunter2",
        "--restart-policy", "onfailure", "--ports", "80", "443",
        "--registry-login-server", "127.0.0.1:5000", "--registry-username", "u", "--registry-password", "p",
    )
    assert r.returncode == 0, r.stderr
    put = body_of(fake, "PUT", "/containerGroups/web")
    assert put["query"]["api-version"] == "2023-05-01"
    assert put["path"] == "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.ContainerInstance/containerGroups/web" % SUB
    b = put["body"]
    assert b["location"] == "local" and b["tags"] == {}
    p = b["properties"]
    assert p["osType"] == "Linux" and p["restartPolicy"] == "OnFailure"
    assert p["imageRegistryCredentials"] == [{"server": "127.0.0.1:5000", "username": "u", "password": "p"}]
    assert "ipAddress" not in p
    c = p["containers"][0]
    assert c["name"] == "web"
    cp = c["properties"]
    assert cp["image"] == "127.0.0.1:5000/big:latest"
    assert cp["command"] == ["/bin/sh", "-c", 'echo "hi there"; sleep 1', "extra arg"]
    assert cp["environmentVariables"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "two words"},
        {"name": "C", "value": "x=y"},
        {"name": "PASS", "secureValue": "hunter2"},
    ]
    assert cp["resources"] == {"requests": {"cpu": 2.0, "memoryInGB": 0.5}}
    assert cp["ports"] == [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}]
    # location came from the resource group
    assert fake.reqs("GET", "/resourcegroups/rg1")
    # every request carried the token
    assert all(x["headers"]["Authorization"] == "Bearer " + TOKEN for x in fake.requests)
    # progress on stderr: both Pulling messages, then Pulled and Started
    assert "1/2 layers" in r.stderr and "2/2 layers" in r.stderr
    assert "Pulled" in r.stderr and "Started container" in r.stderr
    out = json.loads(r.stdout)
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert out["properties"]["instanceView"]["state"] == "Running"


def test_create_defaults_location_and_ip(fake):
    r = run(fake, "container", "create", "-g", "rg1", "-n", "d", "--image", "nginx", "-l", "elsewhere",
            "--ip-address", "Public", "--dns-name-label", "mylabel", "--no-wait")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert not fake.reqs("GET", "/resourcegroups/")  # -l skips the rg lookup
    assert not fake.reqs("GET", "/containerGroups/d")  # --no-wait: no polling
    b = body_of(fake, "PUT", "/containerGroups/d")["body"]
    assert b["location"] == "elsewhere"
    p = b["properties"]
    assert p["restartPolicy"] == "Always" and p["osType"] == "Linux"
    assert p["containers"][0]["properties"]["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.5}
    assert "command" not in p["containers"][0]["properties"]
    assert p["ipAddress"] == {"type": "Public", "dnsNameLabel": "mylabel", "ports": [{"protocol": "TCP", "port": 80}]}


def test_create_missing_rg_exit_3(fake):
    r = run(fake, "container", "create", "-g", "nope", "-n", "x", "--image", "alpine")
    assert r.returncode == 3
    assert "(ResourceGroupNotFound)" in r.stderr
    assert not fake.reqs("PUT")


def test_create_put_rejected(fake):
    fake.fail_next_put = (400, "InvalidOsType", "The 'osType' for container group 'x' is invalid.")
    r = run(fake, "container", "create", "-g", "rg1", "-n", "x", "--image", "alpine")
    assert r.returncode == 1
    assert "(InvalidOsType) The 'osType' for container group 'x' is invalid." in r.stderr
    assert r.stdout == ""


def test_create_failed_provisioning(fake):
    r = run(fake, "container", "create", "-g", "rg1", "-n", "bad", "--image", "fail/nothere")
    assert r.returncode == 1
    assert "(InaccessibleImage)" in r.stderr
    assert "Failed to pull image" in r.stderr  # the Warning event was shown as progress
    assert r.stdout == ""


def test_create_timeout(fake):
    fake.pending_polls = 10**9
    r = run(fake, "container", "create", "-g", "rg1", "-n", "slow", "--image", "alpine", "--timeout", "1")
    assert r.returncode == 1 and "timed out" in r.stderr


def test_create_table_output(fake):
    r = run(fake, "container", "create", "-g", "rg1", "-n", "tbl", "--image", "alpine", "-o", "table")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Name", "ResourceGroup", "Status", "Image", "CPU/Memory", "OsType", "Location"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["tbl", "rg1", "Running", "alpine", "1.0", "core/1.5", "gb", "Linux", "local"]


# ---------------------------------------------------------------- create from YAML


def test_create_from_yaml_file(fake):
    r = run(fake, "container", "create", "-g", "rg1", "--file", os.path.join(DATA, "group.yaml"))
    assert r.returncode == 0, r.stderr
    put = body_of(fake, "PUT", "/containerGroups/yamlgroup")
    assert put["query"]["api-version"] == "2021-09-01"
    b = put["body"]
    for k in ("apiVersion", "name", "type", "id"):
        assert k not in b
    assert b["location"] == "local"
    assert b["tags"] == {"env": "test", "owner": "skiff"}
    p = b["properties"]
    assert p["restartPolicy"] == "OnFailure" and p["osType"] == "Linux"
    web, side = p["containers"]
    assert web["properties"]["command"] == ["/bin/sh", "-c", "echo hello; exec nginx -g 'daemon off;'"]
    req = web["properties"]["resources"]["requests"]
    assert req == {"cpu": 1, "memoryInGB": 1.5}
    assert isinstance(req["cpu"], int) and isinstance(req["memoryInGB"], float)
    env = web["properties"]["environmentVariables"]
    assert {"name": "QUOTED_NUMBER", "value": "42"} in env  # quoted stays a string
    assert {"name": "SECRET", "secureValue": "s3cr3t"} in env
    assert web["properties"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert side["properties"]["command"] == ["sleep", "infinity"]
    assert side["properties"]["resources"]["requests"] == {"cpu": 0.5, "memoryInGB": 0.5}
    assert p["ipAddress"] == {"type": "Public", "ports": [{"port": 80, "protocol": "TCP"}]}
    assert json.loads(r.stdout)["name"] == "yamlgroup"


def test_create_yaml_scalars_name_override_and_rg_location(fake, tmp_path):
    y = tmp_path / "g.yaml"
    y.write_text(
        "apiVersion: '2023-05-01'\n"
        "name: fromyaml\n"
        "properties:\n"
        "  containers:\n"
        "  - name: c\n"
        "    properties:\n"
        "      image: alpine\n"
        "      command: [echo, 'true', yes, '007']\n"
        "      securityContext: {privileged: false, runAsUser: 0x10}\n"
        "      resources: {requests: {cpu: 1.0, memoryInGb: 2e0}}\n"
        "  osType: Linux\n"
        "  nothing: ~\n"
        "  empty:\n"
        "  flag: True\n"
        "  anchored: &a {x: 1}\n"
        "  copy: *a\n"
        "  multi: |\n"
        "    line1\n"
        "    line2\n"
    )
    r = run(fake, "container", "create", "-g", "rg1", "-f", str(y), "-n", "override", "--no-wait")
    assert r.returncode == 0, r.stderr
    put = body_of(fake, "PUT", "/containerGroups/override")
    assert put["query"]["api-version"] == "2023-05-01"
    b = put["body"]
    assert b["location"] == "local"  # from the resource group
    p = b["properties"]
    cp = p["containers"][0]["properties"]
    assert cp["command"] == ["echo", "true", "yes", "007"]
    assert cp["securityContext"] == {"privileged": False, "runAsUser": 16}
    assert cp["resources"]["requests"] == {"cpu": 1.0, "memoryInGb": 2.0}
    assert p["nothing"] is None and p["empty"] is None and p["flag"] is True
    assert p["copy"] == {"x": 1}
    assert p["multi"] == "line1\nline2\n"


def test_create_yaml_errors(fake, tmp_path):
    y = tmp_path / "bad.yaml"
    y.write_text("name: x\nproperties: [unclosed\n")
    r = run(fake, "container", "create", "-g", "rg1", "-f", str(y))
    assert r.returncode == 2 and "YAML" in r.stderr
    y.write_text("properties: {containers: []}\n")
    r = run(fake, "container", "create", "-g", "rg1", "-f", str(y))
    assert r.returncode == 2 and "name" in r.stderr
    r = run(fake, "container", "create", "-g", "rg1", "-f", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1
    assert not fake.reqs("PUT")


# ---------------------------------------------------------------- show / list / errors


def test_show_and_404(fake):
    fake.add_group("rg1", "g1")
    r = run(fake, "container", "show", "-n", "g1", "-g", "rg1")
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "g1"
    r = run(fake, "container", "show", "-n", "missing", "-g", "rg1")
    assert r.returncode == 3
    assert "(ResourceNotFound) The Resource 'Microsoft.ContainerInstance/containerGroups/missing'" in r.stderr
    assert r.stdout == ""
    r = run(fake, "container", "show", "-n", "g1", "-g", "norg")
    assert r.returncode == 3 and "(ResourceGroupNotFound)" in r.stderr


def test_show_yaml_and_tsv(fake):
    fake.add_group("rg1", "g1")
    fake.cgs[("rg1", "g1")]["tags"] = {"t": "yes", "n": "10"}
    r = run(fake, "container", "show", "-n", "g1", "-g", "rg1", "-o", "yaml")
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["tags"] == {"t": "yes", "n": "10"}  # quoted so they read back as strings
    assert doc["properties"]["containers"][0]["properties"]["resources"]["requests"]["memoryInGB"] == 1.5
    r = run(fake, "container", "show", "-n", "g1", "-g", "rg1", "-o", "tsv")
    assert r.returncode == 0
    fields = r.stdout.rstrip("\n").split("\t")
    assert "g1" in fields and "local" in fields and "Microsoft.ContainerInstance/containerGroups" in fields


def test_list_paging_and_table(fake):
    for i in range(5):
        fake.add_group("rg1", "g%d" % i, image="img%d" % i)
    fake.rgs["rg2"] = {"location": "local"}
    fake.add_group("rg2", "other", cpu=0.5, mem=1.0)
    fake.page_size = 2
    r = run(fake, "container", "list", "-g", "rg1")
    assert r.returncode == 0, r.stderr
    assert [g["name"] for g in json.loads(r.stdout)] == ["g0", "g1", "g2", "g3", "g4"]
    assert len(fake.reqs("GET", "/containerGroups")) == 3  # three pages
    r = run(fake, "container", "list")
    assert r.returncode == 0
    assert len(json.loads(r.stdout)) == 6
    r = run(fake, "container", "list", "-o", "table")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Name", "ResourceGroup", "Status", "Image", "CPU/Memory", "OsType", "Location"]
    assert len(lines) == 8
    other = [l for l in lines if l.startswith("other")][0]
    # list answers have no instanceView: status falls back to provisioningState
    assert other.split() == ["other", "rg2", "Succeeded", "alpine:latest", "0.5", "core/1.0", "gb", "Linux", "local"]
    r = run(fake, "container", "list", "-g", "empty-none")
    assert r.returncode == 3


def test_subscription_discovery_and_override(fake):
    fake.add_group("rg1", "g1")
    run(fake, "container", "show", "-n", "g1", "-g", "rg1")
    assert fake.reqs("GET", "/subscriptions")[0]["path"] == "/subscriptions"
    assert fake.reqs("GET", "/subscriptions")[0]["query"]["api-version"] == "2022-12-01"
    n = len(fake.requests)
    r = run(fake, "container", "show", "-n", "g1", "-g", "rg1", "--subscription", "other-sub")
    assert r.returncode == 0, r.stderr  # the fake ignores the subscription segment
    assert len([x for x in fake.requests if x["path"] == "/subscriptions"]) == 1  # --subscription: no discovery
    assert fake.requests[n]["path"].startswith("/subscriptions/other-sub/")
    n = len(fake.requests)
    run(fake, "container", "show", "-n", "g1", "-g", "rg1", env={"SKIFF_SUBSCRIPTION": "env-sub"})
    assert fake.requests[n]["path"].startswith("/subscriptions/env-sub/")


def test_endpoint_and_token_from_data_dir(fake, tmp_path):
    (tmp_path / "endpoint").write_text(fake.url + "/\n")
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    fake.add_group("rg1", "g1")
    e = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    e["SKIFF_DATA"] = str(tmp_path)
    r = subprocess.run([SKIFF, "container", "show", "-n", "g1", "-g", "rg1"], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "g1"
    e["SKIFF_DATA"] = str(tmp_path / "nothing")
    r = subprocess.run([SKIFF, "container", "show", "-n", "g1", "-g", "rg1"], capture_output=True, text=True, env=e)
    assert r.returncode == 1 and "endpoint" in r.stderr


def test_auth_error_and_connection_error(fake):
    r = run(fake, "container", "list", env={"SKIFF_TOKEN": "wrong"})
    assert r.returncode == 1 and "(AuthenticationFailed) bad token" in r.stderr
    r = run(fake, "container", "list", env={"SKIFF_ENDPOINT": "http://127.0.0.1:1"})
    assert r.returncode == 1 and "ERROR" in r.stderr


# ---------------------------------------------------------------- delete / actions


def test_delete(fake):
    fake.add_group("rg1", "g1")
    r = run(fake, "container", "delete", "-n", "g1", "-g", "rg1", "--yes")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "g1"
    assert ("rg1", "g1") not in fake.cgs
    r = run(fake, "container", "delete", "-n", "g1", "-g", "rg1", "-y")
    assert r.returncode == 0 and r.stdout == ""  # 204: missing group is fine, like az
    # stdin is not a tty: no prompt, proceeds
    fake.add_group("rg1", "g2")
    r = run(fake, "container", "delete", "-n", "g2", "-g", "rg1", "-o", "none", input="")
    assert r.returncode == 0 and r.stdout == ""
    assert ("rg1", "g2") not in fake.cgs


def test_start_stop_restart(fake):
    fake.add_group("rg1", "g1")
    for verb in ("start", "stop", "restart"):
        r = run(fake, "container", verb, "-n", "g1", "-g", "rg1")
        assert r.returncode == 0, r.stderr
        req = body_of(fake, "POST", "/containerGroups/g1/" + verb)
        assert req["body"] is None
    r = run(fake, "container", "stop", "-n", "nope", "-g", "rg1")
    assert r.returncode == 3 and "(ResourceNotFound)" in r.stderr


# ---------------------------------------------------------------- logs


def test_logs(fake):
    fake.add_group("rg1", "g1")
    fake.logs[("rg1", "g1", "g1")] = [("2024-01-01T00:00:01.000000001Z", "one"), ("2024-01-01T00:00:02Z", "two")]
    r = run(fake, "container", "logs", "-n", "g1", "-g", "rg1")
    assert r.returncode == 0 and r.stdout == "one\ntwo\n"
    req = body_of(fake, "GET", "/logs")
    assert "tail" not in req["query"] and "timestamps" not in req["query"]
    r = run(fake, "container", "logs", "-n", "g1", "-g", "rg1", "--tail", "1", "--timestamps", "--container-name", "g1")
    assert r.returncode == 0 and r.stdout == "2024-01-01T00:00:02Z two\n"
    req = body_of(fake, "GET", "/logs")
    assert req["query"]["tail"] == "1" and req["query"]["timestamps"] == "true"
    r = run(fake, "container", "logs", "-n", "nope", "-g", "rg1")
    assert r.returncode == 3


def test_logs_follow(fake):
    fake.add_group("rg1", "g1")
    key = ("rg1", "g1", "g1")
    fake.logs[key] = [("2024-01-01T00:00:01Z", "a"), ("2024-01-01T00:00:01Z", "b")]
    e = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    e.update(SKIFF_ENDPOINT=fake.url, SKIFF_TOKEN=TOKEN)
    p = subprocess.Popen([SKIFF, "container", "logs", "-n", "g1", "-g", "rg1", "--follow"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    time.sleep(1.2)
    with fake.lock:
        fake.logs[key] = fake.logs[key] + [("2024-01-01T00:00:01Z", "c"), ("2024-01-01T00:00:02Z", "d")]
    time.sleep(1.2)
    with fake.lock:
        fake.logs[key] = fake.logs[key] + [("2024-01-01T00:00:03Z", "e")]
        fake.cgs[("rg1", "g1")]["properties"]["instanceView"]["state"] = "Succeeded"
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert out == "a\nb\nc\nd\ne\n"
    assert all(r["query"].get("timestamps") == "true" for r in fake.reqs("GET", "/logs"))


# ---------------------------------------------------------------- export


def test_export(fake, tmp_path):
    cg = fake.add_group("rg1", "g1")
    cg["properties"]["containers"][0]["properties"]["environmentVariables"] = [{"name": "V", "value": "true"}]
    out = tmp_path / "out.yaml"
    r = run(fake, "container", "export", "-n", "g1", "-g", "rg1", "--file", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    doc = yaml.safe_load(out.read_text())
    assert doc["apiVersion"] == "2023-05-01"
    assert "id" not in doc
    assert doc["name"] == "g1" and doc["type"] == "Microsoft.ContainerInstance/containerGroups"
    assert "instanceView" not in doc["properties"] and "provisioningState" not in doc["properties"]
    c = doc["properties"]["containers"][0]["properties"]
    assert "instanceView" not in c
    assert c["environmentVariables"] == [{"name": "V", "value": "true"}]
    assert c["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.5}
    # the export reads back into create
    r = run(fake, "container", "create", "-g", "rg1", "-f", str(out), "-n", "copy", "--no-wait")
    assert r.returncode == 0, r.stderr
    b = body_of(fake, "PUT", "/containerGroups/copy")["body"]
    assert b["properties"]["containers"][0]["properties"]["environmentVariables"] == [{"name": "V", "value": "true"}]
    r = run(fake, "container", "export", "-n", "g1", "-g", "rg1", "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["apiVersion"] == "2023-05-01"
    r = run(fake, "container", "export", "-n", "missing", "-g", "rg1", "-f", str(tmp_path / "x.yaml"))
    assert r.returncode == 3 and not (tmp_path / "x.yaml").exists()


# ---------------------------------------------------------------- resource groups


def test_groups(fake):
    r = run(fake, "group", "create", "-n", "newrg")
    assert r.returncode == 0, r.stderr
    req = body_of(fake, "PUT", "/resourcegroups/newrg")
    assert req["body"] == {"location": "local"} and req["query"]["api-version"] == "2021-04-01"
    r = run(fake, "group", "create", "-g", "rg3", "-l", "west", "--tags", "a=b", "c=d")
    assert r.returncode == 0
    assert body_of(fake, "PUT", "/resourcegroups/rg3")["body"] == {"location": "west", "tags": {"a": "b", "c": "d"}}
    r = run(fake, "group", "show", "-n", "newrg")
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "newrg"
    fake.page_size = 1
    r = run(fake, "group", "list", "-o", "table")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Name", "Location", "Status"]
    assert [l.split()[0] for l in lines[2:]] == ["newrg", "rg1", "rg3"]
    r = run(fake, "group", "delete", "-n", "newrg", "--yes")
    assert r.returncode == 0, r.stderr
    assert "newrg" not in fake.rgs
    r = run(fake, "group", "show", "-n", "newrg")
    assert r.returncode == 3 and "(ResourceGroupNotFound)" in r.stderr


# ---------------------------------------------------------------- service principals


def test_sp_create_list_show_delete(fake):
    r = run(fake, "sp", "create", "--name", "app1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"appId", "objectId", "displayName", "tenant", "password"}
    assert out["displayName"] == "app1" and out["password"].startswith("secret-")
    req = body_of(fake, "POST", "/skiff/servicePrincipals")
    assert req["body"] == {"displayName": "app1"} and req["query"]["api-version"] == "1"
    app = out["appId"]
    r = run(fake, "sp", "create", "-n", "app2", "-o", "table")
    assert r.returncode == 0 and r.stdout.split("\n")[0].split() == ["AppId", "DisplayName", "Password", "Tenant"]
    r = run(fake, "sp", "list")
    assert r.returncode == 0 and sorted(x["displayName"] for x in json.loads(r.stdout)) == ["app1", "app2"]
    r = run(fake, "sp", "list", "-o", "table")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["DisplayName", "AppId", "ObjectId", "HasCertificate", "CreatedTime"]
    assert len(lines) == 4 and "False" in lines[2]
    r = run(fake, "sp", "show", "--id", app)
    assert r.returncode == 0 and json.loads(r.stdout)["appId"] == app
    r = run(fake, "sp", "delete", "--id", app)
    assert r.returncode == 0 and r.stdout == ""
    assert body_of(fake, "DELETE", "/skiff/servicePrincipals/")["path"] == "/skiff/servicePrincipals/" + app
    r = run(fake, "sp", "show", "--id", app)
    assert r.returncode == 3 and "(NotFound)" in r.stderr
    r = run(fake, "sp", "delete", "--id", app)
    assert r.returncode == 3
    fake.fail_next_sp = (403, "AuthorizationFailed", "The client 'x' does not have authorization")
    r = run(fake, "sp", "create", "--name", "nope")
    assert r.returncode == 1 and "(AuthorizationFailed) The client 'x'" in r.stderr and r.stdout == ""


def test_sp_create_cert(fake, tmp_path):
    r = run(fake, "sp", "create", "--name", "cert app", "--create-cert", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    path = out["fileWithCertAndPrivateKey"]
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("cert_app-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert "PRIVATE KEY-----" in text and "-----BEGIN CERTIFICATE-----" in text
    sent = body_of(fake, "POST", "/skiff/servicePrincipals")["body"]
    assert sent["displayName"] == "cert app"
    assert sent["certificate"].strip() in text and "PRIVATE" not in sent["certificate"]
    # --cert-file sends only the certificate of a key+cert file
    r = run(fake, "sp", "create", "--name", "fromfile", "--cert-file", path)
    assert r.returncode == 0, r.stderr
    sent2 = body_of(fake, "POST", "/skiff/servicePrincipals")["body"]
    assert sent2["certificate"].strip() == sent["certificate"].strip()
    assert "fileWithCertAndPrivateKey" not in json.loads(r.stdout)
    # --cert-out: never overwrites; a refused create removes the new file
    dest = tmp_path / "mine.pem"
    r = run(fake, "sp", "create", "--name", "x", "--create-cert", "--cert-out", str(dest), "--years", "2")
    assert r.returncode == 0 and json.loads(r.stdout)["fileWithCertAndPrivateKey"] == str(dest)
    n = len(fake.reqs("POST"))
    r = run(fake, "sp", "create", "--name", "x", "--create-cert", "--cert-out", str(dest))
    assert r.returncode == 1 and "exists" in r.stderr and len(fake.reqs("POST")) == n
    fake.fail_next_sp = (400, "BadRequest", "no")
    r = run(fake, "sp", "create", "--name", "x", "--create-cert", "--cert-out", str(tmp_path / "gone.pem"))
    assert r.returncode == 1 and not (tmp_path / "gone.pem").exists()


def test_sp_usage_errors(fake, tmp_path):
    nocert = tmp_path / "nocert.pem"
    nocert.write_text("just text\n")
    for args in (["sp", "create"], ["sp", "create", "-n", "a", "--create-cert", "--cert-file", str(nocert)],
                 ["sp", "create", "-n", "a", "--cert-out", "x.pem"], ["sp", "create", "-n", "a", "--create-cert",
                                                                      "--years", "0"],
                 ["sp", "create", "-n", "a", "--cert-file", str(nocert)], ["sp", "show"], ["sp", "delete"],
                 ["sp", "frob"]):
        r = run(fake, *args, cwd=str(tmp_path))
        assert r.returncode == 2, (args, r.stderr)
    r = run(fake, "sp", "create", "-n", "a", "--cert-file", str(tmp_path / "missing.pem"))
    assert r.returncode == 1 and "missing.pem" in r.stderr
    assert fake.requests == [] and os.listdir(tmp_path) == ["nocert.pem"]
    r = run(fake, "sp", "--help")
    assert r.returncode == 0 and "create" in r.stdout and "delete" in r.stdout


# ---------------------------------------------------------------- role assignments

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def test_role_assignment_create_scopes(fake):
    sp = json.loads(run(fake, "sp", "create", "-n", "ra").stdout)
    r = run(fake, "role", "assignment", "create", "--assignee", sp["appId"], "--role", "reader")
    assert r.returncode == 0, r.stderr
    put = body_of(fake, "PUT", "/roleAssignments/")
    mo = re.match(r"^/subscriptions/%s/providers/Microsoft\.Authorization/roleAssignments/([0-9a-f-]{36})$" % SUB,
                  put["path"])
    assert mo, put["path"]
    assert put["query"]["api-version"] == "2022-04-01"
    assert put["body"] == {"properties": {
        "roleDefinitionId": "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s" % (SUB, READER),
        "principalId": sp["appId"]}}
    out = json.loads(r.stdout)
    assert out["properties"]["principalId"] == sp["objectId"] and out["name"] == mo.group(1)
    r = run(fake, "role", "assignment", "create", "--assignee", sp["objectId"], "--role", "Owner", "-g", "rg1")
    assert r.returncode == 0
    put = body_of(fake, "PUT", "/roleAssignments/")
    assert put["path"].startswith("/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Authorization/" % SUB)
    assert put["body"]["properties"]["roleDefinitionId"].endswith(OWNER)
    r = run(fake, "role", "assignment", "create", "--assignee", "a", "--role", "Contributor", "-g", "rg1", "-n", "g1",
            "-o", "table")
    assert r.returncode == 0
    assert body_of(fake, "PUT", "/roleAssignments/")["path"].startswith(
        "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.ContainerInstance/containerGroups/g1/"
        "providers/Microsoft.Authorization/roleAssignments/" % SUB)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Principal", "Role", "Scope"]
    assert lines[2].split()[:2] == ["a", "Contributor"] and lines[2].endswith("/containerGroups/g1")
    scope = "/subscriptions/%s/resourceGroups/rg1" % SUB
    r = run(fake, "role", "assignment", "create", "--assignee", "b", "--role", READER, "--scope", scope + "/")
    assert r.returncode == 0
    assert body_of(fake, "PUT", "/roleAssignments/")["path"].startswith(scope + "/providers/")


def test_role_assignment_list_and_delete(fake):
    sp = json.loads(run(fake, "sp", "create", "-n", "ra").stdout)
    for role, extra in (("Reader", []), ("Owner", ["-g", "rg1"]), ("Reader", ["-g", "rg1"])):
        assert run(fake, "role", "assignment", "create", "--assignee", sp["appId"], "--role", role, *extra).returncode == 0
    assert run(fake, "role", "assignment", "create", "--assignee", "other", "--role", "Reader", "-g", "rg1").returncode == 0
    r = run(fake, "role", "assignment", "list", "--assignee", sp["appId"])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert len(got) == 3 and all(a["properties"]["principalId"] == sp["objectId"] for a in got)
    lst = [x for x in fake.reqs("GET", "/roleAssignments") if x["query"].get("$filter")][-1]
    assert lst["query"]["$filter"] == "principalId eq '%s'" % sp["objectId"]  # the appId was resolved
    assert lst["path"] == "/subscriptions/%s/providers/Microsoft.Authorization/roleAssignments" % SUB
    r = run(fake, "role", "assignment", "list", "-g", "rg1", "-o", "table")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 5
    r = run(fake, "role", "assignment", "list", "-g", "rg1", "--role", "reader")
    assert sorted(a["properties"]["principalId"] for a in json.loads(r.stdout)) == sorted([sp["objectId"], "other"])
    # delete by assignee and role: only the one at the exact scope
    r = run(fake, "role", "assignment", "delete", "--assignee", sp["appId"], "--role", "Reader", "-g", "rg1")
    assert r.returncode == 0, r.stderr
    left = [(a["properties"]["principalId"], a["properties"]["roleDefinitionName"], a["properties"]["scope"])
            for a in fake.assignments.values()]
    assert (sp["objectId"], "Reader", "/subscriptions/%s" % SUB) in left
    assert (sp["objectId"], "Reader", "/subscriptions/%s/resourceGroups/rg1" % SUB) not in left
    assert len(left) == 3
    r = run(fake, "role", "assignment", "delete", "--assignee", sp["appId"], "--role", "Reader", "-g", "rg1")
    assert r.returncode == 1 and "No matched assignments" in r.stderr
    ids = [a["id"] for a in fake.assignments.values() if a["properties"]["principalId"] == sp["objectId"]]
    r = run(fake, "role", "assignment", "delete", "--ids", *ids)
    assert r.returncode == 0, r.stderr
    assert {x["path"] for x in fake.reqs("DELETE", "/roleAssignments/")} >= set(ids)
    assert [a["properties"]["principalId"] for a in fake.assignments.values()] == ["other"]


def test_role_assignment_errors(fake):
    for args in (["create", "--role", "Reader"], ["create", "--assignee", "a"],
                 ["create", "--assignee", "a", "--role", "Janitor"],
                 ["create", "--assignee", "a", "--role", "Reader", "--scope", "/subscriptions/x", "-g", "rg1"],
                 ["create", "--assignee", "a", "--role", "Reader", "-n", "g1"],
                 ["create", "--assignee", "a", "--role", "Reader", "--scope", "subscriptions/x"],
                 ["delete"], ["delete", "--ids", "/x", "--assignee", "a"], ["list", "--bogus"]):
        r = run(fake, "role", "assignment", *args)
        assert r.returncode == 2, (args, r.stderr)
    assert fake.requests == []
    r = run(fake, "role", "assignment", "create", "--assignee", "forbidden", "--role", "Reader")
    assert r.returncode == 1 and "(AuthorizationFailed) The client 'x' with object id 'y'" in r.stderr
    r = run(fake, "role", "assignment", "delete", "--ids",
            "/subscriptions/%s/providers/Microsoft.Authorization/roleAssignments/nothere" % SUB)
    assert r.returncode == 0  # ARM answers 204 for a missing assignment


# ---------------------------------------------------------------- exec and attach


def ws_frames(fake, n):
    """The frames the last session received, once there are n: the fake may read the client's last
    frame (its close reply) after the client has exited."""
    deadline = time.time() + 5
    while len(fake.ws[-1]["frames"]) < n and time.time() < deadline:
        time.sleep(0.05)
    return fake.ws[-1]["frames"]


def test_exec_request_and_output(fake):
    fake.add_group("rg1", "g1")
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "echo hello there")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hello there"]
    post = body_of(fake, "POST", "/exec")
    assert post["path"].endswith("/containerGroups/g1/containers/g1/exec")
    assert post["query"]["api-version"] == "2023-05-01"
    assert post["body"] == {"command": "echo hello there", "terminalSize": {"rows": 24, "cols": 80}}
    ws = fake.ws[-1]
    assert ws["headers"]["Sec-WebSocket-Version"] == "13" and ws["headers"]["Host"] == "127.0.0.1:%d" % fake.port
    assert len(base64.b64decode(ws["headers"]["Sec-WebSocket-Key"])) == 16
    assert ws["first"][1] == 1 and ws["first"][3]  # the password went first, as a masked TEXT frame
    assert "Authorization" not in ws["headers"]  # the session password is the only credential sent
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1", "--container-name", "g1", "--exec-command", "fragments")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    ops = [f[1] for f in ws_frames(fake, 2)]
    assert ops == [10, 8], ops  # a pong for the ping, then the close reply


def test_exec_forwards_stdin_and_waits_for_close(fake):
    fake.add_group("rg1", "g1")
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "cat", input="abc\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "abc\ndone\n"  # output after stdin's EOF still arrived
    ws = fake.ws[-1]
    assert [(f[1], f[2], f[3]) for f in ws["frames"]] == [(2, b"abc\n", True)]
    assert not ws["client_closed"]
    big = "".join("line %05d\n" % i for i in range(20000))  # 200 kB: several frames
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "cat", input=big, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == big + "done\n"
    assert all(len(f[2]) <= 65536 for f in fake.ws[-1]["frames"])


def test_exec_errors(fake):
    fake.add_group("rg1", "g1")
    base = ["container", "exec", "-g", "rg1", "-n", "g1", "--exec-command"]
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1")
    assert r.returncode == 2 and "--exec-command" in r.stderr
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "nope", "--exec-command", "ls")
    assert r.returncode == 3 and "(ResourceNotFound)" in r.stderr
    r = run(fake, "container", "exec", "-g", "rg1", "-n", "g1", "--container-name", "c9", "--exec-command", "ls")
    assert r.returncode == 3 and "(ContainerNotFound) The container 'c9'" in r.stderr
    r = run(fake, *base, "fail")
    assert r.returncode == 1 and "close code 1011: the command could not start" in r.stderr
    assert r.stdout == "partial\n"
    r = run(fake, *base, "big")
    assert r.returncode == 1 and "larger than" in r.stderr
    r = run(fake, *base, "drop")
    assert r.returncode == 0 and r.stdout == "bye\n"  # the server ended the stream
    fake.bad_accept = True
    r = run(fake, *base, "echo x")
    assert r.returncode == 1 and "Sec-WebSocket-Accept" in r.stderr and r.stdout == ""


def test_attach_ignores_stdin(fake):
    fake.add_group("rg1", "g1")
    r = run(fake, "container", "attach", "-g", "rg1", "-n", "g1", input="typed\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "line0\nline1\nline2\n"
    post = body_of(fake, "POST", "/attach")
    assert post["path"].endswith("/containers/g1/attach") and post["body"] is None
    assert fake.ws[-1]["frames"] == []  # nothing but the password was sent


# ---------------------------------------------------------------- transport


def test_transport_unix_socket(tmp_path):
    sock = str(tmp_path / "api.sock")
    f = FakeArm(unix_path=sock)
    try:
        (tmp_path / "admin.token").write_text(TOKEN + "\n")
        (tmp_path / "endpoint").write_text("http://127.0.0.1:9\n")  # the socket wins
        f.add_group("rg1", "g1")
        env = {"SKIFF_DATA": str(tmp_path)}
        r = run(None, "container", "show", "-g", "rg1", "-n", "g1", env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["name"] == "g1"
        assert f.reqs("GET", "/subscriptions")[0]["headers"]["Authorization"] == "Bearer " + TOKEN
        r = run(None, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "cat", input="via socket\n",
                env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "via socket\ndone\n"
        assert f.ws[-1]["headers"]["Host"] == "localhost"
        # SKIFF_ENDPOINT still wins over the socket
        r = run(None, "group", "list", env=dict(env, SKIFF_ENDPOINT="http://127.0.0.1:9", SKIFF_TOKEN=TOKEN))
        assert r.returncode == 1 and "127.0.0.1:9" in r.stderr
    finally:
        f.stop()


def _make_pki(d):
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)

    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
       "-subj", "/CN=skiff test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
       "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
    return ctx


def test_transport_https_endpoint_file(tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    f = FakeArm(ssl_ctx=_make_pki(str(pki)))
    try:
        (tmp_path / "admin.token").write_text(TOKEN + "\n")
        (tmp_path / "endpoint").write_text(f.url + "\n")
        f.add_group("rg1", "g1")
        env = {"SKIFF_DATA": str(tmp_path)}
        r = run(None, "container", "show", "-g", "rg1", "-n", "g1", env=env)
        assert r.returncode == 0, r.stderr  # pki/ca.pem was trusted without being asked
        r = run(None, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "cat", input="over tls\n",
                env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "over tls\ndone\n"
        r = run(None, "container", "attach", "-g", "rg1", "-n", "g1", env=env)
        assert r.returncode == 0 and r.stdout == "line0\nline1\nline2\n"
        # SKIFF_ENDPOINT + SKIFF_CA_BUNDLE work the same way
        r = run(None, "group", "list", env={"SKIFF_ENDPOINT": f.url, "SKIFF_TOKEN": TOKEN,
                                            "SKIFF_CA_BUNDLE": str(pki / "ca.pem")})
        assert r.returncode == 0, r.stderr
        # another CA bundle replaces the local one: the server's certificate is not trusted
        other = tmp_path / "other"
        other.mkdir()
        _make_pki(str(other))
        r = run(None, "group", "list", env=dict(env, SKIFF_CA_BUNDLE=str(other / "ca.pem")))
        assert r.returncode == 1 and "certificate" in r.stderr.lower()
        n = len(f.ws)
        r = run(None, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", "echo x",
                env={"SKIFF_ENDPOINT": f.url, "SKIFF_TOKEN": TOKEN, "SKIFF_CA_BUNDLE": str(other / "ca.pem"),
                     "SKIFF_SUBSCRIPTION": SUB, "SKIFF_DATA": str(tmp_path)})
        assert r.returncode == 1 and "certificate" in r.stderr.lower()
        assert len(f.ws) == n
    finally:
        f.stop()


def _pty_exec(fake, cmd):
    """Starts `skiff container exec` with a pseudo-terminal (30x100) as stdin and stdout."""
    import fcntl
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    before = termios.tcgetattr(slave)
    e = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    e.update(SKIFF_ENDPOINT=fake.url, SKIFF_TOKEN=TOKEN)
    p = subprocess.Popen([SKIFF, "container", "exec", "-g", "rg1", "-n", "g1", "--exec-command", cmd], stdin=slave,
                         stdout=slave, stderr=subprocess.PIPE, env=e)
    return p, master, slave, before


def _pty_read_until(master, text, timeout=10):
    import select as sel

    out = b""
    deadline = time.time() + timeout
    while text not in out and time.time() < deadline:
        r, _, _ = sel.select([master], [], [], 0.1)
        if r:
            out += os.read(master, 4096)
    assert text in out, out
    return out


def test_exec_tty_raw_mode_restored(fake):
    import termios

    fake.add_group("rg1", "g1")
    p, master, slave, before = _pty_exec(fake, "cat")
    try:
        # raw mode: a keystroke goes out at once (no line buffering, no local echo), ^C included
        deadline = time.time() + 5
        while termios.tcgetattr(slave)[3] & termios.ICANON and time.time() < deadline:
            time.sleep(0.02)
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
        os.write(master, b"k\x03")
        out = _pty_read_until(master, b"done")
        assert out.startswith(b"k\x03") and b"kk" not in out  # the fake's echo only
        assert p.wait(10) == 0, p.stderr.read()
        assert termios.tcgetattr(slave) == before
        assert body_of(fake, "POST", "/exec")["body"]["terminalSize"] == {"rows": 30, "cols": 100}
        assert [f[2] for f in fake.ws[-1]["frames"]] in ([b"k\x03"], [b"k", b"\x03"])
    finally:
        p.kill()
        p.wait()
        os.close(master)
        os.close(slave)


def test_exec_tty_restored_on_signal(fake):
    import termios

    fake.add_group("rg1", "g1")
    p, master, slave, before = _pty_exec(fake, "cat")
    try:
        deadline = time.time() + 5
        while (not fake.ws or "first" not in fake.ws[-1]) and time.time() < deadline:
            time.sleep(0.02)
        os.write(master, b"z")
        _pty_read_until(master, b"z")
        assert termios.tcgetattr(slave) != before
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == -signal.SIGTERM
        assert termios.tcgetattr(slave) == before
    finally:
        p.kill()
        p.wait()
        os.close(master)
        os.close(slave)
