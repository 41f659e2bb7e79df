"""The parser's rules, edge cases and robustness (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.domain import NewsItem, Side
from newstrader.news.parser import (
    REASON_COMMAND,
    REASON_CONFLICT,
    REASON_GIVEN,
    REASON_MATCHED,
    REASON_NEGATED,
    REASON_NO_COIN,
    REASON_NO_DIRECTION,
    REASON_NOT_TRADABLE,
    REASON_QUESTION,
    Parser,
    RulesError,
    load_rules,
    signal_id_for,
)

PARSER = Parser()

# Every reason the parser can give for "no signal".
NO_SIGNAL_REASONS = {
    REASON_NO_COIN,
    REASON_NO_DIRECTION,
    REASON_CONFLICT,
    REASON_NEGATED,
    REASON_NOT_TRADABLE,
    REASON_QUESTION,
    "empty text",
}


@pytest.mark.parametrize(
    ("text", "coin", "side", "leverage"),
    [
        ("LONG BTC", "BTC", Side.LONG, None),
        ("short eth 2x", "ETH", Side.SHORT, 2),
        ("buy $SOL", "SOL", Side.LONG, None),
        ("sell dogecoin", "DOGE", Side.SHORT, None),
        ("Short kPEPE 5x!", "kPEPE", Side.SHORT, 5),
        ("long pepe", "kPEPE", Side.LONG, None),
        ("  Signal: buy sol", "SOL", Side.LONG, None),
        ("ſhort btc", "BTC", Side.SHORT, None),  # "ſ" is an "s" to the case-blind command pattern
    ],
)
def test_explicit_commands(text: str, coin: str, side: Side, leverage: int | None) -> None:
    result = PARSER.parse_text(text)
    assert result.reason == REASON_COMMAND
    assert result.signal is not None
    assert (result.signal.coin, result.signal.side, result.signal.leverage) == (coin, side, leverage)
    assert result.confidence == 1.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Fed holds rates steady, stocks mixed", REASON_NO_COIN),
        ("Bitcoin trades flat near $97,000", REASON_NO_DIRECTION),
        ("Binance denies reports it will delist XRP", REASON_NEGATED),
        ("Ripple rules out IPO, no plans to sell XRP", REASON_NEGATED),
        ("False rumor: Solana was not hacked", REASON_NEGATED),
        ("Will the SEC approve a Solana ETF?", REASON_QUESTION),
        ("Bitcoin rises while ether falls", REASON_CONFLICT),
        ("Tether mints $1 billion USDT", REASON_NOT_TRADABLE),
        ("Binance to delist several USDC pairs", REASON_NOT_TRADABLE),
    ],
)
def test_reasons_for_no_signal(text: str, reason: str) -> None:
    result = PARSER.parse_text(text)
    assert result.signal is None
    assert result.reason == reason


def test_headline_kinds_have_the_expected_direction() -> None:
    cases = {
        "Coinbase will list SUI": Side.LONG,
        "Robinhood delists SOL": Side.SHORT,
        "Curve Finance exploited for $70 million": Side.SHORT,
        "SEC approves spot ether ETFs": Side.LONG,
        "SEC rejects spot XRP ETF": Side.SHORT,
        "SEC delays decision on Litecoin ETF": Side.SHORT,
        "SEC sues Uniswap Labs": Side.SHORT,
        "Chainlink partners with SWIFT": Side.LONG,
        "Aave launches V4 on mainnet": Side.LONG,
        "ARB faces $1B token unlock": Side.SHORT,
        "Aptos network outage halts transactions": Side.SHORT,
        "Jupiter announces $JUP buyback": Side.LONG,
        "Metaplanet buys 1,000 BTC for its treasury": Side.LONG,
        "$500M longs liquidated as ETH plunges": Side.SHORT,
        "Cardano hard fork upgrade activates": Side.LONG,
    }
    for text, side in cases.items():
        result = PARSER.parse_text(text)
        assert result.side is side, (text, result)
        assert result.confidence >= 0.5, (text, result)


def test_case_rules_for_words_that_are_also_english() -> None:
    assert PARSER.parse_text("Yield curve inversion deepens, stocks tank").coin is None
    assert PARSER.parse_text("Court to render verdict next week").coin is None
    assert PARSER.parse_text("Company reports stellar earnings").coin is None
    assert PARSER.parse_text("Trump signs tariff order").coin is None  # the president, not the memecoin
    assert PARSER.parse_text("Optimism grows among traders").coin is None  # first word: any capital
    assert PARSER.parse_text("Coinbase shares revenue with Optimism").coin == "OP"
    assert PARSER.parse_text("Curve Finance exploited").coin == "CRV"
    assert PARSER.parse_text("Official Trump memecoin unlock looms").coin == "TRUMP"
    assert PARSER.parse_text("near-term outlook for NEAR").coin == "NEAR"


def test_first_coin_is_the_subject_and_tradable_set_is_respected() -> None:
    result = PARSER.parse_text("Binance lists SOL and AVAX perpetuals")
    assert result.coin == "SOL"
    only_btc = Parser(tradable={"BTC"})
    assert only_btc.parse_text("Binance lists SOL").reason == REASON_NOT_TRADABLE
    assert only_btc.parse_text("Binance lists BTC options").reason == REASON_MATCHED
    assert only_btc.parse_text("long eth").reason == REASON_NOT_TRADABLE


def test_given_coin_and_side_skip_parsing() -> None:
    item = NewsItem(id="tv-1", title="TradingView alert", coin="btc", side=Side.SHORT, source="tv")
    result = PARSER.parse(item)
    assert result.reason == REASON_GIVEN
    assert result.signal is not None
    assert (result.signal.coin, result.signal.side) == ("BTC", Side.SHORT)
    assert result.signal.id == signal_id_for("tv-1")
    assert (
        PARSER.parse(NewsItem(id="tv-2", title="x", coin="NOPE", side=Side.LONG)).reason
        == REASON_NOT_TRADABLE
    )


def test_body_is_read_when_the_title_names_no_coin() -> None:
    item = NewsItem(id="b", title="Exchange hacked, $30M stolen", body="Attackers drained SOL hot wallets.")
    result = PARSER.parse(item)
    assert (result.coin, result.side) == ("SOL", Side.SHORT)


def test_signal_id_is_deterministic() -> None:
    a = PARSER.parse(NewsItem(id="n-1", title="Coinbase will list SUI"))
    b = PARSER.parse(NewsItem(id="n-1", title="Coinbase will list SUI"))
    assert a.signal is not None and b.signal is not None
    assert a.signal.id == b.signal.id


def test_user_rules_merge_over_defaults(tmp_path: Path) -> None:
    user = tmp_path / "rules.toml"
    user.write_text(
        """
[settings]
conflict_ratio = 0.9

[coins.MON]
tickers = ["MON"]
aliases = ["monad"]

[coins.DOGE]
enabled = false

[[terms]]
kind = "airdrop"
side = "long"
weight = 0.7
phrases = ["airdrop"]
""",
        encoding="utf-8",
    )
    parser = Parser(load_rules(user))
    result = parser.parse_text("Monad announces airdrop for early users")
    assert (result.coin, result.side, result.terms) == ("MON", Side.LONG, ("airdrop",))
    assert parser.parse_text("Robinhood lists Dogecoin").reason == REASON_NO_COIN
    assert parser.parse_text("Binance lists BTC options").coin == "BTC"  # defaults still there
    assert parser.rules.conflict_ratio == 0.9


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[settings]\nconflict_ratio = 7\n", "settings.conflict_ratio"),
        ("[settings]\nbogus = 1\n", "settings.bogus"),
        ('[[terms]]\nside = "up"\nphrases = ["x"]\n', "side"),
        ('[coins.X]\ntickers = "X"\n', "coins.X.tickers"),
        ("nonsense = 1\n", "nonsense"),
        ("[coins\n", "not valid TOML"),
    ],
)
def test_bad_rules_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_rules(path)


def test_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.toml")


_vocab = st.sampled_from(
    [
        "BTC",
        "$eth",
        "solana",
        "not",
        "denies",
        "hack",
        "lists",
        "delist",
        "ETF",
        "approves",
        "?",
        ",",
        "no plans to",
        "false",
        "LONG",
        "short",
        "2x",
        "unlock",
        "USDT",
        "Optimism",
        "Trump",
        "$",
        "'s",
        "—",
        "rules out",
        "$1.2B",
        "10%",
        "buy",
        "sell",
        "kPEPE",
        "💥",
        "\x00",
        "'",
    ]
)
_headlines = st.one_of(
    st.text(max_size=300),
    st.lists(_vocab, max_size=25).map(" ".join),
    st.lists(st.one_of(_vocab, st.text(max_size=8)), max_size=20).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_headlines, body=st.one_of(st.just(""), st.text(max_size=200)))
def test_parser_never_crashes_and_always_explains(title: str, body: str) -> None:
    result = PARSER.parse(NewsItem(id="fuzz", title=title, body=body))
    if result.signal is None:
        assert result.reason in NO_SIGNAL_REASONS
    else:
        assert result.reason in {REASON_MATCHED, REASON_COMMAND}
        assert result.signal.coin in PARSER.tradable
        assert 0.0 < result.signal.confidence <= 1.0
        assert result.signal.side in (Side.LONG, Side.SHORT)
        assert result.signal.terms


@pytest.mark.parametrize(
    ("symbol", "coin"),
    [
        ("BINANCE:BTCUSDT.P", "BTC"),
        ("ETH-PERP", "ETH"),
        ("SOL/USDT", "SOL"),
        ("1000PEPEUSDT", "kPEPE"),
        ("XRPUSDT.P", "XRP"),
        ("hyperliquid", "HYPE"),
        ("$sui", "SUI"),
        ("NOPEUSDT", None),
        ("USDT", None),
    ],
)
def test_alert_symbols_resolve_to_coins(symbol: str, coin: str | None) -> None:
    assert PARSER.resolve_coin(symbol) == coin
    if coin is not None:
        result = PARSER.parse(NewsItem(id=f"tv-{symbol}", title="alert", coin=symbol, side=Side.LONG))
        assert result.signal is not None and result.signal.coin == coin


# ------------------------------------------------------------------ issue 18: classes that move prices


@pytest.mark.parametrize(
    ("headline", "coin", "side"),
    [
        # price moves with levels and percentages
        ("Bitcoin crashes below 90k", "BTC", Side.SHORT),
        ("XRP surges 20% as volumes explode", "XRP", Side.LONG),
        ("Ether hits all-time high above $4,900", "ETH", Side.LONG),
        ("Bitcoin hits ATH", "BTC", Side.LONG),
        ("Solana falls to $120, lowest since April", "SOL", Side.SHORT),
        # listings and delistings: the coin of the listing, not the exchange
        ("Binance Will List dogwifhat (WIF)", "WIF", Side.LONG),
        ("Hyperliquid lists Pendle (PENDLE) perpetuals", "PENDLE", Side.LONG),
        ("Upbit adds Sui (SUI) to KRW market", "SUI", Side.LONG),
        ("Bithumb will list Bonk (BONK) for KRW trading", "kBONK", Side.LONG),
        ("OKX to list perpetual futures for Eigenlayer (EIGEN)", "EIGEN", Side.LONG),
        ("Bybit lists Worldcoin (WLD) perpetual with 25x leverage", "WLD", Side.LONG),
        ("Coinbase will add support for Sei (SEI)", "SEI", Side.LONG),
        ("Binance Futures Will Launch USDⓈ-Margined FARTCOINUSDT Perpetual Contract", "FARTCOIN", Side.LONG),
        ("Binance will delist Filecoin (FIL)", "FIL", Side.SHORT),
        ("Upbit designates Injective (INJ) as investment warning item", "INJ", Side.SHORT),
        # hacks, ETF/regulatory/legal outcomes, unlocks, treasury buys
        ("Curve Finance pools drained in $62 million exploit", "CRV", Side.SHORT),
        ("SEC approves spot XRP ETFs", "XRP", Side.LONG),
        ("SEC rejects spot Solana ETF applications", "SOL", Side.SHORT),
        ("Court dismisses SEC lawsuit against Cardano developer", "ADA", Side.LONG),
        ("Arbitrum faces $1.1 billion token unlock on Saturday", "ARB", Side.SHORT),
        ("Strategy buys 6,556 bitcoin for $555.8 million", "BTC", Side.LONG),
        ("Hyperliquid Strategies raises $888M to buy HYPE for treasury", "HYPE", Side.LONG),
        # cause and effect: the effect decides
        ("SEC drops appeal, XRP surges", "XRP", Side.LONG),
        ("Ripple lawsuit ends: SEC drops appeal, XRP surges", "XRP", Side.LONG),
        ("Despite lawsuit, Solana rallies 10% on ETF hopes", "SOL", Side.LONG),
        ("Cardano upgrade goes live but ADA slumps 9%", "ADA", Side.SHORT),
    ],
)
def test_headline_classes_that_move_prices(headline: str, coin: str, side: Side) -> None:
    result = PARSER.parse_text(headline)
    assert result.signal is not None, (result.reason, result.why)
    assert (result.signal.coin, result.signal.side) == (coin, side), result.why
    assert result.confidence >= 0.5, result.why  # trades at the default min_confidence
    assert result.signal.why and result.signal.why[-1].startswith("decided by"), result.signal.why


@pytest.mark.parametrize(
    ("headline", "reason"),
    [
        ("Dogecoin soars 20%, then crashes 15% within the hour", REASON_CONFLICT),  # a real conflict
        (
            "Hyperliquid will list Kaito (KAITO) perpetuals",
            REASON_NOT_TRADABLE,
        ),  # not HYPE: the listing's coin
        ("Upbit will list Walrus (WAL) on BTC market", REASON_NOT_TRADABLE),  # not BTC: the quote market
        ("Analyst: XRP could surge 500% if ETF approved", "speculative"),
        ("Bitcoin dominance rises to 62%", "no direction"),  # a metric moved, not the price
    ],
)
def test_what_still_does_not_trade(headline: str, reason: str) -> None:
    result = PARSER.parse_text(headline)
    assert result.signal is None and result.reason == reason, (result.reason, result.why)


def test_small_moves_alone_do_not_trade() -> None:
    for headline in (
        "Bitcoin rises 0.5% ahead of CPI data",
        "Litecoin drops 1% in quiet trading",
        "XRP surges",
    ):
        result = PARSER.parse_text(headline)
        assert result.confidence < 0.5, (headline, result.why)


def test_the_why_names_rules_subject_and_decision() -> None:
    result = PARSER.parse_text("Ripple lawsuit: SEC drops appeal, XRP surges 12%")
    assert result.why == (
        "lawsuit 'lawsuit': short 0.75",
        "legal_win 'drops appeal': long 0.85",
        "price_up 'surges' with 12%: long 0.70",
        "decided by effect: the price move outweighs the opposing cause",
    )
    listing = PARSER.parse_text("Hyperliquid lists dogwifhat (WIF) perpetual")
    assert listing.why[0] == "coin WIF: named after 'lists', not before it"


def test_no_phrase_of_the_default_rules_is_defined_twice() -> None:
    """A phrase listed under two kinds silently keeps only the later one ("dumped" once turned
    the 0.55 "dump" of selling into a 0.35 price move)."""
    import tomllib

    from newstrader.news.parser import _default_rules_text, _norm_word, _words, stem

    seen: dict[str, str] = {}
    twice = []
    for group in tomllib.loads(_default_rules_text())["terms"]:
        for entry in group["phrases"]:
            phrase = entry["phrase"] if isinstance(entry, dict) else entry
            key = " ".join(stem(_norm_word(t)) for t in _words(phrase))
            if key in seen and seen[key] != group["kind"]:
                twice.append(f"{phrase!r}: {seen[key]} and {group['kind']}")
            seen[key] = group["kind"]
    assert twice == []


def _outcome(text: str, parser: Parser = PARSER) -> tuple[object, ...]:
    result = parser.parse_text(text)
    return result.reason, result.coin, result.side, result.confidence, result.terms, result.why


@pytest.mark.parametrize("edges", [("- ", " -"), ("— ", " —"), ("-- ", ""), ("", " –"), ("-\t", "\n—")])
def test_a_dash_at_either_end_of_a_headline_changes_nothing(edges: tuple[str, str]) -> None:
    """A dash set off at the very start or end bounds a clause before or after every word: no
    two words are separated by it, whether or not the text itself starts with whitespace."""
    before, after = edges
    for headline in [
        "Bitcoin crashes below 90k",
        "Ripple lawsuit: SEC drops appeal, XRP surges 12%",
        "Binance Will List dogwifhat (WIF)",
        "Binance denies reports it will delist XRP",
        "Will the SEC approve a Solana ETF?",
        "Bitcoin rises while ether falls",
    ]:
        assert _outcome(f"{before}{headline}{after}") == _outcome(headline), headline


def test_a_word_first_seen_in_a_headline_and_seen_again_parses_the_same() -> None:
    """Words and numbers are classified once and then come from the parser's token caches
    (there is no cache of whole headlines): a fresh parser and a warm one agree."""
    warm = Parser()
    headlines = [
        "XRP surges 23% to $3.41",
        "Bitcoin falls 7.5% below $81,250 as liquidations mount",
        "Upbit adds Sui (SUI) to KRW market",
        "Bitcoin hashrate hits ATH",
        "Official Trump memecoin unlock looms",
    ]
    for headline in headlines:
        warm.parse_text(headline)
    for headline in headlines:
        assert _outcome(headline, warm) == _outcome(headline, Parser()), headline
