from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_cli.main import main

CLI = [sys.executable, "-m", "gateway_cli.main"]


def test_keys_new_prints_a_key_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new"]) == 0
    out = capsys.readouterr().out
    key = out.split("key:", 1)[1].split()[0]
    digest = out.split("key_sha256:", 1)[1].split()[0]
    assert len(key) >= 40 and hashlib.sha256(key.encode()).hexdigest() == digest


def test_config_check_exits_1_naming_each_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers: {p: {type: mock, base_url: 'http://x/v1', timeout_s: 0}}\n"
        "models: {m: [{provider: ghost, model: y}]}\n"
    )
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "providers.p.timeout_s" in err and "models.m.0.provider" in err


def test_config_check_refuses_a_typo_instead_of_saying_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "providers: {p: {type: mock, base_url: 'http://x/v1'}}\n"
        "models: {m: [{provider: p, model: y}]}\n"
        f"auth: {{keys: [{{id: a, key_sha256: '{'0' * 64}', rmp: 5}}]}}\n"
        "retry: {max_atempts: 9}\n"
    )
    assert main(["config", "check", str(typo)]) == 1
    err = capsys.readouterr().err
    assert "auth.keys.0.rmp" in err and "'rpm'" in err
    assert "retry.max_atempts" in err and "'max_attempts'" in err


def test_config_show_redacts_and_names_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZAI_API_KEY", "zk-super-secret")
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queue: {deadline_s: 212}\n")
    assert main(["config", "show", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "zk-super-secret" not in out
    shown = json.loads(out)
    assert shown["config"]["providers"]["z-ai"]["api_key"] == "***"
    assert shown["sources"]["queue.deadline_s"] == "file"
    assert shown["sources"]["providers.z-ai.api_key"] == "env"
    assert shown["sources"]["queue.max_age_s"] == "default"


def test_api_refuses_a_public_bind_without_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("providers: {p: {type: mock, base_url: 'http://127.0.0.1:9/v1'}}\n")
    done = subprocess.run(
        [*CLI, "api", "--config", str(cfg), "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing" in done.stderr and "auth.keys" in done.stderr


def test_invalid_config_stops_a_process_before_it_starts(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queue: {deadline_s: -1}\n")
    for command in (["api"], ["worker"], ["beat"]):
        done = subprocess.run(
            [*CLI, *command, "--config", str(cfg)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, command
        assert "queue.deadline_s" in done.stderr
