-- pgq._row_fields(row_text, upto): split the text form of a row (record_out: "(a,"b c",)")
-- into the text forms of its columns, as the triggers need them.
--
-- Unquoted empty fields are NULL. A quoted field (record_out quotes values holding
-- spaces, commas, quotes, parentheses or backslashes, and empty strings) may have been
-- cut at its commas: pieces are joined again until its quotes balance, then it loses
-- the outer quotes and the doubling of " and \.
-- upto: stop after this many columns (NULL: all), when only the first ones are needed.
-- Result: text[] with one element per (not dropped) column, in column order.
CREATE OR REPLACE FUNCTION pgq._row_fields(row_text text, upto int DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    parts text[];
    fields text[] := '{}';
    acc text;
    p text;
BEGIN
    IF row_text IS NULL THEN
        RETURN NULL;
    ELSIF row_text = '()' THEN
        RETURN ARRAY[NULL]::text[];
    END IF;
    parts := string_to_array(substr(row_text, 2, length(row_text) - 2), ',');
    IF strpos(row_text, '"') = 0 THEN
        RETURN array_replace(parts, '', NULL);
    END IF;
    FOREACH p IN ARRAY parts LOOP
        IF acc IS NOT NULL THEN
            acc := acc || ',' || p;
        ELSIF left(p, 1) = '"' THEN
            acc := p;
        ELSE
            fields := fields || nullif(p, '');
            EXIT WHEN cardinality(fields) >= upto;
            CONTINUE;
        END IF;
        IF (length(acc) - length(replace(acc, '"', ''))) % 2 = 0 THEN
            acc := substr(acc, 2, length(acc) - 2);
            IF strpos(acc, '"') > 0 THEN
                acc := replace(acc, '""', '"');
            END IF;
            IF strpos(acc, '\') > 0 THEN
                acc := replace(acc, '\\', '\');
            END IF;
            fields := fields || acc;
            acc := NULL;
        END IF;
        EXIT WHEN cardinality(fields) >= upto;
    END LOOP;
    RETURN fields;
END;
$fn$;
