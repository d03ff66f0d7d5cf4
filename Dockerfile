# One image for the five services (and the topic set-up and mail catcher of
# docker-compose.yml); the command picks the service: python -m campaign_api, ...
# The web app is built in a stage of its own; the gateway serves its dist/ at /.
FROM node:20-slim AS app
WORKDIR /app
COPY services/frontend/package.json services/frontend/package-lock.json ./
RUN npm ci
COPY services/frontend ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH HTTP_HOST=0.0.0.0
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
COPY --from=app /app/dist ./services/frontend/dist
RUN uv sync --frozen --no-dev --group local
# A numeric user, so that Kubernetes can check runAsNonRoot (deploy/helm runs it as 10001).
RUN groupadd --system --gid 10001 campaigns && useradd --system --uid 10001 --gid 10001 campaigns
USER 10001:10001
CMD ["python", "-m", "campaign_api"]
