"""Training, model-agnostic: the loop, optimizer, schedules, checkpoints, distributed ranks, run directories,
TensorBoard and checkpoint averaging."""
