"""A job runs with the settings of the environment as it is when the job runs, parsed once for each
environment (parsing them for every job cost some 5 % of an SMS send's CPU)."""

from __future__ import annotations

import pytest

from workers import context


def test_a_job_sees_a_setting_changed_since_the_last_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_MAX_ATTEMPTS", "7")
    assert context.job_context().settings.sms_max_attempts == 7

    monkeypatch.setenv("SMS_MAX_ATTEMPTS", "9")
    assert context.job_context().settings.sms_max_attempts == 9

    monkeypatch.delenv("SMS_MAX_ATTEMPTS")
    assert context.job_context().settings.sms_max_attempts == 12  # the default again
