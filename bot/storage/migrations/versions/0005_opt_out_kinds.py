"""opt-outs: whether the provider blocks the address, and the one reminder sent while we block it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# The words Twilio acts on itself, and the code our outbox records when Twilio refuses a number
# (21610), as stored in opt_outs.keyword before this revision: those addresses Twilio blocks. Every
# other keyword (NGUNG, DUNG, HUY DANG KY, ...) is one of our own words, which only we enforce.
_PROVIDER_WORDS = ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT')


def upgrade() -> None:
    with op.batch_alter_table('opt_outs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_blocks', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(), nullable=True))
    opt_outs = sa.table('opt_outs', sa.column('keyword', sa.String()), sa.column('provider_blocks', sa.Boolean()))
    op.execute(
        opt_outs.update()
        .where(sa.or_(opt_outs.c.keyword.in_(_PROVIDER_WORDS), opt_outs.c.keyword.like('provider:%')))
        .values(provider_blocks=True)
    )


def downgrade() -> None:
    with op.batch_alter_table('opt_outs', schema=None) as batch_op:
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('provider_blocks')
