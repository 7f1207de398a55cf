"""The SQL storage backend: SQLAlchemy 2 async Core over aiosqlite or asyncpg."""
