"""The database: models, engine/session factory and schema checks."""
