"""The USSD step's direct Redis calls behave as redis-py's own: errors, scripts, reconnection."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.connection import Direct, DirectScript, redis_from_url
from tests.conftest import REDIS_URL

SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]) return {1, tonumber(ARGV[2])}"


def test_commands_are_answered_in_order_and_an_error_reply_is_returned_not_raised(redis: Redis) -> None:
    redis.set("text", "not a number")
    direct = Direct(redis_from_url(REDIS_URL))

    incremented, got, missing = direct.call(("INCR", "text"), ("GET", "text"), ("GET", "nothing"))

    assert isinstance(incremented, ResponseError)
    assert got == b"not a number" and missing is None
    assert direct.call(("SET", "after", "1")) == [b"OK"]  # the connection is still in step


def test_a_script_unknown_to_redis_is_sent_whole_once_then_run_by_digest(redis: Redis) -> None:
    script = DirectScript(Direct(redis_from_url(REDIS_URL)), SCRIPT)
    redis.script_flush()

    assert script(["k"], ["v", 7]) == [1, 7]
    assert redis.script_exists(script.sha) == [True]
    assert script(["k"], ["w", 8]) == [1, 8]
    assert redis.get("k") == b"w"


def test_a_script_error_is_raised(redis: Redis) -> None:
    script = DirectScript(Direct(redis_from_url(REDIS_URL)), "return redis.call('INCR', KEYS[1])")
    redis.set("k", "x")
    with pytest.raises(ResponseError):
        script(["k"], [])


def test_each_thread_has_its_own_connection(redis: Redis) -> None:
    direct = Direct(redis_from_url(REDIS_URL))
    connections: list[int] = []

    def ask() -> None:
        connections.extend(direct.call(("CLIENT", "ID")))  # the server's id of the connection used

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(connections)) == 3


def test_a_forked_process_uses_a_connection_of_its_own(redis: Redis) -> None:
    """gunicorn forks its workers: a socket shared with the parent would mix both replies."""
    direct = Direct(redis_from_url(REDIS_URL))
    (parent,) = direct.call(("CLIENT", "ID"))
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same thread-local, the parent's connection in it
        try:
            os.write(writer, str(direct.call(("CLIENT", "ID"))[0]).encode())
        finally:
            os._exit(0)
    os.close(writer)
    child = int(os.read(reader, 64) or b"0")
    os.waitpid(pid, 0)

    assert child and child != parent
    assert direct.call(("CLIENT", "ID")) == [parent]  # the parent's is still in step


def test_a_redis_that_does_not_answer_fails_the_call_then_the_breaker_refuses_at_once() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    port = silent.getsockname()[1]
    try:
        direct = Direct(redis_from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2, cooldown=30))
        with pytest.raises(RedisTimeoutError):
            direct.call(("GET", "k"))
        with pytest.raises(RedisConnectionError, match="not trying again yet"):
            direct.call(("GET", "k"))
    finally:
        silent.close()


def test_a_connection_closed_by_redis_is_replaced_quietly_without_tripping_the_breaker(redis: Redis) -> None:
    """After a Redis restart or an idle time-out, the next step must not fail (nor the next 2 s)."""
    client = redis_from_url(REDIS_URL, cooldown=30)
    direct = Direct(client, idle_check_seconds=0.2)
    direct.call(("CLIENT", "SETNAME", "direct-under-test"))
    (client_list,) = direct.call(("CLIENT", "LIST"))
    own_id = next(
        line.split()[0].split(b"=")[1]
        for line in client_list.splitlines()
        if b"name=direct-under-test" in line
    )
    redis.client_kill_filter(_id=own_id.decode())
    time.sleep(0.3)  # idle long enough to be looked at before use

    assert direct.call(("SET", "k", "1"), ("GET", "k")) == [b"OK", b"1"]
    assert client.get("k") == b"1"  # the breaker was not tripped: the pooled client works too


def test_a_busy_connection_is_not_polled_so_a_restart_under_load_fails_its_next_call_once(
    redis: Redis,
) -> None:
    direct = Direct(redis_from_url(REDIS_URL, cooldown=0), idle_check_seconds=30)
    direct.call(("CLIENT", "SETNAME", "busy-under-test"))
    (own_id,) = direct.call(("CLIENT", "ID"))
    redis.client_kill_filter(_id=str(own_id))

    with pytest.raises(RedisConnectionError):
        direct.call(("GET", "k"))
    assert direct.call(("SET", "k", "1")) == [b"OK"]  # the failed call closed it; this one reconnects
