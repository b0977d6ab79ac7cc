"""Workers die; nothing accepted is lost, and each job gets exactly one result."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from gateway_cli.embedded_redis import EmbeddedRedis
from shared.config.loader import load_config
from shared.state import notice
from tests.support import web
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

IN_FLIGHT = 30


@pytest.fixture
def chaos_stack(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack(
        "chaos",
        queue={"max_deliveries": 5, "redeliver_after_s": 3},
    )
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


class Notices:
    """Counts completion notices per job id on the done channel (a notice is the job id,
    then, for a small result, its outcome: shared/state/notice.py)."""

    def __init__(self, url: str) -> None:
        self.counts: Counter[str] = Counter()
        self._pubsub = redis.Redis.from_url(url, decode_responses=True).pubsub()
        self._pubsub.subscribe(KEYS.done_channel)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for message in self._pubsub.listen():
                if message["type"] == "message":
                    self.counts[notice.job_id_of(message["data"])] += 1
        except (redis.ConnectionError, ValueError, AttributeError):
            return  # closed

    def close(self) -> None:
        self._pubsub.close()


def statuses(stack: Stack, ids: list[str]) -> dict[str, str]:
    return {i: web.get(f"{stack.api_url}/v1/jobs/{i}").json()["status"] for i in ids}


def test_sigkilled_worker_jobs_are_recovered_by_another_worker(
    chaos_stack: Stack, unique: str
) -> None:
    stack = chaos_stack
    notices = Notices(stack.redis_url)
    victim = stack.start_worker("victim")
    keys = [f"{unique}-{i}" for i in range(IN_FLIGHT)]
    # First calls that hang until the kill, however slowly a loaded machine gets there; the
    # reruns answer at once.
    ids = [stack.submit(k, hang_first_s=300) for k in keys]
    wait_for(
        lambda: all(stack.mock_calls(k) == 1 for k in keys),
        20,
        "every call in flight at the provider",
    )
    assert set(statuses(stack, ids).values()) == {"running"}

    victim.kill()  # SIGKILL, mid-call, leases held
    killed_at = time.time()
    stack.start_worker("rescuer")
    wait_for(
        lambda: set(statuses(stack, ids).values()) == {"succeeded"},
        60,
        "every job to succeed after the kill",
    )
    recovery_s = time.time() - killed_at
    assert recovery_s < 60

    time.sleep(1)  # let any duplicate notice arrive before counting
    notices.close()
    for job_id, key in zip(ids, keys, strict=True):
        job = web.get(f"{stack.api_url}/v1/jobs/{job_id}").json()
        assert job["result"]["choices"][0]["message"]["content"] == f"mock answer to: {key}"
        assert [a["outcome"] for a in job["attempts"]] == ["success"]
        assert notices.counts[job_id] == 1, "exactly one result per job"
        assert stack.mock_calls(key) == 2  # the killed call and the rerun
        assert stack.redis.hget(KEYS.job(job_id), "deliveries") == "2"
    print(f"recovered {IN_FLIGHT} jobs {recovery_s:.1f}s after SIGKILL")


def test_sigterm_stops_a_worker_within_grace_and_its_jobs_run_elsewhere(
    chaos_stack: Stack, unique: str
) -> None:
    stack = chaos_stack
    leaving = stack.start_worker("leaving")
    keys = [f"{unique}-{i}" for i in range(5)]
    ids = [stack.submit(k, hang_first_s=300) for k in keys]
    wait_for(lambda: all(stack.mock_calls(k) == 1 for k in keys), 20, "calls in flight")

    took = leaving.stop(timeout=15)
    assert took < 10, f"worker took {took:.1f}s to stop"
    # Released at once, not after the lease: back to queued, no lease left behind.
    for job_id in ids:
        assert stack.redis.exists(KEYS.lease(job_id)) == 0
        assert stack.redis.hget(KEYS.job(job_id), "status") == "queued"
    stack.start_worker("successor")
    wait_for(
        lambda: set(statuses(stack, ids).values()) == {"succeeded"},
        30,
        "the released jobs to succeed elsewhere",
    )


def test_a_job_that_keeps_killing_workers_fails_after_max_deliveries(
    chaos_stack: Stack, unique: str
) -> None:
    stack = chaos_stack
    worker = stack.start_worker("worker")
    loaded = load_config(stack.config_path, env={})
    job_id = stack.submit(unique, latency_ms=0)
    wait_for(lambda: statuses(stack, [job_id])[job_id] == "succeeded", 20, "first job")

    # A job whose every delivery killed its worker: this one is killed mid-call, and the
    # deliveries before it are written in as if they had ended the same way.
    poisoned = stack.submit(f"{unique}-p", hang_first_s=300)
    wait_for(lambda: stack.mock_calls(f"{unique}-p") == 1, 20, "call in flight")
    worker.kill()
    stack.redis.hset(KEYS.job(poisoned), "deliveries", loaded.settings.queue.max_deliveries)
    stack.start_worker("next")  # its reaper finds the dead lease and gives up on the job
    job = stack.wait_job(poisoned, {"failed"}, timeout=60)
    assert stack.mock_calls(f"{unique}-p") == 1, "not called again"
    assert job["error"]["code"] == "max_deliveries_exceeded"


def test_a_message_the_broker_lost_is_republished(chaos_stack: Stack, unique: str) -> None:
    stack = chaos_stack
    job_id = stack.submit(unique, latency_ms=0)  # no worker yet: the message waits
    assert stack.redis.llen("gateway.normal") == 1
    stack.redis.delete("gateway.normal")  # the broker loses it
    stack.start_worker("worker")
    job = stack.wait_job(job_id, {"succeeded"})
    assert job["result"] is not None
    assert stack.mock_calls(unique) == 1


def test_a_burst_of_jobs_all_complete_without_broker_errors(
    chaos_stack: Stack, unique: str
) -> None:
    # Hundreds of tasks finishing at once used to exhaust kombu's Redis pool on ack; the
    # consumer then reconnected and a reserved message was lost.
    stack = chaos_stack
    # Queued before the worker starts, so its 500 slots fill at once and finish together
    # however fast this machine submits.
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: stack.submit(f"{unique}-{i}", latency_ms=300), range(800)))
    worker = stack.start_worker("burst", concurrency=500)

    def all_succeeded() -> bool:
        pipe = stack.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(KEYS.job(job_id), "status")
        return all(status == "succeeded" for status in pipe.execute())

    wait_for(all_succeeded, 90, "every job of the burst", interval=0.5)
    log = worker.log_path.read_text()
    assert "MaxConnectionsError" not in log and "Couldn't ack" not in log


def test_sigterm_stops_a_worker_whose_redis_is_gone(
    tmp_path_factory: pytest.TempPathFactory, mock_port: int
) -> None:
    """Celery's warm shutdown waits on a broker it cannot reach; the worker leaves anyway
    once worker.shutdown_grace_s (3 s here) is over."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("doomed-redis"), appendonly=False).start()
    s = Stack(tmp_path_factory.mktemp("orphan"), f"{server.url[:-2]}/0", mock_port)
    try:
        worker = s.start_worker(concurrency=10)
        server.stop()
        time.sleep(1)
        assert worker.alive()
        took = worker.stop(timeout=20)
        assert worker.popen.returncode is not None
        assert took < 10, f"took {took:.1f}s; {worker.tail()}"
    finally:
        s.stop()
        server.stop()
