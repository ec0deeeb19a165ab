"""Evaluation of PRMs: ProcessBench and metrics of candidate pools."""
