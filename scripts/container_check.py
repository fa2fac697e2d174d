"""What scripts/container-test proves about the image it built, by running it with `buildah run`.

- the image: a non-root user, `purview-bot serve` by default, a HEALTHCHECK on /healthz, no setting with a
  value and no CA certificate of this machine inside it, and under 450 MB;
- `purview-bot demo` in it prints every report of the sample tenant;
- the image's own command (`purview-bot serve`) in HTTP mode on $PORT, configured by ordinary settings
  only: Azure is the sandbox running on this host (its CA file mounted read-only, `SSL_CERT_FILE`), Slack
  the project's fake Web API; `/healthz` answers 200 within 5 s of the start, the image's own HEALTHCHECK
  passes, and a signed `/purview-check sales-adls` is acked and reported (parent, summary, findings
  thread), a badly signed one refused;
- the same in Socket Mode (SLACK_APP_TOKEN, no signing secret) against the fake of Slack's Socket Mode:
  the bot opens the websocket, acks the `slash_commands` envelope on it and posts the report;
- SIGTERM stops `serve` with exit code 0.

The container shares the host's network (`buildah run --network host`, chroot isolation), so the fakes
listen on 127.0.0.1 only. Run from the repository root with the project's venv: it imports the fakes of
tests/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import Sandbox, load_world
from tests.process.fake_socket_mode import FakeSocketMode
from tests.slack import signing
from tests.slack.fake_slack import Call, FakeSlack

MAX_BYTES = 450 * 1000 * 1000
MAX_START_SECONDS = 5.0
BOT_TOKEN = "xoxb-container-test"
APP_TOKEN = "xapp-1-A111-container-test"
SECRET = "container-test-signing-secret"
REPORT_LINE = re.compile(r"^\s+\S+: (fail|warn|unknown|pass) — ", re.MULTILINE)
DEMO_HEADER = re.compile(r"^purview-bot demo: (\d+) data sources", re.MULTILINE)
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "DATABASE_URL", "CERT", "CA_BUNDLE")
# sales-adls in the sample tenant: its last run failed, because Purview's identity lacks Storage Blob Data
# Reader on the storage account (whatever the wording of the report, its fix names both)
SALES_ADLS_FINDING = ("Storage Blob Data Reader", "stsalesadls")


class CheckFailed(Exception):
    pass


def expect(condition: object, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


PASSED: list[str] = []


def ok(what: str) -> None:
    PASSED.append(what)
    print(f"container-test: ok   {what}", flush=True)


def buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CheckFailed(f"buildah {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the image, read without running it -------------------------------------------------------------


def check_config(image: str) -> dict[str, Any]:
    """The image's configuration (docker format, which keeps HEALTHCHECK)."""
    inspect = json.loads(buildah("inspect", "--type", "image", image))
    config = inspect["Docker"]["config"]
    user = str(config.get("User") or "")
    expect(user and user.split(":")[0] not in ("0", "root"), f"the image runs as root (User={user!r})")
    expect(config.get("Entrypoint") == ["purview-bot"], f"Entrypoint is {config.get('Entrypoint')}")
    expect(config.get("Cmd") == ["serve"], f"Cmd is {config.get('Cmd')}")
    health = config.get("Healthcheck") or {}
    expect("/healthz" in " ".join(health.get("Test") or []), f"no HEALTHCHECK on /healthz: {health}")
    names = [entry.split("=", 1)[0] for entry in config.get("Env") or []]
    baked = [n for n in names if any(word in n.upper() for word in SECRET_WORDS)]
    expect(not baked, f"settings baked into the image: {baked}")
    expect("3000/tcp" in (config.get("ExposedPorts") or {}), "port 3000 is not exposed")
    ok(f"config: user {user}, entrypoint purview-bot, cmd serve, HEALTHCHECK {health['Test'][0]} on /healthz")
    return dict(config)


def check_files(container: str, ca_bundle: str | None) -> None:
    """No CA certificate of this machine's own (an intercepting proxy's) anywhere in the image, no
    mounted bundle left behind, and the size."""
    root = Path(buildah("mount", container).strip())
    try:
        size = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"container-test: image size {size / 1e6:.0f} MB (files of its filesystem)", flush=True)
        expect(size < MAX_BYTES, f"the image is {size / 1e6:.0f} MB, over {MAX_BYTES / 1e6:.0f} MB")
        ok(f"size {size / 1e6:.0f} MB < {MAX_BYTES / 1e6:.0f} MB")
        # buildah leaves the mount point of `bud -v` behind, as an empty file
        mount_point = root / "run/host-ca.crt"
        expect(not mount_point.exists() or mount_point.stat().st_size == 0, "the build's CA is in the image")
        local_cas = sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
        markers = [_pem_marker(p.read_text(errors="replace")) for p in local_cas]
        found = []
        for marker in filter(None, markers):
            hit = subprocess.run(
                ["grep", "-rlF", "--", marker, str(root / "etc"), str(root / "opt"), str(root / "usr/local")],
                capture_output=True,
                text=True,
                check=False,
            )
            found += hit.stdout.split()
        expect(not found, f"this machine's own CA certificate is in the image: {found}")
        if ca_bundle and Path(ca_bundle).is_file():
            host = Path(ca_bundle).read_bytes()
            inside = root / "etc/ssl/certs/ca-certificates.crt"
            expect(not inside.exists() or inside.read_bytes() != host, "the host's CA bundle was copied in")
        ok(f"no CA of this machine in the image ({len(local_cas)} local CA certificates looked for)")
        for path in ("sandbox/worlds/sample.yaml", "checks/data/report.schema.json"):
            expect(list(root.glob(f"opt/purview-bot/lib/python3*/site-packages/{path}")), f"{path} missing")
        expect(not list(root.glob("opt/purview-bot/lib/python3*/site-packages/tests")), "tests/ in the image")
        ok("sample world and checks/data installed; no tests in the image")
    finally:
        buildah("umount", container)


def _pem_marker(pem: str) -> str:
    """A distinctive line of a certificate's base64 body (the third: past the common prefix)."""
    lines = [ln.strip() for ln in pem.splitlines() if ln.strip() and not ln.startswith("-----")]
    return lines[2] if len(lines) > 2 else ""


# --- running it -------------------------------------------------------------------------------------


def run_in(container: str, *command: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """`buildah run` a command to its end (as the image's user, with its environment); its stdout."""
    flags = [arg for k, v in (env or {}).items() for arg in ("--env", f"{k}={v}")]
    done = subprocess.run(
        ["buildah", "run", "--network", "host", *flags, container, "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def check_user_and_demo(container: str) -> None:
    uid = run_in(container, "id", "-u").strip()
    expect(uid.isdigit() and int(uid) != 0, f"the container's user is uid {uid}")
    ok(f"runs as uid {uid}, not root")
    started = time.monotonic()
    out = run_in(container, "purview-bot", "demo", env={"NO_COLOR": "1"})
    headers = [int(n) for n in DEMO_HEADER.findall(out)]
    reports = REPORT_LINE.findall(out)
    expect(headers and sum(headers) >= 9, f"demo printed no sample tenant:\n{out[-2000:]}")
    expect(len(reports) == sum(headers), f"demo printed {len(reports)} reports of {sum(headers)}")
    ok(f"demo: {len(reports)} reports of {len(headers)} accounts in {time.monotonic() - started:.1f} s")


@dataclass
class Serving:
    """`purview-bot serve` running in a container: its process (buildah run) and its log."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    def log(self, tail: int = 40) -> str:
        return "\n".join(f"  [serve] {ln}" for ln in self.lines[-tail:])

    def bot_pid(self) -> int:
        """The bot's own process under `buildah run` (chroot isolation: a process of this host)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        # buildah run → buildah-chroot-runtime → buildah-chroot-exec → python …/purview-bot serve
        todo, found = [self.proc.pid], []
        while todo:
            pid = todo.pop()
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
                if "python" in Path(argv[0]).name and any(a.endswith("/purview-bot") for a in argv):
                    found.append(pid)
            todo += children.get(pid, [])
        expect(len(found) == 1, f"not one bot process under buildah run ({found}):\n{self.log()}")
        return found[0]

    async def stop(self) -> int:
        """SIGTERM to the bot's process, as a container runtime stops a container (buildah run itself
        does not pass signals on); the exit code."""
        if self.proc.returncode is None:
            os.kill(self.bot_pid(), signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 40)
        except TimeoutError:
            raise CheckFailed(f"serve still running 40 s after SIGTERM:\n{self.log()}") from None
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reader, 5)
        return code


@contextlib.asynccontextmanager
async def serve_in(
    container: str, command: list[str], env: Mapping[str, str], mounts: list[str]
) -> AsyncIterator[Serving]:
    """The image's own command (its ENTRYPOINT + CMD) in the container, with `env` and read-only `mounts`."""
    flags = [arg for k, v in env.items() for arg in ("--env", f"{k}={v}")]
    flags += [arg for path in mounts for arg in ("--volume", f"{path}:{path}:ro")]
    proc = await asyncio.create_subprocess_exec(
        "buildah",
        "run",
        "--network",
        "host",
        *flags,
        container,
        "--",
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    serving = Serving(proc)
    serving.reader = asyncio.create_task(serving.read())
    try:
        yield serving
    finally:
        if proc.returncode is None:  # a check failed half-way: the whole process group goes
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def healthy_within(
    http: aiohttp.ClientSession, url: str, serving: Serving, started: float, ready: Callable[[Any], bool]
) -> tuple[float, Any]:
    """Seconds from `started` until /healthz answers 200 with `ready(body)`; fails past 30 s."""
    body: Any = None
    while time.monotonic() - started < 30:
        if serving.proc.returncode is not None:
            raise CheckFailed(f"serve exited {serving.proc.returncode}:\n{serving.log()}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                body = await response.json()
                if response.status == 200 and ready(body):
                    return time.monotonic() - started, body
        await asyncio.sleep(0.05)
    raise CheckFailed(f"/healthz not 200 within 30 s (last: {body}):\n{serving.log()}")


async def check_report(slack: FakeSlack, channel: str) -> None:
    """A whole report in `channel`: the parent, its summary naming the failing checks, the findings
    thread ending with the Re-run button, all posted with the bot token."""
    parent = await slack.wait_for(
        "chat.postMessage",
        lambda c: c.ok and c.args.get("channel") == channel and not c.args.get("thread_ts"),
        timeout=30,
    )
    thread_ts = str(parent.response["ts"])
    await slack.wait_for(
        "chat.postMessage",
        lambda c: c.ok and c.args.get("thread_ts") == thread_ts and c.has_rerun_button,
        timeout=30,
    )
    update = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == thread_ts, timeout=30)
    thread = "\n".join(c.text for c in slack.thread(channel, thread_ts))
    expect("sales-adls" in update.text and "Checking" not in update.text, f"the summary:\n{update.text}")
    for fact in SALES_ADLS_FINDING:
        expect(fact in thread, f"the findings thread does not name {fact}:\n{thread}")
    posts: list[Call] = slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")
    expect(all(c.authorization == f"Bearer {BOT_TOKEN}" for c in posts), "a post without the bot token")


def base_env(sandbox: Sandbox, slack: FakeSlack, port: int) -> dict[str, str]:
    """The ordinary settings: Azure is the sandbox on this host (its CA file mounted), Slack the fake."""
    return {
        **sandbox.env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.url,
        "PORT": str(port),
        "PURVIEW_BOT_HOST": "127.0.0.1",  # the host's network: listen on loopback only
        "PURVIEW_BOT_WATCH_INTERVAL": "0",
        "NO_COLOR": "1",
    }


async def check_http_mode(
    container: str, health_container: str, command: list[str], healthcheck: list[str]
) -> float:
    port = free_port()
    async with (
        Sandbox(load_world(None)) as sandbox,
        FakeSlack() as slack,
        aiohttp.ClientSession() as http,
    ):
        env = {**base_env(sandbox, slack, port), "SLACK_SIGNING_SECRET": SECRET}
        started = time.monotonic()
        async with serve_in(container, command, env, [sandbox.ca_file]) as serving:
            url = f"http://127.0.0.1:{port}"
            took, body = await healthy_within(
                http, f"{url}/healthz", serving, started, lambda b: b.get("status") == "ok"
            )
            ok(f"HTTP mode: /healthz 200 on PORT={port} {took:.2f} s after start ({body['checks']})")
            expect(took < MAX_START_SECONDS, f"serve took {took:.1f} s to be healthy")
            # the image's own HEALTHCHECK command, run in the image, against the running server
            if healthcheck[:1] == ["CMD"]:
                run_in(health_container, *healthcheck[1:], env={"PORT": str(port)}, timeout=30)
                ok("the image's HEALTHCHECK passes against the running server")
            request = signing.slash_command(
                "sales-adls", channel_id="C0HTTP", response_url=slack.response_url("http1")
            )
            sent = time.monotonic()
            status, text, _ = await signing.post_signed(http, f"{url}/slack/events", request, secret=SECRET)
            acked = time.monotonic() - sent
            expect(status == 200 and "Checking sales-adls" in text.replace("*", ""), f"ack {status} {text}")
            bad, _, _ = await signing.post_signed(
                http, f"{url}/slack/events", request, secret=SECRET, bad_signature=True
            )
            expect(bad == 401, f"a badly signed request got {bad}, not 401")
            await check_report(slack, "C0HTTP")
            ok(
                f"HTTP mode: signed /purview-check acked in {acked * 1000:.0f} ms, report posted; "
                "a bad signature gets 401"
            )
            code = await serving.stop()
            expect(code == 0, f"serve exited {code} on SIGTERM:\n{serving.log()}")
            ok("HTTP mode: SIGTERM → exit 0")
    return took


async def check_socket_mode(container: str, command: list[str]) -> float:
    port = free_port()
    async with (
        Sandbox(load_world(None)) as sandbox,
        FakeSocketMode(APP_TOKEN) as slack,
        aiohttp.ClientSession() as http,
    ):
        env = {**base_env(sandbox, slack, port), "SLACK_APP_TOKEN": APP_TOKEN}
        started = time.monotonic()
        async with serve_in(container, command, env, [sandbox.ca_file]) as serving:
            took, body = await healthy_within(
                http,
                f"http://127.0.0.1:{port}/healthz",
                serving,
                started,
                lambda b: b.get("checks", {}).get("socketMode") == "ok" and b.get("status") == "ok",
            )
            ok(f"Socket Mode: connected, /healthz 200 {took:.2f} s after start ({body['checks']})")
            expect(took < MAX_START_SECONDS, f"serve took {took:.1f} s to connect")
            opened = slack.calls_to("apps.connections.open")
            expect([c.authorization for c in opened] == [f"Bearer {APP_TOKEN}"], "apps.connections.open")
            envelope = await slack.slash_command(
                "sales-adls", channel_id="C0SOCKET", response_url=slack.response_url("sock1")
            )
            ack = await slack.wait_for_ack(envelope)
            text = str((ack.get("payload") or {}).get("text", ""))
            expect("Checking sales-adls" in text.replace("*", ""), f"the ack says {ack}")
            await check_report(slack, "C0SOCKET")
            ok("Socket Mode: slash_commands envelope acked on the socket, report posted via the Web API")
            code = await serving.stop()
            expect(code == 0, f"serve exited {code} on SIGTERM:\n{serving.log()}")
            ok("Socket Mode: SIGTERM → exit 0")
    return took


async def main_async(image: str, ca_bundle: str | None) -> None:
    config = check_config(image)
    containers: list[str] = []
    try:
        for _ in range(2):
            containers.append(buildah("from", "--pull-never", "--quiet", image).strip())
        work, probe = containers
        check_files(work, ca_bundle)
        check_user_and_demo(work)
        command = [*config["Entrypoint"], *config["Cmd"]]  # `purview-bot serve`, as a runtime starts it
        http_start = await check_http_mode(work, probe, command, list(config["Healthcheck"]["Test"]))
        socket_start = await check_socket_mode(work, command)
        print(
            f"container-test: serve start (to /healthz 200, buildah run included): HTTP mode "
            f"{http_start:.2f} s, Socket Mode {socket_start:.2f} s",
            flush=True,
        )
    finally:
        for container in containers:
            with contextlib.suppress(CheckFailed):
                buildah("rm", container)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument(
        "--ca-bundle", default="", help="the CA bundle the build mounted (must not be inside)"
    )
    args = parser.parse_args()
    os.environ["BUILDAH_ISOLATION"] = "chroot"  # as the build: no daemon, the host's network
    try:
        asyncio.run(main_async(args.image, args.ca_bundle or None))
    except CheckFailed as failure:
        print(f"container-test: FAIL {failure}", file=sys.stderr, flush=True)
        print(f"container-test: {len(PASSED)} passed, 1 failed", flush=True)
        return 1
    print(f"container-test: {len(PASSED)} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
