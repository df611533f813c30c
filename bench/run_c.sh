#!/usr/bin/env bash
# run_c.sh — runs the C and Go context workloads side by side REPS times,
# prints the median table `name c go c/go` and writes bench/results.json.
set -euo pipefail
c_bin=$1 go_bin=$2 out=${3:-bench/results.json}
reps=${REPS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < reps; i++)); do
  # alternate the two, so drifting machine load hits both alike
  "$c_bin" > "$tmp/c.$i.json"
  "$go_bin" > "$tmp/go.$i.json"
  "$c_bin" mem > "$tmp/cmem.$i.json"
  "$go_bin" mem > "$tmp/gomem.$i.json"
  echo "bench: repetition $((i + 1))/$reps done" >&2
done
python3 - "$tmp" "$reps" "$out" <<'PY'
import json, statistics, sys
tmp, reps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = ["with_cancel_cancel", "with_cancel_child_of_cancelable", "with_timeout_cancel",
         "done_check", "err_check", "value_depth10", "cancel_tree_per_node",
         "common_parent_cancel_2threads", "timer_add_cancel_1k", "timer_add_cancel_1m",
         "timer_lateness_p50_us", "timer_lateness_p99_us", "timer_lateness_max_us",
         "bytes_per_live_timeout_ctx"]
runs = {"c": [], "go": []}
for lang in runs:
    for i in range(reps):
        d = json.load(open(f"{tmp}/{lang}.{i}.json"))
        d.update(json.load(open(f"{tmp}/{lang}mem.{i}.json")))
        runs[lang].append(d)
res = {lang: {n: round(statistics.median(r[n] for r in runs[lang]), 3) for n in names}
       for lang in runs}
limit = {n: 0.5 for n in names}
for n in ("done_check", "err_check", "value_depth10", "timer_lateness_p50_us",
          "timer_lateness_p99_us", "timer_lateness_max_us"):
    limit[n] = 1.0
print(f"{'name':34} {'c':>10} {'go':>10} {'c/go':>7}  target")
for n in names:
    c, g = res["c"][n], res["go"][n]
    r = c / g if g else float("inf")
    print(f"{n:34} {c:10.3f} {g:10.3f} {r:7.3f}  <= {limit[n]} {'ok' if r <= limit[n] else 'MISSED'}")
k, m = res["c"]["timer_add_cancel_1k"], res["c"]["timer_add_cancel_1m"]
print(f"{'c timer_add_cancel_1m / _1k':34} {m / k:10.3f} {'':10} {'':7}  <= 2 {'ok' if m <= 2 * k else 'MISSED'}")
print(f"(median of {reps} runs; ns/op, ns/node, us or bytes as BENCH.md says)")
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
PY
