"""Running a model over many series (``radscope infer``): one series' unit of work, the ledger that makes
reruns skip what is done, progress, the local and Ray engines, and the worklist ranking of the results.

GUI-free; torch is imported only where a model is loaded, Ray only by the Ray engine.
"""
