-- The audience reads a contiguous range of a brand's subscribers through (brand_id, id) and
-- splits it into the partitions' pages (`store/brands.AUDIENCE_RANGE`); nothing reads
-- through the per-partition index any more, and every subscriber written paid an entry in it.
DROP INDEX IF EXISTS subscribers_brand_partition;
