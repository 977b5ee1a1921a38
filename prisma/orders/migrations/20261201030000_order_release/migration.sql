-- AlterTable: when products confirmed an order's cancellation was applied (InventoryReleased). A
-- CANCELLED order without it gets its OrderCancelled published again by the reconciler; orders
-- cancelled before this migration are swept once that way, and products releases nothing twice.
ALTER TABLE "orders" ADD COLUMN "released_at" TIMESTAMPTZ(3);
