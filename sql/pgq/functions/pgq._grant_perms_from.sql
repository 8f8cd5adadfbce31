-- pgq._grant_perms_from(src_schema, src_table, dst_schema, dst_table): copy the table
-- privileges of one table to another, grant options included.
--
-- Result: 1.
CREATE OR REPLACE FUNCTION pgq._grant_perms_from(src_schema text, src_table text, dst_schema text, dst_table text)
RETURNS integer
LANGUAGE plpgsql STRICT
AS $fn$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT grantee, privilege_type, is_grantable
          FROM information_schema.table_privileges
         WHERE table_schema = src_schema AND table_name = src_table
    LOOP
        EXECUTE format('GRANT %s ON %I.%I TO %s%s',
                       p.privilege_type, dst_schema, dst_table,
                       CASE WHEN p.grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(p.grantee) END,
                       CASE WHEN p.is_grantable = 'YES' THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    RETURN 1;
END;
$fn$;
