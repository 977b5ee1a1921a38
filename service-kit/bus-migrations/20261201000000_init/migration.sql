-- The durable embedded event bus (bus/sql.ts): Redis Streams' model in tables.

-- One row per stream: the last id handed out (ids stay monotonic after trimming) and the counters retention() reads.
CREATE TABLE "bus_streams" (
    "stream" TEXT NOT NULL,
    "last_ms" BIGINT NOT NULL,
    "last_seq" BIGINT NOT NULL,
    "added" BIGINT NOT NULL,
    "length" BIGINT NOT NULL,

    CONSTRAINT "bus_streams_pkey" PRIMARY KEY ("stream")
);

-- The log: entry id "<ms>-<seq>", the entry's flat field/value pairs as a JSON array of strings.
CREATE TABLE "bus_entries" (
    "stream" TEXT NOT NULL,
    "ms" BIGINT NOT NULL,
    "seq" BIGINT NOT NULL,
    "fields" JSONB NOT NULL,
    "added_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "bus_entries_pkey" PRIMARY KEY ("stream", "ms", "seq")
);

-- Consumer groups and the last id delivered to each.
CREATE TABLE "bus_groups" (
    "stream" TEXT NOT NULL,
    "group_name" TEXT NOT NULL,
    "last_ms" BIGINT NOT NULL DEFAULT 0,
    "last_seq" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "bus_groups_pkey" PRIMARY KEY ("stream", "group_name")
);

-- Each group's pending entries list: delivered, not acknowledged. delivered_at is ms since the epoch.
CREATE TABLE "bus_pending" (
    "stream" TEXT NOT NULL,
    "group_name" TEXT NOT NULL,
    "ms" BIGINT NOT NULL,
    "seq" BIGINT NOT NULL,
    "consumer" TEXT NOT NULL,
    "deliveries" INTEGER NOT NULL,
    "delivered_at" BIGINT NOT NULL,

    CONSTRAINT "bus_pending_pkey" PRIMARY KEY ("stream", "group_name", "ms", "seq"),
    CONSTRAINT "bus_pending_group_fkey" FOREIGN KEY ("stream", "group_name") REFERENCES "bus_groups" ("stream", "group_name") ON DELETE CASCADE
);

-- A consumer re-reads its own pending entries on start and after errors.
CREATE INDEX "bus_pending_consumer_idx" ON "bus_pending" ("stream", "group_name", "consumer", "ms", "seq");
