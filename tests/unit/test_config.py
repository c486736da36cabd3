"""Settings come from REACTOR_* variables and flags, and bad values name their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor.config import load_settings
from reactor.errors import ConfigError


def test_environment_variables_set_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each field is read from its REACTOR_ variable."""
    monkeypatch.setenv("REACTOR_MAX_JOBS", "7")
    monkeypatch.setenv("REACTOR_JOBS_ROOT", "/tmp/somewhere")
    settings = load_settings()
    assert settings.max_jobs == 7
    assert settings.jobs_root == Path("/tmp/somewhere")


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI flag wins over the environment variable of the same field."""
    monkeypatch.setenv("REACTOR_DB", "from-env")
    assert load_settings(db="from-flag").db == "from-flag"


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid environment value stops with a message naming the variable."""
    monkeypatch.setenv("REACTOR_LEASE_S", "-3")
    with pytest.raises(ConfigError, match="REACTOR_LEASE_S='-3'"):
        load_settings()


def test_invalid_flag_names_the_flag() -> None:
    """An invalid flag value stops with a message naming the flag."""
    with pytest.raises(ConfigError, match="--log-format='loud'"):
        load_settings(log_format="loud")


def test_unknown_setting_is_rejected() -> None:
    """A misspelt override is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="--max-job=3: Extra inputs"):
        load_settings(max_job=3)


def test_sweep_defaults_to_half_the_lease() -> None:
    """Without REACTOR_SWEEP_S the expired-lease sweep runs twice per lease."""
    settings = load_settings(lease_s=10)
    assert settings.sweep_s == 5
    assert settings.heartbeat_s == pytest.approx(10 / 3)
