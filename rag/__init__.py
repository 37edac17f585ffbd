"""News Q&A with inline citations, grounded in the articles and checked in code."""

from rag.errors import ConfigError, InputError, ModelError, RagError, StoreError
from rag.models import Answer, Article, Chunk, Citation, Claim, Context, Retrieved, Token

__all__ = ["Answer", "Article", "Chunk", "Citation", "Claim", "ConfigError", "Context", "InputError",
           "ModelError", "RagError", "Retrieved", "StoreError", "Token"]
