-- The catalogue customers read (active products, ordered by id, optionally by category) with every
-- column its filters and exact totalCount need in the key: a page walks the index in id order and
-- stops after `first`, and the count is an index-only scan that never reads the table (once
-- VACUUM has marked its pages all-visible, as seeding does).

-- DropIndex: (active, id) is a prefix of the index below.
DROP INDEX "products_active_id_idx";

-- CreateIndex: customers' catalogue without a category (price and stock filters read from the index).
CREATE INDEX "products_active_id_stock_price_cents_idx" ON "products"("active", "id", "stock", "price_cents");

-- CreateIndex: customers' catalogue of one category.
CREATE INDEX "products_active_category_id_stock_price_cents_idx" ON "products"("active", "category", "id", "stock", "price_cents");
