-- pgq tables: the same names, columns, defaults and constraints as PgQ 3.5, so programs
-- that read them directly keep working. Every statement is conditional: on an existing
-- install (ours or an original non-extension PgQ 3.x) nothing is dropped or rewritten,
-- missing columns of older versions are added.

CREATE SCHEMA IF NOT EXISTS pgq;

-- pgq.consumer: consumer names, shared by all queues.
CREATE TABLE IF NOT EXISTS pgq.consumer (
    co_id       serial,
    co_name     text        NOT NULL,
    CONSTRAINT consumer_pkey PRIMARY KEY (co_id),
    CONSTRAINT consumer_name_uq UNIQUE (co_name)
);

-- pgq.queue: one row per queue, its ticker settings and rotation state.
CREATE TABLE IF NOT EXISTS pgq.queue (
    queue_id                    serial,
    queue_name                  text        NOT NULL,
    queue_ntables               integer     NOT NULL DEFAULT 3,
    queue_cur_table             integer     NOT NULL DEFAULT 0,
    queue_rotation_period       interval    NOT NULL DEFAULT '2 hours',
    queue_switch_step1          bigint      NOT NULL DEFAULT txid_current(),
    queue_switch_step2          bigint               DEFAULT txid_current(),
    queue_switch_time           timestamptz NOT NULL DEFAULT now(),
    queue_external_ticker       boolean     NOT NULL DEFAULT false,
    queue_disable_insert        boolean     NOT NULL DEFAULT false,
    queue_ticker_paused         boolean     NOT NULL DEFAULT false,
    queue_ticker_max_count      integer     NOT NULL DEFAULT 500,
    queue_ticker_max_lag        interval    NOT NULL DEFAULT '3 seconds',
    queue_ticker_idle_period    interval    NOT NULL DEFAULT '1 minute',
    queue_per_tx_limit          integer,
    queue_data_pfx              text        NOT NULL,
    queue_event_seq             text        NOT NULL,
    queue_tick_seq              text        NOT NULL,
    queue_extra_maint           text[],
    CONSTRAINT queue_pkey PRIMARY KEY (queue_id),
    CONSTRAINT queue_name_uq UNIQUE (queue_name)
);
-- Columns added during PgQ 3.x.
ALTER TABLE pgq.queue ADD COLUMN IF NOT EXISTS queue_disable_insert boolean NOT NULL DEFAULT false;
ALTER TABLE pgq.queue ADD COLUMN IF NOT EXISTS queue_ticker_paused boolean NOT NULL DEFAULT false;
ALTER TABLE pgq.queue ADD COLUMN IF NOT EXISTS queue_per_tx_limit integer;
ALTER TABLE pgq.queue ADD COLUMN IF NOT EXISTS queue_extra_maint text[];

-- pgq.tick: the ticker's snapshots; a batch is the events between two of them.
CREATE TABLE IF NOT EXISTS pgq.tick (
    tick_queue      int4            NOT NULL,
    tick_id         bigint          NOT NULL,
    tick_time       timestamptz     NOT NULL DEFAULT now(),
    tick_snapshot   txid_snapshot   NOT NULL DEFAULT txid_current_snapshot(),
    tick_event_seq  bigint          NOT NULL,
    CONSTRAINT tick_pkey PRIMARY KEY (tick_queue, tick_id),
    CONSTRAINT tick_queue_fkey FOREIGN KEY (tick_queue) REFERENCES pgq.queue (queue_id)
);

-- pgq.batch_id_seq: batch ids, unique across queues.
CREATE SEQUENCE IF NOT EXISTS pgq.batch_id_seq;

-- pgq.subscription: a consumer's position in a queue and its open batch.
-- sub_id is shared by a pgq_coop main consumer and its subconsumers.
CREATE TABLE IF NOT EXISTS pgq.subscription (
    sub_id          serial      NOT NULL,
    sub_queue       int4        NOT NULL,
    sub_consumer    int4        NOT NULL,
    sub_last_tick   bigint,
    sub_active      timestamptz NOT NULL DEFAULT now(),
    sub_batch       bigint,
    sub_next_tick   bigint,
    CONSTRAINT subscription_pkey PRIMARY KEY (sub_queue, sub_consumer),
    CONSTRAINT subscription_batch_idx UNIQUE (sub_batch),
    CONSTRAINT sub_queue_fkey FOREIGN KEY (sub_queue) REFERENCES pgq.queue (queue_id),
    CONSTRAINT sub_consumer_fkey FOREIGN KEY (sub_consumer) REFERENCES pgq.consumer (co_id)
);
-- Coop subconsumers keep no position of their own (PgQ 3.0 made this nullable).
ALTER TABLE pgq.subscription ALTER COLUMN sub_last_tick DROP NOT NULL;

-- pgq.event_template: the parent of every queue's event tables.
CREATE TABLE IF NOT EXISTS pgq.event_template (
    ev_id       bigint      NOT NULL,
    ev_time     timestamptz NOT NULL,
    ev_txid     bigint      NOT NULL DEFAULT txid_current(),
    ev_owner    int4,
    ev_retry    int4,
    ev_type     text,
    ev_data     text,
    ev_extra1   text,
    ev_extra2   text,
    ev_extra3   text,
    ev_extra4   text
);

-- pgq.retry_queue: events a consumer asked to see again later; ev_owner is the
-- subscription's sub_id, ev_txid is assigned again when the event goes back.
CREATE TABLE IF NOT EXISTS pgq.retry_queue (
    ev_retry_after  timestamptz NOT NULL,
    ev_queue        int4        NOT NULL,
    LIKE pgq.event_template,
    CONSTRAINT rq_pkey PRIMARY KEY (ev_owner, ev_id),
    CONSTRAINT rq_queue_id_fkey FOREIGN KEY (ev_queue) REFERENCES pgq.queue (queue_id)
);
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_owner SET NOT NULL;
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_txid DROP NOT NULL;
CREATE INDEX IF NOT EXISTS rq_retry_idx ON pgq.retry_queue (ev_retry_after);
