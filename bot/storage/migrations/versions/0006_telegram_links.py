"""contacts: an index on telegram_chat_id (a chat's links are looked up to unlink it and to alert it)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 20:00:00
"""

from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_telegram_chat_id'), ['telegram_chat_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_telegram_chat_id'))
