#!/bin/bash
# One MATH-500 search sharded over a Slurm array (one GPU per task), then merged:
#   sbatch --array=0-4 recipes/slurm/search_array.sh recipes/llama-3.2-1b-instruct/beam_search.yaml data/llama-bs
#   # after the array finishes (or as a dependent job: sbatch --dependency=afterok:<jobid> ...):
#   python recipes/run_search.py --config recipes/llama-3.2-1b-instruct/beam_search.yaml \
#       --merge data/llama-bs/shard_* --output_dir outputs/llama-bs/merged
# Shard size is a multiple of search_batch_size (25), so the merged file equals an unsharded run's.
# A preempted task resumes where it stopped when requeued (results.jsonl is appended per batch).
#SBATCH --job-name=prmkit-search
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --requeue
set -euo pipefail
CONFIG=$1
OUT=$2
SHARD_SIZE=${SHARD_SIZE:-100}
START=$((SLURM_ARRAY_TASK_ID * SHARD_SIZE))
END=$((START + SHARD_SIZE))
python recipes/run_search.py --config "$CONFIG" --dataset_start "$START" --dataset_end "$END" \
    --output_dir "$OUT/shard_${START}_${END}" --skip_metrics
