"""lake_assets: CDC files of production databases refined into a medallion lake of Delta tables."""
