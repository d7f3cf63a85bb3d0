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

# Each service's data lives under /data (named volumes in docker-compose.yml). A new
# named volume takes the owner of the image directory it is mounted on, so every mount
# point exists here, owned by the user the services run as.
RUN useradd --create-home rxcast \
    && mkdir -p /certs /data/feature /data/trainer/registry /data/trainer/jobs /data/drift /data/predictor-batch \
    && chown -R rxcast /certs /data
USER rxcast
