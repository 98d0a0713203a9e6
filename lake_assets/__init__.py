"""lake_assets: CDC files from production databases refined into a medallion lake of Delta tables."""
