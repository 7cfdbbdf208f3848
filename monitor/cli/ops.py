"""``monitor status``, ``events``, ``replay``, ``dlq list|retry`` and ``digest``: looking at and operating a
deployment (its Redis, its sinks), each through ``monitor.service``, imported inside the command."""

from __future__ import annotations

import argparse
import os
import sys

from monitor.cli.common import EXIT_USAGE, config_path, run

__all__ = ["cmd_digest", "cmd_dlq", "cmd_events", "cmd_replay", "cmd_status"]


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import status

    return run(status(config_path(args), dict(os.environ), sys.stdout))


def cmd_events(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import events_command

    return run(events_command(config_path(args), dict(os.environ), days=args.days, as_json=args.json, out=sys.stdout))


def cmd_replay(args: argparse.Namespace) -> int:
    from monitor.core.logs import configure_logging
    from monitor.service.bootstrap import config_and_rules, replay_command

    config, ruleset = config_and_rules(config_path(args), dict(os.environ), args.rules)
    configure_logging(level="warning", fmt="console")  # the timeline goes to stdout; problems to stderr
    return run(
        replay_command(
            config, ruleset, args.paths, speed=args.speed, with_sinks=args.sinks, backlog=args.backlog, out=sys.stdout
        )
    )


def cmd_dlq(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import dlq_list, dlq_retry

    if args.dlq_command == "list":
        return run(dlq_list(config_path(args), dict(os.environ), sys.stdout, limit=args.limit))
    return run(dlq_retry(config_path(args), dict(os.environ), sys.stdout, ids=args.ids))


def cmd_digest(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import digest_preview, digest_send_now

    if args.send_now is not None:
        if args.name is not None:
            print("monitor digest: --name goes with --preview; --send-now takes the name itself", file=sys.stderr)
            return EXIT_USAGE
        return run(digest_send_now(config_path(args), dict(os.environ), sys.stdout, name=args.send_now))
    return run(digest_preview(config_path(args), dict(os.environ), sys.stdout, target=args.preview, name=args.name))
