# One image for every Sealflow daemon; the command picks the daemon (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY keys keys
COPY broker broker
COPY store store
COPY identity identity
COPY gateway gateway
COPY workers workers
COPY parser parser
COPY audit audit
COPY sealflow sealflow
RUN pip install --no-cache-dir . && useradd --system --uid 10001 sealflow && mkdir -p /var/lib/sealflow && chown sealflow /var/lib/sealflow
USER sealflow
ENV SEALFLOW_DATA_DIR=/var/lib/sealflow SEALFLOW_KEYS_DIR=/var/lib/sealflow/keys
ENTRYPOINT ["sealflow"]
