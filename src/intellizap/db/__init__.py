"""Database access: the engine, the embedded server, the ORM models and the migrations."""
