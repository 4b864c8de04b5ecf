"""Transactiva's contract language: grammar, parser, checker and evaluator.

A pure library: no I/O, no clocks (time is passed in), no randomness.
"""
