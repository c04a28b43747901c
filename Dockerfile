# eventbot: slim image, non-root user, migrations applied before the server starts (`eventbot serve` does both).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite:////data/eventbot.db \
    EVENTBOT_CONFIG=/app/config.toml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY models ./models
COPY scheduler ./scheduler
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 eventbot \
    && mkdir /data && chown eventbot /data
COPY config.toml ./config.toml

USER eventbot
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["eventbot", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
