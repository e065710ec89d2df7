#!/usr/bin/env bash
# The cost of the alarm policy stage: 1,000,000 real OpenSSH lines (the Loghub
# sample repeated 500 times; 259,000 failed logins), one rule capturing the
# address, and the same alarm
#   - plain: alarm-freq only (what uWSGI does);
#   - threshold: per-address threshold (5 in 60 s) and cooldown, keyed by {{ caps.ip }};
#   - digest: one hourly digest grouping the masked messages.
# Prints wall seconds and peak RSS per run (best of BENCH_RUNS, default 3).
#
#   benches/policies.sh
#   LOGALARM_BIN=target/release/logalarm BENCH_RUNS=5 benches/policies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${LOGALARM_CORPUS:-../shared/corpus}/loghub/OpenSSH/OpenSSH_2k.log"
out=target/bench/policies
mkdir -p "$out"
bin="${LOGALARM_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build --release -q
  bin=target/release/logalarm
fi
input="$out/ssh-1M.log"
if [[ ! -s "$input" ]]; then
  for _ in $(seq 500); do cat "$corpus"; done > "$input"
fi
rule='regex = '"'"'sshd\[\d+\]: Failed password for (?:invalid user )?.*? from (?P<ip>[0-9.]+) port'"'"
write() { printf '%s\n' "[alarm.a]" 'action = "log:"' "$2" "[[rule]]" "$rule" 'alarm = "a"' > "$out/$1.toml"; }
write plain '# alarm-freq 3 s, the default'
write threshold $'key = "{{ caps.ip }}"\nthreshold = { count = 5, window = "60s" }\ncooldown = { max = 1, period = "1h" }'
write digest 'digest = "1h"'
runs="${BENCH_RUNS:-3}"
printf '| policy | best s | MB/s | peak RSS KB |\n|---|---:|---:|---:|\n'
size=$(stat -c %s "$input")
for name in plain threshold digest; do
  best=""; rss=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$out/time" -f '%e %M' "$bin" -q --no-passthrough -c "$out/$name.toml" < "$input" > /dev/null 2>&1  || { echo "logalarm failed on $out/$name.toml" >&2; exit 1; }
    read -r t m < "$out/time"
    if [[ -z "$best" ]] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; rss=$m; fi
  done
  mbs=$(awk -v s="$size" -v t="$best" 'BEGIN{ if (t>0) printf "%.0f", s/1e6/t; else print "-" }')
  printf '| %s | %s | %s | %s |\n' "$name" "$best" "$mbs" "$rss"
done
