"""the journal as first released (schema version 1)

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newstrader.migrations.schema_version import write_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cached_positions",
        sa.Column("venue", sa.String(length=80), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("entry_price", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("venue", "coin"),
    )
    op.create_table(
        "control",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("venue", sa.String(length=80), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("exchange_size", sa.String(length=64), nullable=True),
        sa.Column("cached_size", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_created_at"), ["created_at"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("venue", sa.String(length=80), nullable=False),
        sa.Column("fill_id", sa.String(length=200), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("is_buy", sa.Boolean(), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("price", sa.String(length=64), nullable=False),
        sa.Column("fee", sa.String(length=64), nullable=False),
        sa.Column("realized_pnl", sa.String(length=64), nullable=False),
        sa.Column("time", sa.String(length=32), nullable=False),
        sa.Column("venue_order_id", sa.String(length=200), nullable=True),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("venue", "fill_id", name="uq_fills_venue_fill_id"),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_time"), ["time"], unique=False)

    op.create_table(
        "news",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("coin", sa.String(length=40), nullable=True),
        sa.Column("side", sa.String(length=8), nullable=True),
        sa.Column("published_at", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.Column("norm_title", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("news", schema=None) as batch_op:
        batch_op.create_index("ix_news_norm_title_received", ["norm_title", "received_at"], unique=False)
        batch_op.create_index("ix_news_received", ["received_at"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("signal_id", sa.String(length=200), nullable=False),
        sa.Column("venue", sa.String(length=80), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("leg", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("limit_price", sa.String(length=64), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("tif", sa.String(length=16), nullable=False),
        sa.Column("max_slippage", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("venue_order_id", sa.String(length=200), nullable=True),
        sa.Column("filled_size", sa.String(length=64), nullable=False),
        sa.Column("avg_price", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_signal_id"), ["signal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_id", sa.String(length=200), nullable=False),
        sa.Column("venue", sa.String(length=80), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("exchange_size_before", sa.String(length=64), nullable=True),
        sa.Column("cached_size_before", sa.String(length=64), nullable=True),
        sa.Column("target_size", sa.String(length=64), nullable=True),
        sa.Column("exchange_size_after", sa.String(length=64), nullable=True),
        sa.Column("orders", sa.Text(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outcomes_signal_id"), ["signal_id"], unique=False)

    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("news_id", sa.String(length=200), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("notional_usd", sa.String(length=64), nullable=True),
        sa.Column("leverage", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_signals_news_id"), ["news_id"], unique=False)
    write_version(1)


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_news_id"))
        batch_op.drop_index(batch_op.f("ix_signals_created_at"))

    op.drop_table("signals")
    op.drop_table("schema_version")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcomes_signal_id"))

    op.drop_table("outcomes")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_signal_id"))

    op.drop_table("orders")
    with op.batch_alter_table("news", schema=None) as batch_op:
        batch_op.drop_index("ix_news_received")
        batch_op.drop_index("ix_news_norm_title_received")

    op.drop_table("news")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_time"))

    op.drop_table("fills")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_created_at"))

    op.drop_table("events")
    op.drop_table("control")
    op.drop_table("cached_positions")
