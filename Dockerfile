# syntax=docker/dockerfile:1
# Both stages use one base image pinned by digest, so a rebuild gets the same Python and Debian
# until the pin is moved on purpose (both lines together; docs/deploy.md says how).

# Build stage: a virtualenv holding exactly the locked dependencies (hash-checked), then
# alertbot itself without dependencies, so nothing unlocked gets in.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build
RUN python -m venv /opt/alertbot
WORKDIR /src
COPY requirements/runtime.txt ./requirements/
RUN /opt/alertbot/bin/pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY templates ./templates
RUN /opt/alertbot/bin/pip install --no-cache-dir --no-deps . \
 && /opt/alertbot/bin/pip check

# Run stage: the virtualenv, a non-root user, the image's own config, nothing else.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
RUN useradd --create-home --uid 10001 alertbot
WORKDIR /app
COPY --from=build /opt/alertbot /opt/alertbot
# The drop folder of the shipped config's file source, inside the volume (docs/deploy.md).
RUN mkdir -p /app/var/inbox && chown -R alertbot:alertbot /app/var
# Not config/alertbot.toml: that one reads `make run`'s samples folder, absent here.
COPY config/docker.toml ./config/alertbot.toml
# Numeric, so that the runtime can tell it is not root without reading /etc/passwd.
USER 10001
ENV PATH=/opt/alertbot/bin:$PATH \
    ALERTBOT_HTTP_HOST=0.0.0.0 \
    ALERTBOT_HTTP_PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
VOLUME ["/app/var"]
# Asks the port the service listens on, so `-e ALERTBOT_HTTP_PORT=9000` keeps the check right.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ALERTBOT_HTTP_PORT', '8000'), timeout=2)"]
CMD ["alertbot", "run"]
