"""Small helpers shared by every stage: atomic writes, strict JSON, run metadata, seeding."""
