-- AlterTable: when the reconciler last published an order's OrderPlaced again (an order stalled in PENDING).
ALTER TABLE "orders" ADD COLUMN "reconciled_at" TIMESTAMPTZ(3);

-- CreateIndex: the reconciler's scan of stalled PENDING orders, oldest first.
CREATE INDEX "orders_status_created_at_idx" ON "orders"("status", "created_at");

-- CreateIndex: an aggregate's events in the outbox (the reconciler checks an order's OrderPlaced was written).
CREATE INDEX "outbox_key_idx" ON "outbox"("key");
