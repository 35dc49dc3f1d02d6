# ledgersync: one image for the web app, the workers, the scheduler and the emulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY engine ./engine
COPY connectors ./connectors
COPY policies ./policies
COPY ledgersync ./ledgersync
COPY examples ./examples
RUN pip install '.[postgres]'

RUN useradd --create-home ledgersync
USER ledgersync
EXPOSE 8000 8700
ENTRYPOINT ["ledgersync"]
CMD ["--help"]
