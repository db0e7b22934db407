-- svcwatch store, version 2: a host's service inventory moves out of the
-- state document into its own column, so a poll that finds nothing new
-- (the host answered "inventory unchanged" and no events) reads and writes
-- a few hundred bytes instead of decoding and re-encoding ~250 services.

ALTER TABLE host_state ADD COLUMN services TEXT NOT NULL DEFAULT 'null'; -- JSON []inventory.Service

-- A row whose document is not valid JSON is left as it is (its inventory
-- 'null'): reading it names the host as corrupt, as before, instead of one
-- bad row stopping the upgrade.
UPDATE host_state
   SET services = coalesce(json_extract(state, '$.services'), 'null'),
       state    = json_remove(state, '$.services')
 WHERE json_valid(state);
