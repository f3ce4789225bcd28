#!/bin/sh
# Soak run of docs/reliability.md: abmeshd with a data directory (the
# write-ahead log on), the shop's experiments running, OTLP ingest at a
# fixed rate and Assign calls at a fixed rate, both from separate
# processes, for DURATION (at most 10m); abmeshd's resident memory and the
# machine's load average every 30 s. abmeshd runs with
# --trace-idle-timeout 2s (its ingest ceiling, --max-spans / idle timeout,
# is then 250k spans/s), otherwise its defaults.
#
# Usage: examples/soak/soak.sh BINDIR OUTDIR SPANS_PER_S ASSIGN_PER_S [DURATION]
#   BINDIR holds abmeshd and abmesh (go build -o bin/ ./cmd/...).
#   SPANS_PER_S 0 sends as fast as abmeshd takes them (the peak);
#   ASSIGN_PER_S 0 sends no Assign load.
# Output in OUTDIR: rss.tsv (seconds, RSS MB, load average), otlp.json,
# assign.json, status.txt, abmeshd.log.
set -eu
BIN=$1; OUT=$2; RATE=$3; ARATE=$4; DUR=${5:-10m}
mkdir -p "$OUT"; DATA=$(mktemp -d)
API=127.0.0.1:17370; OTLP=127.0.0.1:14617
"$BIN/abmeshd" --data-dir "$DATA" --listen $API --otlp-listen $OTLP --http-listen off \
  --trace-idle-timeout 2s --log-level warn 2>"$OUT/abmeshd.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DATA"' EXIT
sleep 2
A="$BIN/abmesh --server $API"
$A apply -f internal/tool/shop/layers.yaml -f internal/tool/shop/experiments.yaml -f examples/soak/experiments.yaml >/dev/null
for t in new-home rec-model ui-layout catalog-cache ad-ranker pay-button ship-promo currency-rounding; do $A start $t >/dev/null; done
T0=$(date +%s)
( while kill -0 $PID 2>/dev/null; do
    printf '%s\t%s\t%s\n' $(( $(date +%s) - T0 )) \
      "$(awk '/VmRSS/{printf "%.0f", $2/1024}' /proc/$PID/status)" "$(cut -d' ' -f1 /proc/loadavg)"
    sleep 30
  done ) > "$OUT/rss.tsv" &
APID=
if [ "$ARATE" -gt 0 ]; then
  $A bench assign --duration "$DUR" --rate "$ARATE" --concurrency 16 --conns 2 -o json > "$OUT/assign.json" 2>/dev/null &
  APID=$!
fi
"$BIN/abmesh" bench otlp --endpoint $OTLP --duration "$DUR" --rate "$RATE" --concurrency 8 -o json > "$OUT/otlp.json" 2>/dev/null
[ -z "$APID" ] || wait $APID
sleep 5
$A status > "$OUT/status.txt"
printf '%s\t%s\t%s\n' $(( $(date +%s) - T0 )) \
  "$(awk '/VmRSS/{printf "%.0f", $2/1024}' /proc/$PID/status)" "$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/rss.tsv"
