"""alerts: alerts, their groups, subscriptions, API tokens, send budgets; outbound_messages as deliveries

outbound_messages becomes the deliveries table of every message we send (alert deliveries: one row per
alert and destination), without a foreign key to alerts (checked per row, it cost a million-row plan
more than a quarter of its time; alerts are never deleted).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00
"""

from alembic import op
import sqlalchemy as sa



revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_DUE = sa.text("status IN ('pending', 'sending')")
_HAS_CUSTOMER = sa.text('customer_id IS NOT NULL')
_HAS_PROVIDER_ID = sa.text('provider_id IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('ends_at', sa.DateTime(), nullable=False),
        sa.Column('note_en', sa.Text(), nullable=True),
        sa.Column('note_vi', sa.Text(), nullable=True),
        sa.Column('follows_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('request_digest', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['follows_id'], ['alerts.id'], name=op.f('fk_alerts_follows_id_alerts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
        sa.UniqueConstraint('created_by', 'idempotency_key', name='uq_alerts_created_by_key'),
    )
    op.create_table(
        'alert_groups',
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('outage_group', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ['alert_id'], ['alerts.id'], name=op.f('fk_alert_groups_alert_id_alerts'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('alert_id', 'outage_group', name=op.f('pk_alert_groups')),
    )
    op.create_index(op.f('ix_alert_groups_outage_group'), 'alert_groups', ['outage_group'], unique=False)
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=128), nullable=False),
        sa.Column('outage_group', sa.String(length=20), nullable=False),
        sa.Column('locale', sa.String(length=5), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
        sa.UniqueConstraint('channel', 'address', 'outage_group', name='uq_subscriptions_channel_address_group'),
    )
    op.create_index(op.f('ix_subscriptions_outage_group'), 'subscriptions', ['outage_group'], unique=False)
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('token_hash', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
    )
    op.create_table(
        'send_pacing',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('next_at', sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_send_pacing')),
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('destination', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('fallback_address', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('segments', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint('uq_outbound_messages_alert_destination', ['alert_id', 'destination'])
        batch_op.drop_constraint('uq_outbound_messages_provider_id', type_='unique')
        batch_op.drop_index('ix_outbound_messages_status')
        batch_op.drop_index('ix_outbound_messages_customer_created')
    # Partial indexes (both databases have them): the claim reads only what may still be sent, and the
    # rows that have no customer or no provider id yet (a million planned deliveries) cost no index entry.
    op.create_index(
        'ix_outbound_messages_due', 'outbound_messages', ['next_attempt_at'],
        sqlite_where=_DUE, postgresql_where=_DUE,
    )
    op.create_index(
        'ix_outbound_messages_customer_created', 'outbound_messages', ['customer_id', 'created_at'],
        sqlite_where=_HAS_CUSTOMER, postgresql_where=_HAS_CUSTOMER,
    )
    op.create_index(
        'uq_outbound_messages_provider_id', 'outbound_messages', ['provider_id'], unique=True,
        sqlite_where=_HAS_PROVIDER_ID, postgresql_where=_HAS_PROVIDER_ID,
    )


def downgrade() -> None:
    op.drop_index('uq_outbound_messages_provider_id', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_customer_created', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_due', table_name='outbound_messages')
    op.execute('DELETE FROM outbound_messages WHERE alert_id IS NOT NULL')
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_messages_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_outbound_messages_status', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_unique_constraint('uq_outbound_messages_provider_id', ['provider_id'])
        batch_op.drop_constraint('uq_outbound_messages_alert_destination', type_='unique')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('reason')
        batch_op.drop_column('segments')
        batch_op.drop_column('fallback_address')
        batch_op.drop_column('destination')
        batch_op.drop_column('alert_id')
    op.drop_table('send_pacing')
    op.drop_table('api_tokens')
    op.drop_index(op.f('ix_subscriptions_outage_group'), table_name='subscriptions')
    op.drop_table('subscriptions')
    op.drop_index(op.f('ix_alert_groups_outage_group'), table_name='alert_groups')
    op.drop_table('alert_groups')
    op.drop_table('alerts')
