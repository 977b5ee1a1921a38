-- The key index (bus/sql.ts rangeByKeys): each entry's event key (its aggregate), so that a replay of
-- some aggregates reads their entries only. NULL for entries appended without a key (raw fields).
ALTER TABLE "bus_entries" ADD COLUMN "key" TEXT;

CREATE INDEX "bus_entries_key_idx" ON "bus_entries" ("stream", "key", "ms", "seq");

-- Entries appended before the index existed: their key is in the event's JSON (["event", "<json>"]).
-- One that does not parse stays unindexed, as read() skips it anyway.
DO $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN SELECT "stream", "ms", "seq", "fields"->>1 AS raw FROM "bus_entries" WHERE "fields"->>0 = 'event' LOOP
        BEGIN
            UPDATE "bus_entries" SET "key" = (r.raw::jsonb)->>'key' WHERE "stream" = r.stream AND "ms" = r.ms AND "seq" = r.seq;
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;
END $$;
