"""Training of RadScope's bundled demo models from synthetic phantoms (``python -m inference.training``).

Modules: `architectures` (the small CNN with its evidence map), `dataset` (phantom images through the
engine's own preprocessing, cached), `train` (the loop), `metrics` (AUROC, Youden, pointing game),
`evaluate` (metrics measured on the exported package through the engine), `pipeline` (one recipe end
to end, card included) and `recipes` (the CT and the radiograph model).
"""
