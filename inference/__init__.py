"""RadScope's inference engine: torch + numpy only (no viewer, Qt or pydicom), arrays in, arrays out.

Public API (import from the modules; this package imports nothing, so reading a card stays torch-free)::

    from inference.package import read_card, save_package, ModelCard, ModelPackageError
    from inference.loading import load_model, LoadedModel          # model(x) -> logits; model.split()
    from inference.preprocess import Preprocessor                  # card pipeline and its exact inverse
    from inference.explain import explain_batch, METHODS, normalize_maps
    from inference.explain.sanity import cascading_randomization
    from inference.runner import Runner, BatchResult               # Runner(pkg).run(volume, ...) streams batches
    from inference.cache import ResultCache
    from inference.registry import find_packages, choose_package
"""
