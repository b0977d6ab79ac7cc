"""``llm-gateway``: one entry point for every process of the stack.

Imports are lazy: ``worker``, ``api`` and ``mock-provider`` let gevent patch the standard
library before anything imports ssl, socket, redis or threading (docs/architecture.md
"Known traps").
For ``api`` the patch runs in the gunicorn master, which loads and validates the config (and
so imports redis, hence ssl) before it forks: patched later, in each gevent worker, gevent
warned "Monkey-patching ssl after ssl has already been imported" (it may lead to
RecursionError). The workers' own ``patch_all`` then finds everything patched already.
"""

from __future__ import annotations

import argparse
import sys

GEVENT_COMMANDS = {"worker", "api", "mock-provider"}
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", help="config file (YAML, JSON or TOML)")
        return p

    up = cmd("up", "run the whole stack (API and worker; embedded Redis and mock if needed)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--redis-port", type=int, default=0, help="embedded Redis port (0: free)")
    up.add_argument("--concurrency", type=int, default=None)
    up.add_argument(
        "--embedded-redis", action="store_true", help="start an embedded Redis even if one answers"
    )
    up.add_argument(
        "--log-format",
        choices=("auto", "text", "json"),
        default="auto",
        help="auto: readable lines on a terminal, JSON lines otherwise",
    )

    api = cmd("api", "run the HTTP API (gunicorn, gevent workers)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8080)
    api.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")

    worker = cmd("worker", "run a Celery worker (gevent pool)")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument("--queues", default=None, help="comma-separated queue names")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--task-events", action="store_true", help="send Celery task events (Flower)"
    )
    worker.add_argument(
        "--metrics-port", type=int, default=0, help="serve this worker's metrics on 127.0.0.1:PORT"
    )

    beat = cmd("beat", "optional: trigger the sweeps from Celery beat (workers already run them)")
    beat.add_argument("--loglevel", default="INFO")

    mock = cmd("mock-provider", "run the bundled mock upstream")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9999)
    mock.add_argument("--latency-ms", type=float, default=0.0)

    keys = cmd("keys", "API key helpers")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("new", help="print a fresh key and its SHA-256 for auth.keys")
    keys_sub.add_parser(
        "secret-key", help="print a fresh GATEWAY_SECRET_KEY (seals secrets in the Redis layer)"
    )

    batch = cmd("batch", "OpenAI batch files without writing the SDK calls")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True)
    bsubmit = batch_sub.add_parser(
        "submit", help="upload FILE.jsonl, create the batch; --wait follows it and downloads"
    )
    bsubmit.add_argument("file", help="OpenAI batch lines: {custom_id, method, url, body}")
    bsubmit.add_argument("--wait", action="store_true", help="show progress, download the output")
    bsubmit.add_argument("--url", help=f"the gateway (LLM_GATEWAY_URL; {DEFAULT_GATEWAY_URL})")
    bsubmit.add_argument("--api-key", help="an API key (LLM_GATEWAY_API_KEY or OPENAI_API_KEY)")
    bsubmit.add_argument("--output", help="where the output goes (FILE.output.jsonl)")
    bsubmit.add_argument("--errors", help="where the error file goes (FILE.errors.jsonl)")
    bsubmit.add_argument(
        "--metadata", action="append", default=[], metavar="K=V", help="batch metadata"
    )

    usage = cmd("usage", "spend and tokens per key (what GET /admin/usage answers)")
    usage.add_argument("--start", help="first UTC day, YYYY-MM-DD (default: 30 days back)")
    usage.add_argument("--end", help="last UTC day, YYYY-MM-DD (default: today)")
    usage.add_argument("--group-by", choices=("key", "model", "provider", "day"), default="key")
    usage.add_argument("--key-id", help="one API key's usage")
    usage.add_argument("--json", action="store_true", help="the report as JSON")

    config = cmd("config", "configuration helpers")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate every source; exit 1 naming bad fields")
    check.add_argument("file", nargs="?")
    show = config_sub.add_parser("show", help="the merged config, redacted, with sources")
    show.add_argument("file", nargs="?")
    set_ = config_sub.add_parser(
        "set", help="change one value in the Redis layer (validated; every process reloads)"
    )
    set_.add_argument("path", help='dotted path; quote a name with dots: models."glm-4.6"')
    set_.add_argument("value", help="JSON (30, true, null deletes, {...}) or a plain string")
    push = config_sub.add_parser("push", help="replace the Redis layer with a file (validated)")
    push.add_argument("layer_file", help="YAML, JSON or TOML; keep secrets as ${VAR}")
    for each in (check, show, set_, push):  # `config set P V --config F` reads naturally too
        each.add_argument(
            "--config", default=argparse.SUPPRESS, help="config file (YAML, JSON or TOML)"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in GEVENT_COMMANDS:
        from gevent import monkey

        monkey.patch_all()
    args = build_parser().parse_args(argv)
    if args.command == "api":
        from gateway_cli.run_api import run_api

        return run_api(args.config, args.host, args.port, args.workers)
    if args.command == "worker":
        from gateway_cli.run_worker import run_worker

        return run_worker(
            args.config,
            args.concurrency,
            args.queues,
            args.loglevel,
            args.metrics_port,
            args.task_events,
        )
    if args.command == "beat":
        from gateway_cli.run_worker import run_beat

        return run_beat(args.config, args.loglevel)
    if args.command == "mock-provider":
        from mock_provider.app import serve

        print(f"mock provider on http://{args.host}:{args.port}", flush=True)
        serve(args.host, args.port, args.latency_ms)
        return 0
    if args.command == "up":
        from gateway_cli.up import run_up

        return run_up(
            args.config,
            args.host,
            args.port,
            args.redis_port,
            args.concurrency,
            args.embedded_redis,
            args.log_format,
        )
    if args.command == "keys":
        from gateway_cli.keys_cmd import new_key, new_secret_key

        return new_secret_key() if args.keys_command == "secret-key" else new_key()
    if args.command == "batch":
        from gateway_cli.batch_cmd import submit

        return submit(
            args.file, args.url, args.api_key, args.wait, args.output, args.errors, args.metadata
        )
    if args.command == "usage":
        from gateway_cli.usage_cmd import usage as usage_report

        return usage_report(
            args.config, args.start, args.end, args.group_by, args.key_id, args.json
        )
    if args.command == "config":
        from gateway_cli import config_cmd

        if args.config_command == "set":
            return config_cmd.set_value(args.config, args.path, args.value)
        if args.config_command == "push":
            return config_cmd.push(args.config, args.layer_file)
        target = args.file or args.config
        return (
            config_cmd.check(target) if args.config_command == "check" else config_cmd.show(target)
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
