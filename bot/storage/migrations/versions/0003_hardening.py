"""hardening: credential versions, notices per customer

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credential_version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_version', sa.Integer(), nullable=True))
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_outbound_messages_customer_created', ['customer_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_messages_customer_created')
        batch_op.drop_column('customer_id')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('customer_version')
    with op.batch_alter_table('customer_accounts', schema=None) as batch_op:
        batch_op.drop_column('credential_version')
