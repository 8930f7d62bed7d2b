"""Stages 1-2 of MUG and the baseline label generators."""
