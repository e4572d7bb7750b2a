-- orket.store.schema_versions: the latest schema version of each store this orket knows,
-- as `orket version` says it without loading the migrations themselves (its start is the
-- floor of the start-up benchmarks). A spec checks them against the migration lists.
return { sqlite = 31, pg = 22 }
