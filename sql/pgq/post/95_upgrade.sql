-- Upgrade fix-ups that need the functions: pgq.upgrade_schema() for installs made by
-- older versions, and the per-queue grants and storage options of every existing queue
-- (queues created by the original PgQ keep working unchanged).
SELECT pgq.upgrade_schema();
SELECT pgq.grant_perms(queue_name), pgq.tune_storage(queue_name) FROM pgq.queue ORDER BY queue_id;
