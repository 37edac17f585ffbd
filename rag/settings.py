"""The only place that reads environment and configuration (prefix ``RAG_``)."""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "RAG_"
DEFAULT_COLLECTION = "articles"

# Libraries we use phone home unless told not to; this project runs offline.
for _key, _value in {
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)


# Chroma's rule for collection names, at most 200 characters (the name is also the store's file name:
# this keeps paths safe and under the 255-byte file-name limit)
COLLECTION_RULE = ("must be 3-200 characters of a-z A-Z 0-9 . _ -, start and end with a letter or digit,"
                   " have no '..' and not be an IPv4 address")
_COLLECTION = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,198}[a-zA-Z0-9]")
_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")


def valid_collection(name: str) -> bool:
    return bool(_COLLECTION.fullmatch(name)) and ".." not in name and not _IPV4.fullmatch(name)


class Settings(BaseSettings):
    # an empty RAG_* variable means unset (the default); inf and nan are no number a setting wants
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True,
                                      allow_inf_nan=False)

    data_dir: Path = PROJECT_ROOT / ".rag"
    collection: str = DEFAULT_COLLECTION
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 -> Chroma server

    llm: Literal["local", "openai", "fake"] = "local"
    embeddings: Literal["minilm", "fake"] = "minilm"
    verify: Literal["off", "flag", "repair"] = "flag"

    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = Field(default=None, repr=False)  # never printed, logged or echoed
    openai_timeout_s: float = Field(default=60.0, gt=0, le=3600)  # an hour; far larger overflows time_t

    model_cache_dir: Path | None = None  # where the assembled GGUF lives
    n_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    n_ctx: int = Field(default=2048, ge=512)  # prompts are ~900 tokens + a 200-token answer
    max_answer_tokens: int = Field(default=200, ge=1)

    chunk_tokens: int = Field(default=120, ge=16)
    chunk_overlap_sentences: int = Field(default=1, ge=0)
    top_k: int = Field(default=4, ge=1, le=50)
    candidates: int = Field(default=20, ge=1)
    keyword_weight: float = Field(default=1.0, ge=0)  # BM25's share in the fusion, against 1.0 for vectors
    per_article: int = Field(default=2, ge=0)  # at most N of the top_k passages from one article (0: no cap)
    focus_sentences: int = Field(default=0, ge=0)  # send the model only the N best sentences (0: whole passages)
    min_relevance: float = Field(default=0.25, ge=-1, le=1)  # best vector similarity below this -> nothing relevant
    support_threshold: float = Field(default=0.75, ge=0, le=1)  # judge P(yes) below this -> unsupported
    # judge P(yes) that another report's sentence answers the question, below this -> not quoted as disagreeing
    other_report_threshold: float = Field(default=0.75, ge=0, le=1)

    max_question_chars: int = Field(default=2000, ge=1)
    max_file_bytes: int = Field(default=5_000_000, ge=1)

    ui_auth: SecretStr | None = None  # "user:password"
    ui_queue_size: int = Field(default=64, ge=1)

    @field_validator("data_dir", "model_cache_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            return value.expanduser()  # "~/data" from a .env file or quotes
        except RuntimeError:  # "~nosuchuser/data"
            raise ValueError(f"cannot find the home folder of '{value.parts[0]}'") from None

    @field_validator("chroma_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("chroma_url")
    @classmethod
    def _server_address(cls, value: str | None) -> str | None:
        """Only scheme, host and port reach chromadb's client: refuse what it would drop or guess."""
        if value is None:
            return None
        url = urlparse(value)
        try:
            port = url.port
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        if not url.hostname or not port:
            raise ValueError("must name a host and its port, as in http://chroma-host:8000")
        if url.path not in ("", "/") or "?" in value or "#" in value or "@" in url.netloc:
            raise ValueError("must be only scheme, host and port, as in http://chroma-host:8000 (a path, a login"
                             " or a query would be dropped)")
        return value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not valid_collection(value):
            raise ValueError(COLLECTION_RULE)
        return value


_SECRET = {"openai_api_key", "ui_auth"}  # never echo these values in a message
_COMPUTED_DEFAULT = {"n_threads": "the number of CPU cores"}  # defaults made by a default_factory


def _describe(err: ErrorDetails) -> str:
    """One line naming the setting, the value given and what it accepts."""
    field = str(err["loc"][0]) if err["loc"] else ""
    name = ENV_PREFIX + field.upper() if field else ENV_PREFIX + "*"
    value = "(hidden)" if field in _SECRET else repr(err.get("input"))
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    kind = err["type"]
    if kind == "literal_error":
        allowed = ", ".join(a.strip(" '") for a in str(ctx.get("expected", "")).replace(" or ", ", ").split(","))
        why = f"allowed values are {allowed}"
    elif kind in ("int_parsing", "int_from_float", "int_type"):
        why = "expected a whole number"
    elif kind in ("float_parsing", "float_type"):
        why = "expected a number"
    elif kind == "finite_number":
        why = "expected a finite number"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        bound = ctx.get(words[1])
        why = f"must be {words[0]} {int(bound) if isinstance(bound, float) and bound.is_integer() else bound}"
    elif kind == "value_error":
        why = str(ctx.get("error", err["msg"]))
    else:
        why = err["msg"]
    default = _COMPUTED_DEFAULT.get(field) or (Settings.model_fields[field].default
                                               if field in Settings.model_fields else None)
    hint = f" (default {default})" if default is not None and field not in _SECRET else ""
    return f"invalid setting {name}={value}: {why}{hint}"


def _misspelt() -> str | None:
    """A RAG_* variable that is not a setting but looks like one (RAG_TOPK for RAG_TOP_K)."""
    known = [ENV_PREFIX + f.upper() for f in Settings.model_fields]
    for key in sorted(os.environ):
        name = key.upper()
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            if close:
                return f"unknown setting {key} (did you mean {close[0]}?)"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read settings once; an invalid value or a misspelt name becomes a one-line ConfigError."""
    if problem := _misspelt():
        raise ConfigError(problem)
    try:
        return Settings()
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_describe(errors[0]) + more) from None
