"""Virtual networks, subnets and private DNS zones: groups of one virtual network reach each other
by name across its subnets, another virtual network cannot reach them, and the A and PTR records
follow every address change with nothing stale after a delete or a crash.

Each test skiffd gets its own address spaces (10.248.N.0/24 and 10.249.N.0/24, N being its test
network's number), so instances running side by side never overlap. Traffic stays between
network namespaces skiffd created and the host's loopback."""

import time

from conftest import group_body, image
from test_public import put_group, wait_dig, web

API = "?api-version=2023-09-01"
ZONE_API = "?api-version=2020-06-01"
DELEGATION = [{"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}]


def net_path(d, rg, *rest):
    return f"/subscriptions/{d.sub}/resourceGroups/{rg}/providers/Microsoft.Network/" + "/".join(rest)


def put(d, path, body, api=API):
    st, out, _ = d.request("PUT", path + api, body)
    assert st in (200, 201), (path, st, out)
    return out


def make_vnets(d, rg):
    n = int(d.bridge[3:])
    a = put(d, net_path(d, rg, "virtualNetworks", "vnet-a"), {
        "location": "local",
        "properties": {"addressSpace": {"addressPrefixes": [f"10.248.{n}.0/24"]},
                       "subnets": [{"name": "front", "properties": {"addressPrefix": f"10.248.{n}.0/26",
                                                                      "delegations": DELEGATION}},
                                   {"name": "back", "properties": {"addressPrefix": f"10.248.{n}.64/26",
                                                                     "delegations": DELEGATION}}]}})
    b = put(d, net_path(d, rg, "virtualNetworks", "vnet-b"), {
        "location": "local",
        "properties": {"addressSpace": {"addressPrefixes": [f"10.249.{n}.0/24"]},
                       "subnets": [{"name": "only", "properties": {"addressPrefix": f"10.249.{n}.0/26",
                                                                     "delegations": DELEGATION}}]}})
    put(d, net_path(d, rg, "privateDnsZones", "corp.test"), {"location": "global"}, ZONE_API)
    put(d, net_path(d, rg, "privateDnsZones", "corp.test", "virtualNetworkLinks", "link-a"),
        {"location": "global", "properties": {"virtualNetwork": {"id": a["id"]}, "registrationEnabled": True}},
        ZONE_API)
    return n, a, b


def subnet_id(vnet, name):
    return vnet["id"] + "/subnets/" + name


def private_group(d, rg, name, subnet, cmd=None, **extra):
    c = web() if cmd is None else ("c1", image("busybox:latest"), ["sh", "-c", cmd], 0.5, 0.25)
    body = group_body([c], policy="Always" if cmd is None else "Never", subnetIds=[{"id": subnet}],
                      ipAddress={"type": "Private", "ports": [{"port": 80, "protocol": "TCP"}]} if cmd is None
                      else None, **extra)
    if body["properties"].get("ipAddress") is None:
        del body["properties"]["ipAddress"]
    st, out, _ = put_group(d, rg, name, body)
    assert st in (200, 201), out
    return out


def private_ip(d, rg, name):
    st, body = d.get_group(rg, name)
    assert st == 200
    return body["properties"]["ipAddress"]["ip"]


def run_in(d, rg, name, subnet, script, **extra):
    private_group(d, rg, name, subnet, cmd=script, **extra)
    d.wait_state(rg, name, ("Succeeded", "Failed"), timeout=60)
    out = d.logs(rg, name, "c1")
    d.delete_group(rg, name)
    return out


def reverse(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def test_virtual_network_reach_isolation_and_dns(skiffd):
    d = skiffd
    d.ensure_rg("vnet")
    n, a, b = make_vnets(d, "vnet")
    private_group(d, "vnet", "app-one", subnet_id(a, "front"))
    private_group(d, "vnet", "app-two", subnet_id(a, "back"))
    d.wait_state("vnet", "app-one", "Running")
    d.wait_state("vnet", "app-two", "Running")
    ip1, ip2 = private_ip(d, "vnet", "app-one"), private_ip(d, "vnet", "app-two")
    assert ip1.startswith(f"10.248.{n}.") and int(ip1.split(".")[3]) < 64
    assert ip2.startswith(f"10.248.{n}.") and int(ip2.split(".")[3]) >= 64

    # forward and reverse records, from the host's view of skiff's DNS
    wait_dig(d, "app-one.corp.test", [ip1])
    wait_dig(d, "app-two.corp.test", [ip2])
    wait_dig(d, reverse(ip1), ["app-one.corp.test."], "PTR")

    # the same records as ARM record sets, as az network private-dns record-set reads them
    zone = net_path(d, "vnet", "privateDnsZones", "corp.test")
    st, sets, _ = d.request("GET", zone + "/ALL" + ZONE_API)
    assert st == 200, sets
    got = {(r["type"].rsplit("/", 1)[1], r["name"]): r["properties"] for r in sets["value"]}
    assert set(got) == {("SOA", "@"), ("A", "app-one"), ("A", "app-two")}, got
    assert got[("A", "app-one")]["aRecords"] == [{"ipv4Address": ip1}], got
    assert got[("A", "app-one")]["isAutoRegistered"] is True and got[("A", "app-one")]["fqdn"] == "app-one.corp.test."
    st, one, _ = d.request("GET", zone + "/A/app-two" + ZONE_API)
    assert st == 200 and one["properties"]["aRecords"] == [{"ipv4Address": ip2}], one
    st, z, _ = d.request("GET", zone + ZONE_API)
    assert st == 200 and z["properties"]["numberOfRecordSets"] == 3, z
    st, err, _ = d.request("PUT", zone + "/A/manual" + ZONE_API,
                           {"properties": {"ttl": 60, "aRecords": [{"ipv4Address": "10.0.0.9"}]}})
    assert st == 400 and err["error"]["code"] == "RecordSetsNotSupported", (st, err)
    st, err, _ = d.request("GET", zone + "/A/nobody" + ZONE_API)
    assert st == 404, (st, err)

    # inside vnet-a: the name resolves through skiff's DNS and the other subnet is reachable;
    # resolv.conf carries dnsConfig
    script = ("nslookup app-two.corp.test 2>&1 | tail -n 3; "
              f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc {ip2} 80 | grep -q ocifix && echo REACHED; "
              "cat /etc/resolv.conf")
    out = run_in(d, "vnet", "probe-a", subnet_id(a, "front"), script,
                 dnsConfig={"nameServers": ["127.0.0.53"], "searchDomains": "corp.test", "options": "ndots:2"})
    assert ip2 in out and "REACHED" in out, out
    gw = f"10.248.{n}.1"
    assert f"nameserver {gw}" in out and "nameserver 127.0.0.53" in out, out
    assert "search corp.test" in out and "options ndots:2" in out, out

    # from vnet-b neither the address nor the zone is reachable
    script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 4 nc {ip1} 80 | grep -q ocifix && echo REACHED; "
              f"nslookup app-one.corp.test 10.249.{n}.1 2>&1 | grep -c '{ip1}'; echo done")
    out = run_in(d, "vnet", "probe-b", subnet_id(b, "only"), script)
    assert "REACHED" not in out and out.split()[-2:] == ["0", "done"], out
    # nor from the default network
    script = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 4 nc {ip1} 80 | grep -q ocifix && echo REACHED; echo done"
    put_group(d, "vnet", "probe-default", group_body([("c1", image("busybox:latest"), ["sh", "-c", script])],
                                                     policy="Never"))
    d.wait_state("vnet", "probe-default", ("Succeeded", "Failed"))
    out = d.logs("vnet", "probe-default", "c1")
    d.delete_group("vnet", "probe-default")
    assert "REACHED" not in out and "done" in out, out

    # the records follow a new address: the group moves to the other subnet
    private_group(d, "vnet", "app-one", subnet_id(a, "back"))
    deadline = time.time() + 60
    while time.time() < deadline and private_ip(d, "vnet", "app-one") == ip1:
        time.sleep(0.2)
    d.wait_state("vnet", "app-one", "Running")
    new1 = private_ip(d, "vnet", "app-one")
    assert new1 != ip1 and int(new1.split(".")[3]) >= 64
    wait_dig(d, "app-one.corp.test", [new1])
    wait_dig(d, reverse(new1), ["app-one.corp.test."], "PTR")
    wait_dig(d, reverse(ip1), [], "PTR")

    # a crash, then a delete: nothing stale
    d.kill9()
    d.start()
    wait_dig(d, "app-one.corp.test", [new1])
    d.delete_group("vnet", "app-one")
    wait_dig(d, "app-one.corp.test", [])
    wait_dig(d, reverse(new1), [], "PTR")
    d.delete_group("vnet", "app-two")
    wait_dig(d, "app-two.corp.test", [])

    # the network resources go last
    for p, api in ((net_path(d, "vnet", "privateDnsZones", "corp.test", "virtualNetworkLinks", "link-a"), ZONE_API),
                   (net_path(d, "vnet", "privateDnsZones", "corp.test"), ZONE_API),
                   (net_path(d, "vnet", "virtualNetworks", "vnet-a"), API),
                   (net_path(d, "vnet", "virtualNetworks", "vnet-b"), API)):
        st, out, _ = d.request("DELETE", p + api)
        assert st in (200, 202, 204), (p, st, out)


def test_group_subnet_errors(skiffd):
    d = skiffd
    d.ensure_rg("vnerr")
    n, a, b = make_vnets(d, "vnerr")
    # a subnet that does not exist
    body = group_body([web()], subnetIds=[{"id": subnet_id(a, "missing")}],
                      ipAddress={"type": "Private", "ports": [{"port": 80}]})
    st, out, _ = put_group(d, "vnerr", "g", body)
    assert st in (400, 404) and out["error"]["code"] in ("SubnetNotFound", "InvalidSubnetId"), out
    # a public address in a virtual network
    body = group_body([web()], subnetIds=[{"id": subnet_id(a, "front")}],
                      ipAddress={"type": "Public", "ports": [{"port": 80}]})
    st, out, _ = put_group(d, "vnerr", "g", body)
    assert st == 400, out
    # a subnet in use cannot go
    private_group(d, "vnerr", "user", subnet_id(a, "front"))
    st, out, _ = d.request("DELETE", net_path(d, "vnerr", "virtualNetworks", "vnet-a", "subnets", "front") + API)
    assert st == 409, out
    d.delete_group("vnerr", "user")
    for p, api in ((net_path(d, "vnerr", "privateDnsZones", "corp.test", "virtualNetworkLinks", "link-a"), ZONE_API),
                   (net_path(d, "vnerr", "privateDnsZones", "corp.test"), ZONE_API),
                   (net_path(d, "vnerr", "virtualNetworks", "vnet-a"), API),
                   (net_path(d, "vnerr", "virtualNetworks", "vnet-b"), API)):
        st, out, _ = d.request("DELETE", p + api)
        assert st in (200, 202, 204), (p, st, out)
