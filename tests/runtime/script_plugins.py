"""Small misbehaving plugins for tests: Python scripts named by the venv's interpreter.

`write_plugin(dir, name, ADD="hang")` makes a plugin that hangs on ADD; actions per verb:
"ok" (ADD passes prevResult on), "fail" (CNI error code 11), "garbage" (prints non-JSON,
exit 0), "garbage-fail" (non-JSON, exit 1), "stderr-fail" (only stderr, exit 1), "hang",
and for ADD "ip:CIDR" (a result giving eth0 that address).
With `log=PATH`, every call appends {command, netns, containerID, config} to PATH.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TEMPLATE = """#!{python} -I
import json, os, sys, time
ACTIONS = {actions!r}
LOG = {log!r}
NAME = {name!r}
command = os.environ.get("CNI_COMMAND", "")
data = sys.stdin.read()
if command == "VERSION":
    print(json.dumps({{"cniVersion": "1.1.0",
                      "supportedVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]}}))
    sys.exit(0)
conf = json.loads(data)
if LOG:
    with open(LOG, "a") as handle:
        handle.write(json.dumps({{"command": command, "netns": os.environ.get("CNI_NETNS", ""),
                                 "containerID": os.environ.get("CNI_CONTAINERID", ""),
                                 "env": {{k: v for k, v in os.environ.items()
                                         if k.startswith("CNI_")}},
                                 "config": conf}}) + "\\n")
action = ACTIONS.get(command, "ok")
if action == "hang":
    time.sleep(3600)
if action == "garbage":
    print("this is not JSON {{")
    sys.exit(0)
if action == "garbage-fail":
    print("Traceback: something broke")
    sys.exit(1)
if action == "stderr-fail":
    print(NAME + " crashed on " + command, file=sys.stderr)
    sys.exit(2)
if action == "fail":
    print(json.dumps({{"cniVersion": conf.get("cniVersion", ""), "code": 11,
                      "msg": NAME + " refuses " + command, "details": ""}}))
    sys.exit(1)
if command == "ADD" and action.startswith("ip:"):
    print(json.dumps({{"cniVersion": conf["cniVersion"],
                      "interfaces": [{{"name": os.environ["CNI_IFNAME"],
                                      "sandbox": os.environ["CNI_NETNS"]}}],
                      "ips": [{{"address": action[3:], "interface": 0}}]}}))
elif command == "ADD":
    print(json.dumps(conf.get("prevResult") or {{"cniVersion": conf["cniVersion"]}}))
"""


def write_plugin(directory: str, name: str, *, log: str = "", **actions: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    text = TEMPLATE.format(python=sys.executable, actions=actions, log=log, name=name)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)  # never exec a half-written file ("text file busy")
    return path


def read_log(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]
