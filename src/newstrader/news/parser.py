"""Headline → Signal: coins, directional terms, negations and explicit commands, by rules.

The rules live in TOML (`rules.toml` shipped with the package; a user file merges over it).
Parsing is one tokenizer pass plus dictionary look-ups, so a headline costs tens of
microseconds: the parser is never the slow part of news-to-order latency.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

from newstrader.domain import NewsItem, Side, Signal, utcnow

# Reasons a headline yields no signal (stable strings: the journal, API and tests use them).
REASON_MATCHED = "matched"
REASON_COMMAND = "command"
REASON_GIVEN = "given"
REASON_NO_COIN = "no coin"
REASON_NO_DIRECTION = "no direction"
REASON_CONFLICT = "conflicting terms"
REASON_NEGATED = "negated"
REASON_NOT_TRADABLE = "coin not tradable"
REASON_QUESTION = "question"
REASON_EMPTY = "empty text"
REASON_SPECULATIVE = "speculative"

# How the direction was decided (shown in a signal's `why`).
DECIDED_BY_STRENGTH = "strength"  # the stronger side, no real opposition
DECIDED_BY_EFFECT = "effect"  # cause and effect disagree: the price move (the effect) decides

_BODY_CHARS = 2000  # how much of a body is read when the title names no coin

# Numbers and amounts ("$1.2B", "4,225", "10%"), words (with cashtags, "fetch.ai", "won't"),
# and the punctuation that bounds a clause.
_NUMBER = r"\$?\d(?:[\d,.]*\d)?[a-zA-Z]*%?"
_TOKEN_RE = re.compile(
    rf"(?P<num>{_NUMBER})"
    r"|(?P<word>\$?[^\W\d_][\w'’]*(?:[.\-][\w'’]+)*)"
    r"|(?P<sent>[?!.;:|])"
    r"|(?P<clause>[,()\[\]]|\s[-–—]+\s|[–—])"
)
# The same tokens without groups (findall returns plain strings: the hot path).
_FLAT_TOKEN_RE = re.compile(rf"{_NUMBER}|\$?[^\W\d_][\w'’]*(?:[.\-][\w'’]+)*|\s[-–—]+\s|[?!.;:|,()\[\]–—]")
# A piece that is one number and nothing else: most pieces not seen before are new numbers,
# classified without the general pattern.
_NUMBER_RE = re.compile(_NUMBER)
_SENTENCE_ENDERS = frozenset("?!.;:|")
_WORD, _SKIP, _CLAUSE, _SENTENCE, _QUESTION, _NUM, _OPEN, _CLOSE = range(8)  # token kinds
# One classified token: (kind, raw, low, stem, marks, coin, phrase). raw keeps the case
# (possessive stripped), low is lower case, stem is folded; `marks` says what the word may
# start. `coin` and `phrase` are the word's look-ups, done once when it is first seen: None
# (starts nothing), the one-word result (for a coin a pair: as the headline's first word,
# elsewhere), or `_Starts` when the word may start a longer name or phrase.
_Token = tuple[int, str, str, str, int, Any, Any]
_CLAUSE_INFO: _Token = (_CLAUSE, "", "", "", 0, None, None)
_SKIP_INFO: _Token = (_SKIP, "", "", "", 0, None, None)
# A trading symbol in prose ("FARTCOINUSDT", "HYPE-PERP"): the base is the coin.
_SYMBOL_SUFFIXES = ("usdt", "usdc", "-perp", "perp")
_PAREN_TICKER_RE = re.compile(r"[A-Z][A-Z0-9]{1,11}")
_MAY_BE_COIN, _MAY_BE_SYMBOL, _MAY_BE_TERM, _MAY_BE_METRIC = 1, 2, 4, 8  # what a word may start
_MOVED_BOTH_WAYS = object()  # a headline whose price moves contradict each other
# "binance:btcusdt.p", "eth-perp", "sol/usdt", "1000pepeusdt": exchange prefix, base, quote, perp suffix.
_ALERT_SYMBOL_RE = re.compile(
    r"(?:[a-z0-9_]+:)?(?P<base>[a-z0-9]+?)[-_/]?(?:usdt|usdc|usd|busd|fdusd|perp)?"
    r"(?:[-_.]?(?:p|perp|swap))?"
)
_TOKEN_CACHE_MAX = 200_000
_DASHES = "-–—"
_COMMAND_RE = re.compile(
    r"^\s*(?:signal\s*[:\-]\s*)?(?P<verb>long|short|buy|sell)\s+(?P<coin>\$?[\w.]+)"
    r"(?:\s+(?P<lev>\d{1,3}(?:\.\d+)?)\s*x)?\s*[.!]*\s*$",
    re.IGNORECASE,
)
_COMMAND_INITIALS = frozenset("lsbLSB\u017f")  # long, short, buy, sell, signal (ſ: an s to IGNORECASE)
_CLAUSE_ENDERS = frozenset({"but", "while", "although", "however", "yet", "whereas"})


class RulesError(ValueError):
    """A rules file is malformed; the message names the key."""


_TWO_DECIMALS: dict[float, str] = {}


def _two(value: float) -> str:
    """`f"{value:.2f}"`, remembered: a few strengths recur across every headline."""
    text = _TWO_DECIMALS.get(value)
    if text is None:
        text = f"{value:.2f}"
        if len(_TWO_DECIMALS) < 10_000:
            _TWO_DECIMALS[value] = text
    return text


_ROUNDED: dict[float, float] = {}


def _round3(value: float) -> float:
    """`round(value, 3)`, remembered: float rounding goes through decimal conversion (~0.5 µs),
    and confidences come from a few rule weights."""
    rounded = _ROUNDED.get(value)
    if rounded is None:
        rounded = round(value, 3)
        if len(_ROUNDED) < 10_000:
            _ROUNDED[value] = rounded
    return rounded


def stem(word: str) -> str:
    """Fold plurals and -ed/-ing forms so one listed term matches its inflections."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # "banned" → "ban", "dropped" → "drop"
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Term:
    """One directional (or neutral) phrase from the rules."""

    phrase: str
    kind: str
    side: Side | None  # None: neutral
    weight: float
    move: bool = False  # a price move: an effect, strengthened by a level or a percentage
    needs_magnitude: bool = False  # counts only with a level or percentage right after it
    object: bool = False  # listing-like: the coin named after the term is the subject
    note: str = ""  # ": long 0.80", the tail of this term's line in a signal's `why`

    def __post_init__(self) -> None:
        if not self.note:
            side = self.side.value if self.side is not None else "neutral"
            object.__setattr__(self, "note", f": {side} {self.weight:.2f}")


@dataclass(frozen=True, slots=True)
class _CoinName:
    coin: str
    mode: str  # "ticker" | "alias" | "name" | "proper"
    form: str  # the exact spelling for "name"/"proper"


@dataclass(slots=True)
class Rules:
    """Compiled rules: look-up tables keyed by space-joined lowercase (coins) or stemmed (terms) words."""

    coins: tuple[str, ...]
    coin_names: dict[str, list[_CoinName]]
    cashtags: dict[str, str]
    command_names: dict[str, str]
    untradable: dict[str, str]
    terms: dict[str, Term]
    local_negations: frozenset[str]
    global_negations: frozenset[str]
    stopwords: frozenset[str]
    negation_window: int = 8
    conflict_ratio: float = 0.75
    extra_term_factor: float = 0.25
    opposing_penalty: float = 0.5
    ignore_questions: bool = True
    move_weight: float = 0.7
    move_min_percent: float = 5.0
    hedges: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()
    metric_words: frozenset[str] = frozenset()  # the first word of each metric
    # First word → the lengths (in words, longest first) of the names/phrases starting with it,
    # so a word that starts nothing costs one look-up.
    coin_lengths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    term_lengths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # The first two words of every longer phrase: a word pair that starts none skips them all.
    term_pairs: frozenset[str] = frozenset()


def _default_rules_text() -> str:
    return importlib.resources.files("newstrader.news").joinpath("rules.toml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a user rules document over the defaults (see rules.toml's header for the rules)."""
    merged = dict(base)
    for key, value in override.items():
        if key == "settings" and isinstance(value, Mapping):
            merged["settings"] = {**base.get("settings", {}), **value}
        elif key == "coins" and isinstance(value, Mapping):
            merged["coins"] = {**base.get("coins", {}), **value}
        elif key in ("terms", "negations", "untradable", "stopwords", "metrics") and isinstance(value, list):
            merged[key] = [*base.get(key, []), *value]
        else:
            merged[key] = value
    return merged


def _str_list(doc: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}.{key}: must be a list of strings")
    return value


def _words(text: str) -> list[str]:
    return [
        m.group("word") or m.group("num")
        for m in _TOKEN_RE.finditer(text)
        if m.group("word") or m.group("num")
    ]


def _norm_word(word: str) -> str:
    word = word.replace("’", "'").lower()
    if word.endswith("'s"):
        word = word[:-2]
    return word.rstrip("'")


def compile_rules(doc: Mapping[str, Any]) -> Rules:
    """Turn a rules document (parsed TOML) into look-up tables; raise RulesError naming a bad key."""
    unknown_top = set(doc) - {
        "settings",
        "coins",
        "terms",
        "negations",
        "untradable",
        "stopwords",
        "metrics",
    }
    if unknown_top:
        raise RulesError(f"{sorted(unknown_top)[0]}: unknown key")
    settings = doc.get("settings", {})
    if not isinstance(settings, Mapping):
        raise RulesError("settings: must be a table")
    unknown_settings = set(settings) - {
        "negation_window",
        "conflict_ratio",
        "extra_term_factor",
        "opposing_penalty",
        "ignore_questions",
        "move_weight",
        "move_min_percent",
    }
    if unknown_settings:
        raise RulesError(f"settings.{sorted(unknown_settings)[0]}: unknown key")
    coins_doc = doc.get("coins", {})
    if not isinstance(coins_doc, Mapping) or not coins_doc:
        raise RulesError("coins: must be a non-empty table of coin → names")

    coin_names: dict[str, list[_CoinName]] = {}
    cashtags: dict[str, str] = {}
    command_names: dict[str, str] = {}
    coins: list[str] = []

    def add_name(key: str, entry: _CoinName) -> None:
        coin_names.setdefault(key, []).append(entry)

    for coin, spec in coins_doc.items():
        where = f"coins.{coin}"
        if not isinstance(spec, Mapping):
            raise RulesError(f"{where}: must be a table")
        unknown = set(spec) - {"tickers", "aliases", "names", "proper", "enabled"}
        if unknown:
            raise RulesError(f"{where}.{sorted(unknown)[0]}: unknown key")
        if spec.get("enabled", True) is False:
            continue
        coins.append(coin)
        command_names[coin.lower()] = coin
        cashtags[f"${coin.lower()}"] = coin
        for ticker in _str_list(spec, "tickers", where):
            add_name(ticker.lower(), _CoinName(coin, "ticker", ticker.upper()))
            cashtags[f"${ticker.lower()}"] = coin
            command_names[ticker.lower()] = coin
        for alias in _str_list(spec, "aliases", where):
            key = " ".join(_norm_word(w) for w in _words(alias))
            add_name(key, _CoinName(coin, "alias", alias))
            command_names[key] = coin
        for mode in ("names", "proper"):
            for name in _str_list(spec, mode, where):
                add_name(name.lower(), _CoinName(coin, mode.rstrip("s") if mode == "names" else mode, name))
                command_names[name.lower()] = coin

    untradable: dict[str, str] = {}
    for name in _str_list(doc, "untradable", "untradable"):
        key = " ".join(_norm_word(w) for w in _words(name))
        untradable[key] = name
        cashtags.setdefault(f"${key}", "")

    terms: dict[str, Term] = {}
    raw_terms = doc.get("terms", [])
    if not isinstance(raw_terms, list):
        raise RulesError("terms: must be an array of tables ([[terms]])")
    for i, group in enumerate(raw_terms):
        where = f"terms[{i}]"
        if not isinstance(group, Mapping):
            raise RulesError(f"{where}: must be a table")
        side_text = group.get("side")
        if side_text not in ("long", "short", "neutral"):
            raise RulesError(f"{where}.side: must be long, short or neutral")
        side = None if side_text == "neutral" else Side(side_text)
        weight = group.get("weight", 0.5)
        if not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise RulesError(f"{where}.weight: must be a number from 0 to 1")
        kind = str(group.get("kind", side_text))
        flags = {}
        for flag in ("move", "needs_magnitude", "object"):
            value = group.get(flag, False)
            if not isinstance(value, bool):
                raise RulesError(f"{where}.{flag}: must be true or false")
            flags[flag] = value
        phrases = group.get("phrases", [])
        if not isinstance(phrases, list):
            raise RulesError(f"{where}.phrases: must be a list")
        for j, entry in enumerate(phrases):
            phrase, w = entry, weight
            if isinstance(entry, Mapping):
                phrase, w = entry.get("phrase"), entry.get("weight", weight)
            if not isinstance(phrase, str) or not phrase.strip():
                raise RulesError(f"{where}.phrases[{j}]: must be a phrase or {{phrase, weight}}")
            if not isinstance(w, int | float) or not 0 <= w <= 1:
                raise RulesError(f"{where}.phrases[{j}].weight: must be a number from 0 to 1")
            key = " ".join(stem(_norm_word(t)) for t in _words(phrase))
            if key:
                terms[key] = Term(
                    phrase,
                    kind,
                    side,
                    float(w),
                    move=flags["move"],
                    needs_magnitude=flags["needs_magnitude"],
                    object=flags["object"],
                )

    local_neg: set[str] = set()
    global_neg: set[str] = set()
    hedge: set[str] = set()
    raw_negs = doc.get("negations", [])
    if not isinstance(raw_negs, list):
        raise RulesError("negations: must be an array of tables ([[negations]])")
    for i, group in enumerate(raw_negs):
        where = f"negations[{i}]"
        if not isinstance(group, Mapping) or group.get("scope", "local") not in ("local", "global", "hedge"):
            raise RulesError(f"{where}.scope: must be local, global or hedge")
        scope = group.get("scope", "local")
        target = global_neg if scope == "global" else hedge if scope == "hedge" else local_neg
        for phrase in _str_list(group, "phrases", where):
            target.add(" ".join(stem(_norm_word(t)) for t in _words(phrase)))

    def number(key: str, default: float, lo: float, hi: float) -> float:
        value = settings.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
            raise RulesError(f"settings.{key}: must be a number from {lo} to {hi}")
        return float(value)

    ignore_q = settings.get("ignore_questions", True)
    if not isinstance(ignore_q, bool):
        raise RulesError("settings.ignore_questions: must be true or false")
    stopwords = frozenset(w.lower() for w in _str_list(doc, "stopwords", "stopwords"))
    phrase_keys = list(terms) + list(local_neg) + list(global_neg) + list(hedge)
    metrics = frozenset(
        " ".join(_norm_word(t) for t in _words(m)) for m in _str_list(doc, "metrics", "metrics")
    )
    local_neg |= hedge
    coin_keys = list(coin_names) + list(untradable)
    return Rules(
        coins=tuple(coins),
        coin_names=coin_names,
        cashtags=cashtags,
        command_names=command_names,
        untradable=untradable,
        terms=terms,
        local_negations=frozenset(local_neg),
        global_negations=frozenset(global_neg),
        stopwords=stopwords,
        negation_window=int(number("negation_window", 8, 1, 50)),
        conflict_ratio=number("conflict_ratio", 0.75, 0, 1),
        extra_term_factor=number("extra_term_factor", 0.25, 0, 1),
        opposing_penalty=number("opposing_penalty", 0.5, 0, 1),
        ignore_questions=ignore_q,
        move_weight=number("move_weight", 0.7, 0, 1),
        move_min_percent=number("move_min_percent", 5.0, 0, 1000),
        hedges=frozenset(hedge),
        metrics=metrics,
        metric_words=frozenset(m.split(" ")[0] for m in metrics),
        coin_lengths=_lengths_by_first_word(coin_keys),
        term_lengths=_lengths_by_first_word(phrase_keys),
        term_pairs=frozenset(" ".join(k.split(" ")[:2]) for k in phrase_keys if " " in k),
    )


def _lengths_by_first_word(keys: Iterable[str]) -> dict[str, tuple[int, ...]]:
    lengths: dict[str, set[int]] = {}
    for key in keys:
        words = key.split(" ")
        lengths.setdefault(words[0], set()).add(len(words))
    return {first: tuple(sorted(ns, reverse=True)) for first, ns in lengths.items()}


def load_rules(path: Path | str | None = None) -> Rules:
    """The shipped rules, with the user file at `path` (if any) merged over them."""
    base = tomllib.loads(_default_rules_text())
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"rules: cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(f"rules: {path} is not valid TOML: {exc}") from exc
        base = _merge(base, user)
    return compile_rules(base)


@dataclass(slots=True)
class ParseResult:
    """What the parser made of one item: a signal, or the reason there is none."""

    signal: Signal | None
    reason: str
    confidence: float = 0.0
    terms: tuple[str, ...] = ()
    coin: str | None = None
    side: Side | None = None
    why: tuple[str, ...] = ()  # the rules that decided: matched terms, subject, how the side won

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI and the web API print."""
        signal = None
        if self.signal is not None:
            signal = {
                "coin": self.signal.coin,
                "side": self.signal.side.value,
                "confidence": self.signal.confidence,
                "terms": list(self.signal.terms),
                "why": list(self.signal.why),
            }
        return {"signal": signal, "reason": self.reason, "why": list(self.why)}


def ledger_start(item: NewsItem, parsed_at: float) -> tuple[tuple[str, float], ...]:
    """The first latency-ledger stamps of an item (monotonic seconds): published, received, parsed.

    `received` is the edge's stamp (webhook handler, feed reader); `published` is the source's
    publication time moved onto the monotonic clock through the receipt's wall time."""
    received = item.received_mono if item.received_mono is not None else parsed_at
    published = item.published_at
    if published is None:
        return ("received", received), ("parsed", parsed_at)
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    at = received - (item.received_at - published).total_seconds()
    return ("published", at), ("received", received), ("parsed", parsed_at)


def signal_id_for(news_id: str) -> str:
    """Deterministic: the same news item always maps to the same signal (and so the same orders)."""
    return "s-" + hashlib.sha256(news_id.encode()).digest()[:12].hex()  # = hexdigest()[:24]


def _joined(info: list[_Token], i: int, n: int, form: Literal[1, 2, 3]) -> str:
    """Words i … i+n-1 in one form (1 raw, 2 lower case, 3 stem), space-joined: a phrase key.
    Two words (most phrases) without a generator, which costs more than the join."""
    if n == 2:
        return f"{info[i][form]} {info[i + 1][form]}"
    return " ".join([w[form] for w in info[i : i + n]])


@dataclass(frozen=True, slots=True)
class _Starts:
    """A word that may start a name or phrase of more than one word."""

    seconds: frozenset[str]  # the second words of those (lower case for names, stems for phrases)
    single: Any  # the word's own one-word result, as in a `_Token`


def _second_words(keys: Iterable[str]) -> dict[str, frozenset[str]]:
    """First word → the second words of the space-joined keys of more than one word."""
    seconds: dict[str, set[str]] = {}
    for key in keys:
        words = key.split(" ")
        if len(words) > 1:
            seconds.setdefault(words[0], set()).add(words[1])
    return {first: frozenset(following) for first, following in seconds.items()}


class _Words:
    """A tokenized headline as parallel lists (cheaper than one object per word)."""

    __slots__ = ("info", "marked", "metric_at", "numbers", "parens", "pos", "questions")

    def __init__(self) -> None:
        # Per word its cached `_Token`. One list: one append a word.
        self.info: list[_Token] = []
        # Per word its clause: sentence << 20 | segment (segments are numbered across sentences,
        # so equal positions mean the same clause; `>> 20` gives the sentence).
        self.pos: list[int] = []
        self.questions: set[int] = set()  # sentences ending in "?"
        self.numbers: list[tuple[int, int, str]] = []  # (next word, clause, token)
        self.parens: list[int] = []  # words standing alone in parentheses
        self.marked: list[int] = []  # words that may start a coin or a phrase
        self.metric_at: list[int] = []  # words that may start a metric


@dataclass(slots=True)
class _Hit:
    index: int
    term: Term
    text: str  # the headline's own words that matched, shown as the signal's terms
    questioned: bool = False
    negated: bool = False
    boosted: str = ""  # the level or percentage that strengthens a price move
    dropped: bool = False  # a move of a metric ("hashrate hits ATH"), not of the price

    def explain(self, move_weight: float) -> str:
        term = self.term
        if not self.boosted:
            return f"{term.kind} '{self.text}'{term.note}"
        side = term.side.value if term.side is not None else "neutral"
        return f"{term.kind} '{self.text}' with {self.boosted}: {side} {_two(max(term.weight, move_weight))}"


class Parser:
    """Parses news items with one set of rules against one set of tradable coins."""

    def __init__(self, rules: Rules | None = None, tradable: Iterable[str] | None = None) -> None:
        self.rules = rules if rules is not None else load_rules()
        self.tradable = frozenset(tradable) if tradable is not None else frozenset(self.rules.coins)
        self._token_cache: dict[str, _Token] = {}
        self._chunk_cache: dict[str, tuple[_Token, ...]] = {}
        rules = self.rules
        self._coin_seconds = _second_words([*rules.coin_names, *rules.untradable])
        self._phrase_seconds = _second_words(rules.term_pairs)

    # -- public --------------------------------------------------------------------------

    def parse(self, item: NewsItem) -> ParseResult:
        """Parse an item; `coin` + `side` given directly (TradingView-style) are used as is."""
        if item.coin and item.side is not None:
            given = self.resolve_coin(item.coin) or item.coin
            if given not in self.tradable:
                return ParseResult(None, REASON_NOT_TRADABLE, 0.0, (), given, item.side)
            return self._result(
                item, given, item.side, 1.0, ("given",), REASON_GIVEN, why=("given by the source",)
            )
        result = self._parse_text(item.title)
        if result[0] == REASON_NO_COIN and item.body:
            result = self._parse_text(f"{item.title}. {item.body[:_BODY_CHARS]}")
        reason, coin, side, confidence, terms, leverage, why = result
        if side is None or coin is None:
            return ParseResult(None, reason, confidence, terms, coin, side, why)
        return self._result(item, coin, side, confidence, terms, reason, leverage, why)

    def parse_text(self, text: str, source: str = "cli") -> ParseResult:
        """Parse a bare headline (the `signal` verb)."""
        item = NewsItem(id=NewsItem.make_id(source, text), title=text, source=source)
        return self.parse(item)

    def resolve_coin(self, name: str) -> str | None:
        """A coin from a ticker, cashtag, alias or the coin's own name, any case; None if unknown.

        Alert services' symbols work too: "BINANCE:BTCUSDT.P", "ETH-PERP", "SOL/USDT", "1000PEPEUSDT".
        """
        key = " ".join(_norm_word(w) for w in _words(name)) or name.strip().lower()
        if key.startswith("$"):
            return self.rules.cashtags.get(key) or None
        found = self.rules.command_names.get(key)
        if found is not None:
            return found
        symbol = _ALERT_SYMBOL_RE.fullmatch(name.strip().lower())
        if symbol is None:
            return None
        return self.rules.command_names.get(symbol.group("base"))

    # -- internals -----------------------------------------------------------------------

    def _result(
        self,
        item: NewsItem,
        coin: str,
        side: Side,
        confidence: float,
        terms: tuple[str, ...],
        reason: str,
        leverage: int | None = None,
        why: tuple[str, ...] = (),
    ) -> ParseResult:
        # Every field by position, in Signal's own order: matching keywords costs ~0.3 µs a signal.
        signal = Signal(
            signal_id_for(item.id),  # id
            item.id,  # news_id
            coin,
            side,
            confidence,
            terms,
            why,
            None,  # notional_usd
            leverage,
            utcnow(),  # created_at
            item.source,
            ledger_start(item, time.monotonic()),  # stamps
        )
        return ParseResult(signal, reason, confidence, terms, coin, side, why)

    def _command(self, text: str) -> tuple[str, Side, int | None] | None:
        match = _COMMAND_RE.match(text)
        if match is None:
            return None
        coin = self.resolve_coin(match.group("coin"))
        if coin is None:
            return None
        side = Side.LONG if match.group("verb").lower() in ("long", "buy") else Side.SHORT
        lev_text = match.group("lev")
        leverage = max(1, int(float(lev_text))) if lev_text else None
        return coin, side, leverage

    def _classify(self, token: str) -> _Token:
        """The `_Token` of one token; cached, since headlines share their words.

        `marks`: the word may start a coin, a symbol or a phrase; the parse visits only those."""
        first = token[0]
        if first.isalpha() or (first == "$" and not token[1].isdigit()):
            raw = token
            if "'" in raw or "’" in raw:
                raw = raw.replace("’", "'")
                if raw.endswith(("'s", "'S")):
                    raw = raw[:-2]
                raw = raw.rstrip("'")
            low = raw.lower()
            rules = self.rules
            if not low or low in rules.stopwords:
                return _SKIP_INFO
            if low in _CLAUSE_ENDERS:
                return _CLAUSE_INFO
            stemmed = stem(low)
            marks = 0
            coin: Any = None
            phrase: Any = None
            if low[0] == "$":
                marks |= _MAY_BE_COIN
                coin = (self._cashtag(low),) * 2
            elif low in rules.coin_lengths:
                marks |= _MAY_BE_COIN
                coin = (self._named(low, raw, first=True), self._named(low, raw, first=False))
                if low in self._coin_seconds:
                    coin = _Starts(self._coin_seconds[low], coin)
            elif low.endswith(_SYMBOL_SUFFIXES):
                marks |= _MAY_BE_SYMBOL
                coin = (self._symbol(raw, low),) * 2
            if stemmed in rules.term_lengths:
                marks |= _MAY_BE_TERM
                phrase = self._phrase(stemmed)
                if stemmed in self._phrase_seconds:
                    phrase = _Starts(self._phrase_seconds[stemmed], phrase)
            if low in rules.metric_words:
                marks |= _MAY_BE_METRIC
            return _WORD, raw, low, stemmed, marks, coin, phrase
        if first.isdigit() or first == "$":
            # No direction; levels and percentages strengthen moves.
            return _NUM, token, "", "", 0, None, None
        if first == "?":
            return _QUESTION, "", "", "", 0, None, None
        if first in _SENTENCE_ENDERS:
            return _SENTENCE, "", "", "", 0, None, None
        if first == "(":
            return _OPEN, "", "", "", 0, None, None
        if first == ")":
            return _CLOSE, "", "", "", 0, None, None
        return _CLAUSE_INFO

    def _chunk(self, piece: str) -> tuple[_Token, ...]:
        """The classified tokens of one whitespace-separated piece of a headline.

        No token spans whitespace except a dash set off by spaces (" - "), which bounds a clause.
        A dash-only piece first or last in the text bounds one too: a boundary before every
        word or after every word separates none of them, so that changes no result."""
        if not piece.strip(_DASHES):
            return (_CLAUSE_INFO,)
        if _NUMBER_RE.fullmatch(piece):
            return ((_NUM, piece, "", "", 0, None, None),)  # as `_classify` has it
        cache = self._token_cache
        infos = []
        for token in _FLAT_TOKEN_RE.findall(piece):
            info = cache.get(token)
            if info is None:
                info = self._classify(token)
                if len(cache) < _TOKEN_CACHE_MAX:
                    cache[token] = info
            if info[0] != _SKIP:
                infos.append(info)
        return tuple(infos)

    def _tokenize(self, text: str) -> _Words:
        """Words (stopwords dropped), their clause and sentence numbers, numbers and parenthesised words.

        A headline is split at whitespace and each piece's tokens come from a cache: news
        reuses its vocabulary, so the regular expression runs only on pieces not seen before."""
        chunks = self._chunk_cache
        words = _Words()
        infos, positions, marked = words.info, words.pos, words.marked
        add_info, add_pos = infos.append, positions.append
        segment = sentence = here = 0  # here: sentence << 20 | segment
        opened = -1
        for piece in text.split():
            chunk = chunks.get(piece)
            if chunk is None:
                chunk = self._chunk(piece)
                if len(chunks) < _TOKEN_CACHE_MAX:
                    chunks[piece] = chunk
            for info in chunk:
                kind = info[0]
                if kind == _WORD:
                    marks = info[4]
                    if marks:
                        if marks & _MAY_BE_METRIC:
                            words.metric_at.append(len(infos))
                        if marks != _MAY_BE_METRIC:
                            marked.append(len(infos))
                    add_info(info)
                    add_pos(here)
                    continue
                if kind == _NUM:
                    words.numbers.append((len(infos), here, info[1]))
                    continue
                if kind == _OPEN:
                    opened = len(infos)
                elif kind == _CLOSE:
                    if opened == len(infos) - 1:
                        words.parens.append(opened)
                elif kind != _CLAUSE:  # a sentence ends
                    if kind == _QUESTION:
                        words.questions.add(sentence)
                    sentence += 1
                segment += 1
                here = sentence << 20 | segment
        return words

    def _longer_coin(
        self, words: _Words, i: int, single: tuple[str | None, str | None]
    ) -> tuple[str | None, int]:
        """The coin of the longest name starting at word i ("!NAME" for an untradable one, None
        for none) and the name's length in words, once the next word may continue a name.
        `single`: word i's own one-word result (as the first word, elsewhere)."""
        info = words.info
        first = i == 0
        for n in self.rules.coin_lengths[info[i][2]]:
            if n == 1 or i + n > len(info) or words.pos[i + n - 1] != words.pos[i]:
                continue
            found = self._named(_joined(info, i, n, 2), _joined(info, i, n, 1), first=first)
            if found is not None:
                return found, n
        return single[0 if first else 1], 1

    def _named(self, key: str, raw: str, *, first: bool) -> str | None:
        """The coin a name key (lower case, space-joined) stands for, "!NAME" for an untradable
        one, None for none. `raw`: its spelling in the headline (names and proper nouns must
        match it); a proper noun does not count as the headline's first word (any capital)."""
        rules = self.rules
        for name in rules.coin_names.get(key, ()):
            exact = name.mode == "alias" or raw == name.form
            if exact and (name.mode != "proper" or not first):
                return name.coin
        stable = rules.untradable.get(key)
        return None if stable is None else "!" + stable

    def _cashtag(self, low: str) -> str | None:
        """The coin of a cashtag ("$btc"), "!NAME" for an untradable one, None for none."""
        coin = self.rules.cashtags.get(low)
        if coin is None:
            return None
        return coin if coin else "!" + low[1:].upper()

    def _symbol(self, raw: str, low: str) -> str | None:
        """The coin of a trading symbol written in prose ("FARTCOINUSDT", "HYPE-PERP")."""
        if not raw.isupper():
            return None
        symbol = _ALERT_SYMBOL_RE.fullmatch(low)
        if symbol is None:
            return None
        return self.rules.command_names.get(symbol.group("base"))

    def _longer_phrase(
        self, words: _Words, i: int, single: tuple[str, Term | None, int] | None
    ) -> tuple[str, Term | None, int] | None:
        """("term" | "local" | "hedge" | "global", term, length) for the longest phrase starting
        at word i (within its sentence), once the next word may continue a phrase; else
        `single`, word i's own one-word phrase (None: none)."""
        info = words.info
        sentence = words.pos[i] >> 20
        for n in self.rules.term_lengths[info[i][3]]:
            if n == 1 or i + n > len(info) or words.pos[i + n - 1] >> 20 != sentence:
                continue
            found = self._phrase(_joined(info, i, n, 3), n)
            if found is not None:
                return found
        return single

    def _phrase(self, key: str, n: int = 1) -> tuple[str, Term | None, int] | None:
        """("term" | "local" | "hedge" | "global", term, n) for a phrase key, None if it is none."""
        rules = self.rules
        term = rules.terms.get(key)
        if term is not None:
            return "term", term, n
        if key in rules.local_negations:
            return ("hedge" if key in rules.hedges else "local"), None, n
        if key in rules.global_negations:
            return "global", None, n
        return None

    def _magnitude(self, token: str) -> str:
        """The token as a level ("$86K", "90k") or a big enough percentage ("20%"), else ""."""
        if token.endswith("%"):
            try:
                value = float(token[:-1].lstrip("$").replace(",", ""))
            except ValueError:
                return ""
            return token if value >= self.rules.move_min_percent else ""
        if token[0] == "$" or token[-1] in "kK" or ("," in token and token[-1].isdigit()):
            return token
        return ""

    def _boost_moves(self, words: _Words, hits: list[_Hit]) -> None:
        """A level or percentage just after a price move (same clause, ≤ 4 words on) strengthens it."""
        pos = words.pos
        for at, segment, token in words.numbers:
            best: _Hit | None = None  # the nearest move before the number
            for hit in hits:
                index = hit.index
                nearer = best is None or index > best.index
                if nearer and index < at <= index + 4 and hit.term.move and pos[index] == segment:
                    best = hit
            if best is not None and not best.boosted:
                best.boosted = self._magnitude(token)

    def _after_metric(self, words: _Words, i: int) -> bool:
        """Whether a metric ("hashrate", "volume", "gas fees") precedes word i in its clause."""
        metrics = self.rules.metrics
        segment = words.pos[i]
        info = words.info
        for j in words.metric_at:
            if not (i - 6 <= j < i and words.pos[j] == segment):
                continue
            if info[j][2] in metrics or (j + 1 < i and f"{info[j][2]} {info[j + 1][2]}" in metrics):
                return True
        return False

    def _object_coin(self, words: _Words, coins: list[tuple[str, int]], after: int) -> str | None:
        """The first coin named after a listing term: a known coin, or "!TICKER" in parentheses."""
        known: tuple[str, int] | None = None
        for coin, at in coins:
            if at > after:
                known = coin, at
                break
        if words.parens:
            info = words.info
            named_at = {at for _, at in coins}
            for at in words.parens:
                if known is not None and at >= known[1]:
                    break  # parentheses are in text order: none after the known coin counts
                if at > after and at not in named_at and _PAREN_TICKER_RE.fullmatch(info[at][1]):
                    return "!" + info[at][1]
        return known[0] if known is not None else None

    def _parse_text(
        self, text: str
    ) -> tuple[str, str | None, Side | None, float, tuple[str, ...], int | None, tuple[str, ...]]:
        """(reason, coin, side, confidence, terms, leverage, why) for one piece of text."""
        if not text or text.isspace():
            return REASON_EMPTY, None, None, 0.0, (), None, ()
        # Only text starting like a command runs the command's regular expression.
        command = self._command(text) if text.lstrip()[:1] in _COMMAND_INITIALS else None
        if command is not None:
            coin, side, leverage = command
            if coin not in self.tradable:
                return REASON_NOT_TRADABLE, coin, side, 0.0, (), None, ()
            return (
                REASON_COMMAND,
                coin,
                side,
                1.0,
                (f"{side.value} {coin}",),
                leverage,
                ("explicit command",),
            )

        rules = self.rules
        words = self._tokenize(text)
        coins: list[tuple[str, int]] = []
        hits: list[_Hit] = []
        negation_ends: list[tuple[int, int, int, bool]] = []  # (start, end, segment, hedge)
        globally_negated = False
        info = words.info
        count = len(info)
        questions, ignore_questions = words.questions, rules.ignore_questions
        after = 0  # words before this one belong to a coin or phrase already found
        for i in words.marked:
            if i < after:
                continue
            token = info[i]
            coin = token[5]
            if coin is not None:
                n = 1
                if coin.__class__ is _Starts:
                    if i + 1 < count and info[i + 1][2] in coin.seconds:
                        name, n = self._longer_coin(words, i, coin.single)
                    else:
                        name = coin.single[0 if i == 0 else 1]
                else:
                    name = coin[0 if i == 0 else 1]
                if name is not None:
                    coins.append((name, i))
                    after = i + n
                    continue
            found = token[6]
            if found.__class__ is _Starts:
                if i + 1 < count and info[i + 1][3] in found.seconds:
                    found = self._longer_phrase(words, i, found.single)
                else:
                    found = found.single
            if found is None:
                continue
            kind, term, n = found
            if kind == "term" and term is not None:
                questioned = bool(questions) and ignore_questions and words.pos[i] >> 20 in questions
                hits.append(_Hit(i, term, token[2] if n == 1 else _joined(info, i, n, 2), questioned))
            elif kind == "global":
                globally_negated = True
            else:
                negation_ends.append((i + n, i + n + rules.negation_window, words.pos[i], kind == "hedge"))
            after = i + n

        if not coins:
            return REASON_NO_COIN, None, None, 0.0, (), None, ()
        if words.numbers and hits:
            self._boost_moves(words, hits)
        if words.metric_at:
            for hit in hits:
                if hit.term.move and self._after_metric(words, hit.index):
                    hit.dropped = True

        hedged = False
        if globally_negated:
            for hit in hits:
                hit.negated = True
        elif negation_ends:
            for hit in hits:
                seg = words.pos[hit.index]
                for lo, hi, s, hedge in negation_ends:
                    if lo <= hit.index < hi and seg == s:
                        hit.negated = True
                        hedged = hedged or (hedge and hit.term.side is not None)

        # The hits that count, in one pass: their weights, price moves, texts and `why` lines.
        move_weight = rules.move_weight
        listing: _Hit | None = None  # the first listing-like term: its object is the subject
        longs: list[float] = []
        shorts: list[float] = []
        moves: list[tuple[Side, bool, float]] = []  # (side, with a level/percentage, weight)
        texts: list[str] = []
        lines: list[str] = []
        for h in hits:
            term = h.term
            if h.negated or h.questioned or h.dropped or term.side is None:
                continue
            if h.boosted:
                weight = max(term.weight, move_weight)
                lines.append(h.explain(move_weight))
            elif term.needs_magnitude:
                continue
            else:
                weight = term.weight
                lines.append(f"{term.kind} '{h.text}'{term.note}")
            if term.side is Side.LONG:
                longs.append(weight)
            else:
                shorts.append(weight)
            if term.move:
                moves.append((term.side, bool(h.boosted), weight))
            if term.object and listing is None:
                listing = h
            texts.append(h.text)
        why: list[str] = []
        subject = coins[0][0]
        if listing is not None:
            named = self._object_coin(words, coins, listing.index)
            if named is not None and named != subject:
                subject = named
                why.append(f"coin {named.lstrip('!')}: named after '{listing.text}', not before it")
        if subject.startswith("!") or subject not in self.tradable:
            return REASON_NOT_TRADABLE, subject.lstrip("!"), None, 0.0, (), None, tuple(why)

        if not texts:
            directional = [h for h in hits if h.term.side is not None and not h.dropped]
            if hedged:
                return REASON_SPECULATIVE, subject, None, 0.0, (), None, ()
            if any(h.negated for h in directional) or (globally_negated and directional):
                return REASON_NEGATED, subject, None, 0.0, (), None, ()
            if any(h.questioned for h in directional):
                return REASON_QUESTION, subject, None, 0.0, (), None, ()
            return REASON_NO_DIRECTION, subject, None, 0.0, (), None, ()
        why += lines
        bull = self._strength(longs) if len(longs) > 1 else longs[0] if longs else 0.0
        bear = self._strength(shorts) if len(shorts) > 1 else shorts[0] if shorts else 0.0
        terms = (texts[0],) if len(texts) == 1 else tuple(dict.fromkeys(texts))
        strong, weak = (bull, bear) if bull >= bear else (bear, bull)
        # The price move matters only against an opposing side (moves both ways imply one).
        effect = self._effect(moves) if weak > 0 and moves else None
        if effect is _MOVED_BOTH_WAYS:
            why.append("conflict: the price moved both ways")
            return REASON_CONFLICT, subject, None, 0.0, terms, None, tuple(why)
        if weak > 0 and isinstance(effect, Side):
            # Cause and effect disagree ("SEC drops appeal, XRP surges"): the price move decides.
            confidence = _round3(min(1.0, bull if effect is Side.LONG else bear))
            why.append(f"decided by {DECIDED_BY_EFFECT}: the price move outweighs the opposing cause")
            return REASON_MATCHED, subject, effect, confidence, terms, None, tuple(why)
        if weak > 0 and weak >= rules.conflict_ratio * strong:
            why.append(f"conflict: long {_two(bull)} vs short {_two(bear)}")
            return REASON_CONFLICT, subject, None, 0.0, terms, None, tuple(why)
        side = Side.LONG if bull > bear else Side.SHORT
        confidence = _round3(max(0.0, min(1.0, strong - rules.opposing_penalty * weak)))
        why.append(f"decided by {DECIDED_BY_STRENGTH}: long {_two(bull)} vs short {_two(bear)}")
        return REASON_MATCHED, subject, side, confidence, terms, None, tuple(why)

    def _effect(self, moves: list[tuple[Side, bool, float]]) -> Side | object | None:
        """The side the price moved, `_MOVED_BOTH_WAYS`, or None when no move says.

        Moves backed by a level or percentage count over bare ones ("… as BTC lags"); two
        backed moves of about equal strength the other way round are a real conflict."""
        ups: list[float] = []
        downs: list[float] = []
        bare_up = bare_down = False
        for side, backed, w in moves:  # one pass: this runs for most headlines that trade
            if side is Side.LONG:
                bare_up = True
                if backed:
                    ups.append(w)
            else:
                bare_down = True
                if backed:
                    downs.append(w)
        up, down = self._strength(ups), self._strength(downs)
        if up and down:
            if min(up, down) >= self.rules.conflict_ratio * max(up, down):
                return _MOVED_BOTH_WAYS
            return Side.LONG if up > down else Side.SHORT
        if up or down:
            return Side.LONG if up else Side.SHORT
        if bare_up != bare_down:
            return Side.LONG if bare_up else Side.SHORT
        return None

    def _strength(self, weights: list[float]) -> float:
        """The strongest term plus a share of the others (capped at 1)."""
        if len(weights) < 2:
            return weights[0] if weights else 0.0
        strongest = max(weights)
        return min(1.0, strongest + self.rules.extra_term_factor * (sum(weights) - strongest))
