#!/usr/bin/env bash
# Data efficiency: the baselines at several training sizes (nested samples of the 2,822
# training workers, labor sample seed 0), always scored on the same 807 test workers; the
# fine-tuned LLM where SIZES_LLM names the size. Results in docs/results/table6/workers-N/.
#
#   docs/results/table6/sizes.sh            # SIZES="250 500 2822" KINDS="empirical logit career"
set -euo pipefail
here="$(dirname "$0")"
for n in ${SIZES:-250 500 2822}; do
  steps="data baselines"
  [[ " ${SIZES_LLM:-} " == *" $n "* ]] && steps="$steps llm score"
  WORKERS=$n RESULTS="docs/results/table6/workers-$n" KINDS="${KINDS:-empirical logit career}" \
    "$here/reproduce.sh" $steps eval
done
