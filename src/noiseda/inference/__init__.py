"""Using a trained restorer: the exported model format, tiled restoring, photos, official weights."""
