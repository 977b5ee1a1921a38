-- Exact catalogue counts without counting products: every statement that inserts, updates or
-- deletes products appends, per bucket (active, category, in stock) it changed, how many products
-- it added to it or took from it. Appends never wait on each other (a reservation batch and an
-- admin's edit touch no common row); the products service sums the deltas of each bucket into one
-- row every few seconds, so a count reads a handful of rows whatever the size of the catalogue.

-- CreateTable
CREATE TABLE "catalogue_counts" (
    "id" BIGSERIAL NOT NULL,
    "active" BOOLEAN NOT NULL,
    "category" VARCHAR(64) NOT NULL,
    "in_stock" BOOLEAN NOT NULL,
    "n" BIGINT NOT NULL,

    CONSTRAINT "catalogue_counts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "catalogue_counts_active_category_in_stock_idx" ON "catalogue_counts"("active", "category", "in_stock");

-- One statement's changes, grouped by bucket: a bulk load or a batch of reservations appends a few rows, not one per product.
CREATE FUNCTION "catalogue_counts_apply"() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "catalogue_counts" ("active", "category", "in_stock", "n")
      SELECT "active", "category", "stock" > 0, count(*) FROM new_rows GROUP BY 1, 2, 3;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO "catalogue_counts" ("active", "category", "in_stock", "n")
      SELECT "active", "category", "stock" > 0, -count(*) FROM old_rows GROUP BY 1, 2, 3;
  ELSE
    INSERT INTO "catalogue_counts" ("active", "category", "in_stock", "n")
      SELECT "active", "category", "in_stock", sum(d) FROM (
        SELECT "active", "category", "stock" > 0 AS "in_stock", -1 AS d FROM old_rows
        UNION ALL
        SELECT "active", "category", "stock" > 0, 1 FROM new_rows
      ) AS changes GROUP BY 1, 2, 3 HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "catalogue_counts_insert" AFTER INSERT ON "products"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "catalogue_counts_apply"();
CREATE TRIGGER "catalogue_counts_update" AFTER UPDATE ON "products"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "catalogue_counts_apply"();
CREATE TRIGGER "catalogue_counts_delete" AFTER DELETE ON "products"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "catalogue_counts_apply"();

-- The products already there (the migration holds the migration lock; a write racing it is counted by the triggers above).
INSERT INTO "catalogue_counts" ("active", "category", "in_stock", "n")
  SELECT "active", "category", "stock" > 0, count(*) FROM "products" GROUP BY 1, 2, 3;
