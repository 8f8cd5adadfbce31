-- pgq.seq_getval(i_seq_name): read a sequence's last_value without advancing it.
--
-- i_seq_name: sequence name, optionally schema-qualified.
-- Result: last_value (the start value for a sequence never used; is_called ignored).
CREATE OR REPLACE FUNCTION pgq.seq_getval(i_seq_name text)
RETURNS bigint
LANGUAGE plpgsql STRICT
AS $fn$
DECLARE
    v bigint;
BEGIN
    -- pg_sequence_last_value() needs no dynamic SQL; it is NULL until the first nextval.
    v := pg_catalog.pg_sequence_last_value(pgq.quote_fqname(i_seq_name)::regclass);
    IF v IS NULL THEN
        EXECUTE 'SELECT last_value FROM ' || pgq.quote_fqname(i_seq_name) INTO v;
    END IF;
    RETURN v;
END;
$fn$;
