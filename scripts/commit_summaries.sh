#!/usr/bin/env bash
# Commit the run summaries a sweep exports (exported_runs=DIR) as they appear, so a grid that
# outlasts a sitting keeps every finished run: the next sitting's sweep skips them.
#
#   scripts/commit_summaries.sh docs/comparison/converged [SECONDS]   (every 120 s by default)
#
# Only DIR is committed (git commit --only): whatever else is staged stays staged. A summary
# appears whole (built beside it, ignored by git, then renamed into place).
set -u
dir=${1:?usage: scripts/commit_summaries.sh DIR [SECONDS]}
every=${2:-120}
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" || exit 1
while true; do
    git add -- "$dir" 2>/dev/null
    new=$(git diff --cached --name-only -- "$dir" | grep -oE '/[0-9]+_seed[0-9]+_[A-Za-z0-9_]+/' \
        | tr -d / | sort -u | paste -sd' ')
    if [ -n "$new" ]; then
        for _ in 1 2 3; do  # another git command may hold the index for a moment
            git commit -q --only -m "Converged grid: the summaries of $new" -- "$dir" \
                && { echo "$(date -u +%H:%M:%S) committed: $new"; break; }
            sleep 5
        done
    fi
    sleep "$every"
done
