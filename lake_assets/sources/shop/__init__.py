"""The demo source `shop`: its catalog, its gold SQL models and its simulator."""
