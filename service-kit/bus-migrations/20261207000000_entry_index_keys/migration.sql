-- Further index keys (bus/sql.ts, EventBus.indexBy): an entry found under more keys than its
-- event's own (bus_entries.key) has a row here per further key, e.g. the user an order belongs to.
-- The rows go with their entry when retention trims it.
CREATE TABLE "bus_entry_keys" (
    "stream" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "ms" BIGINT NOT NULL,
    "seq" BIGINT NOT NULL,

    CONSTRAINT "bus_entry_keys_pkey" PRIMARY KEY ("stream", "key", "ms", "seq"),
    CONSTRAINT "bus_entry_keys_entry_fkey" FOREIGN KEY ("stream", "ms", "seq") REFERENCES "bus_entries" ("stream", "ms", "seq") ON DELETE CASCADE
);

-- The trim's cascade finds an entry's rows by it.
CREATE INDEX "bus_entry_keys_entry_idx" ON "bus_entry_keys" ("stream", "ms", "seq");

-- Where a stream's index of further keys starts: its entries up to this position were appended
-- before the index existed, so a keyed read that reaches back before it scans them instead (until
-- retention has dropped them; then the column goes back to NULL). NULL: every entry is indexed.
ALTER TABLE "bus_streams" ADD COLUMN "index_since_ms" BIGINT;
ALTER TABLE "bus_streams" ADD COLUMN "index_since_seq" BIGINT;

UPDATE "bus_streams" SET "index_since_ms" = "last_ms", "index_since_seq" = "last_seq" WHERE "added" > 0;
