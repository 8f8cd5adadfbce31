-- pgq.seq_setval(i_seq_name, i_new_value): move a sequence forward, never backward.
--
-- i_seq_name: sequence name, optionally schema-qualified.
-- i_new_value: the value the sequence should have reached.
-- Result: the sequence's last_value afterwards (i_new_value if it was behind).
CREATE OR REPLACE FUNCTION pgq.seq_setval(i_seq_name text, i_new_value int8)
RETURNS bigint
LANGUAGE plpgsql STRICT
AS $fn$
DECLARE
    seq text := pgq.quote_fqname(i_seq_name);
    cur bigint;
BEGIN
    EXECUTE 'SELECT last_value FROM ' || seq INTO cur;
    IF cur < i_new_value THEN
        PERFORM pg_catalog.setval(seq::regclass, i_new_value);
        RETURN i_new_value;
    END IF;
    RETURN cur;
END;
$fn$;
