-- pgq.maint_operations(): the maintenance work for pgqd, in order: rotation step1 for
-- each queue due for rotation, one step2 if needed, each queue's queue_extra_maint
-- functions, VACUUM targets, then pgq_node.maint_watermark for root queues,
-- londiste.root_check_seqs and londiste.periodic_maintenance when those exist. Run each
-- row in its own transaction: select func_name(func_arg) (or () when func_arg is NULL),
-- again while its first column is non-zero; "vacuum" rows mean VACUUM func_arg.
--
-- Result: (func_name, func_arg) rows.
CREATE OR REPLACE FUNCTION pgq.maint_operations(out func_name text, out func_arg text)
RETURNS SETOF record
LANGUAGE plpgsql
AS $fn$
DECLARE
    q record;
    rotating boolean := false;
    fn text;
BEGIN
    FOR q IN
        SELECT queue_name FROM pgq.queue
         WHERE queue_rotation_period IS NOT NULL
           AND queue_switch_step2 IS NOT NULL
           AND queue_switch_time + queue_rotation_period < now()
         ORDER BY queue_name
    LOOP
        rotating := true;
        func_name := 'pgq.maint_rotate_tables_step1';
        func_arg := q.queue_name;
        RETURN NEXT;
    END LOOP;
    IF rotating OR EXISTS (SELECT 1 FROM pgq.queue WHERE queue_switch_step2 IS NULL) THEN
        func_name := 'pgq.maint_rotate_tables_step2';
        func_arg := NULL;
        RETURN NEXT;
    END IF;

    FOR q IN
        SELECT queue_name, queue_extra_maint FROM pgq.queue
         WHERE queue_extra_maint IS NOT NULL
         ORDER BY queue_name
    LOOP
        FOREACH fn IN ARRAY q.queue_extra_maint LOOP
            func_name := fn;
            func_arg := q.queue_name;
            RETURN NEXT;
        END LOOP;
    END LOOP;

    FOR fn IN SELECT pgq.maint_tables_to_vacuum() LOOP
        func_name := 'vacuum';
        func_arg := fn;
        RETURN NEXT;
    END LOOP;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'pgq_node' AND p.proname = 'maint_watermark') THEN
        FOR q IN
            EXECUTE 'SELECT n.queue_name FROM pgq_node.node_info n'
                 || ' WHERE n.node_type = ''root'' ORDER BY 1'
        LOOP
            func_name := 'pgq_node.maint_watermark';
            func_arg := q.queue_name;
            RETURN NEXT;
        END LOOP;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'londiste' AND p.proname = 'root_check_seqs') THEN
        FOR q IN
            EXECUTE 'SELECT DISTINCT s.queue_name FROM londiste.seq_info s'
                 || ' JOIN pgq_node.node_info n ON n.queue_name = s.queue_name'
                 || ' WHERE s.local AND n.node_type = ''root'' ORDER BY 1'
        LOOP
            func_name := 'londiste.root_check_seqs';
            func_arg := q.queue_name;
            RETURN NEXT;
        END LOOP;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'londiste' AND p.proname = 'periodic_maintenance') THEN
        func_name := 'londiste.periodic_maintenance';
        func_arg := NULL;
        RETURN NEXT;
    END IF;
    RETURN;
END;
$fn$;
