-- pgq.create_queue(i_queue_name): create a queue.
--
-- Creates the pgq.queue row, the queue's sequences pgq.event_<id>_tick_seq and
-- pgq.event_<id>_id_seq, the parent table pgq.event_<id> and queue_ntables child tables
-- pgq.event_<id>_<n> (ev_id default from the id sequence, btree index on ev_txid),
-- applies grants and storage options, makes tick 1, and gives pgq.insert_event_raw a
-- static insert path for the new tables.
-- i_queue_name: the name; NULL raises "Invalid NULL value".
-- Result: 1 when created, 0 when a queue of that name already exists.
CREATE OR REPLACE FUNCTION pgq.create_queue(i_queue_name text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    qid int4;
    pfx text;
    ntables int4;
    tbl text;
    i int;
BEGIN
    IF i_queue_name IS NULL THEN
        RAISE EXCEPTION 'Invalid NULL value';
    END IF;
    PERFORM 1 FROM pgq.queue WHERE queue_name = i_queue_name;
    IF FOUND THEN
        RETURN 0;
    END IF;

    qid := nextval('pgq.queue_queue_id_seq');
    pfx := 'pgq.event_' || qid;
    INSERT INTO pgq.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
    VALUES (qid, i_queue_name, pfx, pfx || '_id_seq', pfx || '_tick_seq')
    RETURNING queue_ntables INTO ntables;

    EXECUTE 'CREATE SEQUENCE ' || pfx || '_tick_seq';
    EXECUTE 'CREATE SEQUENCE ' || pfx || '_id_seq';
    EXECUTE 'CREATE TABLE ' || pfx || ' () INHERITS (pgq.event_template)';
    FOR i IN 0 .. ntables - 1 LOOP
        tbl := pfx || '_' || i;
        EXECUTE 'CREATE TABLE ' || tbl || ' () INHERITS (' || pfx || ')';
        EXECUTE 'ALTER TABLE ' || tbl || ' ALTER COLUMN ev_id SET DEFAULT nextval('
             || quote_literal(pfx || '_id_seq') || ')';
        EXECUTE 'CREATE INDEX ' || split_part(tbl, '.', 2) || '_txid_idx ON ' || tbl || ' (ev_txid)';
    END LOOP;

    PERFORM pgq.grant_perms(i_queue_name);
    PERFORM pgq.ticker(i_queue_name);
    PERFORM pgq.tune_storage(i_queue_name);
    PERFORM pgq._refresh_insert_event_raw();
    RETURN 1;
END;
$fn$;
