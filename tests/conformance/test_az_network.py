"""The stock Azure CLI's network commands against a real skiffd over HTTPS.

Virtual networks and subnets (`az network vnet`), private DNS zones, links and their record sets
(`az network private-dns`), containers placed in a subnet (`az container create --file` with
`subnetIds`) and containers given a public address with a DNS name label (`az container create
--ip-address Public --dns-name-label`). Each check compares what az printed with the server's
state read over the admin socket, with what skiff's DNS server answers, or with what a container
printed.

Debian 12's azure-cli 2.45 wants the network SDK's 2022-01-01 models for its default (`latest`)
API profile, and Debian's python3-azure lacks them: every `az network` command, and `az container
create --vnet/--subnet` (which reads the subnet through that SDK), fail inside az before sending
anything. The network commands therefore run from a cloud registered with the `2020-09-01-hybrid`
profile (network API 2018-11-01, which Debian ships); there `az network vnet subnet update` still
misses its SDK module, so delegations are given at `subnet create`. The container commands, bound
to no profile, run from a cloud with the default one.

The address spaces are 10.250.N.0/24 and 10.251.N.0/24, N being the test skiffd's network number
(the e2e tests use 10.248 and 10.249), so no two test instances overlap. Traffic goes only to the
test skiffd's loopback public pool and DNS address and between namespaces it created.
"""

import ipaddress
import os
import subprocess
import urllib.request

import pytest
import yaml

from conformance_lib import AZ, Az, image

pytestmark = pytest.mark.skipif(AZ is None, reason="az (Debian package azure-cli) is not installed; "
                                                   "scripts/install-deps.sh --test installs it")

RG = "conf-net"
ZONE = "corp-az.internal"
DELEGATION = "Microsoft.ContainerInstance/containerGroups"
API = "?api-version=2023-09-01"
NET_PROFILE = "2020-09-01-hybrid"


def logged_in(skiffd, sp, tmp, profile=None):
    a = Az(skiffd, tmp)
    a.register(full=True, profile=profile)
    a.login(sp)
    return a


@pytest.fixture(scope="module")
def az(skiffd, owner_sp, tmpdir_mod):
    """az (default profile) logged in as the subscription-wide Contributor: the container commands."""
    skiffd.ensure_rg(RG)
    return logged_in(skiffd, owner_sp, tmpdir_mod)


@pytest.fixture(scope="module")
def aznet(skiffd, owner_sp, tmpdir_mod):
    """az with the network profile Debian's SDK can serve, as the same principal: the network commands."""
    skiffd.ensure_rg(RG)
    return logged_in(skiffd, owner_sp, tmpdir_mod, NET_PROFILE)


@pytest.fixture(scope="module")
def n(skiffd):
    return int(skiffd.bridge[3:])


def net_path(d, *rest):
    return f"/subscriptions/{d.sub}/resourceGroups/{RG}/providers/Microsoft.Network/" + "/".join(rest)


def server_get(d, path):
    st, out, _ = d.request("GET", path + API)
    return st, out


def dig(d, name):
    """The A records skiff's DNS server gives for name."""
    out = subprocess.run(["dig", "+short", "+time=2", "+tries=2", "@" + d.dns, name, "A"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.split())


def az_fails(a, *args):
    """Runs az expecting a refusal; its stderr."""
    p = a.run(*args, check=False)
    assert p.returncode != 0, f"az {' '.join(args)} succeeded: {p.stdout}"
    return p.stderr


def container_create(a, name, *args):
    return a.json("container", "create", "-g", RG, "-n", name, "--cpu", "0.5", "--memory", "0.25", *args)


def yaml_group(tmp, name, img, command, subnet, policy="Always", ports=(80,)):
    """A group file for `az container create --file` that places the group in subnet (an id)."""
    doc = {
        "apiVersion": "2021-10-01",
        "name": name,
        "type": "Microsoft.ContainerInstance/containerGroups",
        "properties": {
            "osType": "Linux",
            "restartPolicy": policy,
            "containers": [{"name": "main", "properties": {
                "image": img, "command": command,
                "ports": [{"port": p, "protocol": "TCP"} for p in ports],
                "resources": {"requests": {"cpu": 0.5, "memoryInGb": 0.25}}}}],
            "ipAddress": {"type": "Private", "ports": [{"port": p, "protocol": "TCP"} for p in ports]},
            "subnetIds": [{"id": subnet}],
        },
    }
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return path


def subnet_of(aznet, vnet, name):
    return aznet.json("network", "vnet", "subnet", "show", "-g", RG, "--vnet-name", vnet, "-n", name)["id"]


def record_names(aznet):
    return sorted(r["name"] for r in aznet.json("network", "private-dns", "record-set", "list", "-g", RG, "-z", ZONE))


# --- virtual networks and subnets ------------------------------------------------------------------

def test_vnet_create_show_list(aznet, skiffd, n):
    out = aznet.json("network", "vnet", "create", "-g", RG, "-n", "vnet-az", "--location", "local",
                     "--address-prefixes", f"10.250.{n}.0/24", "--subnet-name", "plain",
                     "--subnet-prefixes", f"10.250.{n}.128/26")
    printed = out["newVNet"]
    st, real = server_get(skiffd, net_path(skiffd, "virtualNetworks", "vnet-az"))
    assert st == 200, real
    assert printed["id"].lower() == real["id"].lower()
    assert printed["addressSpace"]["addressPrefixes"] == [f"10.250.{n}.0/24"]
    assert real["properties"]["addressSpace"]["addressPrefixes"] == [f"10.250.{n}.0/24"]
    assert [x["name"] for x in printed["subnets"]] == ["plain"]
    assert printed["provisioningState"] == "Succeeded"

    shown = aznet.json("network", "vnet", "show", "-g", RG, "-n", "vnet-az")
    assert shown["id"].lower() == real["id"].lower()
    assert shown["subnets"][0]["addressPrefix"] == f"10.250.{n}.128/26"
    listed = aznet.json("network", "vnet", "list", "-g", RG)
    assert [v["name"] for v in listed] == ["vnet-az"]


def test_subnet_create_show_list_delete(aznet, skiffd, n):
    for name, prefix in (("front", f"10.250.{n}.0/26"), ("back", f"10.250.{n}.64/26")):
        out = aznet.json("network", "vnet", "subnet", "create", "-g", RG, "--vnet-name", "vnet-az", "-n", name,
                         "--address-prefixes", prefix, "--delegations", DELEGATION)
        assert out["addressPrefix"] == prefix
        assert [x["serviceName"] for x in out["delegations"]] == [DELEGATION]
        st, real = server_get(skiffd, net_path(skiffd, "virtualNetworks", "vnet-az", "subnets", name))
        assert st == 200, real
        assert [x["properties"]["serviceName"] for x in real["properties"]["delegations"]] == [DELEGATION]
    shown = aznet.json("network", "vnet", "subnet", "show", "-g", RG, "--vnet-name", "vnet-az", "-n", "front")
    assert shown["addressPrefix"] == f"10.250.{n}.0/26"
    listed = aznet.json("network", "vnet", "subnet", "list", "-g", RG, "--vnet-name", "vnet-az")
    assert sorted(x["name"] for x in listed) == ["back", "front", "plain"]

    # refusals carry ARM's codes through az
    err = az_fails(aznet, "network", "vnet", "subnet", "create", "-g", RG, "--vnet-name", "vnet-az", "-n", "outside",
                   "--address-prefixes", f"10.251.{n}.0/26")
    assert "NetcfgSubnetRangeOutsideVnet" in err, err
    err = az_fails(aznet, "network", "vnet", "subnet", "create", "-g", RG, "--vnet-name", "vnet-az", "-n", "overlap",
                   "--address-prefixes", f"10.250.{n}.32/27")
    assert "NetcfgSubnetRangesOverlap" in err, err


# --- private DNS -----------------------------------------------------------------------------------

def test_private_dns_zone_and_link(aznet, skiffd):
    zone = aznet.json("network", "private-dns", "zone", "create", "-g", RG, "-n", ZONE)
    st, real = server_get(skiffd, net_path(skiffd, "privateDnsZones", ZONE))
    assert st == 200, real
    assert zone["id"].lower() == real["id"].lower()
    assert zone["name"] == ZONE
    # create means create: az sends If-None-Match: *
    err = az_fails(aznet, "network", "private-dns", "zone", "create", "-g", RG, "-n", ZONE)
    assert "PreconditionFailed" in err, err

    link = aznet.json("network", "private-dns", "link", "vnet", "create", "-g", RG, "-z", ZONE, "-n", "link-az",
                      "-v", "vnet-az", "-e", "true")
    assert link["registrationEnabled"] is True
    vnet = aznet.json("network", "vnet", "show", "-g", RG, "-n", "vnet-az")
    assert link["virtualNetwork"]["id"].lower() == vnet["id"].lower()
    st, real = server_get(skiffd, net_path(skiffd, "privateDnsZones", ZONE, "virtualNetworkLinks", "link-az"))
    assert st == 200 and real["properties"]["registrationEnabled"] is True, real

    links = aznet.json("network", "private-dns", "link", "vnet", "list", "-g", RG, "-z", ZONE)
    assert [x["name"] for x in links] == ["link-az"]
    zones = aznet.json("network", "private-dns", "zone", "list", "-g", RG)
    assert [z["name"] for z in zones] == [ZONE]
    assert record_names(aznet) == ["@"]


# --- containers in a subnet ------------------------------------------------------------------------

def test_container_in_subnet_registers_and_is_reached(az, aznet, skiffd, n, tmpdir_mod):
    web = ["httpd", "-f", "-p", "80", "-h", "/www"]
    # a subnet without the delegation takes no group
    path = yaml_group(tmpdir_mod, "app-plain", image("webserver:latest"), web, subnet_of(aznet, "vnet-az", "plain"))
    err = az_fails(az, "container", "create", "-g", RG, "--file", path)
    assert "SubnetMissingRequiredDelegation" in err, err

    path = yaml_group(tmpdir_mod, "app-az", image("webserver:latest"), web, subnet_of(aznet, "vnet-az", "front"))
    app = az.json("container", "create", "-g", RG, "--file", path)  # printed as a generic resource
    assert app["properties"]["ipAddress"]["type"] == "Private"
    ip = app["properties"]["ipAddress"]["ip"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(f"10.250.{n}.0/26")
    skiffd.wait_state(RG, "app-az", "Running")
    shown = az.json("container", "show", "-g", RG, "-n", "app-az")
    assert shown["ipAddress"]["ip"] == ip
    assert shown["subnetIds"][0]["id"].lower().endswith("/subnets/front")

    # the registered record, as az reads it
    rec = aznet.json("network", "private-dns", "record-set", "a", "show", "-g", RG, "-z", ZONE, "-n", "app-az")
    assert [r["ipv4Address"] for r in rec["aRecords"]] == [ip]
    assert rec["isAutoRegistered"] is True
    assert record_names(aznet) == ["@", "app-az"]
    zone = aznet.json("network", "private-dns", "zone", "show", "-g", RG, "-n", ZONE)
    assert zone["numberOfRecordSets"] == 2
    # the record sets are skiff's to keep
    err = az_fails(aznet, "network", "private-dns", "record-set", "a", "add-record", "-g", RG, "-z", ZONE,
                   "-n", "manual", "-a", f"10.250.{n}.9")
    assert "RecordSetsNotSupported" in err, err

    # a probe in the other subnet finds the app by name and reaches it
    script = (f"nslookup app-az.{ZONE} | grep -q {ip} && echo RESOLVED; "
              f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc app-az.{ZONE} 80 | grep -q '^HTTP/1' "
              "&& echo REACHED")
    path = yaml_group(tmpdir_mod, "probe-az", image("busybox:latest"), ["/bin/sh", "-c", script],
                      subnet_of(aznet, "vnet-az", "back"), policy="Never")
    az.json("container", "create", "-g", RG, "--file", path)
    skiffd.wait_state(RG, "probe-az", ("Succeeded", "Failed"))
    logs = az.run("container", "logs", "-g", RG, "-n", "probe-az").stdout
    assert "RESOLVED" in logs and "REACHED" in logs, logs

    # a subnet in use cannot go
    err = az_fails(aznet, "network", "vnet", "subnet", "delete", "-g", RG, "--vnet-name", "vnet-az", "-n", "front")
    assert "InUseSubnetCannotBeDeleted" in err, err

    # delete: the record goes with the group; a free subnet can go
    az.run("container", "delete", "-g", RG, "-n", "probe-az", "-y")
    az.run("container", "delete", "-g", RG, "-n", "app-az", "-y")
    assert record_names(aznet) == ["@"]
    aznet.run("network", "vnet", "subnet", "delete", "-g", RG, "--vnet-name", "vnet-az", "-n", "plain")
    st, _ = server_get(skiffd, net_path(skiffd, "virtualNetworks", "vnet-az", "subnets", "plain"))
    assert st == 404


# --- public addresses and DNS name labels ----------------------------------------------------------

def test_public_address_and_dns_name_label(az, skiffd, n):
    label = f"conf-az-{n}"
    app = container_create(az, "pub-az", "--image", image("webserver:latest"), "--ip-address", "Public",
                           "--ports", "80", "--dns-name-label", label, "--command-line", "httpd -f -p 80 -h /www")
    ip, fqdn = app["ipAddress"]["ip"], app["ipAddress"]["fqdn"]
    assert app["ipAddress"]["type"] == "Public"
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(skiffd.public_pool)
    assert fqdn.startswith(label + ".local.")
    assert [p["port"] for p in app["ipAddress"]["ports"]] == [80]
    skiffd.wait_state(RG, "pub-az", "Running")
    shown = az.json("container", "show", "-g", RG, "-n", "pub-az")
    assert (shown["ipAddress"]["ip"], shown["ipAddress"]["fqdn"]) == (ip, fqdn)
    # the name resolves at skiff's DNS server and the port answers on the address
    assert dig(skiffd, fqdn) == [ip]
    body = urllib.request.urlopen(f"http://{ip}:80/", timeout=10).read()
    assert body
    # the label is taken
    err = az_fails(az, "container", "create", "-g", RG, "-n", "pub-az2", "--image", image("webserver:latest"),
                   "--cpu", "0.5", "--memory", "0.25", "--ip-address", "Public", "--ports", "80",
                   "--dns-name-label", label)
    assert "DnsNameLabelAlreadyInUse" in err, err
    az.run("container", "delete", "-g", RG, "-n", "pub-az", "-y")
    assert dig(skiffd, fqdn) == []


# --- clean-up through az ---------------------------------------------------------------------------

def test_delete_link_zone_vnet(aznet, skiffd):
    err = az_fails(aznet, "network", "vnet", "delete", "-g", RG, "-n", "vnet-az")
    assert "InUseVirtualNetworkCannotBeDeleted" in err, err  # the zone still links it
    aznet.run("network", "private-dns", "link", "vnet", "delete", "-g", RG, "-z", ZONE, "-n", "link-az", "-y")
    aznet.run("network", "private-dns", "zone", "delete", "-g", RG, "-n", ZONE, "-y")
    aznet.run("network", "vnet", "delete", "-g", RG, "-n", "vnet-az")
    for path in (net_path(skiffd, "privateDnsZones", ZONE), net_path(skiffd, "virtualNetworks", "vnet-az")):
        st, _ = server_get(skiffd, path)
        assert st == 404, path
    assert aznet.json("network", "vnet", "list", "-g", RG) == []
