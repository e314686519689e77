-- hashgate stored content (worker/src/hash_log.rs): the hash log, backfills
-- and retroactive passes, in the D1 database bound as HASH_LOG.
-- Applied by the worker itself (each statement is idempotent) and by
--   npx wrangler d1 migrations apply hashgate-hash-log --remote
-- One statement per ';'. Hashes are lower-case hex; never image bytes.

-- One row per object scanned in a bucket (location r2://bucket/key) and per
-- image URL scanned at the edge: its hashes and its last verdict.
CREATE TABLE IF NOT EXISTS hash_log (
  location TEXT PRIMARY KEY,
  etag TEXT NOT NULL DEFAULT '',
  generation TEXT NOT NULL,
  result TEXT NOT NULL,
  route TEXT NOT NULL,
  direction TEXT NOT NULL,
  pdq TEXT,
  pdq_quality INTEGER,
  md5 TEXT,
  sha1 TEXT,
  sha256 TEXT,
  detail TEXT,
  scanned_ms INTEGER NOT NULL,
  scans INTEGER NOT NULL DEFAULT 1
);

-- Backfill progress reads one generation's rows under one prefix.
CREATE INDEX IF NOT EXISTS hash_log_generation ON hash_log (generation, location);

-- One row per backfill (bucket, prefix, generation): the listing's cursor.
CREATE TABLE IF NOT EXISTS backfills (
  id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  prefix TEXT NOT NULL,
  generation TEXT NOT NULL,
  cursor TEXT,
  listed INTEGER NOT NULL DEFAULT 0,
  listing_done INTEGER NOT NULL DEFAULT 0,
  pass INTEGER NOT NULL DEFAULT 1,
  started_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);

-- One row per retroactive pass (a new generation that added hashes).
CREATE TABLE IF NOT EXISTS retro_passes (
  id TEXT PRIMARY KEY,
  from_generation TEXT,
  to_generation TEXT NOT NULL,
  added INTEGER NOT NULL,
  manifest TEXT NOT NULL,
  checked INTEGER NOT NULL DEFAULT 0,
  candidates INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL
);

-- The flood guard (worker/src/flood_guard.rs): one row per list entry and
-- distinct image it matched; rows older than the guard's window are pruned.
CREATE TABLE IF NOT EXISTS entry_images (
  list TEXT NOT NULL,
  type TEXT NOT NULL,
  hash TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  seen_ms INTEGER NOT NULL,
  PRIMARY KEY (list, type, hash, sha256)
);
