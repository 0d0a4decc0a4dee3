"""Search: the query language (query.py), the in-memory vector index (vector_index.py, coarse_scan.py),
text/image/mixed search with filters (searcher.py) and duplicate finding (duplicates.py).

Plain Python, numpy and ONNX Runtime: no Qt, no torch. `searcher.Searcher` is the entry point. This
module itself stays import-free so the command line can read the defaults below cheaply.
"""

DEFAULT_K = 20  # results per search
DEFAULT_DUPLICATE_THRESHOLD = 0.95  # cosine similarity from which two photos are near-duplicates
