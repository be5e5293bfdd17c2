#!/bin/bash
# Instructions of a bench's measured part only: callgrind_window.sh OUT.cg BENCH-MODULE ARGS...
# runs `python -m BENCH-MODULE ARGS --flags DIR` under callgrind with counting off, turns it on
# at DIR/ready and off at DIR/done (bench/callgrind_flags.py), and prints the count. PYTHON:
# another interpreter than .venv/bin/python (a worktree without its own .venv).
set -euo pipefail
out=$1; shift
flags=$(mktemp -d)
trap 'rm -rf "$flags"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "${PYTHON:-.venv/bin/python}" -m "$@" --flags "$flags" > "$out.log" 2>&1 &
pid=$!
until [ -e "$flags/ready" ]; do kill -0 $pid 2> /dev/null || { cat "$out.log"; exit 1; }; sleep 0.2; done
callgrind_control -i on $pid > /dev/null 2>&1
touch "$flags/go"
until [ -e "$flags/done" ]; do kill -0 $pid 2> /dev/null || { cat "$out.log"; exit 1; }; sleep 0.2; done
callgrind_control -i off $pid > /dev/null 2>&1
touch "$flags/off"
wait $pid
grep -v "^==" "$out.log" || true
grep "Collected" "$out.log"
