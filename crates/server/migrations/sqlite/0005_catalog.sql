-- The catalog: categories, products (names in Chinese and/or English, price in minor units,
-- option groups as JSON text, a GTIN-13 barcode), per-store settings, photos and the version
-- number per merchant that tells every node its cached menus are stale.

CREATE TABLE catalog_categories (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    name_zh TEXT,
    name_en TEXT,
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX catalog_categories_merchant ON catalog_categories (merchant_id, position);

CREATE TABLE catalog_products (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    category_id TEXT REFERENCES catalog_categories(id),
    name_zh TEXT,
    name_en TEXT,
    description TEXT NOT NULL,
    price BIGINT NOT NULL,
    currency TEXT NOT NULL,
    option_groups TEXT NOT NULL,
    barcode TEXT,
    position BIGINT NOT NULL,
    photo_etag TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX catalog_products_merchant ON catalog_products (merchant_id, id);
CREATE UNIQUE INDEX catalog_products_barcode ON catalog_products (merchant_id, barcode);

CREATE TABLE catalog_store_products (
    store_id TEXT NOT NULL REFERENCES stores(id),
    product_id TEXT NOT NULL REFERENCES catalog_products(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    price BIGINT,
    available BOOLEAN NOT NULL,
    stock BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (store_id, product_id)
);

CREATE TABLE catalog_photos (
    product_id TEXT NOT NULL REFERENCES catalog_products(id),
    width_px BIGINT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (product_id, width_px)
);

CREATE TABLE catalog_versions (
    merchant_id TEXT PRIMARY KEY REFERENCES merchants(id),
    version BIGINT NOT NULL
);
