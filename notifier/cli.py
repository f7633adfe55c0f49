"""The ``notifier`` console script: serve | demo | simulate | check | send-test.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad configuration (the message names the setting).
Each command imports its part lazily, so ``notifier --help`` stays fast and light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from notifier.errors import ConfigError, NotifierError

ROLES = ("all", "api", "poller", "dispatcher")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notifier",
        description="Watches the Genviral Partner API and notifies people when posts fail or go live.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the HTTP app, the poller and the dispatcher")
    serve.add_argument("--role", choices=ROLES, default="all", help="run one part only (default: all)")
    serve.add_argument("--config", metavar="FILE", help="YAML settings file (NOTIFIER_CONFIG)")

    demo = sub.add_parser("demo", help="one-minute tour: embedded Redis, simulated API, console notifications")
    demo.add_argument("--port", type=int, default=None, help="HTTP port of the app (default: NOTIFIER_PORT)")
    demo.add_argument("--config", metavar="FILE", help="YAML settings file (NOTIFIER_CONFIG)")

    simulate = sub.add_parser("simulate", help="run the simulated Partner API alone")
    simulate.add_argument("--port", type=int, default=8090, help="port to listen on (default: 8090)")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    simulate.add_argument("--api-key", default="sim-key", help="bearer token the simulator accepts")
    simulate.add_argument("--seed-posts", type=int, default=20, help="posts to create at start (default: 20)")
    simulate.add_argument("--live", action="store_true", help="let posts change state on their own")

    check = sub.add_parser("check", help="validate configuration, ping Redis, call GET /accounts")
    check.add_argument("--role", choices=ROLES, default="all", help="the role whose settings to check (default: all)")
    check.add_argument("--config", metavar="FILE", help="YAML settings file (NOTIFIER_CONFIG)")

    send = sub.add_parser("send-test", help="send a test notification to apprise URLs")
    send.add_argument("urls", nargs="+", metavar="URL", help="apprise URLs")
    send.add_argument("--config", metavar="FILE", help="YAML settings file (NOTIFIER_CONFIG)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"notifier: configuration error: {exc}", file=sys.stderr)
        return 2
    except NotifierError as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from notifier.config import Settings

    if args.command == "simulate":
        from notifier.simulator.server import run_simulator

        return run_simulator(
            host=args.host, port=args.port, api_key=args.api_key, seed_posts=args.seed_posts, live=args.live
        )
    settings = Settings.load(config_file=args.config)
    if args.command == "serve":
        from notifier.service import run_service

        return run_service(settings, role=args.role)
    if args.command == "demo":
        from notifier.demo import run_demo

        return run_demo(settings, port=args.port)
    if args.command == "check":
        from notifier.check import run_check

        return run_check(settings, role=args.role)
    if args.command == "send-test":
        from notifier.senders.sendtest import run_send_test

        return run_send_test(settings, args.urls)
    raise AssertionError(args.command)  # argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
