"""An address per group on the host's group network: reachability between groups and from the
host, isolation from the host's services, stable addresses, and clean-up after delete and crash.

All traffic goes to addresses inside network namespaces skiffd created, or to the test bridge's
own address."""

import ipaddress
import os
import subprocess
import time
import urllib.request

from conftest import bridge_ports, group_body, image, state

def group_id(d, name):
    """The id of the group called name: the group folder whose etc/hostname is that name."""
    found = []
    for gid in os.listdir(os.path.join(d.data, "groups")):
        hn = os.path.join(d.data, "groups", gid, "etc", "hostname")
        if os.path.exists(hn) and open(hn).read().strip() == name:
            found.append(gid)
    assert len(found) == 1, found
    return found[0]


def group_ip(d, rg, name):
    gid = group_id(d, name)
    netns = os.path.join(d.data, "groups", gid, "ns", "net")
    out = subprocess.run(["nsenter", "--net=" + netns, "ip", "-4", "-o", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[3].split("/")[0]


def http_get_sh(host, port):
    """A shell command that prints the answer to GET / from host:port (busybox nc; Debian's
    static busybox wget crashes)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc {host} {port}"


def run_once(d, rg, name, script, timeout=60):
    d.put_group(rg, name, group_body([("c1", image("busybox:latest"), ["sh", "-c", script])], policy="Never"))
    d.wait_state(rg, name, ("Succeeded", "Failed"), timeout=timeout)
    out = d.logs(rg, name, "c1")
    d.delete_group(rg, name)
    return out


def test_address_per_group_and_reachability(skiffd):
    d = skiffd
    net = ipaddress.ip_network(d.subnet)
    d.ensure_rg("net")
    d.put_group("net", "web1", group_body([("c1", image("webserver:latest"), None)]))
    d.put_group("net", "web2", group_body([("c1", image("webserver:latest"), None)]))
    d.wait_state("net", "web1", "Running")
    d.wait_state("net", "web2", "Running")
    ip1, ip2 = group_ip(d, "net", "web1"), group_ip(d, "net", "web2")
    assert ip1 != ip2
    for ip in (ip1, ip2):
        assert ipaddress.ip_address(ip) in net and ip not in (str(net[0]), str(net[1]), str(net[-1]))
    assert len(bridge_ports(d.bridge)) == 2

    # both serve port 80 on their own address, reachable from the host
    for ip in (ip1, ip2):
        body = urllib.request.urlopen(f"http://{ip}:80/", timeout=10).read()
        assert body
    # a group reaches another group; inside, the group's own address is in /etc/hosts
    out = run_once(d, "net", "client", f"{http_get_sh(ip2, 80)} | grep -q '^HTTP/1' && echo REACHED; "
                                       f"grep 'client$' /etc/hosts | cut -f1; "
                                       f"ip -4 -o addr show dev eth0 | awk '{{print $4}}'; "
                                       f"ip route | grep -c '^default via {net[1]}'; "
                                       f"echo $(ls /sys/class/net) | tr ' ' ,")
    assert len(out.split()) == 5, out
    reached, hosts_ip, eth0, routes, sysnet = out.split()
    assert reached == "REACHED" and routes == "1", out
    # sysfs is the group's own: its interfaces, none of the host's (the bridge, the host's NICs)
    assert sysnet == "eth0,lo", out
    assert eth0 == f"{hosts_ip}/{net.prefixlen}" and ipaddress.ip_address(hosts_ip) in net, out

    # the host's services are closed to containers, skiffd's API included; only DNS is let through
    gw = str(net[1])
    out = run_once(d, "net", "probe", f"timeout 4 nc {gw} {d.port} </dev/null >/dev/null 2>&1; echo rc=$?")
    assert out.strip() != "rc=0", out

    # the address stays with the group across stop and start
    st, _, _ = d.request("POST", d.cg_path("net", "web1") + "/stop?api-version=2023-05-01")
    assert st == 204
    deadline = time.time() + 30
    while time.time() < deadline and len(bridge_ports(d.bridge)) != 1:
        time.sleep(0.1)
    assert len(bridge_ports(d.bridge)) == 1
    st, _, _ = d.request("POST", d.cg_path("net", "web1") + "/start?api-version=2023-05-01")
    assert st in (202, 204)
    d.wait_state("net", "web1", "Running")
    assert group_ip(d, "net", "web1") == ip1

    # delete gives the interface and the address back: the next group gets the lowest free one
    d.delete_group("net", "web1")
    assert len(bridge_ports(d.bridge)) == 1
    d.put_group("net", "web3", group_body([("c1", image("webserver:latest"), None)]))
    d.wait_state("net", "web3", "Running")
    assert group_ip(d, "net", "web3") == ip1
    d.delete_group("net", "web3")
    d.delete_group("net", "web2")
    assert bridge_ports(d.bridge) == []


def test_crash_leaves_no_stale_interface(fresh_skiffd):
    d = fresh_skiffd
    d.ensure_rg("netcrash")
    d.put_group("netcrash", "g", group_body([("c1", image("busybox:latest"), ["sleep", "100000"])]))
    d.wait_state("netcrash", "g", "Running")
    assert len(bridge_ports(d.bridge)) == 1
    d.kill9()
    # a veth left on the bridge by a crash between creating it and recording its group
    stale = "sk00000000deadb"
    subprocess.run(["ip", "link", "add", stale, "type", "veth", "peer", "name", "skstalepeer"], check=True)
    subprocess.run(["ip", "link", "set", stale, "master", d.bridge], check=True)
    d.start()
    deadline = time.time() + 20
    while time.time() < deadline and stale in bridge_ports(d.bridge):
        time.sleep(0.1)
    assert stale not in bridge_ports(d.bridge)
    assert not os.path.exists("/sys/class/net/skstalepeer")
    # the running group kept its interface and stays reachable
    assert state(d.get_group("netcrash", "g")[1]) == "Running"
    assert len(bridge_ports(d.bridge)) == 1
    d.delete_group("netcrash", "g")
    assert bridge_ports(d.bridge) == []
