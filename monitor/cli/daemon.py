"""``monitor run``, ``monitor once`` and ``monitor demo``: the daemon, one cycle of it, and the demo around it.

The service modules are imported inside each command, so other commands do not pay for them."""

from __future__ import annotations

import argparse
import os

from monitor.cli.common import config_path, run

__all__ = ["cmd_demo", "cmd_once", "cmd_run"]


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import run_daemon

    return run(run_daemon(config_path(args), dict(os.environ)))


def cmd_once(args: argparse.Namespace) -> int:
    from monitor.service.bootstrap import run_once

    return run(run_once(config_path(args), dict(os.environ), deliver_timeout_s=args.deliver_timeout))


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.service.demo import run_demo

    return run(run_demo(data_dir=args.data_dir, seconds=args.seconds, env=dict(os.environ)))
