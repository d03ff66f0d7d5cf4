# Two commands on a fresh clone: `make up` (run the whole system) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never

.PHONY: help deps tools browser app infra topics migrate up down demo test chaos unit test-down docs lint

help:
	@echo "make up      start PostgreSQL, Kafka, the five services and a mail catcher"
	@echo "             (REPLICAS=2 make up: two of each service that consumes Kafka)"
	@echo "make demo    run a small campaign on the running system and show the mail"
	@echo "make down    stop everything make up started"
	@echo "make test    run the whole test suite (starts its own servers)"
	@echo "make chaos   the fault suite (tests/chaos) at full size: long"

deps:
	@deploy/bootstrap.sh

tools: deps  # helm and kubeconform (Go modules) and the Kubernetes schemas, for the chart's test
	@deploy/tools.sh

browser:  # Debian's Chromium and the web app's build (services/frontend/dist), for the browser tests
	@deploy/browser.sh

app:  # the web app's build only (services/frontend/dist), which the gateway serves at /
	@deploy/browser.sh app

infra:
	@deploy/postgres.sh start
	@deploy/kafka.sh start

topics: deps infra
	@source deploy/common.sh && .venv/bin/python -m servicekit.topics

migrate: deps infra
	@source deploy/common.sh && .venv/bin/python deploy/migrate.py

up: topics migrate app
	@deploy/services.sh start
	@source deploy/common.sh && .venv/bin/python -m campaign_api.accounts first-admin \
	 "$${ADMIN_EMAIL:-admin@example.com}" "$$STATE_DIR/admin-password"
	@source deploy/common.sh && echo && \
	 echo "The system is up." && \
	 echo "  web app        http://127.0.0.1:$${GATEWAY_PORT:-8080}/  (sign in: the account above; more with" && \
	 echo "                 .venv/bin/python -m campaign_api.accounts add EMAIL)" && \
	 echo "  API gateway    http://127.0.0.1:$${GATEWAY_PORT:-8080}/api/campaigns  (health: /healthz;" && \
	 echo "                 Authorization: Bearer <the key in $$STATE_DIR/api-key>)" && \
	 echo "  processes      (each serves /healthz and /metrics)" && deploy/services.sh where && \
	 echo "  mail received  $$STATE_DIR/mail/new  (SMTP catcher on 127.0.0.1:$${MAILCATCHER_PORT:-1025})" && \
	 echo "  logs           $$STATE_DIR/logs/" && \
	 echo "  PostgreSQL     $$DATABASE_URL" && \
	 echo "  Kafka          $$KAFKA_BOOTSTRAP_SERVERS" && \
	 echo "Try: make demo"

down:
	@deploy/services.sh stop
	@deploy/kafka.sh stop
	@deploy/postgres.sh stop

demo: deps
	@source deploy/common.sh && .venv/bin/python deploy/demo.py

test: deps tools browser
	@INSTANCE=test deploy/postgres.sh start
	@INSTANCE=test deploy/kafka.sh start
	@.venv/bin/python -m pytest -q

chaos: deps  # the test instance, as for make test, and the fault scenarios at full size
	@INSTANCE=test deploy/postgres.sh start
	@INSTANCE=test deploy/kafka.sh start
	@FAULT_SCALE=full .venv/bin/python -m pytest -q -s tests/chaos tests/e2e/test_sizes.py  # -s: the figures each scenario prints

unit: deps
	@.venv/bin/python -m pytest -q -p no:schemathesis -p no:anyio -m "not e2e and not integration" libs services

test-down:
	@INSTANCE=test deploy/kafka.sh stop
	@rm -rf .local/test/kafka/data  # every test makes topics of its own: nothing to keep
	@INSTANCE=test deploy/postgres.sh stop

docs: deps
	@.venv/bin/python -m contracts.schema docs

lint: deps
	@.venv/bin/ruff check .
