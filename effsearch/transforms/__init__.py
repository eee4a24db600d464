"""How knobs change a model (torch): pruning, quantization, PEFT, transformer-block surgery.

The knobs themselves are declared, torch-free, in :mod:`effsearch.spaces`.
"""
