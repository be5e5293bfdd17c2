#!/bin/bash
# Instructions of a bench's measured parts only: callgrind_window.sh OUT.cg BENCH-MODULE ARGS...
# runs `python -m BENCH-MODULE ARGS --flags DIR` under callgrind with counting off, turns it on
# at each DIR/ready and off at each DIR/done (bench/callgrind_flags.py), and prints the count.
# PYTHON: another interpreter than .venv/bin/python (a worktree without its own .venv).
set -euo pipefail
out=$1; shift
flags=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2> /dev/null; rm -rf "$flags"' EXIT  # a bench waiting for a flag dies too
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "${PYTHON:-.venv/bin/python}" -m "$@" --flags "$flags" > "$out.log" 2>&1 &
pid=$!

# wait_for FILE: true once the bench wrote FILE (then deleted), false once the bench has ended
wait_for() {
    until [ -e "$flags/$1" ]; do kill -0 $pid 2> /dev/null || return 1; sleep 0.2; done
    rm "$flags/$1"
}

while wait_for ready; do
    callgrind_control -i on $pid > /dev/null 2>&1
    touch "$flags/go"
    wait_for done || break
    callgrind_control -i off $pid > /dev/null 2>&1
    touch "$flags/off"
done
wait $pid || { status=$?; pid=; cat "$out.log"; exit $status; }
pid=
grep -v "^==" "$out.log" || true
grep "Collected" "$out.log"
