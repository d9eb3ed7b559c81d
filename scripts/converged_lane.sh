#!/usr/bin/env bash
# One lane of converged runs, one after the other, from the grid's worktree (tag grid-v1, its own
# venv), 1 thread each: the lever runs of README "What a converged comparison costs" and grid
# jobs run out of order. Start two lanes for 2 cores. A run cut off by a sitting's end resumes
# from its checkpoints/last.pt when the lane is started again; a run whose summary is committed
# is skipped.
#
#   scripts/converged_lane.sh lever:NAME:KEY=VALUE,KEY=VALUE ...   additive, seed 1, with the
#       overrides; summary exported to docs/convergence/runs/levers/NAME and committed
#   scripts/converged_lane.sh grid:SEED:JOBNUM ...   the grid's job JOBNUM_seedSEED_rnn_additive
#       into the grid's own sweep directory (the sweep then skips it); exported to
#       docs/comparison/converged/rnn/ (scripts/commit_summaries.sh commits it)
#
# GRID (default ../grid) is the worktree, MAIN (default this checkout) receives the summaries;
# SEQ2SEQ_DATA as for every command.
set -u
MAIN=${MAIN:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
GRID=$(cd "${GRID:-$MAIN/../grid}" && pwd) || exit 1
LOGS=$(mkdir -p "${LOGS:-$GRID/lanes}" && cd "${LOGS:-$GRID/lanes}" && pwd)
cd "$GRID" || exit 1
for spec in "$@"; do
  kind=${spec%%:*}; rest=${spec#*:}
  if [ "$kind" = grid ]; then
    seed=${rest%%:*}; num=${rest#*:}; name=${num}_seed${seed}_rnn_additive
    dir=$GRID/multirun/converged/rnn/$name
    summary=$MAIN/docs/comparison/converged/rnn/$name
    overrides=(experiment=compare_converged "trainer.seed=$seed" variant=additive)
  else
    name=${rest%%:*}; ov=${rest#*:}
    dir=$LOGS/levers/$name
    summary=$MAIN/docs/convergence/runs/levers/$name
    IFS=, read -r -a lever <<< "$ov"
    overrides=(experiment=compare_converged variant=additive trainer.seed=1 "${lever[@]}")
  fi
  [ -f "$summary/metrics.json" ] && { echo "$name: summary committed already"; continue; }
  resume=()
  [ -f "$dir/checkpoints/last.pt" ] && resume=(trainer.resume=true)
  echo "$(date -u +%H:%M:%S) start $name ${resume[*]}"
  .venv/bin/seq2seq-train "${overrides[@]}" hydra.mode=RUN trainer.num_threads=1 \
    "hydra.run.dir=$dir" "${resume[@]}" > "$LOGS/$name.out" 2>&1
  rc=$?
  echo "$(date -u +%H:%M:%S) $name exited $rc"
  [ $rc = 0 ] || continue
  .venv/bin/seq2seq-compare "$dir" --export "$(dirname "$(dirname "$summary")")" >> "$LOGS/$name.out" 2>&1 \
    || { echo "$name: export failed (see $LOGS/$name.out)"; continue; }
  if [ "$kind" != grid ]; then
    for _ in 1 2 3; do  # another git command may hold the index for a moment
      git -C "$MAIN" add "$summary" \
        && git -C "$MAIN" commit -q --only -m "Converged lever run $name: its summary" -- "$summary" \
        && break
      sleep 5
    done
  fi
done
echo "$(date -u +%H:%M:%S) lane done"
