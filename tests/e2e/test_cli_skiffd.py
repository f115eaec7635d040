"""End-to-end: the skiff CLI against the real skiffd (endpoint and token found in the data folder)."""

import json
import os
import subprocess

from conftest import BUILD, image, needs_root

pytestmark = needs_root


def skiff(d, *args, check=None):
    env = dict(os.environ, SKIFF_DATA=d.data)
    env.pop("SKIFF_ENDPOINT", None)
    env.pop("SKIFF_TOKEN", None)
    r = subprocess.run([os.path.join(BUILD, "skiff"), *args], capture_output=True, text=True, env=env, timeout=180,
                       stdin=subprocess.DEVNULL)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


def test_cli_lifecycle(skiffd):
    d = skiffd
    skiff(d, "group", "create", "-n", "clidemo", check=0)
    r = skiff(d, "container", "create", "-g", "clidemo", "-n", "web", "--image", image("webserver:latest"),
              "--cpu", "0.5", "--memory", "0.25", check=0)
    g = json.loads(r.stdout)
    assert g["properties"]["instanceView"]["state"] == "Running"
    assert "Pulled" in r.stderr or "Started" in r.stderr  # progress was shown
    r = skiff(d, "container", "show", "-g", "clidemo", "-n", "web", check=0)
    assert json.loads(r.stdout)["name"] == "web"
    r = skiff(d, "container", "list", "-g", "clidemo", "-o", "table", check=0)
    assert "web" in r.stdout and "Succeeded" in r.stdout  # lists carry no instance view, as in ARM
    r = skiff(d, "container", "create", "-g", "clidemo", "-n", "job", "--image", image("busybox:latest"),
              "--command-line", "sh -c 'echo from-cli $A; exit 0'", "-e", "A=1", "--restart-policy", "Never",
              "--cpu", "0.5", "--memory", "0.25", check=0)
    r = skiff(d, "container", "logs", "-g", "clidemo", "-n", "job", check=0)
    assert "from-cli 1" in r.stdout
    r = skiff(d, "container", "export", "-g", "clidemo", "-n", "web", "-o", "yaml", check=0)
    assert "instanceView" not in r.stdout and "webserver" in r.stdout
    skiff(d, "container", "stop", "-g", "clidemo", "-n", "web", check=0)
    assert json.loads(skiff(d, "container", "show", "-g", "clidemo", "-n", "web", check=0).stdout)[
        "properties"]["instanceView"]["state"] == "Stopped"
    skiff(d, "container", "start", "-g", "clidemo", "-n", "web", check=0)
    skiff(d, "container", "restart", "-g", "clidemo", "-n", "web", check=0)
    r = skiff(d, "container", "show", "-g", "clidemo", "-n", "nothere")
    assert r.returncode == 3 and "ResourceNotFound" in r.stderr
    r = skiff(d, "container", "create", "-g", "clidemo", "-n", "BAD_NAME", "--image", "busybox")
    assert r.returncode == 1 and "InvalidContainerGroupName" in r.stderr
    skiff(d, "container", "delete", "-g", "clidemo", "-n", "web", "-y", check=0)
    skiff(d, "container", "delete", "-g", "clidemo", "-n", "job", "-y", check=0)
    r = skiff(d, "container", "show", "-g", "clidemo", "-n", "web")
    assert r.returncode == 3
    skiff(d, "group", "delete", "-n", "clidemo", "-y", check=0)
    assert "removed" in json.loads(skiff(d, "image", "prune", check=0).stdout)


def test_cli_yaml_file(skiffd, tmp_path):
    d = skiffd
    skiff(d, "group", "create", "-n", "yamldemo", check=0)
    y = tmp_path / "g.yaml"
    y.write_text(f"""apiVersion: 2021-09-01
location: local
name: fromyaml
properties:
  osType: Linux
  restartPolicy: Never
  containers:
  - name: c1
    properties:
      image: {image("busybox:latest")}
      command: ["sh", "-c", "echo yaml-ok"]
      resources:
        requests:
          cpu: 0.5
          memoryInGb: 0.25
type: Microsoft.ContainerInstance/containerGroups
""")
    skiff(d, "container", "create", "-g", "yamldemo", "--file", str(y), check=0)
    assert "yaml-ok" in skiff(d, "container", "logs", "-g", "yamldemo", "-n", "fromyaml", check=0).stdout
    skiff(d, "container", "delete", "-g", "yamldemo", "-n", "fromyaml", "-y", check=0)


def test_cli_logs_follow(skiffd):
    d = skiffd
    skiff(d, "group", "create", "-n", "follow", check=0)
    skiff(d, "container", "create", "-g", "follow", "-n", "ticker", "--image", image("busybox:latest"),
          "--command-line", "sh -c 'for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.3; done'",
          "--restart-policy", "Never", "--cpu", "0.5", "--memory", "0.25", "--no-wait", check=0)
    r = skiff(d, "container", "logs", "-g", "follow", "-n", "ticker", "--follow", check=0)
    assert [l for l in r.stdout.splitlines() if l.startswith("tick")] == [f"tick{i}" for i in range(1, 7)]
    skiff(d, "container", "delete", "-g", "follow", "-n", "ticker", "-y", check=0)
