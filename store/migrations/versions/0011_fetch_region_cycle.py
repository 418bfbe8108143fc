"""fetch.region and fetch.cycle: which region's worker fetched a page, and in which distributed cycle
(both empty for a single-machine crawl)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fetch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('region', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('cycle', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_fetch_cycle', ['cycle'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('fetch', schema=None) as batch_op:
        batch_op.drop_index('ix_fetch_cycle')
        batch_op.drop_column('cycle')
        batch_op.drop_column('region')
