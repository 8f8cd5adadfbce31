-- pgq._trigger_event(i_kind, i_relid, i_schema, i_table, i_op, i_when, i_level, i_args,
-- i_new, i_old): the work of pgq.logutriga, pgq.sqltriga and pgq.jsontriga.
--
-- Builds the event for one row change (or a TRUNCATE) in the payload format of i_kind
-- ('logu', 'sql' or 'json') and inserts it with the 7-argument pgq.insert_event, as
-- PgQ's C triggers do. Trigger arguments (i_args): the queue name, then any of SKIP,
-- backup, deny, ignore=cols, pkey=cols, when=EXPR, ev_type=EXPR, ev_data=EXPR,
-- ev_extra1..4=EXPR. Expressions see the row's columns by name (NEW; OLD for DELETE).
-- i_new, i_old: the rows in text form (NULL when absent).
-- Result: true when the row operation must be skipped (SKIP in a BEFORE trigger).
CREATE OR REPLACE FUNCTION pgq._trigger_event(
    i_kind text, i_relid oid, i_schema text, i_table text, i_op text, i_when text, i_level text,
    i_args text[], i_new text, i_old text)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    queue text;
    arg text;
    skip boolean := false;
    backup boolean := false;
    deny boolean := false;
    ignore_cols text[] := '{}';
    pkey_arg text[];
    when_expr text;
    -- event fields by position: type, data, extra1..4 (arrays grow on assignment)
    exprs text[];       -- ev_*= expressions
    has_exprs boolean := false;
    ev text[];
    magic text[];       -- values of _pgq_ev_* columns
    magic_set boolean[];
    has_magic boolean := false;
    fqname text := i_schema || '.' || i_table;
    names text[];
    types oid[];
    pkeys text[];
    cur text[];   -- the row the event describes: NEW, or OLD for DELETE
    old text[];
    new text[];
    payload_cols int[] := '{}';
    changed int[] := '{}';
    any_change boolean := false;
    i int;
    k int;
    pos int;
    meta text;      -- prefix of the table description settings
    fast boolean;   -- no ignored, magic or SQL-payload handling needed
    done boolean;   -- results of calls made in expressions (cheaper than PERFORM)
    ev_id bigint;
    when_type oid;
    when_result boolean;
    v text;
    opname text := CASE i_op WHEN 'INSERT' THEN 'I' WHEN 'UPDATE' THEN 'U' WHEN 'DELETE' THEN 'D' ELSE 'R' END;
BEGIN
    IF i_op = 'TRUNCATE' THEN
        IF i_level <> 'STATEMENT' THEN
            RAISE EXCEPTION 'pgq tRuncate trigger must be fired FOR EACH STATEMENT';
        END IF;
    ELSIF i_op IN ('INSERT', 'UPDATE', 'DELETE') THEN
        IF i_level <> 'ROW' THEN
            RAISE EXCEPTION 'pgq Ins/Upd/Del trigger must be fired FOR EACH ROW';
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown event for pgq trigger';
    END IF;
    -- TG_ARGV counts from 0; a slice counts from 1.
    i_args := i_args[array_lower(i_args, 1):array_upper(i_args, 1)];
    IF coalesce(array_length(i_args, 1), 0) < 1 THEN
        RAISE EXCEPTION 'pgq trigger must have destination queue as argument';
    END IF;
    queue := i_args[1];
    FOR i IN 2 .. array_length(i_args, 1) LOOP
        arg := i_args[i];
        IF arg = 'SKIP' THEN
            skip := true;
        ELSIF arg = 'backup' THEN
            backup := true;
        ELSIF arg = 'deny' THEN
            deny := true;
        ELSIF arg LIKE 'ignore=%' THEN
            ignore_cols := string_to_array(substr(arg, 8), ',');
        ELSIF arg LIKE 'pkey=%' THEN
            pkey_arg := string_to_array(substr(arg, 6), ',');
        ELSIF arg LIKE 'when=%' THEN
            when_expr := substr(arg, 6);
        ELSIF arg ~ '^ev_(type|data|extra[1-4])=' THEN
            pos := array_position(ARRAY['ev_type', 'ev_data', 'ev_extra1', 'ev_extra2', 'ev_extra3', 'ev_extra4'],
                                  split_part(arg, '=', 1));
            exprs[pos] := substr(arg, strpos(arg, '=') + 1);
            has_exprs := true;
        ELSE
            RAISE EXCEPTION 'bad param to pgq trigger';
        END IF;
    END LOOP;

    IF current_setting('session_replication_role') = 'local' THEN
        RETURN false;
    END IF;

    IF i_op = 'TRUNCATE' THEN
        IF cardinality(ignore_cols) > 0 THEN
            RAISE EXCEPTION 'Column ignore does not make sense for truncate trigger';
        ELSIF pkey_arg IS NOT NULL THEN
            RAISE EXCEPTION 'Custom pkey_list does not make sense for truncate trigger';
        ELSIF backup THEN
            RAISE EXCEPTION 'Backup does not make sense for truncate trigger';
        ELSIF when_expr IS NOT NULL OR has_exprs THEN
            RAISE EXCEPTION 'Custom expressions do not make sense for truncater trigger';
        END IF;
    END IF;
    IF deny THEN
        RAISE EXCEPTION 'Table ''%'' to queue ''%'': change not allowed (%)', fqname, queue, i_op;
    END IF;
    IF skip AND i_when = 'AFTER' THEN
        RAISE EXCEPTION 'SKIP does not work in AFTER trigger.';
    END IF;

    IF i_op = 'TRUNCATE' THEN
        IF i_kind = 'json' THEN
            done := pgq._table_meta(i_relid);
            pkeys := current_setting('pgq.tg_' || i_relid || '_p')::text[];
            ev[1] := '{"op":"TRUNCATE","table":[' || to_json(i_schema)::text || ',' || to_json(i_table)::text
                  || '],"pkey":' || to_json(pkeys)::text || '}';
            ev[2] := '{}';
        ELSE
            ev[1] := 'R';
            ev[2] := '';
        END IF;
        ev[3] := fqname;
        ev_id := pgq.insert_event(queue, ev[1], ev[2], ev[3], ev[4], ev[5], ev[6]);
        RETURN skip;
    END IF;

    new := pgq._row_fields(i_new);
    IF new IS NULL THEN
        old := pgq._row_fields(i_old);  -- DELETE
    END IF;
    -- Columns (dropped ones are absent from the row text too) and the primary key, looked
    -- up once per statement and table (see pgq._table_meta).
    meta := 'pgq.tg_' || i_relid;
    IF current_setting(meta || '_s', true) IS DISTINCT FROM statement_timestamp()::text THEN
        done := pgq._table_meta(i_relid);
    END IF;
    names := current_setting(meta || '_n')::text[];
    IF cardinality(names) <> cardinality(coalesce(new, old)) THEN
        done := pgq._table_meta(i_relid);
        names := current_setting(meta || '_n')::text[];
    END IF;
    pkeys := coalesce(pkey_arg, current_setting(meta || '_p')::text[]);
    fast := cardinality(ignore_cols) = 0 AND i_kind <> 'sql' AND current_setting(meta || '_m') = 'false';
    IF i_op = 'UPDATE' THEN
        IF fast AND NOT backup THEN
            -- only OLD's key columns are looked at: split it up to the last of them
            pos := 0;
            FOR k IN 1 .. cardinality(pkeys) LOOP
                pos := greatest(pos, array_position(names, pkeys[k]));
            END LOOP;
            old := pgq._row_fields(i_old, pos);
        ELSE
            old := pgq._row_fields(i_old);
        END IF;
    END IF;
    cur := CASE WHEN i_op = 'DELETE' THEN old ELSE new END;

    IF i_op <> 'INSERT' AND cardinality(pkeys) = 0 THEN
        RAISE EXCEPTION 'Update/Delete on table without pkey';
    END IF;

    IF fast THEN
        -- Every column goes out and an UPDATE always makes an event: only the key check.
        payload_cols := current_setting(meta || '_a')::int[];
        IF i_op = 'UPDATE' AND i_new IS DISTINCT FROM i_old THEN
            FOR k IN 1 .. cardinality(pkeys) LOOP
                pos := array_position(names, pkeys[k]);
                IF old[pos] IS DISTINCT FROM new[pos] THEN
                    RAISE EXCEPTION 'primary key update not allowed';
                END IF;
            END LOOP;
        END IF;
    ELSE
        -- Payload columns: not ignored, not magic; magic columns override event fields.
        FOR i IN 1 .. cardinality(names) LOOP
            IF names[i] LIKE '\_pgq\_ev\_%' THEN
                pos := array_position(ARRAY['_pgq_ev_type', '_pgq_ev_data', '_pgq_ev_extra1', '_pgq_ev_extra2',
                                            '_pgq_ev_extra3', '_pgq_ev_extra4'], names[i]);
                IF pos IS NULL THEN
                    RAISE EXCEPTION 'Unknown magic column: %', names[i];
                END IF;
                magic[pos] := cur[i];
                magic_set[pos] := true;
                has_magic := true;
                CONTINUE;
            END IF;
            IF i_op = 'UPDATE' AND old[i] IS DISTINCT FROM new[i] THEN
                IF names[i] = ANY (pkeys) THEN
                    RAISE EXCEPTION 'primary key update not allowed';
                END IF;
                any_change := true;
                IF NOT names[i] = ANY (ignore_cols) THEN
                    changed := changed || i;
                END IF;
            END IF;
            IF NOT names[i] = ANY (ignore_cols) THEN
                payload_cols := payload_cols || i;
            END IF;
        END LOOP;
    END IF;
    IF i_op = 'UPDATE' AND any_change AND cardinality(changed) = 0 THEN
        RETURN skip;  -- only ignored columns changed
    END IF;

    IF when_expr IS NOT NULL THEN
        EXECUTE format('SELECT pg_typeof(v)::oid, CASE WHEN pg_typeof(v) = ''boolean''::regtype THEN v::text::boolean END'
                       ' FROM (SELECT (%s) AS v FROM (SELECT ($1::%s).*) _row) _when', when_expr, i_relid::regclass)
           INTO when_type, when_result USING CASE WHEN i_op = 'DELETE' THEN i_old ELSE i_new END;
        IF when_type <> 'boolean'::regtype THEN
            RAISE EXCEPTION 'when= query result must be boolean, got=%', when_type;
        END IF;
        IF when_result IS NULL THEN
            RAISE EXCEPTION 'when= should not be NULL';
        END IF;
        IF NOT when_result THEN
            RETURN skip;
        END IF;
    END IF;

    IF i_kind = 'logu' THEN
        ev[1] := opname || ':' || array_to_string(pkeys, ',');
        IF fast AND array_position(cur, NULL) IS NULL AND array_to_string(cur, '') ~ '^[-.0-9A-Za-z_ ]*$' THEN
            -- every column, none NULL, nothing to %-encode: one format() call
            ev[2] := translate(format(current_setting(meta || '_f'), VARIADIC cur), ' ', '+');
        ELSE
            ev[2] := pgq._urlencode_row(current_setting(meta || '_k')::text[], cur, payload_cols);
        END IF;
        IF backup AND i_op = 'UPDATE' THEN
            ev[4] := pgq._urlencode_row(current_setting(meta || '_k')::text[], old, payload_cols);
        END IF;
    ELSIF i_kind = 'sql' THEN
        ev[1] := opname;
        IF i_op = 'INSERT' THEN
            SELECT '(' || string_agg(quote_ident(names[c]), ',' ORDER BY c) || ') values ('
                   || string_agg(coalesce(quote_literal(cur[c]), 'null'), ',' ORDER BY c) || ')'
              INTO v FROM unnest(payload_cols) AS c;
        ELSE
            IF i_op = 'UPDATE' THEN
                IF cardinality(changed) = 0 THEN
                    -- nothing changed: set the first key column to itself
                    pos := array_position(names, pkeys[1]);
                    v := quote_ident(pkeys[1]) || '=' || quote_literal(old[pos]);
                ELSE
                    SELECT string_agg(quote_ident(names[c]) || '=' || coalesce(quote_literal(new[c]), 'NULL'),
                                      ',' ORDER BY c)
                      INTO v FROM unnest(changed) AS c;
                END IF;
                v := v || ' where ';
            ELSE
                v := '';
            END IF;
            FOR k IN 1 .. cardinality(pkeys) LOOP
                pos := array_position(names, pkeys[k]);
                v := v || CASE WHEN k > 1 THEN ' and ' ELSE '' END
                       || quote_ident(pkeys[k]) || '=' || quote_literal(old[pos]);
            END LOOP;
        END IF;
        ev[2] := v;
        IF backup AND i_op = 'UPDATE' THEN
            ev[4] := pgq._urlencode_row(current_setting(meta || '_k')::text[], old, payload_cols);
        END IF;
    ELSE
        ev[1] := '{"op":' || to_json(i_op)::text || ',"table":[' || to_json(i_schema)::text
                 || ',' || to_json(i_table)::text || '],"pkey":' || to_json(pkeys)::text || '}';
        types := current_setting(meta || '_t')::oid[];
        ev[2] := pgq._json_row(names, types, cur, payload_cols);
        IF backup AND i_op = 'UPDATE' THEN
            ev[4] := pgq._json_row(names, types, old, payload_cols);
        END IF;
    END IF;
    ev[3] := fqname;

    -- Magic columns (_pgq_ev_*) override first, then ev_*= expressions.
    IF has_magic THEN
        FOR i IN 1 .. 6 LOOP
            IF magic_set[i] THEN
                ev[i] := magic[i];
            END IF;
        END LOOP;
    END IF;
    IF has_exprs THEN
        FOR i IN 1 .. 6 LOOP
            IF exprs[i] IS NOT NULL THEN
                EXECUTE format('SELECT ROW(v)::text FROM (SELECT (%s) AS v FROM (SELECT ($1::%s).*) _row) _expr',
                               exprs[i], i_relid::regclass)
                   INTO v USING CASE WHEN i_op = 'DELETE' THEN i_old ELSE i_new END;
                ev[i] := (pgq._row_fields(v))[1];
            END IF;
        END LOOP;
    END IF;

    ev_id := pgq.insert_event(queue, ev[1], ev[2], ev[3], ev[4], ev[5], ev[6]);
    RETURN skip;
END;
$fn$;
