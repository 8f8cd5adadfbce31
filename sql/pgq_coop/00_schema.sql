-- pgq_coop: cooperative consumers. Several subconsumers ("main.sub") share one main
-- consumer's stream: each next_batch hands the next tick interval to whichever
-- subconsumer asks. Pure PL/pgSQL over the pgq tables; requires pgq.
CREATE SCHEMA IF NOT EXISTS pgq_coop;
GRANT USAGE ON SCHEMA pgq_coop TO PUBLIC;
