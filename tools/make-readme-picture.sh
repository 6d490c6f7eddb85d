#!/usr/bin/env bash
# Remake the README's pictures of warren running a scenario:
#   assets/warren-round-robin.png   classic-round-robin at speed 1, 1.5 s into the burst
#   assets/warren-fair-dispatch.png classic-fair-dispatch at speed 2, 3 s into the burst
# Each scenario is played in a detached 100x30 tmux session (a projector with large fonts) with
# --record, then a
# moment of the recording is drawn by tools/cast2png.py.
# Needs: cargo, tmux, python3 with pyte and Pillow (python3 -m pip install pyte pillow).
set -euo pipefail
cd "$(dirname "$0")/.."

COLS=100
ROWS=30
TIMEOUT=120 # seconds one recording may take, at most

die() { echo "make-readme-picture: $*" >&2; exit 1; }
command -v tmux >/dev/null || die "tmux is missing (apt-get install tmux)"
python3 -c 'import pyte, PIL' 2>/dev/null || die "python3 needs pyte and Pillow: python3 -m pip install pyte pillow"

cargo build --release
WARREN="$PWD/target/release/warren"

SESSION="warren-readme-$$"
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true' EXIT

# record SCENARIO SPEED CAST: play SCENARIO until its last step ("step N/N") is on
# screen, then press q and wait for warren to exit.
record() {
    local scenario=$1 speed=$2 cast=$3 status="$3.exit"
    local steps
    steps=$(grep -c '^\[\[step\]\]' "$scenario")
    rm -f "$cast" "$status"
    tmux new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
        "'$WARREN' play '$scenario' --broker embedded --speed $speed --record '$cast'; echo \$? > '$status'"
    local waited=0
    until grep -q "\"m\", \"step $steps/$steps\"" "$cast" 2>/dev/null; do
        sleep 0.5
        waited=$((waited + 1))
        ((waited < TIMEOUT * 2)) || die "$scenario: no marker \"step $steps/$steps\" after ${TIMEOUT}s"
    done
    sleep 2 # let the last caption's frame be drawn and recorded
    tmux send-keys -t "$SESSION" q
    waited=0
    until [[ -s "$status" ]]; do
        sleep 0.5
        waited=$((waited + 1))
        ((waited < 20)) || die "$scenario: warren did not exit 10 s after q"
    done
    [[ "$(cat "$status")" == 0 ]] || die "$scenario: warren exited with status $(cat "$status")"
    head -n1 "$cast" | grep -q "\"width\":$COLS,\"height\":$ROWS" ||
        die "$cast: not recorded at ${COLS}x$ROWS: $(head -n1 "$cast")"
    rm -f "$status"
    echo "make-readme-picture: recorded $cast"
}

record assets/scenarios/classic-round-robin.toml 1 /tmp/warren-readme.cast
python3 tools/cast2png.py /tmp/warren-readme.cast assets/warren-round-robin.png \
    --at-marker "step 2/3" --after 1.5

record assets/scenarios/classic-fair-dispatch.toml 2 /tmp/warren-readme-fair.cast
python3 tools/cast2png.py /tmp/warren-readme-fair.cast assets/warren-fair-dispatch.png \
    --at-marker "step 2/3" --after 3

ls -l assets/warren-round-robin.png assets/warren-fair-dispatch.png
