"""End-to-end: malformed and hostile requests get ARM errors, and skiffd stays up."""

import json
import socket

from conftest import API, group_body, image, needs_root

pytestmark = needs_root


def err(body):
    return body["error"]["code"]


def test_authentication(skiffd):
    p = f"/subscriptions/{skiffd.sub}?api-version=2022-12-01"
    st, body, hdrs = skiffd.request("GET", p, headers={})
    assert st == 401 and err(body) == "AuthenticationFailed" and "www-authenticate" in hdrs
    st, body, _ = skiffd.request("GET", p, headers={"Authorization": "Bearer " + "x" * 64})
    assert st == 401 and err(body) == "InvalidAuthenticationToken"
    st, body, _ = skiffd.request("GET", p, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert st == 401


def test_arm_habits(skiffd):
    skiffd.ensure_rg("Habits")
    st, body, _ = skiffd.request("GET", f"/subscriptions/{skiffd.sub}")
    assert st == 400 and err(body) == "MissingApiVersionParameter"
    # case-insensitive routes, collapsed slashes, any api-version
    path = (f"//SUBSCRIPTIONS/{skiffd.sub}//resourcegroups/habits/PROVIDERS/microsoft.containerinstance/"
            f"containergroups/h1?api-version=2018-10-01")
    st, body, _ = skiffd.request("PUT", path, group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    assert st == 201, body
    assert body["id"] == skiffd.cg_path("Habits", "h1")  # canonical id and first casing of the rg
    st, body, _ = skiffd.request("GET", skiffd.cg_path("HABITS", "H1") + "?api-version=2023-05-01")
    assert st == 200 and body["name"] == "h1"
    skiffd.delete_group("habits", "h1")
    st, body, _ = skiffd.request("GET", f"/subscriptions/{skiffd.sub}/resourcegroups/nope/providers/"
                                        f"Microsoft.ContainerInstance/containerGroups/x?api-version={API}")
    assert st == 404 and err(body) == "ResourceGroupNotFound"
    st, body, _ = skiffd.request("GET", f"/subscriptions/not-mine?api-version={API}")
    assert st == 404 and err(body) == "SubscriptionNotFound"


def test_malformed_bodies(skiffd):
    skiffd.ensure_rg("bad")
    url = skiffd.cg_path("bad", "b1") + "?api-version=" + API
    cases = [
        (b"{", 400, "InvalidRequestContent"),
        (b"", 400, "InvalidRequestContent"),
        (b"[1,2]", 400, "InvalidRequestContent"),
        (b"\xff\xfe garbage", 400, "InvalidRequestContent"),
        (b'{"location":"local","location":"x"}', 400, "InvalidRequestContent"),
        (json.dumps({"location": "local", "properties": {"osType": "Linux", "containers": "no"}}).encode(), 400,
         "InvalidRequestContent"),
        (json.dumps({"location": "local", "properties": {"osType": "Linux", "containers": [
            {"name": "c1", "properties": {"image": "busybox", "resources": {"requests": {"cpu": 1e308,
                                                                                      "memoryInGB": 1}}}}]}}).encode(),
         400, "ResourceRequestsExceedMaxAllowed"),
        (json.dumps({"location": "local", "properties": {"osType": "Linux", "containers": [
            {"name": "c1", "properties": {"image": "busybox", "resources": {"requests": {"cpu": 30,
                                                                                      "memoryInGB": 200}}}}]}}).encode(),
         409, "ServiceUnavailable"),
        (("[" * 100000 + "]" * 100000).encode(), 400, "InvalidRequestContent"),
        (b'{"location":"local","properties":' + b'{"a":' * 5000 + b"1" + b"}" * 5001, 400, None),
        (b" " * (2 * 1024 * 1024), 413, "RequestEntityTooLarge"),
    ]
    for raw, status, code in cases:
        st, body, _ = skiffd.request("PUT", url, raw, headers={"Authorization": "Bearer " + skiffd.token,
                                                               "Content-Type": "application/json"})
        assert st == status, (raw[:80], st, body)
        assert isinstance(body, dict) and "error" in body, body
        if code:
            assert err(body) == code, (raw[:80], body)
    # unknown properties are ignored, names are read case-insensitively
    body = {"LOCATION": "local", "whatever": {"x": 1}, "properties": {"OsType": "Linux", "unknown": [1], "containers": [
        {"name": "c1", "properties": {"IMAGE": image("busybox:latest"), "command": ["sleep", "100000"],
                                      "resources": {"requests": {"cpu": 0.5, "memoryInGb": 0.25}}}}]}}
    st, out, _ = skiffd.request("PUT", url, body)
    assert st == 201, out
    assert "whatever" not in out and "unknown" not in out["properties"]
    skiffd.delete_group("bad", "b1")
    # still serving
    assert skiffd.request("GET", "/subscriptions?api-version=1")[0] == 200


def test_raw_garbage_on_the_socket(skiffd):
    for payload in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\x00\x01\x02\x03" * 1000):
        s = socket.create_connection(("127.0.0.1", skiffd.port), timeout=5)
        try:
            s.sendall(payload)
            try:
                s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
    assert skiffd.request("GET", "/subscriptions?api-version=1")[0] == 200
