#!/usr/bin/env bash
# Throughput of logalarm against `cat` and ripgrep on ~1 GB of mutated Loghub lines.
#
#   benches/throughput.sh
#
# Environment (all optional):
#   BENCH_SIZE=1G            input size (K/M/G binary suffixes; e.g. 100M for a quick run)
#   BENCH_RULES="10 100 1000" rule-set sizes
#   BENCH_RUNS=3 BENCH_WARMUP=1   hyperfine --runs / --warmup
#   BENCH_MAX_SECONDS=300    if the untimed logalarm check run takes longer than this,
#                            that single run is reported instead of hyperfine runs
#   LOGALARM_BIN=path        use this binary instead of `cargo build --release`
#   LOGALARM_CORPUS=dir      the shared/corpus directory (default ../shared/corpus)
#
# Outputs go to target/bench/: input-<size>.log and rules-<N>/ (both cached),
# results-<size>/{hf-<N>.json,validate-<N>.json,density-<N>.txt,throughput.md}
# and the latest report, target/bench/throughput.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bench=$root/target/bench
size=${BENCH_SIZE:-1G}
sets=${BENCH_RULES:-"10 100 1000"}
runs=${BENCH_RUNS:-3}
warmup=${BENCH_WARMUP:-1}
max_seconds=${BENCH_MAX_SECONDS:-300}
res=$bench/results-$size
mkdir -p "$bench" "$res"

log() { printf '== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
if ! command -v rg >/dev/null || ! command -v hyperfine >/dev/null; then
    log "installing ripgrep and hyperfine"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq || true
    # hyperfine is optional (bench_util.py times the commands without it); rg is not
    $sudo apt-get install -y -qq ripgrep hyperfine >/dev/null ||
        $sudo apt-get install -y -qq ripgrep >/dev/null || true
fi
command -v rg >/dev/null || { echo "ripgrep (rg) is required" >&2; exit 1; }

# --- logalarm ----------------------------------------------------------------
if [ -n "${LOGALARM_BIN:-}" ]; then
    bin=$LOGALARM_BIN
else
    log "cargo build --release"
    (cd "$root" && cargo build --release --quiet)
    bin=$root/target/release/logalarm
fi
[ -x "$bin" ] || { echo "no logalarm binary at $bin" >&2; exit 1; }

# --- input and rules (cached; rebuilt when a generator changes) ----------------
input=$bench/input-$size.log
if [ ! -s "$input" ] || [ "$here/gen_input.py" -nt "$input" ] || [ "$here/loghub.py" -nt "$input" ]; then
    log "generating $input"
    python3 "$here/gen_input.py" --size "$size" -o "$input"
    rm -f "$res"/density-*.txt
fi
nlines=$(python3 "$here/bench_util.py" lines "$input")
echo "$nlines" >"$res/input.lines"
bytes=$(stat -c %s "$input")

for n in $sets; do
    d=$bench/rules-$n
    if [ ! -s "$d/rules.toml" ] || [ "$here/gen_rules.py" -nt "$d/rules.toml" ] || [ "$here/loghub.py" -nt "$d/rules.toml" ]; then
        log "generating $n rules"
        python3 "$here/gen_rules.py" "$n" "$d"
        rm -f "$bench"/results-*/density-"$n".txt
    fi
done

rgcmd() { # rg exits 1 when nothing matches: not an error here
    printf "rg --no-config --crlf -c -f '%s' '%s' || [ \$? -eq 1 ]" "$1" "$input"
}

{
    echo "$(rg --version | head -1)"
    if command -v hyperfine >/dev/null; then hyperfine --version; else echo "hyperfine: not installed (bench_util.py timer)"; fi
    echo "logalarm $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '(no commit)')"
} >"$res/versions.txt"

# --- match density, once per rule set ------------------------------------------
for n in $sets; do
    if [ ! -s "$res/density-$n.txt" ]; then
        log "match density, $n rules"
        sh -c "$(rgcmd "$bench/rules-$n/rules.txt")" | head -1 >"$res/density-$n.txt"
        [ -s "$res/density-$n.txt" ] || echo 0 >"$res/density-$n.txt"
    fi
    echo "   $n rules match $(cat "$res/density-$n.txt") of $nlines lines" >&2
done

# --- timings ---------------------------------------------------------------------
for n in $sets; do
    d=$bench/rules-$n
    log "$n rules: logalarm check run (exit code, pass-through, alarm count)"
    rm -f "$res/hf-$n.json"
    la_ok=1
    la_fast=1
    if python3 "$here/bench_util.py" validate --bin "$bin" --config "$d/rules.toml" --input "$input" \
        --out "$res/validate-$n.json" --timeout $((max_seconds * 4)); then
        :
    else
        la_ok=0
    fi
    wall=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$res/validate-$n.json")
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$wall" "$max_seconds"; then
        la_fast=0
        log "logalarm took ${wall}s (> BENCH_MAX_SECONDS=$max_seconds): reporting that single run"
    fi
    names=(cat rg)
    cmds=("cat '$input' > /dev/null" "$(rgcmd "$d/rules.txt")")
    if [ $la_ok -eq 1 ] && [ $la_fast -eq 1 ]; then
        names+=(logalarm)
        cmds+=("'$bin' -c '$d/rules.toml' < '$input' > /dev/null 2>/dev/null")
    elif [ $la_ok -eq 0 ]; then
        log "logalarm failed the check run (see $res/validate-$n.json); not timing it"
    fi
    log "$n rules: timing ${names[*]}"
    if command -v hyperfine >/dev/null; then
        args=()
        for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
        hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$res/hf-$n.json" "${args[@]}" >&2
    else
        args=()
        for i in "${!names[@]}"; do args+=("${names[$i]}" "${cmds[$i]}"); done
        python3 "$here/bench_util.py" time --runs "$runs" --warmup "$warmup" --export-json "$res/hf-$n.json" "${args[@]}"
    fi
done

log "report ($bytes bytes, $nlines lines)"
python3 "$here/bench_util.py" report --dir "$res" --input "$input" --sets "$sets" --out "$res/throughput.md"
cp "$res/throughput.md" "$bench/throughput.md"
echo "written: $bench/throughput.md (and $res/)" >&2
