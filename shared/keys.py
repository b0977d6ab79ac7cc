"""Every Redis key and channel the gateway uses, built here and nowhere else.

Scheme: ``{prefix}:{kind}:{id}`` (the prefix comes from ``redis.prefix`` in config, so
several gateways can share one Redis). Celery's own queue keys are named by the queues in
``shared.celery_app`` and are not prefixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "gw"

    def job(self, job_id: str) -> str:
        """Hash: the job record (status, request, result, attempts...)."""
        return f"{self.prefix}:job:{job_id}"

    def lease(self, job_id: str) -> str:
        """String: the token of the worker that runs the job (SET NX PX)."""
        return f"{self.prefix}:lease:{job_id}"

    def file(self, file_id: str) -> str:
        """Hash: an uploaded file's record (the OpenAI File object's fields and its owner)."""
        return f"{self.prefix}:file:{file_id}"

    def file_chunks(self, file_id: str) -> str:
        """List: a file's content in order, one element per chunk (never one huge value)."""
        return f"{self.prefix}:file:{file_id}:chunks"

    def owner_files(self, owner: str) -> str:
        """Sorted set: an API key's file ids scored by creation time (GET /v1/files)."""
        return f"{self.prefix}:owner:{owner}:files"

    @property
    def files_usage(self) -> str:
        """Hash: bytes held per file id (an upload's reservation included) and ``#total``, the
        sum that ``files.redis_max_bytes`` bounds; per file ``<id>:owner`` (its API key) and
        per key ``#owner:<key id>``, the sum that ``files.max_bytes_per_key`` bounds
        (file_reserve.lua, file_delete.lua)."""
        return f"{self.prefix}:files:usage"

    @property
    def files_uploading(self) -> str:
        """Sorted set: file ids reserved but not yet complete, scored by reservation time; an
        upload whose API process died is given back after an hour (file_reserve.lua)."""
        return f"{self.prefix}:files:uploading"

    @property
    def webhook_outbox(self) -> str:
        """List: what happened that may be a webhook event ("job:<id>", "batch:<id>"), pushed
        by the script that made it so (finish.lua, terminate.lua, batch_move.lua); the
        webhook duty turns each into deliveries (shared/webhooks.py)."""
        return f"{self.prefix}:webhooks:outbox"

    @property
    def webhook_outbox_taken(self) -> str:
        """List: outbox entries being turned into deliveries; one left here by a lost worker
        is done again (idempotent: event and delivery ids are fixed by the entry)."""
        return f"{self.prefix}:webhooks:outbox:taken"

    def webhook_delivery(self, delivery_id: str) -> str:
        """Hash: one event's delivery to one endpoint: the event, status, every attempt."""
        return f"{self.prefix}:webhook:{delivery_id}"

    @property
    def webhooks_due(self) -> str:
        """Sorted set: deliveries to attempt, scored by when (an attempt in flight is scored
        past its timeout, so a lost sender's delivery is attempted again)."""
        return f"{self.prefix}:webhooks:due"

    def owner_webhook_deliveries(self, owner: str) -> str:
        """Sorted set: an API key's deliveries by creation time (GET /v1/webhook_deliveries)."""
        return f"{self.prefix}:owner:{owner}:webhook_deliveries"

    def stats_minute(self, minute: int) -> str:
        """Hash: jobs ended in one minute (epoch seconds // 60) by status (the dashboard's
        chart); written by finish.lua and terminate.lua, kept an hour."""
        return f"{self.prefix}:stats:minute:{minute}"

    def provider_minute(self, provider: str, minute: int) -> str:
        """Hash: one provider's calls in one minute, fleet-wide: ``calls``, ``errors`` and a
        latency histogram (``b0``..: shared/state/provider_stats.py); kept an hour."""
        return f"{self.prefix}:pstats:{provider}:{minute}"

    @property
    def recent_failed(self) -> str:
        """List: the latest failed jobs' ids, newest first (the dashboard), 100 at most."""
        return f"{self.prefix}:recent:failed"

    def dashboard_session(self, token_sha256: str) -> str:
        """String with TTL: a browser's dashboard login (the admin key's id), by its cookie's
        hash, so any API process honours it."""
        return f"{self.prefix}:dashboard:session:{token_sha256}"

    def owner_jobs(self, owner: str) -> str:
        """Sorted set: an API key's job ids scored by creation time (GET /v1/jobs)."""
        return f"{self.prefix}:owner:{owner}:jobs"

    @property
    def inflight(self) -> str:
        """Sorted set: ids of jobs a worker has begun, scored by start time (lease reaper)."""
        return f"{self.prefix}:inflight"

    def pending(self, priority: str) -> str:
        """Sorted set, one per priority: ids of queued jobs scored by when they were
        (re)published; the pending sweep republishes one still queued long after, in case the
        broker lost its message. Backpressure (``queue.max_depth``, ``queue.max_age_s``) reads
        the job's own priority's set, so a batch backlog never refuses interactive work."""
        return f"{self.prefix}:pending:{priority}"

    @property
    def taken(self) -> str:
        """Sorted set: ids of queued jobs that a live worker holds while they wait for one of its
        job slots (``workers/job_slots.py``), scored by when that claim lapses unless the worker
        renews it; ``begin.lua`` removes an id as its job begins. The pending sweep leaves such
        a job alone, and treats it as lost once the claim lapses (its worker died)."""
        return f"{self.prefix}:taken"

    @property
    def slim_due(self) -> str:
        """Sorted set: finished synchronous jobs scored by when their full record is due to be
        slimmed (``job_ended.lua`` adds them, ``slim.lua`` takes them: ``workers/slimming.py``).
        ``slim.lua`` finds each record at ``job("")`` + id and its stream at ``stream("")`` +
        id."""
        return f"{self.prefix}:slim:due"

    @property
    def pending_marks(self) -> str:
        """Hash: priority -> the latest publish time (pending score) of a job of that priority
        that began (``begin.lua``). Each broker queue hands its messages out in order, so a job
        published well before the mark, still queued and held by no live worker, had its
        message taken and lost: the pending sweep republishes it within seconds."""
        return f"{self.prefix}:pending:marks"

    def pendings(self) -> list[str]:
        """The three pending sets in ``shared.state.job_record.PRIORITIES`` order, for the
        scripts that pick one by a job's priority."""
        return [self.pending(p) for p in ("interactive", "normal", "batch")]

    def fair_window(self, priority: str, owner: str) -> str:
        """Sorted set: an API key's jobs of one priority released to the broker and not yet
        begun, scored by release time (fair share, ``shared/state/fair.py``): at most the key's
        window (``queue.fair_window`` x its ``weight``)."""
        return f"{self.prefix}:fair:{priority}:{owner}:window"

    def fair_backlog(self, priority: str, owner: str) -> str:
        """List: an API key's queued jobs of one priority held back while its window is full,
        oldest first; released into the broker as its window frees."""
        return f"{self.prefix}:fair:{priority}:{owner}:backlog"

    def fair_owners(self, priority: str) -> str:
        """Set: the API keys with a backlog at this priority (the fair sweep's worklist)."""
        return f"{self.prefix}:fair:{priority}:owners"

    def fair_held(self, priority: str) -> str:
        """Counter: jobs held in every key's backlog at this priority (counted as queued by
        ``queue.max_depth``)."""
        return f"{self.prefix}:fair:{priority}:held"

    def batch(self, batch_id: str) -> str:
        """Hash: a batch's record (the Batch object's fields, its owner, expansion cursor)."""
        return f"{self.prefix}:batch:{batch_id}"

    def batch_results(self, batch_id: str) -> str:
        """List: one output line (OpenAI's batch output format) per finished request, pushed
        by the script that made its job terminal, so no line is answered twice."""
        return f"{self.prefix}:batch:{batch_id}:results"

    def owner_batches(self, owner: str) -> str:
        """Sorted set: an API key's batch ids scored by creation time (GET /v1/batches)."""
        return f"{self.prefix}:owner:{owner}:batches"

    @property
    def batches_active(self) -> str:
        """Sorted set: batches not yet ended, every key's, scored by creation time (what the
        dashboard lists; the batch duty serves them through ``batch_turns``)."""
        return f"{self.prefix}:batches:live"

    @property
    def batches_active_before_turns(self) -> str:
        """Sorted set: the batch duty's worklist as gateways before per-key turns wrote it
        (batches not yet ended, scored by creation time). Nothing writes it now; the batch
        duty moves what it holds into the per-key turns (batch_adopt.lua) until it is empty."""
        return f"{self.prefix}:batches:active"

    def owner_active_batches(self, owner: str) -> str:
        """Sorted set: an API key's batches not yet ended (``batches.max_active_per_key``
        bounds it), scored by when the batch duty last stepped each: least recently first."""
        return f"{self.prefix}:owner:{owner}:batches:active"

    @property
    def batch_turns(self) -> str:
        """Sorted set: the API keys with a batch not yet ended, scored by when the batch duty
        last served each: it serves the keys in this order, one batch of each in turn."""
        return f"{self.prefix}:batches:turns"

    @property
    def done_channel(self) -> str:
        """Pub/sub channel: a job's completion notice (shared/state/notice.py) is published
        here when the job becomes terminal, unless it goes to its creator's own channel (below)."""
        return f"{self.prefix}:done"

    def done_channel_of(self, process: str) -> str:
        """One API process's own notice channel: a job created by a request that waits for it
        (a sync chat completion) names it in its ``notify`` field and its notice goes there
        alone, waking one process instead of all; another waiter sets the job's ``watched``
        field first, and the notice is then published on ``done_channel``."""
        return f"{self.prefix}:done:{process}"

    @property
    def due(self) -> str:
        """Sorted set: parked jobs (retry backoff, waiting for recovery) scored by due time."""
        return f"{self.prefix}:due"

    def stream(self, job_id: str) -> str:
        """Stream: a streamed job's chunks as the worker received them, then a done or error
        entry; expires ``streaming.ttl_s`` after the last entry."""
        return f"{self.prefix}:stream:{job_id}"

    @property
    def stats(self) -> str:
        """Hash: fleet-wide event counts (jobs by terminal status, retries, fallbacks by kind,
        cache hits, rate-limited requests) for the ``/v1/health`` metric summary."""
        return f"{self.prefix}:stats"

    @property
    def config_versions(self) -> str:
        """Hash: version number -> JSON record of the Redis config layer (layer, actor, time)."""
        return f"{self.prefix}:config:versions"

    @property
    def config_current(self) -> str:
        """String: the version number of the Redis config layer in force."""
        return f"{self.prefix}:config:current"

    @property
    def config_seq(self) -> str:
        """Counter: the last version number given out."""
        return f"{self.prefix}:config:seq"

    @property
    def config_channel(self) -> str:
        """Pub/sub channel: a new version number, so every process reloads at once."""
        return f"{self.prefix}:config:changed"

    def breaker(self, name: str) -> str:
        """Hash: a circuit breaker's state, open_until, consecutive failures, opens."""
        return f"{self.prefix}:breaker:{name}"

    def breaker_probe(self, name: str) -> str:
        """String with TTL: the token of the one half-open probe in flight."""
        return f"{self.prefix}:breaker:{name}:probe"

    def breaker_window(self, name: str) -> str:
        """Hash: per-second ok/fail counts of the breaker's sliding window."""
        return f"{self.prefix}:breaker:{name}:window"

    def health(self, provider: str) -> str:
        """Hash: a provider's last health check and last error."""
        return f"{self.prefix}:health:{provider}"

    def idempotency(self, owner: str, key_sha256: str) -> str:
        """String with TTL: the job an API key's Idempotency-Key stands for, and its body hash."""
        return f"{self.prefix}:idem:{owner}:{key_sha256}"

    def budget(self, owner: str) -> str:
        """Hash: an API key's budget: ``period``, ``spent`` and ``reserved`` (micro-USD);
        budget_period.lua."""
        return f"{self.prefix}:budget:{owner}"

    def usage_prefix(self, owner: str) -> str:
        """charge.lua appends the UTC day (YYYYMMDD): see ``usage``."""
        return f"{self.prefix}:usage:{owner}:"

    def usage(self, owner: str, day: str) -> str:
        """Hash: an API key's usage on a UTC day, fields ``provider\tmodel\t<measure>``."""
        return self.usage_prefix(owner) + day

    @property
    def usage_keys_prefix(self) -> str:
        """charge.lua appends the UTC day: see ``usage_keys``."""
        return f"{self.prefix}:usage-keys:"

    def usage_keys(self, day: str) -> str:
        """Set: the key ids with usage on a UTC day (GET /admin/usage)."""
        return self.usage_keys_prefix + day

    def ratelimit(self, owner: str, kind: str) -> str:
        """An API key's limiter state: ``rpm``/``tpm`` a GCRA TAT (string, ms), ``concurrent``
        a sorted set of its unfinished job ids."""
        return f"{self.prefix}:rl:{owner}:{kind}"

    def quota(self, provider: str, kind: str) -> str:
        """A provider's fleet-wide quota: ``rpm`` a GCRA TAT, ``concurrent`` a sorted set of
        calls in flight scored by when their slot expires."""
        return f"{self.prefix}:quota:{provider}:{kind}"

    def cache(self, owner: str, digest: str) -> str:
        """String with TTL: a cached answer (response cache), in the API key's namespace."""
        return f"{self.prefix}:cache:{owner}:{digest}"

    @property
    def cache_index(self) -> str:
        """Sorted set: response-cache entries by time stored, to bound their number and bytes."""
        return f"{self.prefix}:cache-index"

    @property
    def cache_sizes(self) -> str:
        """Hash: each cache entry's size in bytes (the bytes bound stays exact as they go)."""
        return f"{self.prefix}:cache-sizes"

    def duty(self, name: str) -> str:
        """String with TTL: the fenced lease of one periodic duty (``token:fence``); its
        holder, one worker process of the fleet, runs the duty (``shared.state.duty_lease``)."""
        return f"{self.prefix}:duty:{name}"

    def duty_fence(self, name: str) -> str:
        """Counter: the duty lease's fence, incremented each time the lease changes hands."""
        return f"{self.prefix}:duty:{name}:fence"

    def worker_heartbeat(self, worker: str) -> str:
        """String with TTL: a live worker process (``host:pid``); its value the last beat (JSON:
        ``ts``, calls in flight per provider). It exists exactly while the worker is alive."""
        return f"{self.prefix}:worker:{worker}"

    @property
    def workers(self) -> str:
        """Sorted set: the index of the heartbeats above, worker names scored by their last
        beat (``worker_beat.lua``), so the status pages list workers without scanning the
        keyspace. Entries older than a heartbeat's TTL are trimmed by every beat."""
        return f"{self.prefix}:workers"

    @staticmethod
    def broker_queue(queue: str) -> str:
        """List: a Celery queue in kombu's Redis transport, named as Celery names it (no
        prefix; ``create.lua`` pushes a job's task message there when the broker is this
        Redis database)."""
        return queue

    def group(self, queue: str) -> str:
        """List: ids of jobs created for ``queue`` since its group message was published
        (group commit: one broker message carries them all; ``create.lua``, ``group_take.lua``)."""
        return f"{self.prefix}:group:{queue}"

    def group_held(self, queue: str) -> str:
        """String with a TTL: a live worker holds a group message of ``queue`` whose first job
        waits for a slot (``hold.lua``, renewed while it waits): the jobs gathered in the group
        are not lost, only waiting for that job to begin and take them."""
        return f"{self.prefix}:group:{queue}:held"

    def group_sent(self, queue: str) -> str:
        """String with a TTL: a group message for ``queue`` is in the broker and not yet taken;
        while it stands, new jobs join its group instead of sending a message each."""
        return f"{self.prefix}:group:{queue}:sent"
