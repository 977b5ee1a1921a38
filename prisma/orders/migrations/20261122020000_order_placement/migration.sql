-- AlterTable: totals and prices are known only once products confirms the order.
ALTER TABLE "orders" ALTER COLUMN "total_cents" DROP NOT NULL,
ALTER COLUMN "currency" DROP NOT NULL,
ADD COLUMN "status_seq" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN "rejection_reason" VARCHAR(500),
ADD COLUMN "idempotency_key" VARCHAR(100),
ADD COLUMN "request_hash" CHAR(64);

-- AlterTable
ALTER TABLE "order_items" ALTER COLUMN "unit_price_cents" DROP NOT NULL;

-- CreateTable
CREATE TABLE "outbox" (
    "id" UUID NOT NULL,
    "stream" VARCHAR(100) NOT NULL,
    "type" VARCHAR(100) NOT NULL,
    "key" VARCHAR(100) NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "processed_events" (
    "consumer" VARCHAR(100) NOT NULL,
    "event_id" UUID NOT NULL,
    "processed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "processed_events_pkey" PRIMARY KEY ("consumer","event_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "orders_user_id_idempotency_key_key" ON "orders"("user_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "outbox_published_at_created_at_idx" ON "outbox"("published_at", "created_at");
