"""What the benchmarks send and store: psiturk.js task data, a managed ``turnout serve``, the
project's database. Shared by ``participants.py`` (the load generator) and ``seed.py``.

Everything is derived from a seed, so two runs with the same arguments send the same bytes.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORDS = ("RED", "GREEN", "BLUE", "YELLOW")
COLORS = ("red", "green", "blue", "yellow")
KEYS = {"red": "r", "green": "g", "blue": "b", "yellow": "y"}
BASE_MS = 1_700_000_000_000


_LETTERS = bytes(b"abcdefghijklmnopqrstuvwxyz "[b % 27] for b in range(256))


def trial_json(rng: random.Random, uid_json: str, index: int, target_bytes: int) -> str:
    """One element of psiturk.js's ``data`` list (a Stroop trial) as compact JSON, padded to
    ``target_bytes`` with random letters (free-text fields real tasks carry; random, so the
    database cannot compress them away). Formatted by hand: the seeder makes millions."""
    word, color = WORDS[int(rng.random() * 4)], COLORS[int(rng.random() * 4)]
    correct = rng.random() < 0.93
    response = KEYS[color] if correct else "rgby"[int(rng.random() * 4)]
    text = (f'{{"uniqueid":{uid_json},"current_trial":{index},'
            f'"dateTime":{BASE_MS + index * 2100 + int(rng.random() * 900)},"trialdata":{{'
            f'"phase":"{"TEST" if index >= 4 else "INSTRUCTIONS"}","block":{index // 20},"trial":{index},'
            f'"word":"{word}","color":"{color}","congruent":{"true" if word.lower() == color else "false"},'
            f'"response":"{response}","hit":{"true" if correct else "false"},'
            f'"rt":{280 + int(rng.random() * 1620)},"stim_onset_ms":{400 + int(rng.random() * 200)},'
            f'"device":"keyboard"')
    short = target_bytes - len(text) - len(',"notes":""}}')
    if short > 0:
        return f'{text},"notes":"{rng.randbytes(short).translate(_LETTERS).decode()}"}}}}'
    return text + "}}"


def task_trials(seed: int | str, uniqueid: str, count: int, target_bytes: int) -> list[str]:
    rng = random.Random(f"{seed}|{uniqueid}")
    uid_json = json.dumps(uniqueid)
    return [trial_json(rng, uid_json, i, target_bytes) for i in range(count)]


EVENTS = ('[{"eventtype":"initialized","value":null,"timestamp":%d,"interval":0},'
          '{"eventtype":"window_resize","value":[1440,900],"timestamp":%d,"interval":12},'
          '{"eventtype":"focus","value":"off","timestamp":%d,"interval":5310},'
          '{"eventtype":"focus","value":"on","timestamp":%d,"interval":2204}]')
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")


def task_body(server_fields: dict[str, Any], trials: list[str], count: int, *, mode: str,
              questions: dict[str, str] | None = None) -> bytes:
    """The JSON body psiturk.js's ``saveData`` PUTs: the fields GET /sync returned, merged with
    the task model's attributes, and the first ``count`` trials."""
    fields = dict(server_fields)
    fields.update(currenttrial=count, useragent=USER_AGENT, mode=mode, questiondata=questions or {})
    head = json.dumps(fields, separators=(",", ":"))[:-1]
    events = EVENTS % (BASE_MS, BASE_MS + 12, BASE_MS + 5322, BASE_MS + 7526)
    return (head + ',"eventdata":' + events + ',"data":[' + ",".join(trials[:count]) + "]}").encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def turnout_bin() -> str:
    return str(Path(sys.executable).parent / "turnout")


def load_project_settings(project: Path, database_url: str | None) -> Any:
    """The project's turnout Settings, with the database URL overridden as the server will see it."""
    from turnout.config import load_settings

    environ = dict(os.environ)
    if database_url:
        environ["TURNOUT_DATABASE_URL"] = database_url
    return load_settings(project, environ=environ)


@dataclass
class ManagedServer:
    """``turnout serve`` started (and stopped) by a benchmark, on a free loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, project: Path, database_url: str, workers: int | None, *, extra_env: dict[str, str] | None = None,
              timeout_s: float = 120, binary: Path | None = None) -> ManagedServer:
        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="turnout-bench-")) / "server.log"
        env = dict(os.environ, TURNOUT_DATABASE_URL=database_url, TURNOUT_LAUNCH_IN_MODE="sandbox",
                   PYTHONUNBUFFERED="1", **(extra_env or {}))
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(binary or turnout_bin()), "-C", str(project), "serve", "--host", "127.0.0.1", "--port", str(port),
                 *(["--workers", str(workers)] if workers else [])], stdout=out, stderr=subprocess.STDOUT, env=env)
        server = cls(process=process, url=f"http://127.0.0.1:{port}", log=log)
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise SystemExit(f"turnout serve exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(server.url + "/", timeout=5) as response:
                    if response.status == 200:
                        return server
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(f"turnout serve did not answer within {timeout_s:.0f}s; log: {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


# --- a server's process tree: CPU time and memory, from /proc -------------------------


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024
