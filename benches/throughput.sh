#!/usr/bin/env bash
# Throughput of logalarm against `cat` and ripgrep on ~1 GB of mutated Loghub lines,
# for two families of rule sets (see benches/README.md):
#   sparse  alarms on rare events: the whole set matches ~0.1-1 % of the lines
#   dense   one rule per Loghub template: 100 rules match half the lines, 1000 all
#
#   benches/throughput.sh
#
# Environment (all optional):
#   BENCH_SIZE=1G            input size (K/M/G binary suffixes; e.g. 100M for a quick run)
#   BENCH_FAMILIES="sparse dense"  rule-set families
#   BENCH_RULES="10 100 1000" rule-set sizes
#   BENCH_RUNS=3 BENCH_WARMUP=1   hyperfine --runs / --warmup
#   BENCH_MAX_SECONDS=300    if the untimed logalarm check run takes longer than this,
#                            that single run is reported instead of hyperfine runs
#   LOGALARM_BIN=path        use this binary instead of `cargo build --release`
#   LOGALARM_CORPUS=dir      the shared/corpus directory (default ../shared/corpus)
#
# Outputs go to target/bench/: input-<size>.log and rules-<family>-<N>/ (both cached),
# results-<size>/{hf,validate,density,load}-<family>-<N>.*, versions.txt, throughput.md,
# and the latest report, target/bench/throughput.md.  The report covers every
# (family, N) measured for this size, so one row can be re-run on its own, e.g.
#   BENCH_FAMILIES=sparse BENCH_RULES=100 benches/throughput.sh
# The binary is copied to target/bench/logalarm.bin first, so that a cargo build
# running meanwhile cannot swap it between runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bench=$root/target/bench
size=${BENCH_SIZE:-1G}
families=${BENCH_FAMILIES:-"sparse dense"}
sets=${BENCH_RULES:-"10 100 1000"}
runs=${BENCH_RUNS:-3}
warmup=${BENCH_WARMUP:-1}
max_seconds=${BENCH_MAX_SECONDS:-300}
res=$bench/results-$size
mkdir -p "$bench" "$res"

log() { printf '== %s\n' "$*" >&2; }

for fam in $families; do
    case $fam in sparse | dense) ;; *) echo "BENCH_FAMILIES: unknown family '$fam' (sparse, dense)" >&2; exit 2 ;; esac
done

# --- earlier layout: rules-<N>/ and results-*/<what>-<N>.* were the dense family --
for d in "$bench"/rules-[0-9]*; do
    [ -d "$d" ] || continue
    n=${d##*/rules-}
    if [ -e "$bench/rules-dense-$n" ]; then rm -rf "$d"; else mv "$d" "$bench/rules-dense-$n"; fi
    log "moved $d to rules-dense-$n"
done
for f in "$bench"/results-*/{hf,validate,density}-[0-9]*.*; do
    [ -e "$f" ] || continue
    b=${f##*/}
    new=${f%/*}/${b%%-*}-dense-${b#*-}
    if [ -e "$new" ]; then rm -f "$f"; else mv "$f" "$new"; fi
done

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
    src_bin=$LOGALARM_BIN
else
    log "cargo build --release"
    (cd "$root" && cargo build --release --quiet)
    src_bin=$root/target/release/logalarm
fi
[ -x "$src_bin" ] || { echo "no logalarm binary at $src_bin" >&2; exit 1; }
bin=$bench/logalarm.bin
cp "$src_bin" "$bin.tmp" && mv "$bin.tmp" "$bin"
bin_sha=$(sha256sum "$bin" | cut -c1-12)
rev=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '(no commit)')
# benches/ and docs do not go into the binary
if (cd "$root" && ! git diff-index --quiet HEAD -- . ':!benches' ':!*.md' 2>/dev/null); then rev="$rev + uncommitted changes"; fi

# --- input and rules (cached; rebuilt when a generator changes) ----------------
input=$bench/input-$size.log
if [ ! -s "$input" ] || [ "$here/gen_input.py" -nt "$input" ] || [ "$here/loghub.py" -nt "$input" ]; then
    log "generating $input"
    python3 "$here/gen_input.py" --size "$size" -o "$input"
    rm -f "$res"/{hf,validate,density,load}-*  # measured on the previous input
fi
nlines=$(python3 "$here/bench_util.py" lines "$input")
echo "$nlines" >"$res/input.lines"
bytes=$(stat -c %s "$input")

for fam in $families; do
    for n in $sets; do
        d=$bench/rules-$fam-$n
        stale=0
        if [ ! -s "$d/rules.toml" ] || [ "$here/gen_rules.py" -nt "$d/rules.toml" ] || [ "$here/loghub.py" -nt "$d/rules.toml" ]; then
            stale=1
        fi
        # sparse rules are picked for what gen_input.py generates
        if [ "$fam" = sparse ] && [ "$here/gen_input.py" -nt "$d/rules.toml" ]; then stale=1; fi
        if [ $stale -eq 1 ]; then
            log "generating $n $fam rules"
            python3 "$here/gen_rules.py" "$n" "$d" --family "$fam"
            rm -f "$bench"/results-*/density-"$fam-$n".txt
        fi
    done
done

rgcmd() { # rg exits 1 when nothing matches: not an error here
    printf "rg --no-config --crlf -c -f '%s' '%s' || [ \$? -eq 1 ]" "$1" "$input"
}

{
    echo "$(rg --version | head -1)"
    if command -v hyperfine >/dev/null; then hyperfine --version; else echo "hyperfine: not installed (bench_util.py timer)"; fi
    echo "logalarm $rev (binary sha256 $bin_sha)"
} >"$res/versions.txt"

# --- match density, once per rule set ------------------------------------------
for fam in $families; do
    for n in $sets; do
        f=$res/density-$fam-$n.txt
        if [ ! -s "$f" ]; then
            log "match density, $n $fam rules"
            sh -c "$(rgcmd "$bench/rules-$fam-$n/rules.txt")" | head -1 >"$f"
            [ -s "$f" ] || echo 0 >"$f"
        fi
        echo "   $n $fam rules match $(cat "$f") of $nlines lines" >&2
    done
done

# --- timings ---------------------------------------------------------------------
for fam in $families; do
    for n in $sets; do
        d=$bench/rules-$fam-$n
        row=$fam-$n
        log "$n $fam rules: logalarm check run (exit code, pass-through, alarm count)"
        rm -f "$res/hf-$row.json"
        echo "before $(cat /proc/loadavg)" >"$res/load-$row.txt"
        la_ok=1
        la_fast=1
        if python3 "$here/bench_util.py" validate --bin "$bin" --config "$d/rules.toml" --input "$input" \
            --out "$res/validate-$row.json" --timeout $((max_seconds * 4)) --label "$rev, binary sha256 $bin_sha"; then
            :
        else
            la_ok=0
        fi
        wall=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$res/validate-$row.json")
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
            log "logalarm failed the check run (see $res/validate-$row.json); not timing it"
        fi
        log "$n $fam rules: timing ${names[*]}"
        if command -v hyperfine >/dev/null; then
            args=()
            for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
            hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$res/hf-$row.json" "${args[@]}" >&2
        else
            args=()
            for i in "${!names[@]}"; do args+=("${names[$i]}" "${cmds[$i]}"); done
            python3 "$here/bench_util.py" time --runs "$runs" --warmup "$warmup" --export-json "$res/hf-$row.json" "${args[@]}"
        fi
        echo "after $(cat /proc/loadavg)" >>"$res/load-$row.txt"
    done
done

log "report ($bytes bytes, $nlines lines)"
python3 "$here/bench_util.py" report --dir "$res" --input "$input" --out "$res/throughput.md"
cp "$res/throughput.md" "$bench/throughput.md"
echo "written: $bench/throughput.md (and $res/)" >&2
