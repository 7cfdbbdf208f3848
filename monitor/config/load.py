"""Reading the configuration: the YAML file validated into a ``Config``, then the environment's overrides.

Config flows one way: file -> ``${VAR}`` -> ``REDIS_URL`` -> flags -> this object. A problem in the file is
reported at its ``path:line``, one in the environment by its variable's name, all of them in one ``ConfigError``
and none repeating a credential.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.config.schema import CHECKS, REPLICA_NAME, Config, SectionCheck
from monitor.config.yamlsrc import load_yaml
from monitor.core.errors import ConfigError, Problem
from monitor.core.redact import redact, url_credentials

__all__ = ["load_config", "web_exposure_problem", "with_environment"]

_S = TypeVar("_S", bound=BaseModel)
#: The sink types: pydantic puts the union's tag into an error's location, where the file has no such key.
_SINK_TAGS = ("webhook", "console", "file", "email", "slack", "telegram", "apprise")


def _format_loc(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def load_config(path: Path, *, env: Mapping[str, str], checks: Iterable[SectionCheck[Any]] = ()) -> Config:
    """Read, substitute, validate, and run ``checks`` on their sections; then the environment's overrides. Raises
    ``ConfigError`` with every problem and its line (the environment's by variable), credentials redacted."""
    try:
        located = load_yaml(path, env=env)
    except ConfigError as exc:
        raise ConfigError(_redacted(exc.problems, url_credentials(env.get("REDIS_URL", "")))) from exc
    secrets = [*_secrets_of(located.data, env), *_sentinel_password(located.data)]
    if not isinstance(located.data, dict):
        problems = [*located.problems, Problem(located.path, 1, "the configuration must be a mapping")]
        raise ConfigError(_redacted(problems, secrets))
    problems = list(located.problems)
    by_section: dict[type[BaseModel], list[Callable[[Any], str | None]]] = {}
    for check in checks:
        by_section.setdefault(check.section, []).append(check.problem)
    try:
        config = Config.model_validate({**located.data, "source": str(path)}, context={CHECKS: by_section})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(
                p
                for p in err["loc"]
                if p not in ("webhook", "console", "file", "email", "slack", "telegram", "apprise")
            )
            where = _format_loc(loc) or "(top level)"
            problems.append(Problem(located.path, located.line(loc), f"{where}: {_reason(err)}"))
        problems.sort(key=lambda p: p.line or 0)
        problems.extend(_environment(Config(), env)[1])  # the environment's mistakes too, in the same report
        raise ConfigError(_redacted(problems, secrets)) from exc
    if problems:
        raise ConfigError(_redacted(problems, secrets))
    config = with_environment(config, env)
    exposed = web_exposure_problem(config)
    if exposed:
        raise ConfigError([Problem(located.path, located.line(("metrics", "host")), exposed)])
    return config


def web_exposure_problem(config: Config) -> str | None:
    """Why the dashboard may not be served as configured: on a host other than loopback without a token."""
    if not (config.metrics.enabled and config.web.enabled) or config.web.token is not None:
        return None
    if config.metrics.host in ("127.0.0.1", "::1", "localhost") or config.metrics.host.startswith("127."):
        return None
    return (
        f"metrics.host: the dashboard would be served on {config.metrics.host} without a token: set web.token "
        "(or MONITOR_WEB_TOKEN), bind metrics.host to 127.0.0.1, or set web.enabled: false"
    )


def with_environment(config: Config, env: Mapping[str, str]) -> Config:
    """The environment's overrides of a config (``REDIS_URL``, ``MONITOR_REDIS_MODE``, ``MONITOR_REPLICA``). A bad
    value raises ``ConfigError`` naming the variable, as a bad key in the file names its line."""
    config, problems = _environment(config, env)
    if problems:
        raise ConfigError(_redacted(problems, url_credentials(env.get("REDIS_URL", ""))))
    return config


def _environment(config: Config, env: Mapping[str, str]) -> tuple[Config, list[Problem]]:
    problems: list[Problem] = []
    replica = env.get("MONITOR_REPLICA")
    if replica:
        if not re.fullmatch(REPLICA_NAME, replica) or len(replica) > 100:
            problems.append(Problem("MONITOR_REPLICA", None, "must be letters, digits and . _ : @ - (at most 100)"))
        else:
            config = config.model_copy(update={"replica_name": replica})
    token = env.get("MONITOR_WEB_TOKEN")
    if token:
        web, found = _override(config.web, "MONITOR_WEB_TOKEN", token=token)
        problems.extend(found)
        config = config.model_copy(update={"web": web})
    url = env.get("REDIS_URL")
    if url:
        redis, found = _override(config.redis, "REDIS_URL", url=url)
        problems.extend(found)
        config = config.model_copy(update={"redis": redis})
    config, found = _redis_mode(config, env.get("MONITOR_REDIS_MODE"))
    return config, problems + found


_CLUSTER_URL = "redis.mode cluster needs redis.url (or REDIS_URL) naming one of its nodes: redis://host:port"


def _redis_mode(config: Config, mode: str | None) -> tuple[Config, list[Problem]]:
    """``MONITOR_REDIS_MODE`` applied, then the check that a cluster has a node's URL, made once the environment is
    in (the file may leave the URL to ``REDIS_URL``)."""
    problems: list[Problem] = []
    if mode:
        redis, problems = _override(config.redis, "MONITOR_REDIS_MODE", mode=mode)
        config = config.model_copy(update={"redis": redis})
    if config.redis.mode == "cluster" and not config.redis.url.startswith(("redis://", "rediss://")):
        problems.append(Problem(config.source, None, _CLUSTER_URL))
    return config, problems


def _override(section: _S, variable: str, **values: object) -> tuple[_S, list[Problem]]:
    """``section`` with ``values`` from the environment variable ``variable``, validated as the file's are."""
    try:
        return type(section).model_validate({**section.model_dump(), **values}), []
    except ValidationError as exc:
        return section, [Problem(variable, None, _reason(err)) for err in exc.errors()]


def _reason(err: Any) -> str:
    """A pydantic error as a reason; the messages never quote the value, which may hold a password."""
    return "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")


def _secrets_of(data: object, env: Mapping[str, str]) -> list[str]:
    """Credentials that a problem's message must not repeat: those of ``redis.url`` and of ``REDIS_URL``."""
    redis = data.get("redis") if isinstance(data, dict) else None
    url = redis.get("url") if isinstance(redis, dict) else None
    web = data.get("web") if isinstance(data, dict) else None
    token = web.get("token") if isinstance(web, dict) else None
    tokens = [t for t in (token, env.get("MONITOR_WEB_TOKEN")) if isinstance(t, str) and t]
    return [*url_credentials(url if isinstance(url, str) else ""), *url_credentials(env.get("REDIS_URL", "")), *tokens]


def _sentinel_password(data: object) -> list[str]:
    """The ``redis.sentinel_password`` of the file, also a secret no message may repeat."""
    redis = data.get("redis") if isinstance(data, dict) else None
    password = redis.get("sentinel_password") if isinstance(redis, dict) else None
    return [password] if isinstance(password, str) and password else []


def _redacted(problems: list[Problem], secrets: list[str]) -> list[Problem]:
    return [Problem(p.path, p.line, redact(p.message, secrets)) for p in problems]
