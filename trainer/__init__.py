"""Stage 3 of MUG: multi-task training on stored uni-labels (`trainer run`, `trainer eval`)."""
