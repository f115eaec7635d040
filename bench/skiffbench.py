#!/usr/bin/python3
"""Small keep-alive ARM client for the skiff benchmarks (stdlib only).

Reads SKIFF_EP (https://127.0.0.1:PORT, trusting SKIFF_CA) and SKIFF_TOKEN from the environment; SKIFF_SUB is
looked up when missing. Subcommands print machine-readable lines on stdout and progress on
stderr. See bench/README.md."""

import argparse
import http.client
import json
import ssl
import os
import statistics
import sys
import time

API = "2023-05-01"
GTYPE = "Microsoft.ContainerInstance/containerGroups"


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


class Client:
    def __init__(self):
        ep = os.environ["SKIFF_EP"].rstrip("/")
        self.tls = ep.startswith("https://")
        ca = os.environ.get("SKIFF_CA")
        self.ctx = ssl.create_default_context(cafile=ca) if self.tls else None
        hostport = ep.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.hdrs = {"Authorization": "Bearer " + os.environ["SKIFF_TOKEN"]}
        self.conn = None
        self.sub = os.environ.get("SKIFF_SUB") or self.req("GET", "/subscriptions?api-version=2022-12-01")[1]["value"][0]["subscriptionId"]

    def raw(self, method, path, body=None):
        hdrs = dict(self.hdrs)
        if body is not None:
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        for attempt in range(3):
            if self.conn is None:
                if self.tls:
                    self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=120, context=self.ctx)
                else:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def req(self, method, path, body=None):
        st, data = self.raw(method, path, body)
        try:
            return st, (json.loads(data) if data else None)
        except ValueError:
            return st, data

    def rg(self, name):
        st, out = self.req("PUT", f"/subscriptions/{self.sub}/resourcegroups/{name}?api-version=2021-04-01", {"location": "local"})
        if st not in (200, 201):
            raise SystemExit(f"resource group PUT {st}: {out}")

    def gpath(self, rg, name):
        return f"/subscriptions/{self.sub}/resourceGroups/{rg}/providers/{GTYPE}/{name}?api-version={API}"

    def list_groups(self):
        out, path = [], f"/subscriptions/{self.sub}/providers/{GTYPE}?api-version={API}"
        while path:
            st, body = self.req("GET", path)
            if st != 200:
                raise SystemExit(f"list {st}: {body}")
            out += body.get("value", [])
            nl = body.get("nextLink")
            path = ("/" + nl.split("://", 1)[1].split("/", 1)[1]) if nl else None
        return out

    def delete_wait(self, paths, timeout=300):
        for p in paths:
            st, body = self.req("DELETE", p)
            if st not in (200, 202, 204, 404):
                eprint(f"DELETE {p}: {st} {body}")
        deadline = time.time() + timeout
        left = list(paths)
        while left and time.time() < deadline:
            left = [p for p in left if self.raw("GET", p)[0] != 404]
            if left:
                time.sleep(0.05)
        return left


def body(image, cmd, policy="Never", cpu=0.1, mem=0.1, name="c1"):
    p = {"image": image, "resources": {"requests": {"cpu": cpu, "memoryInGB": mem}}}
    if cmd is not None:
        p["command"] = cmd
    return {"location": "local", "properties": {"osType": "Linux", "restartPolicy": policy,
                                                "containers": [{"name": name, "properties": p}]}}


def cstate(g):
    try:
        return g["properties"]["containers"][0]["properties"]["instanceView"]["currentState"]["state"]
    except (KeyError, IndexError, TypeError):
        return None


def gstate(g):
    try:
        return g["properties"]["instanceView"]["state"]
    except (KeyError, TypeError):
        return None


def events(g):
    try:
        return g["properties"]["containers"][0]["properties"]["instanceView"].get("events", [])
    except (KeyError, IndexError, TypeError):
        return []


def pct(vals, p):
    v = sorted(vals)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt_stats(name, vals, unit="ms"):
    return (f"{name}: n={len(vals)} min={min(vals):.2f} median={statistics.median(vals):.2f} "
            f"p90={pct(vals, 90):.2f} max={max(vals):.2f} {unit}")


def cmd_stats(a):
    vals = [float(x) for x in sys.stdin.read().split()]
    print(fmt_stats(a.name, vals, a.unit))


def parse_ts(s):
    """ISO 8601 with optional fraction -> epoch seconds (float)."""
    from datetime import datetime, timezone
    s = s.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, f = s.split(".", 1)
        frac = float("0." + "".join(ch for ch in f if ch.isdigit()) or "0")
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() + frac


def cmd_start_latency(a):
    """PUT, then GET every poll_ms on the same keep-alive connection until the container's
    currentState is in a.until; delete outside the timed section."""
    c = Client()
    c.rg(a.rg)
    cmd = json.loads(a.cmd)
    until = set(a.until.split(","))
    results, puts, breakdown = [], [], []
    for i in range(a.warmup + a.runs):
        name = f"{a.prefix}-{i}"
        path = c.gpath(a.rg, name)
        b = body(a.image, cmd, "Never", a.cpu, a.mem)
        w0 = time.time()
        t0 = time.perf_counter()
        st, out = c.req("PUT", path, b)
        t_put = time.perf_counter() - t0
        if st not in (200, 201):
            raise SystemExit(f"PUT {name}: {st} {out}")
        last = None
        deadline = t0 + a.timeout
        while True:
            st, g = c.req("GET", path)
            now = time.perf_counter()
            last = g
            s = cstate(g) if st == 200 else None
            if s in until:
                break
            if gstate(g) in ("Failed",) or s in ("Terminated",) and "Terminated" not in until:
                eprint(f"run {i}: group went {gstate(g)} / container {s} before {a.until}:\n{json.dumps(g, indent=1)[:4000]}")
                raise SystemExit(2)
            if now > deadline:
                eprint(f"run {i}: no {a.until} after {a.timeout}s; last GET ({st}):\n{json.dumps(g, indent=1)[:4000]}")
                raise SystemExit(3)
            if a.poll_ms > 0:
                time.sleep(a.poll_ms / 1000.0)
        ms = (now - t0) * 1000
        # server-side view: the container's startTime (ms precision, same host clock) relative to
        # the wall-clock instant the PUT was sent
        try:
            st_time = parse_ts(last["properties"]["containers"][0]["properties"]["instanceView"]["currentState"]["startTime"])
            start_ms = (st_time - w0) * 1000
        except (KeyError, IndexError, TypeError, ValueError):
            start_ms = None
        if i >= a.warmup:
            results.append(ms)
            puts.append(t_put * 1000)
            if start_ms is not None:
                breakdown.append(start_ms)
        eprint(f"  {'warmup' if i < a.warmup else 'run'} {i}: {ms:.2f} ms (PUT answered in {t_put*1000:.2f} ms)")
        if not a.keep:
            left = c.delete_wait([path])
            if left:
                eprint(f"group {name} not gone after delete")
                raise SystemExit(4)
    with open(a.out, "w") as f:
        f.write("\n".join(f"{x:.3f}" for x in results) + "\n")
    if a.put_out:
        with open(a.put_out, "w") as f:
            f.write("\n".join(f"{x:.3f}" for x in puts) + "\n")
    if breakdown and a.breakdown_out:
        with open(a.breakdown_out, "w") as f:
            f.write("\n".join(f"{x:.3f}" for x in breakdown) + "\n")


def cmd_pull_wait(a):
    """PUT one group and time until the Pulled event shows up or the group leaves Pending."""
    c = Client()
    c.rg(a.rg)
    path = c.gpath(a.rg, a.name)
    t0 = time.perf_counter()
    st, out = c.req("PUT", path, body(a.image, json.loads(a.cmd), "Never", a.cpu, a.mem))
    if st not in (200, 201):
        raise SystemExit(f"PUT: {st} {out}")
    how = None
    while True:
        st, g = c.req("GET", path)
        now = time.perf_counter()
        if st == 200:
            if any(e.get("name") == "Pulled" for e in events(g)):
                how = "Pulled event"
            elif gstate(g) not in (None, "Pending") or cstate(g) not in (None, "Waiting", "Pending"):
                how = f"state {gstate(g)}/{cstate(g)}"
            if gstate(g) == "Failed":
                eprint(json.dumps(g, indent=1)[:4000])
                raise SystemExit("group Failed during pull")
        if how:
            break
        if now - t0 > a.timeout:
            eprint(json.dumps(g, indent=1)[:4000])
            raise SystemExit(f"no Pulled after {a.timeout}s")
        time.sleep(a.poll_ms / 1000.0)
    secs = now - t0
    evs = {e.get("name"): e for e in events(g)}
    server = ""
    try:
        server = f" server_pull_s={parse_ts(evs['Pulled']['lastTimestamp']) - parse_ts(evs['Pulling']['firstTimestamp']):.3f}"
    except (KeyError, ValueError, TypeError):
        pass
    print(f"{secs:.3f} via={how.replace(' ', '_')}{server}")


def cmd_create_many(a):
    c = Client()
    c.rg(a.rg)
    cmd = json.loads(a.cmd)
    paths = []
    t0 = time.perf_counter()
    for i in range(a.count):
        p = c.gpath(a.rg, f"{a.prefix}-{i:03d}")
        st, out = c.req("PUT", p, body(a.image, cmd, "Always", a.cpu, a.mem))
        if st not in (200, 201):
            print(f"REFUSED {st} {json.dumps(out)[:600]}")
            return
        paths.append(p)
    t_put = time.perf_counter() - t0
    eprint(f"  {a.count} PUTs answered in {t_put:.2f} s")
    deadline = time.time() + a.timeout
    left = list(paths)
    last = {}
    while left and time.time() < deadline:
        nl = []
        for p in left:
            st, g = c.req("GET", p)
            last[p] = g
            if not (st == 200 and cstate(g) == "Running"):
                nl.append(p)
        left = nl
        if left:
            time.sleep(0.2)
    t_run = time.perf_counter() - t0
    if left:
        eprint(f"{len(left)} groups not Running after {a.timeout}s; first one:\n{json.dumps(last.get(left[0]), indent=1)[:4000]}")
        print(f"NOTRUNNING {len(left)} {t_put:.3f} {t_run:.3f}")
        return
    print(f"OK {a.count} {t_put:.3f} {t_run:.3f}")


def cmd_delete_all(a):
    c = Client()
    paths = []
    for g in c.list_groups():
        gid = g["id"]
        paths.append(gid + f"?api-version={API}")
    t0 = time.perf_counter()
    left = c.delete_wait(paths, a.timeout)
    eprint(f"  deleted {len(paths) - len(left)} group(s) in {time.perf_counter() - t0:.2f} s" + (f", {len(left)} left" if left else ""))
    if left:
        raise SystemExit(1)


def cmd_get_seq(a):
    """Sequential keep-alive GETs of one path: prints median and p99 in ms."""
    c = Client()
    vals = []
    for _ in range(a.n):
        t0 = time.perf_counter()
        st, _ = c.raw("GET", a.path)
        vals.append((time.perf_counter() - t0) * 1000)
        if st != 200:
            raise SystemExit(f"GET {a.path}: {st}")
    print(f"median={statistics.median(vals):.3f} p99={pct(vals, 99):.3f} max={max(vals):.3f}")


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd_name", required=True)
    s = sp.add_parser("stats"); s.add_argument("name"); s.add_argument("--unit", default="ms"); s.set_defaults(f=cmd_stats)
    s = sp.add_parser("start-latency")
    s.add_argument("--rg", default="bench"); s.add_argument("--prefix", default="lat")
    s.add_argument("--image", required=True); s.add_argument("--cmd", default='["sleep","100000"]')
    s.add_argument("--until", default="Running")
    s.add_argument("--runs", type=int, default=20); s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--poll-ms", type=float, default=1.0); s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--cpu", type=float, default=0.1); s.add_argument("--mem", type=float, default=0.1)
    s.add_argument("--keep", action="store_true")
    s.add_argument("--out", required=True); s.add_argument("--put-out"); s.add_argument("--breakdown-out")
    s.set_defaults(f=cmd_start_latency)
    s = sp.add_parser("pull-wait")
    s.add_argument("--rg", default="bench"); s.add_argument("--name", default="pull")
    s.add_argument("--image", required=True); s.add_argument("--cmd", default='["true"]')
    s.add_argument("--cpu", type=float, default=0.1); s.add_argument("--mem", type=float, default=0.1)
    s.add_argument("--poll-ms", type=float, default=5); s.add_argument("--timeout", type=float, default=300)
    s.set_defaults(f=cmd_pull_wait)
    s = sp.add_parser("create-many")
    s.add_argument("--rg", default="bench"); s.add_argument("--prefix", default="idle")
    s.add_argument("--image", required=True); s.add_argument("--cmd", default='["sleep","100000"]')
    s.add_argument("--count", type=int, default=100)
    s.add_argument("--cpu", type=float, default=0.01); s.add_argument("--mem", type=float, default=0.01)
    s.add_argument("--timeout", type=float, default=300)
    s.set_defaults(f=cmd_create_many)
    s = sp.add_parser("delete-all"); s.add_argument("--timeout", type=float, default=300); s.set_defaults(f=cmd_delete_all)
    s = sp.add_parser("get-seq"); s.add_argument("path"); s.add_argument("-n", type=int, default=300); s.set_defaults(f=cmd_get_seq)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
