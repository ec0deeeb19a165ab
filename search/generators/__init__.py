from .base import Completion, FinishReason, Generator, SamplingConfig

__all__ = ["Completion", "FinishReason", "Generator", "SamplingConfig"]
