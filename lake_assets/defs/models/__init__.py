"""SQL models (silver integration and gold of your own): assets, checks and the partition sensor."""
