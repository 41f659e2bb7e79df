"""Several bots, one record: account ownership (PostgreSQL advisory locks) and a news stream
(NATS JetStream)."""
