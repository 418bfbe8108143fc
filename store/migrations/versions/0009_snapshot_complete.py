"""snapshot.complete: did the body end as a whole HTML document does (</body> or </html>)? Read by
the next fetch to recognise a cut-off body without decompressing the raw body every cycle

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
import re

from alembic import op
import sqlalchemy as sa
import zstandard

CLOSED = re.compile(rb"</(html|body)\s*>", re.I)  # crawler.outcome.html_complete's test, frozen as of this migration


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('complete', sa.Boolean(), nullable=True))
    # each page's current snapshot, whose body the next fetch is compared with: say whether it was whole
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, raw FROM snapshot WHERE raw IS NOT NULL AND raw_codec = 'zstd' AND encoding != 'binary' "
        "AND id IN (SELECT MAX(id) FROM snapshot GROUP BY page_id)")).fetchall()
    for snapshot_id, raw in rows:
        body = zstandard.ZstdDecompressor().decompress(raw)
        bind.execute(sa.text("UPDATE snapshot SET complete = :c WHERE id = :i"), {"c": bool(CLOSED.search(body[-4096:])), "i": snapshot_id})


def downgrade() -> None:
    with op.batch_alter_table('snapshot', schema=None) as batch_op:
        batch_op.drop_column('complete')
