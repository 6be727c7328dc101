from services.database import run_migrations
from services.history.models import Base

run_migrations(Base.metadata, version_table="alembic_version_history")
