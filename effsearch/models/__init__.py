"""Model adapters: where each architecture keeps its blocks, heads, FFN and embeddings
(``layouts``, torch-free) and the surgery that applies transforms by role (``surgery``)."""
