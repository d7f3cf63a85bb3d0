# One image for every rxcast service; docker-compose.yml picks the module to run.
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FEAST_USAGE=False \
    PYTHONPATH=/app/build/gen:/app/services/common:/app/services/feature:/app/services/trainer:/app/services/predictor:/app/services/drift

RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY protos ./protos
COPY scripts ./scripts
COPY services ./services
RUN python scripts/gen_protos.py --out build/gen

# Each service's data lives under /data (a volume per service in docker-compose.yml).
RUN useradd --create-home rxcast && mkdir -p /data && chown rxcast /data
USER rxcast
