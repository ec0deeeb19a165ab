"""Test-time search with any verifier: Best-of-N, beam search, DVTS."""
