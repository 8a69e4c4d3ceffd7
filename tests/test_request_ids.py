"""A request id goes from the USSD webhook to the jobs the step queues and to the worker's log
lines for them; with LOG_FORMAT=json each line is one JSON object, and none holds a number."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.job import Job

from config import ConfigError, load_settings
from infra import queues
from infra.logs import JsonFormatter
from tests.conftest import LiveServer, Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, app_with_directory, ask_for_help, code_in, run_worker, settings_for

REQUEST_ID = "nginx-5f2b9c0d7e1a"


pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return app_with_directory(settings_for(database_url, gateway, log_format="json"))


def test_the_request_id_goes_from_the_ussd_step_to_the_worker_s_log_lines(
    live_server: LiveServer, gateway: EmulatorProcess, database_url: str, redis: Redis, caplog
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.http.headers["X-Request-Id"] = REQUEST_ID  # as nginx sets it
    code_in(ask_for_help(phone))
    jobs = [Job.fetch(job_id, connection=redis) for job_id in Queue(queues.SMS, connection=redis).job_ids]
    assert jobs and all(job.meta.get("request_id") == REQUEST_ID for job in jobs)

    caplog.set_level(logging.INFO)
    run_worker(database_url, gateway, logging_level="INFO")
    sent = [r for r in caplog.records if r.name == "workers.sms"]
    assert len(sent) == len(jobs)
    lines = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    assert all(line["request_id"] == REQUEST_ID for line in lines if line["logger"] == "workers.sms")
    assert not [line for line in lines if "70000101" in json.dumps(line)]  # the returnee's number


def test_each_response_names_its_request_id_and_a_malformed_one_is_replaced(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz", headers={"X-Request-Id": REQUEST_ID}).headers["X-Request-Id"] == REQUEST_ID
    own = client.get("/healthz", headers={"X-Request-Id": "x y forged <script>"}).headers["X-Request-Id"]
    assert own != "x y forged <script>" and len(own) == 32
    assert client.get("/healthz").headers["X-Request-Id"] != own


def test_log_format_is_text_or_json() -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "xml"})
