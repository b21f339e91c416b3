# The image deploy/ runs: `clarion` on PATH, as an unprivileged user (uid 10001).
#   docker build -t ghcr.io/clarion/clarion:0.1.0 .
# Postgres and NATS are external in a deployment (CLARION_DATABASE_URL, CLARION_NATS_URL);
# the embedded-server wheels are installed with the package but never started there.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin clarion
USER 10001
EXPOSE 8080
ENTRYPOINT ["clarion"]
