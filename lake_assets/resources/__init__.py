"""Resource and IO manager classes (the instances live in lake_assets/defs/resources.py)."""
