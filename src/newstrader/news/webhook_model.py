"""The body of `POST /api/news` and its conversion to a NewsItem.

Free text is parsed by the pipeline; `coin` + `side` given together (as TradingView-style
alerts send them) are used as is. The 64 KiB body limit is the web layer's; the limits
here keep every field within what the journal stores.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from newstrader.domain import NewsItem, Side, utcnow

MAX_TITLE = 2000
MAX_BODY = 65536
_EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)  # nothing was published before bitcoin's genesis block


def _clean(value: str) -> str:
    # NUL is refused by PostgreSQL text columns and is never meaningful in a headline.
    return value.replace("\x00", "").strip()


class WebhookNews(BaseModel):
    """One news item posted to the bot; unknown fields are ignored (alert services add their own)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
    body: Annotated[str | None, Field(max_length=MAX_BODY)] = None
    source: Annotated[str | None, Field(max_length=100)] = None
    url: Annotated[str | None, Field(max_length=2000)] = None
    id: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    published_at: datetime | None = None
    coin: Annotated[str | None, Field(min_length=1, max_length=40)] = None
    side: Side | None = None

    @field_validator("title", "body", "source", "url", "id", "coin", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return _clean(value) if isinstance(value, str) else value

    @field_validator("title")
    @classmethod
    def _title_has_text(cls, value: str) -> str:
        if not value:
            raise ValueError("title must not be blank")
        return value

    @field_validator("source", "url", "id", "coin", "body")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("side", mode="before")
    @classmethod
    def _side_words(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("buy", "long"):
                return Side.LONG
            if word in ("sell", "short"):
                return Side.SHORT
            if not word:
                return None
        return value

    @field_validator("published_at")
    @classmethod
    def _sane_time(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value < _EARLIEST or value > utcnow() + timedelta(days=1):
            raise ValueError("published_at must be between 2009 and tomorrow")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _coin_and_side_together(self) -> WebhookNews:
        if (self.coin is None) != (self.side is None):
            raise ValueError(
                "coin and side go together: give both (a direct signal) or neither (parse the title)"
            )
        return self

    def to_news_item(
        self,
        default_source: str = "webhook",
        received_at: datetime | None = None,
        received_mono: float | None = None,
    ) -> NewsItem:
        """The NewsItem the pipeline takes; an id is derived when none was sent, so retries dedupe.

        `received_mono` is the handler's `time.monotonic()` on arrival: the ledger starts there."""
        source = self.source or default_source
        return NewsItem(
            id=self.id or NewsItem.make_id(source, self.title, self.url),
            title=self.title,
            source=source,
            body=self.body or "",
            url=self.url,
            published_at=self.published_at,
            received_at=received_at or utcnow(),
            received_mono=received_mono,
            coin=self.coin,
            side=self.side,
        )
