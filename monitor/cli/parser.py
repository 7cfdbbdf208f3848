"""The command line's arguments: one small function per command that takes options, registered in the order
``monitor --help`` lists them. No command runs from here (``cli.main`` dispatches)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor import __version__

__all__ = ["build_parser"]

_Commands = argparse._SubParsersAction  # what ``add_subparsers`` returns


def build_parser() -> argparse.ArgumentParser:
    common, rules_opt = _config_option(), _rules_option()
    parser = argparse.ArgumentParser(prog="monitor", description="Iraq-US escalation monitor.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="run the daemon until SIGTERM/SIGINT")
    _add_once(sub, common)
    sub.add_parser("check", parents=[common], help="validate the configuration and every rule file")
    route = sub.add_parser("route", parents=[common], help="which sinks an alert would reach, and why")
    route.add_argument("--explain", type=Path, required=True, metavar="FILE.json", help="an alert payload (JSON)")
    _add_scan(sub, common, rules_opt)
    _add_rules(sub, common, rules_opt)
    sub.add_parser("status", parents=[common], help="feed health and outbox backlog")
    _add_dlq(sub, common)
    _add_digest(sub, common)
    _add_replay(sub, common, rules_opt)
    _add_events(sub, common)
    _add_demo(sub)
    return parser


def _config_option() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", help="configuration file (default: $MONITOR_CONFIG, else config/monitor.yaml)"
    )
    return common


def _rules_option() -> argparse.ArgumentParser:
    rules_opt = argparse.ArgumentParser(add_help=False)
    rules_opt.add_argument(
        "-r",
        "--rules",
        action="append",
        type=Path,
        help="rule file or folder (repeatable; default: the config's 'rules', else rules/)",
    )
    return rules_opt


# --- the daemon: run, once, demo ---------------------------------------------------------------------------


def _add_once(sub: _Commands, common: argparse.ArgumentParser) -> None:
    once = sub.add_parser("once", parents=[common], help="one full cycle: fetch every feed, process, deliver, exit")
    once.add_argument(
        "--deliver-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="how long to keep delivering before exiting (default 30)",
    )


def _add_demo(sub: _Commands) -> None:
    demo = sub.add_parser("demo", help="serve sample feeds on loopback and run the monitor on them")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the demo's Redis data here (default: a fresh temporary folder)",
    )


# --- offline rule tools: check, scan, rules test, rules derive -----------------------------------------------


def _add_scan(sub: _Commands, common: argparse.ArgumentParser, rules_opt: argparse.ArgumentParser) -> None:
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
    scan.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N",
        help="processes sharing a JSON Lines file of 4,000 lines or more (default auto: one per core; 1: this "
        "process only)",
    )


def _workers(value: str) -> int:
    if value == "auto":
        import os

        return os.cpu_count() or 1
    try:
        return int(value)  # 1 or less: this process only
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of processes or auto: {value!r}") from None


def _add_rules(sub: _Commands, common: argparse.ArgumentParser, rules_opt: argparse.ArgumentParser) -> None:
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


# --- operating a deployment: status, dlq, digest, replay, events ---------------------------------------------


def _add_dlq(sub: _Commands, common: argparse.ArgumentParser) -> None:
    dlq = sub.add_parser("dlq", parents=[common], help="dead-lettered alerts")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")
    dlq_list = dlq_sub.add_parser("list", parents=[common], help="list dead-lettered alerts, newest first")
    dlq_list.add_argument("--limit", type=int, default=50)
    dlq_retry = dlq_sub.add_parser("retry", parents=[common], help="send dead-lettered alerts again")
    dlq_retry.add_argument("ids", nargs="*", help="dead-letter ids (default: all)")


def _add_digest(sub: _Commands, common: argparse.ArgumentParser) -> None:
    digest = sub.add_parser("digest", parents=[common], help="preview a digest, or send one now")
    action = digest.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--preview", type=Path, metavar="OUT.html", help="write the HTML of the digest as it would be sent now"
    )
    action.add_argument("--send-now", metavar="NAME", help="send digest NAME now (scheduled digests are unaffected)")
    digest.add_argument("--name", help="with --preview: which digest (default: the first configured)")


def _add_replay(sub: _Commands, common: argparse.ArgumentParser, rules_opt: argparse.ArgumentParser) -> None:
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
    replay.add_argument(
        "--backlog",
        action="store_true",
        help="process each source's articles in one batch, as a first poll of feeds that list them all would",
    )


def _add_events(sub: _Commands, common: argparse.ArgumentParser) -> None:
    events = sub.add_parser("events", parents=[common], help="recent events and the escalation level")
    events.add_argument("--days", type=float, default=7.0, help="how far back (default 7)")
    events.add_argument("--json", action="store_true", help="one JSON object per event")
