# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test check bench bench-transports bench-sms bench-admin bench-attack clean

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	scripts/run

test: $(STAMP)
	scripts/test

# The edit-test loop (under 2 minutes): lint and the tests that need no process running.
check: $(STAMP)
	scripts/check

bench: $(STAMP)
	$(VENV)/bin/python -m bench.ussd_steps

bench-transports: $(STAMP)
	$(VENV)/bin/python -m bench.ussd_transports

bench-sms: $(STAMP)
	$(VENV)/bin/python -m bench.sms_delivery

bench-admin: $(STAMP)
	$(VENV)/bin/python -m bench.admin_pages

bench-attack: $(STAMP)
	$(VENV)/bin/python -m bench.under_attack

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
