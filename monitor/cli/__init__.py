"""The command line. The only place that reads the environment and maps errors to exit codes:
0 success, 1 runtime failure, 2 bad usage, bad config or bad rules (with ``path:line: reason`` on stderr)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.core.errors import ConfigError, MonitorError

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = Path("config/monitor.yaml")


def _config_path(args: argparse.Namespace) -> Path:
    if args.config:
        return Path(args.config)
    return Path(os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", help="configuration file (default: $MONITOR_CONFIG, else config/monitor.yaml)"
    )
    rules_opt = argparse.ArgumentParser(add_help=False)
    rules_opt.add_argument(
        "-r",
        "--rules",
        action="append",
        type=Path,
        help="rule file or folder (repeatable; default: the config's 'rules', else rules/)",
    )

    parser = argparse.ArgumentParser(prog="monitor", description="Iraq-US escalation monitor.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", parents=[common], help="run the daemon until SIGTERM/SIGINT")
    once = sub.add_parser("once", parents=[common], help="one full cycle: fetch every feed, process, deliver, exit")
    once.add_argument(
        "--deliver-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="how long to keep delivering before exiting (default 30)",
    )
    sub.add_parser("check", parents=[common], help="validate the configuration and every rule file")
    scan = sub.add_parser("scan", parents=[common, rules_opt], help="classify articles offline (one JSON line each)")
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    scan.add_argument("--evidence", action="store_true", help="add the matched phrases with their offsets")
    scan.add_argument(
        "--min-severity",
        type=int,
        choices=range(1, 6),
        metavar="N",
        help="alert threshold (default: the config's alerts.min_severity, else 3)",
    )

    rules = sub.add_parser("rules", help="rule pack tools")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    test = rules_sub.add_parser(
        "test",
        parents=[common, rules_opt],
        help="run the rules' embedded examples; with --corpus, precision/recall per type",
    )
    test.add_argument(
        "--corpus",
        type=Path,
        action="append",
        metavar="FILE.jsonl",
        help="labelled articles: JSON objects with a 'label' (event type, or null for none)",
    )
    test.add_argument("--show-errors", action="store_true", help="list every misclassified corpus article")
    derive = rules_sub.add_parser("derive", parents=[common], help="suggest keywords and entities from examples")
    derive.add_argument("corpus", nargs="+", type=Path, metavar="CORPUS")
    derive.add_argument("--background", type=Path, help="background corpus (default: the one shipped)")
    derive.add_argument("--top", type=int, default=60, help="how many phrases to suggest (default 60)")

    sub.add_parser("status", parents=[common], help="feed health and outbox backlog")
    dlq = sub.add_parser("dlq", parents=[common], help="dead-lettered alerts")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")
    dlq_list = dlq_sub.add_parser("list", parents=[common], help="list dead-lettered alerts, newest first")
    dlq_list.add_argument("--limit", type=int, default=50)
    dlq_retry = dlq_sub.add_parser("retry", parents=[common], help="send dead-lettered alerts again")
    dlq_retry.add_argument("ids", nargs="*", help="dead-letter ids (default: all)")

    digest = sub.add_parser("digest", parents=[common], help="preview a digest, or send one now")
    action = digest.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--preview", type=Path, metavar="OUT.html", help="write the HTML of the digest as it would be sent now"
    )
    action.add_argument("--send-now", metavar="NAME", help="send digest NAME now (scheduled digests are unaffected)")
    digest.add_argument("--name", help="with --preview: which digest (default: the first configured)")

    replay = sub.add_parser(
        "replay",
        parents=[common, rules_opt],
        help="run an archive through the pipeline with a simulated clock; print the timeline",
    )
    replay.add_argument("paths", nargs="+", type=Path, metavar="FILE.jsonl|DIR")
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="0 = as fast as possible (default); N = N times real time (pauses capped at 5 s)",
    )
    replay.add_argument("--sinks", action="store_true", help="also deliver the alerts to the configured sinks")
    events = sub.add_parser("events", parents=[common], help="recent events and the escalation level")
    events.add_argument("--days", type=float, default=7.0, help="how far back (default 7)")
    events.add_argument("--json", action="store_true", help="one JSON object per event")

    demo = sub.add_parser("demo", help="serve sample feeds on loopback and run the monitor on them")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the demo's Redis data here (default: a fresh temporary folder)",
    )
    return parser


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": _cmd_run,
        "once": _cmd_once,
        "check": _cmd_check,
        "scan": _cmd_scan,
        "rules": _cmd_rules,
        "status": _cmd_status,
        "replay": _cmd_replay,
        "events": _cmd_events,
        "dlq": _cmd_dlq,
        "digest": _cmd_digest,
        "demo": _cmd_demo,
    }
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:
        # e.g. `monitor scan ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import run_daemon

    return _run(run_daemon(_config_path(args), dict(os.environ)))


def _cmd_once(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import run_once

    return _run(run_once(_config_path(args), dict(os.environ), deliver_timeout_s=args.deliver_timeout))


def _cmd_check(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import check

    print(check(_config_path(args), dict(os.environ)))
    return EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    from monitor.detection.scan import scan
    from monitor.service.bootstrap import load_pack_for_cli

    ruleset, min_severity = load_pack_for_cli(_config_path(args), dict(os.environ), args.rules)
    scan(args.paths, ruleset, min_severity=args.min_severity or min_severity, out=sys.stdout, evidence=args.evidence)
    return EXIT_OK


def _cmd_rules(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import load_pack_for_cli

    if args.rules_command == "derive":
        from monitor.detection.derive import derive

        derive(args.corpus, background=args.background, top=args.top, out=sys.stdout, progress=sys.stderr)
        return EXIT_OK
    from monitor.detection.evaluation import run_rule_tests

    ruleset, min_severity = load_pack_for_cli(_config_path(args), dict(os.environ), args.rules)
    ok = run_rule_tests(
        ruleset, min_severity=min_severity, corpora=args.corpus or [], out=sys.stdout, show_errors=args.show_errors
    )
    return EXIT_OK if ok else EXIT_FAILURE


def _cmd_replay(args: argparse.Namespace) -> int:
    from monitor.core.logs import configure_logging
    from monitor.service.bootstrap import config_and_rules, replay_command

    config, ruleset = config_and_rules(_config_path(args), dict(os.environ), args.rules)
    configure_logging(level="warning", fmt="console")  # the timeline goes to stdout; problems to stderr
    return _run(replay_command(config, ruleset, args.paths, speed=args.speed, with_sinks=args.sinks, out=sys.stdout))


def _cmd_events(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import events_command

    return _run(events_command(_config_path(args), dict(os.environ), days=args.days, as_json=args.json, out=sys.stdout))


def _cmd_status(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import status

    return _run(status(_config_path(args), dict(os.environ), sys.stdout))


def _cmd_dlq(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import dlq_list, dlq_retry

    if args.dlq_command == "list":
        return _run(dlq_list(_config_path(args), dict(os.environ), sys.stdout, limit=args.limit))
    return _run(dlq_retry(_config_path(args), dict(os.environ), sys.stdout, ids=args.ids))


def _cmd_digest(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import digest_preview, digest_send_now

    if args.send_now is not None:
        if args.name is not None:
            print("monitor digest: --name goes with --preview; --send-now takes the name itself", file=sys.stderr)
            return EXIT_USAGE
        return _run(digest_send_now(_config_path(args), dict(os.environ), sys.stdout, name=args.send_now))
    return _run(digest_preview(_config_path(args), dict(os.environ), sys.stdout, target=args.preview, name=args.name))


def _cmd_demo(args: argparse.Namespace) -> int:
    from monitor.service.demo import run_demo

    return _run(run_demo(data_dir=args.data_dir, seconds=args.seconds, env=dict(os.environ)))
