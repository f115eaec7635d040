"""HTTPS, the token service, role checks, and exec/attach WebSockets against a real skiffd."""

import json
import os
import ssl
import time
import urllib.parse
import uuid

import pytest

from conftest import API, group_body, image, state

websocket = pytest.importorskip("websocket")

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
SCOPE = "https://management.core.windows.net//.default"


def make_sp(d, name):
    st, out, _ = d.request("POST", "/skiff/servicePrincipals?api-version=1", {"displayName": name})
    assert st == 201, out
    return out


def token(d, app, secret, scope=SCOPE, path="/adfs/oauth2/token"):
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": app, "client_secret": secret,
                                   "scope": scope, "client_info": "1"})
    st, out, _ = d.request("POST", path, form, {"Content-Type": "application/x-www-form-urlencoded"})
    return st, out


def assign(d, scope, role, principal):
    st, out, _ = d.request("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
                           "?api-version=2022-04-01",
                           {"properties": {"roleDefinitionId": role, "principalId": principal}})
    assert st == 201, out
    return out


def as_token(d, tok, method, path, body=None):
    hdrs = {"Authorization": "Bearer " + tok}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
        body = json.dumps(body)
    st, data, h = d.raw(method, path, body, hdrs)
    return st, (json.loads(data) if data else None), h


def test_tls_only_on_tcp_and_plain_on_the_socket(skiffd):
    # the endpoint is https, with a certificate for localhost and 127.0.0.1 signed by the local CA
    assert skiffd.endpoint.startswith("https://")
    for host in ("localhost", "127.0.0.1"):
        c = skiffd.connect(host)
        c.request("GET", "/metadata/endpoints?api-version=2015-01-01")
        r = c.getresponse()
        assert r.status == 200
        meta = json.loads(r.read())
        assert meta["authentication"]["loginEndpoint"] == f"https://{host}:{skiffd.port}/adfs"
        c.close()
    # an untrusting client fails the handshake
    c = skiffd.connect()
    c._context = ssl.create_default_context()
    with pytest.raises(ssl.SSLError):
        c.request("GET", "/metadata/endpoints?api-version=1")
        c.getresponse()
    # plain HTTP on the TCP port gets nothing useful
    import socket
    s = socket.create_connection(("127.0.0.1", skiffd.port), timeout=5)
    s.sendall(b"GET /subscriptions?api-version=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        data = b""
    s.close()
    assert b"HTTP/1.1 200" not in data
    # the unix socket speaks plain HTTP, is private to root, and still needs the token
    assert oct(os.stat(skiffd.socket).st_mode & 0o777) == "0o600"
    u = skiffd.unix_connect()
    u.request("GET", "/subscriptions?api-version=2019-11-01")
    r = u.getresponse()
    assert r.status == 401 and r.getheader("WWW-Authenticate", "").startswith("Bearer")
    r.read()
    u.request("GET", "/subscriptions?api-version=2019-11-01", headers={"Authorization": "Bearer " + skiffd.token})
    r = u.getresponse()
    assert r.status == 200 and json.loads(r.read())["value"][0]["subscriptionId"] == skiffd.sub


def test_token_service_and_roles(skiffd):
    d = skiffd
    d.ensure_rg("authz-a")
    d.ensure_rg("authz-b")
    d.put_group("authz-a", "ga", group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    d.put_group("authz-b", "gb", group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    reader, contrib = make_sp(d, "e2e-reader"), make_sp(d, "e2e-contrib")
    assign(d, d.rg_path("authz-a"), READER, reader["appId"])
    assign(d, d.rg_path("authz-b"), "Contributor", contrib["objectId"])

    # the OpenID documents and both token endpoints
    st, oidc, _ = d.request("GET", "/adfs/.well-known/openid-configuration")
    assert st == 200 and oidc["token_endpoint"].endswith("/adfs/oauth2/token")
    st, oidc2, _ = d.request("GET", f"/{reader['tenant']}/v2.0/.well-known/openid-configuration")
    assert st == 200 and oidc2["token_endpoint"].endswith(f"/{reader['tenant']}/oauth2/v2.0/token")
    st, tr = token(d, reader["appId"], reader["password"])
    assert st == 200 and tr["expires_in"] > 0 and tr["token_type"] == "Bearer", tr
    st, tc = token(d, contrib["appId"], contrib["password"], f"https://localhost:{d.port}/.default",
                   f"/{contrib['tenant']}/oauth2/v2.0/token")
    assert st == 200, tc
    st, err = token(d, reader["appId"], "not-the-secret")
    assert st == 401 and err["error"] == "invalid_client"
    tr, tc = tr["access_token"], tc["access_token"]
    # the token is an RS256 JWT with Azure's claims
    import base64
    hdr, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in tr.split(".")[:2])
    assert hdr["alg"] == "RS256"
    for k in ("aud", "iss", "iat", "nbf", "exp", "tid", "oid", "appid"):
        assert k in claims, k
    assert claims["appid"] == reader["appId"] and claims["oid"] == reader["objectId"]

    # az login reads the subscriptions: both see it, since both hold a role in it
    st, subs, _ = as_token(d, tr, "GET", "/subscriptions?api-version=2019-11-01")
    assert st == 200 and [s["subscriptionId"] for s in subs["value"]] == [d.sub]
    st, tenants, _ = as_token(d, tr, "GET", "/tenants?api-version=2019-11-01")
    assert st == 200 and tenants["value"][0]["tenantId"] == reader["tenant"]

    # the reader reads a, is refused writes, exec, and everything of b
    d.wait_state("authz-a", "ga", "Running")
    st, g, _ = as_token(d, tr, "GET", d.cg_path("authz-a", "ga") + "?api-version=" + API)
    assert st == 200 and g["name"] == "ga"
    st, logs, _ = as_token(d, tr, "GET", d.cg_path("authz-a", "ga") + "/containers/c1/logs?api-version=" + API)
    assert st == 200
    for method, path, body in (("PUT", d.cg_path("authz-a", "new"), group_body([("c1", image("busybox:latest"),
                                                                                    None)])),
                               ("DELETE", d.cg_path("authz-a", "ga"), None),
                               ("POST", d.cg_path("authz-a", "ga") + "/restart", None),
                               ("POST", d.cg_path("authz-a", "ga") + "/containers/c1/exec",
                                {"command": "/bin/sh", "terminalSize": {"rows": 24, "cols": 80}}),
                               ("GET", d.cg_path("authz-b", "gb"), None)):
        st, out, _ = as_token(d, tr, method, path + "?api-version=" + API, body)
        assert st == 403 and out["error"]["code"] == "AuthorizationFailed", (method, path, st, out)
    st, lst, _ = as_token(d, tr, "GET", f"/subscriptions/{d.sub}/providers/Microsoft.ContainerInstance/"
                                        f"containerGroups?api-version={API}")
    assert st == 200 and [g["name"] for g in lst["value"]] == ["ga"]
    assert state(d.get_group("authz-a", "ga")[1]) == "Running"  # the refused DELETE left it alone

    # the contributor on b may stop b, not a
    st, _, _ = as_token(d, tc, "POST", d.cg_path("authz-b", "gb") + "/stop?api-version=" + API)
    assert st == 204
    d.wait_state("authz-b", "gb", "Stopped")
    st, out, _ = as_token(d, tc, "POST", d.cg_path("authz-a", "ga") + "/stop?api-version=" + API)
    assert st == 403

    # bad and foreign tokens
    for bad in ("garbage", tr[:-4] + ("AAAA" if not tr.endswith("AAAA") else "BBBB"), d.token + "x"):
        st, out, h = as_token(d, bad, "GET", f"/subscriptions/{d.sub}?api-version=2019-11-01")
        assert st == 401 and out["error"]["code"] == "InvalidAuthenticationToken", out
        assert h["www-authenticate"].startswith("Bearer ")
    # a deleted principal's token stops working at once
    st, _, _ = d.request("DELETE", f"/skiff/servicePrincipals/{reader['appId']}?api-version=1")
    assert st == 200
    st, out, _ = as_token(d, tr, "GET", d.cg_path("authz-a", "ga") + "?api-version=" + API)
    assert st == 401
    st, _, _ = d.request("DELETE", f"/skiff/servicePrincipals/{contrib['appId']}?api-version=1")
    d.delete_group("authz-a", "ga")
    d.delete_group("authz-b", "gb")


def ws_session(d, rg, name, container, what, body=None):
    st, out, _ = d.request("POST", d.cg_path(rg, name) + f"/containers/{container}/{what}?api-version={API}", body)
    assert st == 200, out
    assert out["webSocketUri"].startswith(f"wss://127.0.0.1:{d.port}/skiff/sessions/")
    ws = websocket.create_connection(out["webSocketUri"], sslopt={"ca_certs": d.ca}, timeout=20)
    return ws, out


def read_until(ws, needle, timeout=20):
    got = b""
    deadline = time.time() + timeout
    while needle not in got and time.time() < deadline:
        try:
            op, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if op == websocket.ABNF.OPCODE_CLOSE:
            break
        got += data if isinstance(data, bytes) else data.encode()
    return got


def test_exec_and_attach(skiffd):
    d = skiffd
    d.ensure_rg("wsx")
    d.put_group("wsx", "g", group_body([("c1", image("busybox:latest"),
                                         ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"])]))
    d.wait_state("wsx", "g", "Running")

    # exec with arguments, a pty of the asked size, and the process's end closing the socket
    ws, out = ws_session(d, "wsx", "g", "c1", "exec",
                         {"command": "/bin/sh -c 'echo exec-marker; stty size; tty'",
                          "terminalSize": {"rows": 33, "cols": 101}})
    ws.send(out["password"])
    got = read_until(ws, b"/dev/pts/")
    assert b"exec-marker" in got and b"33 101" in got, got
    ws.close()

    # interactive: input goes to the process, its echo and output come back
    ws, out = ws_session(d, "wsx", "g", "c1", "exec", {"command": "/bin/sh", "terminalSize": {"rows": 24, "cols": 80}})
    ws.send(out["password"])
    ws.send_binary(b"echo $((6*7))-interactive\r")
    assert b"42-interactive" in read_until(ws, b"42-interactive")
    ws.send_binary(b"exit\r")
    read_until(ws, b"never-there", timeout=5)
    ws.close()

    # a password works once
    st, out, _ = d.request("POST", d.cg_path("wsx", "g") + f"/containers/c1/exec?api-version={API}",
                           {"command": "true"})
    uri, pw = out["webSocketUri"], out["password"]
    ws = websocket.create_connection(uri, sslopt={"ca_certs": d.ca}, timeout=10)
    ws.send("wrong-password")
    assert read_until(ws, b"x", timeout=5) == b""
    ws.close()
    # a wrong try used the session up: the right password is too late now
    with pytest.raises(websocket.WebSocketBadStatusException):
        ws = websocket.create_connection(uri, sslopt={"ca_certs": d.ca}, timeout=10)
        ws.send(pw)

    # attach streams the container's output as it comes
    ws, out = ws_session(d, "wsx", "g", "c1", "attach")
    ws.send(out["password"])
    got = read_until(ws, b"tick-", timeout=10)
    first = int(got.split(b"tick-")[1].split(b"\n")[0].strip() or b"0")
    got = read_until(ws, b"tick-%d" % (first + 3), timeout=10)
    assert b"tick-%d" % (first + 3) in got
    ws.close()

    # the streams come from the group's monitor: after skiffd is killed and restarted, attach and
    # exec still reach the same container
    d.kill9()
    d.start()
    ws, out = ws_session(d, "wsx", "g", "c1", "attach")
    ws.send(out["password"])
    assert b"tick-" in read_until(ws, b"tick-", timeout=10)
    ws.close()
    ws, out = ws_session(d, "wsx", "g", "c1", "exec", {"command": "cat /proc/1/cmdline"})
    ws.send(out["password"])
    assert b"tick-" in read_until(ws, b"tick-")
    ws.close()

    # exec into a missing container, and into a stopped group
    st, out, _ = d.request("POST", d.cg_path("wsx", "g") + f"/containers/nope/exec?api-version={API}",
                           {"command": "true"})
    assert st == 404 and out["error"]["code"] == "ContainerNotFound"
    st, _, _ = d.request("POST", d.cg_path("wsx", "g") + f"/stop?api-version={API}")
    st, out, _ = d.request("POST", d.cg_path("wsx", "g") + f"/containers/c1/exec?api-version={API}",
                           {"command": "true"})
    assert st == 409, out
    d.delete_group("wsx", "g")
