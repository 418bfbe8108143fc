"""delivery.channel holds longer names (apprise:VARIABLE, one outbox row per Apprise URL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=20), type_=sa.String(length=120), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=120), type_=sa.String(length=20), existing_nullable=False)
