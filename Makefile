# The two commands: `make run` and `make test`. Both create .venv on first use.
# The Python .venv is made from: one not linked against a shared libpython where there is one (ops/venv-python)
PYTHON ?= $(shell $(dir $(lastword $(MAKEFILE_LIST)))ops/venv-python)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILT := $(VENV)/.built

.PHONY: venv run reset test lint proto clean

venv: $(STAMP) $(BUILT)

# The install compiles the wire code (actors/*.pyx, storage/*.pyx) and the engine's modules (engine/; setup.py) with gcc.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(BUILT)

# A changed .pyx, engine module or .pxd is compiled again (with the modules that cimport it) in ./build;
# until then the whole engine runs its .py files. The first time after an install every module is. (The install marks it done.)
$(BUILT): $(STAMP) $(wildcard actors/*.pyx actors/*.pxd storage/*.pyx storage/*.pxd engine/*.py engine/*/*.py engine/*.pxd engine/*/*.pxd)
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(BUILT)

# The engine on an embedded local Ray with the example rules; a demo load makes the counts move
# (only into an empty ./data: a second run keeps what the first one loaded).
# Another port where 50051 or 9464 is taken: make run GRPC_PORT=50061 METRICS_PORT=9474
GRPC_PORT ?= 50051
METRICS_PORT ?= 9464
run: venv
	$(BIN)/patron serve --data data --rules examples/rules.toml --demo 100000 --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

# Empties ./data for a fresh demo; the venv stays.
reset:
	rm -rf data

# Two workers, one per core, each file whole on one worker (its module-scoped servers are started once).
# Most of the suite waits on processes it started; run in turns it took over 10 minutes.
TEST_WORKERS ?= 2
test: venv lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The generated gRPC code is committed; this regenerates it (tests fail when it is stale).
proto: venv
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/patron.proto

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build actors/*.c actors/*.so storage/*.c storage/*.so engine/*.c engine/*.so engine/*/*.c engine/*/*.so data .pytest_cache .ruff_cache .hypothesis *.egg-info examples/node/node_modules
