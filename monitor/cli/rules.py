"""``monitor check``, ``monitor scan`` and ``monitor rules test|derive``: the commands that work offline on the
configuration, the rule pack and article files.

Everything they use is imported inside the command, so start-up stays light; ``rules derive`` needs neither
the configuration nor the service modules."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, config_path, rule_cache_dir, run

if TYPE_CHECKING:
    from monitor.detection.rulefile import RuleSet

__all__ = ["cmd_check", "cmd_route", "cmd_rules", "cmd_scan"]


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import check

    print(check(config_path(args), dict(os.environ)))
    return EXIT_OK


def cmd_route(args: argparse.Namespace) -> int:
    from monitor.service.routes import explain_routes

    print(explain_routes(config_path(args), dict(os.environ), args.explain))
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from monitor.service.offline import load_pack_for_cli
    from monitor.service.scanning import scan_files

    matcher = load_pack_for_cli(config_path(args), dict(os.environ), args.rules, cache_dir=rule_cache_dir())
    if args.min_severity:
        matcher = matcher.at_threshold(args.min_severity)
    scan_files(args.paths, matcher, out=sys.stdout, evidence=args.evidence, workers=args.workers)
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    if args.rules_command == "derive":
        return _rules_derive(args)
    return _rules_test(args)


def _rules_test(args: argparse.Namespace) -> int:
    from monitor.detection.evaluation import run_rule_tests
    from monitor.service.offline import load_pack_for_cli

    matcher = load_pack_for_cli(config_path(args), dict(os.environ), args.rules, cache_dir=rule_cache_dir())
    ok = run_rule_tests(
        matcher.ruleset,
        min_severity=matcher.min_severity,
        corpora=args.corpus or [],
        out=sys.stdout,
        show_errors=args.show_errors,
    )
    if args.corpus:
        _event_scores(args, matcher.ruleset)
    return EXIT_OK if ok else EXIT_FAILURE


def _event_scores(args: argparse.Namespace, ruleset: RuleSet) -> None:
    """Labelled corpora with ``event_key``: replay them (the embedded or configured Redis, a namespace of its own)
    and print the clustering's scores."""
    from monitor.core.logs import configure_logging
    from monitor.service.bootstrap import event_scores, offline_config

    config = offline_config(config_path(args), dict(os.environ), args.rules)
    configure_logging(level="warning", fmt="console")
    for path in args.corpus:
        print(f"\n{path}: events (replayed in publication order)", file=sys.stdout)
        run(event_scores(config, ruleset, [path], sys.stdout))


def _rules_derive(args: argparse.Namespace) -> int:
    from monitor.detection.derive import derive

    derive(args.corpus, background=args.background, top=args.top, out=sys.stdout, progress=sys.stderr)
    return EXIT_OK
