# syntax=docker/dockerfile:1
# Build stage: a wheel of alertbot and of everything it needs.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY templates ./templates
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run stage: the installed wheel, a non-root user, nothing else.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 alertbot
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/alertbot-*.whl \
 && rm -rf /wheels \
 && mkdir -p /app/var && chown alertbot:alertbot /app/var
COPY config ./config
# Numeric, so that the runtime can tell it is not root without reading /etc/passwd.
USER 10001
ENV ALERTBOT_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
VOLUME ["/app/var"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["alertbot", "run"]
