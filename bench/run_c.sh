#!/usr/bin/env bash
# run_c.sh — runs the C (Linux paths), C (POSIX fallbacks) and Go context
# workloads side by side REPS times, prints the median table
# `name c posix go c/go posix/go` and writes bench/results.json.
set -euo pipefail
c_bin=$1 go_bin=$2 out=${3:-bench/results.json} posix_bin=${4:-}
reps=${REPS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < reps; i++)); do
  # alternate the two, so drifting machine load hits both alike
  "$c_bin" > "$tmp/c.$i.json"
  "$go_bin" > "$tmp/go.$i.json"
  "$c_bin" mem > "$tmp/cmem.$i.json"
  "$go_bin" mem > "$tmp/gomem.$i.json"
  if [ -n "$posix_bin" ]; then
    "$posix_bin" > "$tmp/posix.$i.json"
    "$posix_bin" mem > "$tmp/posixmem.$i.json"
  fi
  echo "bench: repetition $((i + 1))/$reps done" >&2
done
python3 - "$tmp" "$reps" "$out" <<'PY'
import json, statistics, sys
tmp, reps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = ["with_cancel_cancel", "with_cancel_child_of_cancelable", "with_timeout_cancel",
         "done_check", "err_check", "value_depth10", "cancel_tree_per_node",
         "common_parent_cancel_2threads", "timer_add_cancel_1k", "timer_add_cancel_1m",
         "timer_lateness_p50_us", "timer_lateness_p99_us", "timer_lateness_max_us",
         "bytes_per_live_timeout_ctx", "cancel_wake_p50_us", "cancel_wake_p99_us",
         "wait_any_1k"]
import os
runs = {"c": [], "go": []}
if os.path.exists(f"{tmp}/posix.0.json"):
    runs["posix"] = []
for lang in runs:
    for i in range(reps):
        d = json.load(open(f"{tmp}/{lang}.{i}.json"))
        d.update(json.load(open(f"{tmp}/{lang}mem.{i}.json")))
        runs[lang].append(d)
res = {lang: {n: round(statistics.median(r[n] for r in runs[lang]), 3) for n in names}
       for lang in runs}
limit = {n: 0.5 for n in names}
for n in ("done_check", "err_check", "value_depth10", "timer_lateness_p50_us",
          "timer_lateness_p99_us", "timer_lateness_max_us", "cancel_wake_p50_us",
          "cancel_wake_p99_us", "wait_any_1k"):
    limit[n] = 1.0
has_posix = "posix" in res
print(f"{'name':34} {'c':>10} {'posix':>10} {'go':>10} {'c/go':>7} {'posix/go':>8}  target")
for n in names:
    c, g = res["c"][n], res["go"][n]
    p = res["posix"][n] if has_posix else float("nan")
    r = c / g if g else float("inf")
    rp = p / g if g else float("inf")
    ok = r <= limit[n] and (not has_posix or rp <= limit[n])
    print(f"{n:34} {c:10.3f} {p:10.3f} {g:10.3f} {r:7.3f} {rp:8.3f}  <= {limit[n]} {'ok' if ok else 'MISSED'}")
for lang in [l for l in ("c", "posix") if l in res]:
    k, m = res[lang]["timer_add_cancel_1k"], res[lang]["timer_add_cancel_1m"]
    print(f"{lang + ' timer_add_cancel_1m / _1k':34} {m / k:10.3f}  <= 2 {'ok' if m <= 2 * k else 'MISSED'}")
print(f"(median of {reps} runs; ns/op, ns/node, us or bytes as BENCH.md says)")
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
PY
