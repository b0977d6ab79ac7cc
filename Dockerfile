FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway_api ./gateway_api
COPY workers ./workers
COPY gateway_cli ./gateway_cli
COPY mock_provider ./mock_provider
RUN pip install --no-cache-dir . && useradd --create-home gateway
USER gateway
EXPOSE 8080
CMD ["llm-gateway", "api", "--host", "0.0.0.0", "--port", "8080"]
