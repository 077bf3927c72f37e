"""import snapshots: what the contact rows of a CIS export said when they were last imported

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:38:07
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('import_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contact_key', sa.String(length=260), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('service_accounts', sa.JSON(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_import_snapshots_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_accounts.id'], name=op.f('fk_import_snapshots_customer_id_customer_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_snapshots')),
    sa.UniqueConstraint('customer_id', 'contact_key', name='uq_import_snapshots_customer_key')
    )
    with op.batch_alter_table('import_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_snapshots_contact_id'), ['contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('import_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_snapshots_contact_id'))
    op.drop_table('import_snapshots')
