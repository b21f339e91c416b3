"""The `clarion` command as a user runs it, in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil

from clarion.bus.embedded import free_port
from tests.processes import clarion, wait_until_ready

DEMO_KEYS = {
    "recipients", "eligible", "sent", "delivered", "failed", "suppressed",
    "duration_s", "throughput_mps", "handset_messages",
}  # fmt: skip


def test_demo_json_accounts_for_every_recipient_and_every_handset_message(tmp_path: Path) -> None:
    env = {**os.environ, "CLARION_DATA_DIR": str(tmp_path / "unused")}
    done = subprocess.run(
        clarion("demo", "--recipients", "600", "--json", "--at", "2026-11-25T18:00:00"),
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.keys() >= DEMO_KEYS
    assert report["recipients"] == 600
    assert report["eligible"] + report["suppressed"] == 600
    assert 0 < report["suppressed"] < 60  # ~5 % without consent
    assert report["suppressed_by_reason"] == {"no_consent": report["suppressed"]}
    assert report["deferred"] == 0  # 13:00 in New York: inside every US window
    assert report["sent"] == report["eligible"]
    assert report["delivered"] + report["failed"] == report["eligible"]
    assert report["handset_messages"] == report["delivered"]
    assert report["throughput_mps"] > 0
    assert not (tmp_path / "unused").exists()  # the demo used a throwaway data dir


def test_clarion_run_stops_its_servers_on_ctrl_c_and_reuses_the_data(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CLARION_DATA_DIR": str(tmp_path),
        "CLARION_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    for attempt in range(2):
        proc = subprocess.Popen(
            [*clarion("run"), "--port", str(port)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_until_ready(proc, f"http://127.0.0.1:{port}", output=_stderr_of(proc))
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert not (tmp_path / "pg" / "postmaster.pid").exists()
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        assert (tmp_path / "pg" / "PG_VERSION").exists()
        assert (tmp_path / "nats" / "jetstream").exists(), f"attempt {attempt}"


def test_importing_a_csv_reports_bad_rows_by_number_and_imports_the_rest(tmp_path: Path) -> None:
    env = {**os.environ, "CLARION_DATA_DIR": str(tmp_path / "data")}
    csv_path = tmp_path / "subscribers.csv"
    csv_path.write_text(
        "phone,first_name,sms_consent,tier\n"
        "(212) 555-7788,Ava,yes,gold\n"
        "not-a-number,Liam,yes,\n"
        "+1 415 555 2671,Noah,no,silver\n"
        ",,yes,\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(clarion(*args), capture_output=True, text=True, env=env, timeout=120)

    brand = run("brand", "create", "acme", "Acme", "+15125550100")
    assert brand.returncode == 0, brand.stderr
    imported = run("subscribers", "import", brand.stdout.strip(), str(csv_path))
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 new subscribers; 2 rows rejected" in imported.stdout
    assert "row 3" in imported.stderr
    assert "not-a-number" in imported.stderr
    assert "row 5" in imported.stderr


def test_campaign_plan_prints_the_plan_and_an_api_key_is_issued(tmp_path: Path) -> None:
    """`clarion campaign plan` works before anything runs (no simulator: carriers are
    unknown, the plan says so) and `clarion brand api-key` prints a key once."""
    env = {
        **os.environ,
        "CLARION_DATA_DIR": str(tmp_path / "data"),
        "CLARION_SIM_URL": "http://127.0.0.1:9",
    }
    csv_path = tmp_path / "subscribers.csv"
    csv_path.write_text(
        "phone,first_name,sms_consent\n(212) 555-7788,Ava,yes\n(213) 555-2671,Noah,yes\n"
        "+1 646 555 0199,Mia,no\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(clarion(*args), capture_output=True, text=True, env=env, timeout=120)

    brand = run("brand", "create", "acme", "Acme", "+15125550100").stdout.strip()
    assert run("subscribers", "import", brand, str(csv_path)).returncode == 0
    body = "Acme: Hi {{ first_name }}! Reply STOP to opt out."
    campaign_id = run("campaign", "create", brand, "Spring", body).stdout.strip().split()[-1]
    # 13:00 in New York, 10:00 in Los Angeles... but 06:00 there at 14:00 UTC
    planned = run("campaign", "plan", campaign_id, "--at", "2026-11-25T14:00:00", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout.strip().splitlines()[-1])
    assert (plan["audience"], plan["eligible"], plan["send_now"], plan["deferred"]) == (3, 2, 1, 1)
    assert plan["excluded"] == {"no_consent": 1}
    assert plan["carriers"] == {"unknown": 2}
    assert [h["at"] for h in plan["deferred_by_hour"]] == ["2026-11-25T16:00:00Z"]
    table = run("campaign", "plan", campaign_id, "--at", "2026-11-25T14:00:00")
    assert table.returncode == 0, table.stderr
    assert "Send plan for campaign" in table.stdout
    assert "estimated finish" in table.stdout
    key = run("brand", "api-key", brand)
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip().startswith("clk_")
    reader = run("brand", "api-key", brand, "--name", "dashboard", "--scope", "read")
    assert reader.returncode == 0, reader.stderr
    listed = run("brand", "keys", brand).stdout.splitlines()
    assert len(listed) == 2
    assert "read,write,send" in listed[0]
    assert "dashboard" in listed[1]
    assert "…" + reader.stdout.strip()[-4:] in listed[1]
    assert key.stdout.strip() not in "".join(listed)  # never the secret
    reader_id = listed[1].split()[0]
    assert run("brand", "revoke-key", brand, reader_id).returncode == 0
    assert "revoked" in run("brand", "keys", brand).stdout.splitlines()[1]
    wrong = run("brand", "api-key", brand, "--scope", "admin")
    assert wrong.returncode == 65
    assert "'admin' is no scope" in wrong.stderr


def test_template_errors_are_one_line_errors_at_create_and_validate(tmp_path: Path) -> None:
    """No traceback: a template over the limits is refused before any server starts, and
    one the sandbox refuses is named at validation, with its line."""
    # COLUMNS: rich wraps stderr at 80 columns when it is not a terminal
    env = {**os.environ, "CLARION_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(clarion(*args), capture_output=True, text=True, env=env, timeout=120)

    created = run("campaign", "create", "1", "Huge", "{{ 10**5000 }}")
    assert created.returncode == 65
    assert created.stderr.strip().splitlines() == [
        "error: field 'body': template error (line 1): '**' makes a number over 4,096 bits"
    ]
    assert not (tmp_path / "data").exists()

    brand = run("brand", "create", "acme", "Acme", "+15125550100").stdout.strip()
    body = "Acme: hi\n{{ ''.__class__ }} Reply STOP to opt out."
    campaign_id = run("campaign", "create", brand, "Peek", body).stdout.strip().split()[-1]
    validated = run("campaign", "validate", campaign_id)
    assert validated.returncode == 65
    assert "Traceback" not in validated.stderr
    assert validated.stderr.strip().splitlines() == [
        "error: field 'body': template error (line 2): access to attribute '__class__' of "
        "'str' object is unsafe."
    ]


def test_a_draft_is_listed_edited_and_deleted_and_a_launched_one_is_not(tmp_path: Path) -> None:
    env = {**os.environ, "CLARION_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(clarion(*args), capture_output=True, text=True, env=env, timeout=120)

    brand = run("brand", "create", "acme", "Acme", "+15125550100").stdout.strip()
    body = "Acme: hi! Reply STOP to opt out."
    first, second = (
        run("campaign", "create", brand, name, body).stdout.strip() for name in ("Spring", "Fall")
    )
    edited = run(
        "campaign", "edit", first, "--name", "Summer", "--definition",
        '{"attribute": "vip", "op": "eq", "value": true}',
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "changed: definition, exclude_segment_ids, name, segment_id" in edited.stdout
    listed = run("campaign", "list", brand).stdout.splitlines()
    assert [line.split()[0] for line in listed] == [first, second]
    assert "draft" in listed[0]
    assert listed[0].endswith("Summer")
    assert "a definition" in listed[0]
    assert "whole list" in listed[1]

    bad = run("campaign", "edit", first, "--subject", "{{ x")
    assert bad.returncode == 65
    assert bad.stderr.startswith("error: field 'subject': template error (line 1)")
    assert run("campaign", "edit", first).returncode == 64  # nothing to change

    assert run("campaign", "launch", second).returncode == 0
    refused = run("campaign", "delete", second)
    assert refused.returncode == 1
    assert "only a draft (never launched) can be deleted" in refused.stderr
    assert run("campaign", "delete", first).returncode == 0
    assert run("campaign", "list", "--status", "draft").stdout.strip() == ""
    assert [line.split()[0] for line in run("campaign", "list").stdout.splitlines()] == [second]


def test_importing_an_excel_csv_names_every_bad_row_and_a_file_without_phones_fails(
    tmp_path: Path,
) -> None:
    """A BOM, a duplicate, a NUL, an extra field, an unknown zone and a cp1252 byte: each bad
    row is named and the good ones go in. A header without phone or email: exit 65, never a
    traceback (not even when the header looks like terminal markup)."""
    env = {**os.environ, "CLARION_DATA_DIR": str(tmp_path / "data")}
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes(
        b"\xef\xbb\xbfphone,first_name,sms_consent,timezone\r\n"
        b"(212) 555-7788,Ava,yes,\r\n"
        b"+1 212 555 7788,Ava,no,\r\n"
        b"+1 415 555 2671,No\x00ah,yes,\r\n"
        b"+1 646 555 0199,Mia,yes,Mars/Olympus\r\n"
        b"+1 646 555 0198,Mia,yes,,extra\r\n"
        b"+1 646 555 0197,Jos\xe9,yes,\r\n"
        b"+1 213 555 2671,Zo\xc3\xab,yes,America/Chicago\r\n"
    )
    no_phone = tmp_path / "no_phone.csv"
    no_phone.write_text("name,[/bold]\nAva,x\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(clarion(*args), capture_output=True, text=True, env=env, timeout=120)

    brand = run("brand", "create", "acme", "Acme", "+15125550100").stdout.strip()
    imported = run("subscribers", "import", brand, str(csv_path))
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 new subscribers; 5 rows rejected" in imported.stdout
    skipped = [line for line in imported.stderr.splitlines() if line.startswith("skipped")]
    assert [line.split(":")[0] for line in skipped] == [
        "skipped row 3, field 'phone'",
        "skipped row 4, field 'first_name'",
        "skipped row 5, field 'timezone'",
        "skipped row 6",
        "skipped row 7, field 'first_name'",
    ]
    assert "duplicate of row 2" in skipped[0]
    assert "--encoding" in skipped[4]
    refused = run("subscribers", "import", brand, str(no_phone))
    assert refused.returncode == 65
    assert "Traceback" not in refused.stderr
    assert "no phone and no email column" in refused.stderr


def _stderr_of(proc: subprocess.Popen[bytes]) -> Callable[[], str]:
    return lambda: proc.stderr.read().decode() if proc.stderr else ""
