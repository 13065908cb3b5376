"""The Redfish client against a real ``sushy-emulator --fake`` on loopback (htpasswd auth)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provision.errors import ExecutionError
from provision.execute.redfish import (
    BmcTarget,
    Credentials,
    RedfishClient,
    credentials_for,
    read_secret_file,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sushy_tools") is None
                                or importlib.util.find_spec("bcrypt") is None,
                                reason="sushy-tools not installed")

UUIDS = {"node-a": "0c4a7c7e-5b8e-4cf1-9d62-2a1f0f4b2a01",
         "node-b": "0c4a7c7e-5b8e-4cf1-9d62-2a1f0f4b2a02"}
USER, PASSWORD = "admin", "s3cret-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import bcrypt

    d = tmp_path_factory.mktemp("bmc")
    (d / "htpasswd").write_text(
        f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    port = _free_port()
    systems = [{"uuid": u, "name": n, "power_state": "On",
                "nics": [{"mac": f"52:54:00:00:00:0{i}", "ip": "127.0.0.1"}]}
               for i, (n, u) in enumerate(UUIDS.items())]
    (d / "emulator.conf").write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(d / 'htpasswd')!r}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(d / 'state')!r}\n"
        f"SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n")
    log = (d / "emulator.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "sushy_tools.emulator.main", "--fake",
                             "--config", str(d / "emulator.conf")], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/redfish/v1/", timeout=1).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sushy-emulator did not start: {(d / 'emulator.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def client(url: str, host: str, system: str, password: str = PASSWORD) -> RedfishClient:
    return RedfishClient(BmcTarget(host, url, system), Credentials(USER, password, "test"),
                         timeout=5)


def test_finds_system_by_uuid_or_name_and_power_cycles(bmc: str) -> None:
    by_uuid = client(bmc, "node-b", UUIDS["node-b"])
    assert by_uuid.system_path().endswith(UUIDS["node-b"])
    by_name = client(bmc, "node-a", "node-a")
    assert by_name.system_path().endswith(UUIDS["node-a"])
    assert by_name.power_state() == "On"
    by_name.set_one_time_boot("Pxe")
    assert by_name.boot_override()[0] == "Pxe"
    # sushy's fake driver applies a power change 1-11 s (whole seconds) after the request
    assert by_name.power_cycle(wait=20) == "ForceRestart"
    assert by_name.power_state() == "On"


def test_wrong_credentials_name_the_host_and_the_variables(bmc: str) -> None:
    bad = client(bmc, "lab-gpu-02", "node-a", password="wrong")
    with pytest.raises(ExecutionError) as err:
        bad.power_state()
    msg = str(err.value)
    assert msg == (f"bmc of lab-gpu-02 ({bmc}): 401 Unauthorized — check "
                   "GPUCTL_BMC_USER/GPUCTL_BMC_PASSWORD")
    assert "wrong" not in msg


def test_unknown_system_and_unreachable_bmc(bmc: str) -> None:
    with pytest.raises(ExecutionError, match=r"no system 'nope' among 2"):
        client(bmc, "x", "nope").power_state()
    dead = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ExecutionError, match=rf"bmc of x \({dead}\): unreachable"):
        client(dead, "x", "node-a").power_state()


def test_credentials_env_file_and_per_host_override(tmp_path: Path) -> None:
    f = tmp_path / "bmc.env"
    f.write_text("GPUCTL_BMC_USER=fileuser\nGPUCTL_BMC_PASSWORD=filepw\n"
                 "GPUCTL_BMC_PASSWORD[lab-gpu-02]=other\n")
    os.chmod(f, 0o600)
    env = {"GPUCTL_BMC_USER": "envuser", "GPUCTL_BMC_PASSWORD": "envpw"}
    assert credentials_for("lab-gpu-01", env=env, files=[f]).user == "envuser"
    two = credentials_for("lab-gpu-02", env=env, files=[f])
    assert (two.user, two.password) == ("envuser", "other")
    assert credentials_for("lab-gpu-01", env={}, files=[f]).password == "filepw"
    assert "filepw" not in repr(credentials_for("lab-gpu-01", env={}, files=[f]))
    with pytest.raises(ExecutionError, match="no credentials"):
        credentials_for("h", env={}, files=[])
    os.chmod(f, 0o644)
    with pytest.raises(ExecutionError, match="chmod 600"):
        read_secret_file(f)


def test_a_busy_bmc_is_read_again_but_never_reset_twice() -> None:
    """A BMC that answers 500 while busy (sushy's libvirt driver: "database is locked"
    under parallel preflights) is read again after 1 s and 2 s; a third 500 is the error,
    and a POST is sent once whatever it answers."""
    import http.server
    import json
    import threading

    answers: list[int] = []
    posts: list[str] = []

    class Busy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            code = answers.pop(0) if answers else 200
            if code != 200:
                self._reply(code, {"error": {"message": "database is locked"}})
            elif self.path == "/redfish/v1/Systems":
                self._reply(200, {"Members": [{"@odata.id": "/redfish/v1/Systems/n1"}]})
            else:
                self._reply(200, {"Id": "n1", "UUID": "u1", "Name": "n1", "PowerState": "On"})

        def do_POST(self) -> None:  # noqa: N802
            posts.append(self.path)
            self._reply(500, {"error": {"message": "database is locked"}})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slept: list[float] = []
    try:
        c = RedfishClient(BmcTarget("n1", f"http://127.0.0.1:{server.server_port}", "n1"),
                          Credentials(USER, PASSWORD, "test"), sleep=slept.append)
        answers[:] = [500, 503]
        assert c.power_state() == "On" and slept == [1.0, 2.0]
        answers[:] = [500, 500, 500]
        with pytest.raises(ExecutionError, match="GET /redfish/v1/Systems/n1: 500 .* database is locked"):
            c.system()
        with pytest.raises(ExecutionError, match="POST .*Reset: 500"):
            c.reset("ForceRestart")
        assert len(posts) == 1
    finally:
        server.shutdown()
        server.server_close()
