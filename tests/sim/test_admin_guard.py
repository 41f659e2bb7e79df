"""The simulator's unauthenticated admin API cannot be driven by a web page the operator visits.

A page can POST cross-site only with a "simple" content type (form, multipart, text/plain) and
always sends its `Origin`; anything else needs a CORS preflight the simulator never grants.
So: a foreign Origin → 403, a body that is not `application/json` → 415, nothing changed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

NESTED = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415_and_changes_nothing(sim, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    response = sim.http.post(
        sim.url + "/admin/price", content=b'{"coin": "BTC", "price": "1"}', headers=headers
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    assert sim.admin.state()["venues"]["hyperliquid"]["marks"]["BTC"] == "95000"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_a_foreign_origin_is_403_and_changes_nothing(sim, funded_account, origin):
    for path, body in (("/price", {"coin": "BTC", "price": "1"}), ("/reset", None)):
        response = sim.http.post(sim.url + "/admin" + path, json=body, headers={"origin": origin})
        assert response.status_code == 403, response.text
        assert "Origin" in response.json()["detail"]
    state = sim.admin.state()["venues"]["hyperliquid"]
    assert state["marks"]["BTC"] == "95000"
    assert funded_account.address.lower() in state["accounts"]  # the reset was refused


def test_the_simulators_own_origin_and_plain_json_are_accepted(sim):
    own = sim.http.post(
        sim.url + "/admin/price",
        json={"coin": "BTC", "price": "90000"},
        headers={"origin": f"http://127.0.0.1:{sim.port}"},
    )
    assert own.status_code == 200, own.text
    assert sim.admin.reset()  # no body, no content type: still fine
    assert sim.admin.set_price("BTC", "91000")["marks"]["hyperliquid"] == "91000"


def test_deeply_nested_json_is_a_400_not_a_crash(sim):
    before = sim.log()
    response = sim.http.post(
        sim.url + "/admin/accounts", content=NESTED, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    assert "Traceback" not in sim.log()[len(before) :]
    assert sim.admin.state()["venues"]["hyperliquid"]["accounts"] == {}


def test_sim_on_a_busy_port_is_one_line_and_no_banner():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "newstrader.cli", "sim", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert done.returncode == 1
    assert done.stdout == ""  # no banner announcing URLs that do not work
    (line,) = done.stderr.strip().splitlines()
    assert line == f"newstrader sim: cannot listen on 127.0.0.1:{port}: Address already in use" + (
        " (choose another with --port)"
    )
