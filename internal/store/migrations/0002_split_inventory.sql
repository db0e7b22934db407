-- svcwatch store, version 2: a host's service inventory moves out of the
-- state document into its own column, so a poll that finds nothing new
-- (the host answered "inventory unchanged" and no events) reads and writes
-- a few hundred bytes instead of decoding and re-encoding ~250 services.

ALTER TABLE host_state ADD COLUMN services TEXT NOT NULL DEFAULT 'null'; -- JSON []inventory.Service

UPDATE host_state
   SET services = coalesce(json_extract(state, '$.services'), 'null'),
       state    = json_remove(state, '$.services');
