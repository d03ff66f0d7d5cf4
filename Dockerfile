# One image for the five services (and the topic set-up and mail catcher of
# docker-compose.yml); the command picks the service: python -m campaign_api, ...
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH HTTP_HOST=0.0.0.0
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
RUN uv sync --frozen --no-dev --group local
RUN useradd --system campaigns
USER campaigns
CMD ["python", "-m", "campaign_api"]
