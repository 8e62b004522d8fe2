# aiida-nanoos: `make demo` and `make test` do all the set-up they need on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# Keep AiiDA's configuration inside the checkout unless the user chose another place.
AIIDA_PATH ?= $(CURDIR)/.aiida
export AIIDA_PATH
# The daemon and the tests call `verdi` and the venv's tools by name.
export PATH := $(BIN):$(PATH)
# Debian packages the project needs: pw.x/ld1.x (+ pseudopotentials), the services of a daemon profile, and Graphviz's
# `dot` for `verdi node graph generate`.
DEBIAN_PACKAGES := quantum-espresso quantum-espresso-data postgresql rabbitmq-server graphviz
PYTEST_ARGS ?=

.PHONY: demo test setup system venv cluster doctor lint docs bench clean-profile

demo: system venv setup
	$(BIN)/aiida-nanoos pipeline run examples/pipeline_si.yaml
	$(BIN)/aiida-nanoos campaign run examples/campaign_group_iv.yaml

test: system venv cluster
	$(BIN)/pytest -ra $(PYTEST_ARGS)

# The single-node SLURM test cluster over SSH (aiida_nanoos/setup/cluster.py): as root, installs slurm-wlm, munge and
# openssh-server when missing and starts munged, slurmctld, slurmd and sshd (each start times out after 60 s);
# otherwise says why it is skipped. A failure does not stop `make test`: test_cluster.py reports it.
cluster: venv
	-timeout 900 $(BIN)/python -m aiida_nanoos.setup.cluster

setup: venv
	$(BIN)/aiida-nanoos setup

doctor: venv
	$(BIN)/aiida-nanoos doctor

lint: venv
	$(BIN)/ruff check aiida_nanoos tests docs/conf.py docs/_ext docs/howto/examples
	$(BIN)/ruff format --check aiida_nanoos tests docs/conf.py docs/_ext docs/howto/examples
	$(BIN)/lint-imports

# Debian packages: installed when run as root and missing; otherwise say what is missing and go on.
system:
	@missing=""; \
	command -v pw.x >/dev/null || missing="$$missing quantum-espresso"; \
	command -v ld1.x >/dev/null || missing="$$missing quantum-espresso"; \
	[ -d /usr/share/espresso/pseudo ] || missing="$$missing quantum-espresso-data"; \
	command -v pg_ctlcluster >/dev/null || missing="$$missing postgresql"; \
	command -v rabbitmq-server >/dev/null || missing="$$missing rabbitmq-server"; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages: $(DEBIAN_PACKAGES)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "Missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
	  fi; \
	fi

# The venv: torch FIRST, from the CPU wheel pinned in constraints.txt (pyproject.toml only asks for a range, which
# resolved on its own would pull a multi-GB CUDA build); every later install passes the same constraints, so nothing
# can replace it. Extras: dev (tests, lint), mace, notebooks (executed by the tests), docs (built by the tests).
# The `bench` extra (the BayBE and BoTorch baselines of the BO benchmarks) is not installed here: `make bench`.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,mace,notebooks,docs]'
	@touch $@

# The baselines of `benchmark bo-pool` and `bo-pareto` (BayBE, BoTorch), after the pinned CPU torch of the venv.
bench: venv
	$(BIN)/pip install -q -c constraints.txt -e '.[bench]'

# The HTML documentation (warnings are errors, as in tests/test_docs.py); open docs/_build/html/index.html.
docs: venv
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean-profile:
	rm -rf $(AIIDA_PATH)
