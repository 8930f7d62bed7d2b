"""MUG's two training stages and their networks.

stage1: pre-training with the contrastive projection module (cpm), then the cached
representations (representations.CachedReps) every later step reads; stage2: MUCN (mucn)
meta-learning on those representations. Nothing here decides settings or judges labels:
that is labelgen.trust.
"""
