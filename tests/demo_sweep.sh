#!/bin/sh
# tests/demo_sweep.sh BUILD_DIR DEMO_OUT [SWEEP_OUT] — issue 6's
# investigation of SLIM versus KD: retrains the default demo's students on the
# store a `DEMO=default` run left in DEMO_OUT (its snapshots 'train' and
# 'heldout'), varying one thing at a time, and writes SWEEP_OUT/sweep.csv
# (default DEMO_OUT/sweep) plus SWEEP_OUT/summary.md.  docs/RESULTS.md holds a
# run's numbers.
#
# Every student is the demo's own (tests/demo.sh, DEMO=default): same shape,
# batch, learning rate, warmup = steps / 10, seed, one thread, --train-limit
# on the same snapshot, evaluated with `slim-train eval --snapshot heldout
# --split train`.  The grid, at each size in $SIZES and seed in $SEEDS:
#   - budget: steps in $BUDGETS (200 = the demo's; at 100 sequences x 16 per
#     step, 200 / 25 / 6 steps are 32 / 4 / ~1 epochs), each with
#     ce, kd at alpha 0.2 / 0.5 / 0.8, slim (text weight) and slim --slim-weight printed;
#   - temperature 2 for kd (alpha 0.5) and slim at $T2_STEPS steps (the demo's 200).
# SLIM's weight w is read from `slim-train --json` (means over the run and
# over its last quarter; w_zero = share of positions with w = 0).
#
# Environment: SIZES ("100 760"), SEEDS ("7"), BUDGETS ("200 100 50 25 6"), T2_STEPS (200),
# JOBS (2 single-threaded runs at a time).  Finished runs are kept (one row
# file each under SWEEP_OUT/rows) and not redone when the script is rerun;
# ONLY_DONE=1 runs nothing and summarises the finished runs of the grid.
set -eu
[ $# -ge 2 ] || { echo "usage: demo_sweep.sh BUILD_DIR DEMO_OUT [SWEEP_OUT]" >&2; exit 2; }
B=$(cd "$1" && pwd)
DEMO_OUT=$(cd "$2" && pwd)
SW=${3:-$DEMO_OUT/sweep}
PATH="$B/bin:$PATH"
export PATH
LC_ALL=C
export LC_ALL
SLIM_STORE="$DEMO_OUT/slim.store"
export SLIM_STORE
SIZES=${SIZES:-"100 760"}
SEEDS=${SEEDS:-7}
BUDGETS=${BUDGETS:-"200 100 50 25 6"}
JOBS=${JOBS:-2}
ONLY_DONE=${ONLY_DONE:-0}
T2_STEPS=${T2_STEPS:-200}
# tests/demo.sh's DEMO=default students (keep in step with its 'default)' block)
S_SHAPE="--layers 2 --dim 48 --heads 4 --ctx 128" S_BATCH=16 S_LR=3e-3

for snap in train heldout; do
    slim-store snapshot show "$snap" --csv > /dev/null 2>&1 ||
        { echo "demo_sweep: no snapshot '$snap' in $SLIM_STORE (run DEMO=default tests/demo.sh first)" >&2; exit 1; }
done
mkdir -p "$SW/ckpt" "$SW/logs" "$SW/rows"
SW=$(cd "$SW" && pwd)
echo "demo_sweep: store $SLIM_STORE, output $SW, sizes $SIZES, seeds $SEEDS, budgets $BUDGETS"

# One student: NAME LOSS KDW TAU SLIMW STEPS SIZE SEED -> rows/NAME.csv
student() {
    name=$1 loss=$2 kdw=$3 tau=$4 sw=$5 steps=$6 n=$7 seed=$8
    row="$SW/rows/$name.csv"
    [ -s "$row" ] && return 0
    le=$((steps / 4)); [ "$le" -ge 1 ] || le=1
    # shellcheck disable=SC2086  # S_SHAPE is several words
    slim-train --snapshot train --loss "$loss" --kd-weight "$kdw" --temperature "$tau" \
        --slim-weight "$sw" --train-limit "$n" --out "$SW/ckpt/$name.ckpt" $S_SHAPE \
        --steps "$steps" --batch "$S_BATCH" --lr "$S_LR" --warmup $((steps / 10)) --seed "$seed" \
        --threads 1 --log-every "$le" --json > "$SW/logs/$name.jsonl" 2> "$SW/logs/$name.err" ||
        { cat "$SW/logs/$name.err" >&2; return 1; }
    # per logged interval: steps covered, mean w, share of w = 0, mean CE
    m=$(awk -v total="$steps" '
        function num(k,   r) { if (match($0, "\"" k "\":[^,}]*")) { r = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); return r } return "null" }
        /^\{"run_id"/ { s = num("step") + 0; d = s - prev; prev = s; w = num("w_mean"); z = num("w_zero"); ce = num("ce")
            if (w != "null") { sw += d * w; sz += d * z; sd += d; wl = w } lastce = ce }
        END { if (sd) printf "%.4f,%.4f,%.4f,%.4f", sw / sd, wl, sz / sd, lastce
              else printf ",,,%.4f", lastce }' "$SW/logs/$name.jsonl")
    ev=$(slim-train eval --snapshot heldout --split train --ckpt "$SW/ckpt/$name.ckpt" --csv |
         awk -F, 'NR == 2 { printf "%.4f,%.5f,%.5f,%.4f", $6, $7, $9, $8 }')
    [ -n "$ev" ] || { echo "demo_sweep: eval of $name failed" >&2; return 1; }
    epochs=$(awk -v s="$steps" -v b="$S_BATCH" -v n="$n" 'BEGIN { printf "%.2f", s * b / n }')
    echo "$name,$loss,$kdw,$tau,$sw,$steps,$n,$epochs,$seed,$ev,$m" > "$row.tmp"
    mv "$row.tmp" "$row"
}

# The grid as lines "NAME LOSS KDW TAU SLIMW STEPS SIZE SEED".
grid() {
    for seed in $SEEDS; do for n in $SIZES; do
        for steps in $BUDGETS; do
            for spec in "ce ce 0.5 1 text" "kd0.2 kd 0.2 1 text" "kd0.5 kd 0.5 1 text" \
                        "kd0.8 kd 0.8 1 text" "slim slim 0.5 1 text" "slim-printed slim 0.5 1 printed"; do
                # shellcheck disable=SC2086
                set -- $spec
                echo "$1-$n-s$steps-seed$seed $2 $3 $4 $5 $steps $n $seed"
            done
        done
        echo "kd0.5-t2-$n-s$T2_STEPS-seed$seed kd 0.5 2 text $T2_STEPS $n $seed"
        echo "slim-t2-$n-s$T2_STEPS-seed$seed slim 0.5 2 text $T2_STEPS $n $seed"
    done; done
}

# each invocation reads its own copy: a second one on the same SWEEP_OUT
# (e.g. ONLY_DONE=1 for a look at the finished runs) must not cut this one short
GRID="$SW/grid.$$"
trap 'rm -f "$GRID"' EXIT
grid > "$GRID"
total=$(wc -l < "$GRID")
START=$(date +%s)
pids="" i=0
while read -r name loss kdw tau sw steps n seed; do
    i=$((i + 1))
    [ -s "$SW/rows/$name.csv" ] && continue
    [ "$ONLY_DONE" = 1 ] && continue
    echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $i/$total $name"
    student "$name" "$loss" "$kdw" "$tau" "$sw" "$steps" "$n" "$seed" &
    pids="$pids $!"
    # shellcheck disable=SC2086  # one word per pid
    set -- $pids
    if [ $# -ge "$JOBS" ]; then
        wait "$1" || { echo "demo_sweep: a run failed (logs in $SW/logs)" >&2; exit 1; }
        shift; pids="$*"
    fi
done < "$GRID"
for p in $pids; do wait "$p" || { echo "demo_sweep: a run failed (logs in $SW/logs)" >&2; exit 1; }; done

echo "run,loss,kd_weight,tau,slim_weight,steps,sequences,epochs,seed,ppl,kl,ece,top1,w_mean,w_last,w_zero,train_ce_last" \
    > "$SW/sweep.csv"
while read -r name rest; do
    if [ -s "$SW/rows/$name.csv" ]; then cat "$SW/rows/$name.csv"; fi
done < "$GRID" >> "$SW/sweep.csv"

# summary.md: mean held-out perplexity over the seeds per cell, and the
# paper's claim checked per budget against each KD weight (computed, never
# assumed): SLIM <= KD and both >= 5 % below SFT at the same size and budget.
awk -F, '
NR == 1 { next }
{ split($1, p, "-[0-9]+-s"); m = p[1]; key = m SUBSEP $7 SUBSEP $6
  sum[key] += $10; if (++cnt[key] > cmax[$7, $6]) cmax[$7, $6] = cnt[key]; if ($14 != "") { wm[key] += $14; wl[key] += $15; wz[key] += $16 }
  if (!(m in seenm)) { seenm[m] = 1; ms[++nm] = m }
  if (!(($7, $6) in seenc)) { seenc[$7, $6] = 1; cs[++nc] = $7 SUBSEP $6; ep[$7, $6] = $8 }
  ppl[m, $7, $6, $9] = $10; seeds[$9] = 1 }
function mean(m, c) { return cnt[m, c] ? sum[m, c] / cnt[m, c] : "" }
END {
    print "# demo_sweep summary\n"
    print "Mean held-out perplexity over the seeds (column seeds: the most any method has); w = SLIM weight (mean over the run / last quarter, share of w = 0).\n"
    hdr = "| sequences | steps | epochs | seeds |"; sep = "|---|---|---|---|"
    for (j = 1; j <= nm; j++) { hdr = hdr " " ms[j] " |"; sep = sep "---|" }
    print hdr " w (slim) |"; print sep "---|"
    for (i = 1; i <= nc; i++) { split(cs[i], q, SUBSEP); line = "| " q[1] " | " q[2] " | " ep[q[1], q[2]] " | " cmax[cs[i]] " |"
        for (j = 1; j <= nm; j++) { v = mean(ms[j], cs[i]); line = line " " (v == "" ? "" : sprintf("%.2f", v)) " |" }
        k = "slim" SUBSEP cs[i]; if (!cnt[k]) k = "slim-t2" SUBSEP cs[i]
        w = cnt[k] ? sprintf("%.3f / %.3f, %.1f %%", wm[k] / cnt[k], wl[k] / cnt[k], 100 * wz[k] / cnt[k]) : ""
        print line " " w " |" }
    print "\nThe claim (SLIM <= KD, both >= 5 % below SFT; same size, budget and temperature), on the means:\n"
    np = split("slim:kd0.2 slim:kd0.5 slim:kd0.8 slim-printed:kd0.2 slim-printed:kd0.5 slim-printed:kd0.8 slim-t2:kd0.5-t2", pairs, " ")
    for (i = 1; i <= nc; i++) { split(cs[i], q, SUBSEP); c = mean("ce", cs[i])
        for (pi = 1; pi <= np; pi++) { split(pairs[pi], pr, ":"); sl = pr[1]; kd = pr[2]
            sv = mean(sl, cs[i]); kv = mean(kd, cs[i])
            if (sv == "" || kv == "" || c == "") continue
            ok = sv + 0 <= kv + 0 && sv + 0 <= 0.95 * c && kv + 0 <= 0.95 * c
            nok = 0; ns = 0
            for (sd in seeds) if ((sl, q[1], q[2], sd) in ppl) { ns++
                x = ppl[sl, q[1], q[2], sd]; y = ppl[kd, q[1], q[2], sd]; z = ppl["ce", q[1], q[2], sd]
                nok += x + 0 <= y + 0 && x + 0 <= 0.95 * z && y + 0 <= 0.95 * z }
            printf "- %d sequences, %d steps: %s %.2f vs %s %.2f vs SFT %.2f: %s (%d of %d seeds)\n",
                q[1], q[2], sl, sv, kd, kv, c, ok ? "holds" : "does not hold", nok, ns } }
}' "$SW/sweep.csv" > "$SW/summary.md"
cat "$SW/summary.md"
echo "demo_sweep: done in $(( $(date +%s) - START )) s: $SW/sweep.csv, $SW/summary.md"
