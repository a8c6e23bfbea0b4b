"""Training, model-agnostic: the loop, what it knows of a model (objective), optimizer, schedules, gradients,
checkpoints and the state an exact resume needs, distributed ranks, non-finite steps, run directories, TensorBoard
and checkpoint averaging."""
