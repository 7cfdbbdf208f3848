"""The command line. The only place that reads the environment and maps errors to exit codes:
0 success, 1 runtime failure, 2 bad usage, bad config or bad rules (with ``path:line: reason`` on stderr).

``parser`` builds the arguments; the commands live by group in ``daemon`` (run, once, demo), ``rules`` (check, route,
scan, rules test/derive) and ``ops`` (status, events, replay, dlq, digest); ``common`` holds the exit codes.
``main`` (the ``monitor`` console script) dispatches and turns errors into exit codes, here and nowhere else;
what it prints about an error never holds a URL's credentials (``core.redact``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from monitor.cli import daemon, ops, rules
from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from monitor.cli.parser import build_parser
from monitor.core.errors import ConfigError, MonitorError
from monitor.core.redact import redact, url_credentials

__all__ = ["main"]

_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": daemon.cmd_run,
    "once": daemon.cmd_once,
    "check": rules.cmd_check,
    "route": rules.cmd_route,
    "scan": rules.cmd_scan,
    "rules": rules.cmd_rules,
    "status": ops.cmd_status,
    "replay": ops.cmd_replay,
    "events": ops.cmd_events,
    "dlq": ops.cmd_dlq,
    "digest": ops.cmd_digest,
    "demo": daemon.cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever is printed about an error loses the credentials of any URL in it, REDIS_URL's above all.
    secrets = url_credentials(os.environ.get("REDIS_URL", ""))
    try:
        return _HANDLERS[args.command](args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(redact(str(problem), secrets), file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as exc:
        print(redact(f"monitor: {exc}", secrets), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:
        # e.g. `monitor scan ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception:
        # A bug: its traceback is printed as Python would print it, and exits 1 as Python would, but redacted.
        print(redact(traceback.format_exc(), secrets).rstrip(), file=sys.stderr)
        return EXIT_FAILURE
